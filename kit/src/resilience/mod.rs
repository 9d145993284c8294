//! Hystrix-style protection for calls to other services: per-method circuit
//! breakers, bulkheads and deadlines as tower layers, and budgeted retries.
//!
//! Every client channel (see [`crate::client`]) routes each call by its gRPC
//! method to a stack of its own, built from [`ResilienceSettings`]: a default
//! policy that a service or a method overrides. Outermost first:
//!
//! 1. [`Breaker`]: rejects at once while the method's circuit is open, so an
//!    open circuit costs no bulkhead slot and no network; it sees bulkhead
//!    rejections (neutral unless the method's `count_bulkhead_rejections`
//!    says otherwise) and timeouts (failures) of the layers below.
//! 2. [`Bulkhead`]: bounds calls in flight and rejects the excess at once.
//! 3. [`Deadline`]: bounds each call by its budget and sends `grpc-timeout`.
//!
//! Retries are not a layer: they live in one place only, the gateway, for
//! idempotent reads ([`retry`]), so a sick service never sees retries of
//! retries.
//!
//! Breakers and bulkheads live as long as the process, as Hystrix's do: one
//! pair per method, made on its first call ([`Breakers`]), shared by every
//! channel calling it. Layers and their futures hold `&'static` references
//! to them, so a call bumps no reference count that every core would
//! contend for (docs/benchmarks.md has the figures).

pub mod breaker;
pub mod bulkhead;
pub mod deadline;
mod guard;
mod registry;
pub mod retry;
mod stripe;

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use tower::BoxError;

pub use breaker::{Breaker, BreakerOpen, BreakerSettings, Circuit, Force, Outcome, State};
pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadSettings, Limiter};
pub use deadline::{Deadline, DeadlineSpent, TimedOut};
pub use guard::{Guarded, Stack};
pub use registry::{BreakerSnapshot, Breakers};

/// The protection of one method.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A call left with less than this of its caller's deadline is not
    /// sent: it fails at once with DEADLINE_EXCEEDED and counts as neutral
    /// for the breaker (default 5 ms).
    #[serde(with = "humantime_serde")]
    pub min_budget: Duration,
    pub breaker: BreakerSettings,
    pub bulkhead: BulkheadSettings,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            min_budget: deadline::DEFAULT_MIN_BUDGET,
            breaker: BreakerSettings::default(),
            bulkhead: BulkheadSettings::default(),
        }
    }
}

/// Defaults plus overrides, keyed by gRPC service (`comment.v1.CommentService`)
/// or method (`comment.v1.CommentService/CountComments`). An override only
/// names what it changes; the rest comes from `default` (then the service's
/// override, for a method).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceSettings {
    pub default: Policy,
    pub overrides: HashMap<String, serde_json::Value>,
}

/// A configured policy that does not fit [`Policy`] or cannot work.
#[derive(Debug, thiserror::Error)]
#[error("resilience.{key}: {source}")]
pub struct InvalidPolicy {
    /// `default` or `overrides.<service or method>`.
    pub key: String,
    #[source]
    pub source: PolicyError,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Parse(#[from] serde_json::Error),
    /// A value that parses but would fail (or panic) on the first call.
    #[error("{0}")]
    Value(String),
}

impl Policy {
    /// Refuses values that parse but cannot work, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        if self.timeout.is_zero() {
            return Err("timeout must be positive".into());
        }
        let b = &self.breaker;
        if b.window.is_zero() {
            return Err("breaker.window must be positive".into());
        }
        if b.buckets == 0 || u128::from(b.buckets) > b.window.as_nanos() {
            return Err(format!(
                "breaker.buckets must be between 1 and the window in nanoseconds, not {}",
                b.buckets
            ));
        }
        if b.error_threshold_percentage > 100 {
            return Err(format!(
                "breaker.error_threshold_percentage must be at most 100, not {}",
                b.error_threshold_percentage
            ));
        }
        if !(1..=u32::from(u16::MAX)).contains(&b.half_open_calls) {
            return Err(format!(
                "breaker.half_open_calls must be between 1 and {}, not {}",
                u16::MAX,
                b.half_open_calls
            ));
        }
        if let Some(a) = &self.bulkhead.adaptive {
            a.check("bulkhead.adaptive")?;
        }
        Ok(())
    }
}

