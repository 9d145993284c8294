use std::time::Duration;

/// The call's budget ran out before the callee answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no answer within {budget:?}")]
pub struct TimedOut {
    pub budget: Duration,
}

/// The caller's own deadline left less than the method's `min_budget`, so
/// the call was not sent: no answer could arrive in time, and a timeout
/// would blame the callee for the caller's slowness.
#[derive(Debug, Clone, thiserror::Error)]
#[error("only {left:?} of the caller's deadline left (under {floor:?}); not sent")]
pub struct DeadlineSpent {
    pub left: Duration,
    pub floor: Duration,
}
