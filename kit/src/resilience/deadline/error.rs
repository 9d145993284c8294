use std::time::Duration;

/// The call's budget ran out before the callee answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no answer within {budget:?}")]
pub struct TimedOut {
    pub budget: Duration,
}