impl ResilienceSettings {
    /// The policy of `method` (`/pkg.Service/Method` or `pkg.Service/Method`).
    pub fn policy(&self, method: &str) -> Result<Policy, InvalidPolicy> {
        let method = method.trim_start_matches('/');
        let service = method.split('/').next().unwrap_or(method);
        let mut merged = serde_json::to_value(&self.default).map_err(|e| InvalidPolicy {
            key: "default".into(),
            source: e.into(),
        })?;
        for key in [service, method] {
            if let Some(patch) = self.overrides.get(key) {
                merge(&mut merged, patch);
            }
        }
        serde_json::from_value(merged).map_err(|e| InvalidPolicy {
            key: format!("overrides.{method}"),
            source: e.into(),
        })
    }

    /// Checks the default and every override (merged as calls will see
    /// them), so a typo or a value that would fail on the first call stops
    /// the process at start-up.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        let invalid = |key: String| {
            move |problem| InvalidPolicy {
                key,
                source: PolicyError::Value(problem),
            }
        };
        self.default.check().map_err(invalid("default".into()))?;
        for key in self.overrides.keys() {
            self.policy(key)?
                .check()
                .map_err(invalid(format!("overrides.{key}")))?;
        }
        Ok(())
    }
}

fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                merge(
                    base.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// Parsed once, not per call as a `&str` key would be.
pub(crate) const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// How a call's result counts for the callee's health. gRPC errors arrive as
/// trailers-only responses, so the status is in the headers; an answer
/// without `grpc-status` there is a success.
pub fn classify<B>(result: &Result<http::Response<B>, BoxError>) -> Outcome {
    match result {
        Ok(response) => classify_code(
            response
                .headers()
                .get(&GRPC_STATUS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok()),
        ),
        Err(error) if error.is::<BulkheadFull>() || error.is::<BreakerOpen>() => Outcome::Rejected,
        // The caller's deadline was spent before sending: not the callee's doing.
        Err(error) if error.is::<DeadlineSpent>() => Outcome::Neutral,
        Err(error) if error.is::<TimedOut>() || is_deadline(error) => Outcome::Timeout,
        Err(_) => Outcome::Failure,
    }
}

/// How a gRPC status code (`None`: no status, an OK answer so far) counts
/// for the callee's health.
pub fn classify_code(code: Option<i32>) -> Outcome {
    match code {
        None | Some(0) => Outcome::Success,
        // DEADLINE_EXCEEDED
        Some(4) => Outcome::Timeout,
        // UNKNOWN, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE; and
        // OUT_OF_RANGE, which our services never answer to bad input (they
        // say INVALID_ARGUMENT) but tonic does for a message past its size
        // limit: the callee answered something no caller can read.
        Some(2 | 8 | 11 | 13 | 14) => Outcome::Failure,
        // The caller's own mistakes say nothing about the callee.
        Some(_) => Outcome::Neutral,
    }
}

/// The status a caller sees for a call that failed below gRPC. The typed
/// error stays attached as the source (the gateway reads `BreakerOpen` for
/// its `Retry-After`).
pub fn status(error: BoxError) -> tonic::Status {
    let mut status = if let Some(open) = error.downcast_ref::<BreakerOpen>() {
        tonic::Status::unavailable(format!("circuit breaker open for {}", open.breaker))
    } else if error.is::<BulkheadFull>() {
        tonic::Status::unavailable("too many calls in flight")
    } else if error.is::<TimedOut>() || error.is::<DeadlineSpent>() || is_deadline(&error) {
        tonic::Status::deadline_exceeded(error.to_string())
    } else {
        match error.downcast::<tonic::Status>() {
            Ok(status) => return *status,
            Err(other) => {
                let mut status = tonic::Status::unavailable(other.to_string());
                status.set_source(std::sync::Arc::from(other));
                return status;
            }
        }
    };
    status.set_source(std::sync::Arc::from(error));
    status
}

fn is_deadline(error: &BoxError) -> bool {
    matches!(
        error.downcast_ref::<crate::discovery::BalanceError>(),
        Some(crate::discovery::BalanceError::DeadlineExceeded { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: Option<&'static str>) -> Result<http::Response<()>, BoxError> {
        let mut response = http::Response::new(());
        if let Some(code) = code {
            response
                .headers_mut()
                .insert("grpc-status", http::HeaderValue::from_static(code));
        }
        Ok(response)
    }

    #[test]
    fn outcomes_follow_the_grpc_status() {
        assert_eq!(classify(&answer(None)), Outcome::Success);
        assert_eq!(classify(&answer(Some("0"))), Outcome::Success);
        for code in ["2", "8", "11", "13", "14"] {
            assert_eq!(classify(&answer(Some(code))), Outcome::Failure, "{code}");
        }
        assert_eq!(classify(&answer(Some("4"))), Outcome::Timeout);
        for code in ["3", "5", "6", "7", "9", "16"] {
            assert_eq!(classify(&answer(Some(code))), Outcome::Neutral, "{code}");
        }
    }

    #[test]
    fn local_rejections_are_not_failures_of_the_callee() {
        let full: BoxError = BulkheadFull {
            bulkhead: "b".into(),
            limit: 1,
        }
        .into();
        assert_eq!(classify::<()>(&Err(full)), Outcome::Rejected);
        let late: BoxError = TimedOut {
            budget: Duration::from_millis(5),
        }
        .into();
        assert_eq!(classify::<()>(&Err(late)), Outcome::Timeout);
        assert_eq!(
            classify::<()>(&Err("connection refused".into())),
            Outcome::Failure
        );
    }

    #[test]
    fn overrides_change_only_what_they_name() {
        let settings: ResilienceSettings = serde_json::from_value(serde_json::json!({
            "overrides": {
                "comment.v1.CommentService": {"timeout": "300ms"},
                "comment.v1.CommentService/CountComments": {"breaker": {"error_threshold_percentage": 20}},
            }
        }))
        .unwrap();
        settings.validate().unwrap();
        let p = settings
            .policy("/comment.v1.CommentService/CountComments")
            .unwrap();
        assert_eq!(p.timeout, Duration::from_millis(300));
        assert_eq!(p.breaker.error_threshold_percentage, 20);
        assert_eq!(p.breaker.request_volume_threshold, 20, "from the default");
        let other = settings.policy("/user.v1.UserService/GetUser").unwrap();
        assert_eq!(other, Policy::default());
    }

    #[test]
    fn a_misspelt_override_is_rejected() {
        let settings: ResilienceSettings = serde_json::from_value(serde_json::json!({
            "overrides": {"x.v1.X": {"breaker": {"eror_threshold": 1}}}
        }))
        .unwrap();
        assert!(settings.validate().is_err());
    }

    fn refused(settings: serde_json::Value) -> String {
        let settings: ResilienceSettings = serde_json::from_value(settings).unwrap();
        match settings.validate() {
            Ok(()) => panic!("accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn adaptive_bulkheads_that_would_panic_or_never_limit_are_refused() {
        let adaptive = |a: serde_json::Value| serde_json::json!({"bulkhead": {"adaptive": a}});
        for (bad, key) in [
            (
                serde_json::json!({"min": 10, "max": 5}),
                "bulkhead.adaptive.min",
            ),
            (serde_json::json!({"min": 0}), "bulkhead.adaptive.min"),
            (serde_json::json!({"max": 0}), "bulkhead.adaptive.max"),
            (
                serde_json::json!({"initial": 1000}),
                "bulkhead.adaptive.initial",
            ),
            (
                serde_json::json!({"backoff": 1.0}),
                "bulkhead.adaptive.backoff",
            ),
            (
                serde_json::json!({"backoff": -0.5}),
                "bulkhead.adaptive.backoff",
            ),
            (
                serde_json::json!({"latency_target": "0s"}),
                "bulkhead.adaptive.latency_target",
            ),
            (
                serde_json::json!({"tolerance": 0.5}),
                "bulkhead.adaptive.tolerance",
            ),
            (
                serde_json::json!({"window": "0s"}),
                "bulkhead.adaptive.window",
            ),
        ] {
            let message = refused(serde_json::json!({"default": adaptive(bad.clone())}));
            assert!(
                message.contains("resilience.default") && message.contains(key),
                "default {bad}: {message}"
            );
            let message =
                refused(serde_json::json!({"overrides": {"x.v1.X/M": adaptive(bad.clone())}}));
            assert!(
                message.contains("x.v1.X/M") && message.contains(key),
                "override {bad}: {message}"
            );
        }
    }

    #[test]
    fn a_nan_backoff_is_refused() {
        let mut settings = ResilienceSettings::default();
        settings.default.bulkhead.adaptive = Some(bulkhead::AdaptiveSettings {
            backoff: f64::NAN,
            ..Default::default()
        });
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("backoff"), "{message}");
    }

    #[test]
    fn breaker_settings_that_cannot_work_are_refused() {
        for (bad, key) in [
            (serde_json::json!({"buckets": 0}), "breaker.buckets"),
            (serde_json::json!({"window": "0s"}), "breaker.window"),
            (
                serde_json::json!({"error_threshold_percentage": 101}),
                "breaker.error_threshold_percentage",
            ),
            (
                serde_json::json!({"half_open_calls": 0}),
                "breaker.half_open_calls",
            ),
        ] {
            let message = refused(serde_json::json!({"default": {"breaker": bad.clone()}}));
            assert!(message.contains(key), "{bad}: {message}");
        }
        let message = refused(serde_json::json!({"default": {"timeout": "0s"}}));
        assert!(message.contains("timeout"), "{message}");
    }
}
