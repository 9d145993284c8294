use std::time::Duration;

/// The circuit is open: the call was rejected without reaching the callee.
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit breaker {breaker} is open; retry in {retry_after:?}")]
pub struct BreakerOpen {
    pub breaker: String,
    /// Until the next trial call may go through.
    pub retry_after: Duration,
}
