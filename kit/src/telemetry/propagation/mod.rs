//! W3C trace context across process boundaries. Servers continue the
//! caller's trace ([`ServerSpan`], the span of [`crate::telemetry::span::RequestSpan`]);
//! clients start a client span and send its context along
//! ([`InjectContextLayer`]). gRPC metadata is HTTP/2 headers, so one pair of
//! helpers serves both HTTP and gRPC.

mod client;
mod server;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};

pub use client::{InjectContextLayer, InjectContextService};
pub use server::ServerSpan;

/// Reads propagation fields from request headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes propagation fields into request headers.
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The caller's context from `headers` (empty when there is none).
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes `context` into `headers` (`traceparent`, `tracestate`).
pub fn inject(context: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(context, &mut HeaderInjector(headers));
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry::trace::{SpanId, TraceId};

    use super::*;

    #[test]
    fn a_context_survives_a_trip_through_headers() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let sent = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let mut headers = http::HeaderMap::new();
        inject(
            &Context::new().with_remote_span_context(sent.clone()),
            &mut headers,
        );
        assert_eq!(
            headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let received = extract(&headers);
        assert_eq!(received.span().span_context(), &sent);
    }
}
