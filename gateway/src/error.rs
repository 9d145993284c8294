//! Every error the API returns, as `{"error":{"code","message"}}` with the
//! right status. Server-side failures get an opaque body and are logged here,
//! once, with their detail; client errors say what was wrong.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (bad JSON syntax, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// A field breaks a rule (too short, out of range…).
    #[error("{0}")]
    InvalidArgument(String),
    /// Well-formed JSON that does not fit the endpoint (missing field, wrong
    /// type).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests,
    /// Over a rate limit of the gateway's (`limits`); retry after the wait.
    #[error("too many {class} requests: retry in {}s", retry_secs(.retry_after))]
    RateLimited {
        class: &'static str,
        retry_after: Duration,
    },
    /// The gateway's own in-flight limit was reached (load shedding).
    /// Counted and summarised by the shedder, never logged per request.
    #[error("the gateway is overloaded, retry later")]
    Overloaded { retry_after: Duration },
    /// A dependency cannot serve now; `retry_after` tells clients when to
    /// come back.
    #[error("service unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after: Option<Duration>,
        cause: UnavailableCause,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a dependency could not serve: the call was shed by our own
/// protection (an open breaker, a full bulkhead) or the dependency failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableCause {
    BreakerOpen,
    BulkheadFull,
    Backend,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_argument`, `not_found`, …
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// For humans; may change between versions.
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Unprocessable(_) => "unprocessable_entity",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "permission_denied",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "already_exists",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::TooManyRequests | Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Timeout(_) => "deadline_exceeded",
            Self::Internal(_) => "internal",
        }
    }

    /// What the caller may read. Server-side details stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Unavailable { .. } => "service temporarily unavailable, retry later".into(),
            Self::Timeout(_) => "the request took too long".into(),
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

/// The one gRPC → HTTP table. Messages of caller errors come from the
/// services, which phrase them for callers; everything else is opaque.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition => Self::InvalidArgument(message),
            // Our services answer bad input with INVALID_ARGUMENT; an
            // OUT_OF_RANGE reaching here is tonic's message-size limit (an
            // answer too large to decode or encode): the platform's fault,
            // never the reader's, so it must not become a 400.
            Code::OutOfRange => Self::Internal(format!("OutOfRange: {message}")),
            Code::NotFound => Self::NotFound(message),
            Code::AlreadyExists | Code::Aborted => Self::Conflict(message),
            Code::Unauthenticated => Self::Unauthenticated(message),
            Code::PermissionDenied => Self::Forbidden(message),
            Code::ResourceExhausted => Self::TooManyRequests,
            Code::Unavailable | Code::Cancelled => Self::Unavailable {
                detail: format!("{:?}: {message}", status.code()),
                retry_after: Some(retry_after(&status)),
                cause: if breaker_open(&status).is_some() {
                    UnavailableCause::BreakerOpen
                } else if caused_by::<kit::resilience::BulkheadFull>(&status).is_some() {
                    UnavailableCause::BulkheadFull
                } else {
                    UnavailableCause::Backend
                },
            },
            Code::DeadlineExceeded => Self::Timeout(message),
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                Self::Internal(format!("{:?}: {message}", status.code()))
            }
        }
    }
}

/// `Retry-After` in whole seconds, rounded up (a client that waits what it
/// was told must not be refused again) and at least 1.
fn retry_secs(after: &Duration) -> u64 {
    after.as_secs_f64().ceil().max(1.0) as u64
}

/// When to come back: the rest of an open breaker's sleep window, else 1 s.
fn retry_after(status: &tonic::Status) -> Duration {
    breaker_open(status).map_or(Duration::from_secs(1), |open| {
        open.retry_after.max(Duration::from_secs(1))
    })
}

/// The open breaker that rejected this call, if that is why it failed.
pub(crate) fn breaker_open(status: &tonic::Status) -> Option<&kit::resilience::BreakerOpen> {
    caused_by(status)
}

/// The error of type `T` among the sources of `status`.
fn caused_by<T: std::error::Error + 'static>(status: &tonic::Status) -> Option<&T> {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        source = error.source();
    }
    None
}

/// How often a kind of failure that arrives with every request during an
/// outage or a spike is logged (a summary with the count held back).
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Logs a failure that can come with every request (a shed call, a dead or
/// slow dependency) at most once per [`SUMMARY_EVERY`] per cause: during a
/// spike a line (and, with a Sentry DSN, an error report) per rejected
/// request would cost more CPU than the requests. Each rejection is counted
/// already: `breaker_calls_total{outcome="rejected"|"short_circuited"}` per
/// method and `http_server_requests_total{status}` per route. Shedding is
/// the protection working, so it is a warning; a dependency that fails or
/// times out is an error, once per interval.
fn log_summary(error: &ApiError) {
    use kit::telemetry::LogEvery;
    static BREAKER_OPEN: LogEvery = LogEvery::new(SUMMARY_EVERY);
    static BULKHEAD_FULL: LogEvery = LogEvery::new(SUMMARY_EVERY);
    static BACKEND: LogEvery = LogEvery::new(SUMMARY_EVERY);
    static TIMEOUT: LogEvery = LogEvery::new(SUMMARY_EVERY);
    let (every, cause) = match error {
        ApiError::Unavailable { cause, .. } => match cause {
            UnavailableCause::BreakerOpen => (&BREAKER_OPEN, "breaker_open"),
            UnavailableCause::BulkheadFull => (&BULKHEAD_FULL, "bulkhead_full"),
            UnavailableCause::Backend => (&BACKEND, "unavailable"),
        },
        _ => (&TIMEOUT, "timeout"),
    };
    let Some(suppressed) = every.check() else {
        return;
    };
    let status = error.status().as_u16();
    if matches!(cause, "breaker_open" | "bulkhead_full") {
        tracing::warn!(status, cause, error = %error, suppressed, "requests shed (one line per 10 s per cause; suppressed = since the last line)");
    } else {
        tracing::error!(status, cause, error = %error, suppressed, "requests failed (one line per 10 s per cause; suppressed = since the last line)");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Overloaded { .. } = self {
            // Counted by the shedder, which logs a summary per interval.
        } else if matches!(self, Self::Unavailable { .. } | Self::Timeout(_)) {
            log_summary(&self);
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Unavailable {
                retry_after: Some(after),
                ..
            }
            | Self::Overloaded { retry_after: after } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(after.as_secs().max(1)),
                );
            }
            Self::RateLimited { retry_after, .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_secs(retry_after)),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_http_statuses() {
        let table = [
            (Code::InvalidArgument, 400),
            (Code::OutOfRange, 500),
            (Code::FailedPrecondition, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::Cancelled, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::Unimplemented, 500),
            (Code::DataLoss, 500),
        ];
        for (code, http) in table {
            let status = ApiError::from(tonic::Status::new(code, "m")).status();
            assert_eq!(status.as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn server_errors_hide_their_detail() {
        let error = ApiError::from(tonic::Status::internal("db password is hunter2"));
        assert_eq!(error.public_message(), "internal error");
        let error = ApiError::from(tonic::Status::unavailable("10.0.0.7:50051 refused"));
        assert!(!error.public_message().contains("10.0.0.7"));
    }

    #[test]
    fn caller_errors_keep_the_services_message() {
        let error = ApiError::from(tonic::Status::already_exists("username \"bob\" is taken"));
        assert_eq!(error.public_message(), "username \"bob\" is taken");
    }

    #[test]
    fn an_open_breaker_says_when_to_retry() {
        let open = kit::resilience::BreakerOpen {
            breaker: "b".into(),
            retry_after: Duration::from_millis(4200),
        };
        let status = kit::resilience::status(open.into());
        let response = ApiError::from(status).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "4");
    }

    #[test]
    fn shed_calls_say_why_so_their_log_lines_are_summarised_per_cause() {
        let full = kit::resilience::BulkheadFull {
            bulkhead: "b".into(),
            limit: 1,
        };
        let open = kit::resilience::BreakerOpen {
            breaker: "b".into(),
            retry_after: Duration::from_secs(1),
        };
        let cause = |status: tonic::Status| match ApiError::from(status) {
            ApiError::Unavailable { cause, .. } => cause,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            cause(kit::resilience::status(full.into())),
            UnavailableCause::BulkheadFull
        );
        assert_eq!(
            cause(kit::resilience::status(open.into())),
            UnavailableCause::BreakerOpen
        );
        assert_eq!(
            cause(tonic::Status::unavailable("refused")),
            UnavailableCause::Backend
        );
    }

    #[test]
    fn unavailable_answers_carry_retry_after() {
        let response = ApiError::from(tonic::Status::unavailable("x")).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
