//! Explicit gRPC message size limits, for servers and clients alike.
//!
//! tonic's defaults (4 MiB to decode, unlimited to encode) are implicit, and
//! a response past the decode limit fails on the *caller*, after the callee
//! did all the work. Each process states its limits in config; lists return
//! summaries so that no page comes near them (see the content service).

use serde::Deserialize;

/// Largest gRPC message, in bytes, each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageLimits {
    /// Largest message accepted (requests on a server, responses on a
    /// client). A larger one fails the call.
    pub max_decoding_bytes: usize,
    /// Largest message sent.
    pub max_encoding_bytes: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            max_decoding_bytes: 4 * 1024 * 1024,
            max_encoding_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A limit that cannot work.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}: message limits must be between 1 byte and 4 GiB - 1 (gRPC frames carry a 32-bit length)"
)]
pub struct InvalidLimits(pub &'static str);

impl MessageLimits {
    pub fn validate(&self, section: &'static str) -> Result<(), InvalidLimits> {
        let ok = |n: usize| n > 0 && u32::try_from(n).is_ok();
        if ok(self.max_decoding_bytes) && ok(self.max_encoding_bytes) {
            Ok(())
        } else {
            Err(InvalidLimits(section))
        }
    }
}

/// Applies `limits` to a generated tonic client or server, which all share
/// the two builder methods but no trait:
/// `kit::with_message_limits!(UserServiceClient::new(channel), &limits)`.
#[macro_export]
macro_rules! with_message_limits {
    ($grpc:expr, $limits:expr) => {{
        let limits: &$crate::messages::MessageLimits = $limits;
        $grpc
            .max_decoding_message_size(limits.max_decoding_bytes)
            .max_encoding_message_size(limits.max_encoding_bytes)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_oversized_limits_are_refused() {
        assert!(MessageLimits::default().validate("x").is_ok());
        let zero = MessageLimits {
            max_decoding_bytes: 0,
            ..MessageLimits::default()
        };
        assert!(zero.validate("platform.grpc.messages").is_err());
        let huge = MessageLimits {
            max_encoding_bytes: usize::MAX,
            ..MessageLimits::default()
        };
        assert!(huge.validate("platform.grpc.messages").is_err());
    }
}
