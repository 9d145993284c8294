use std::time::Duration;

use tower::Layer;

use super::{DEFAULT_MIN_BUDGET, Deadline};

#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    timeout: Duration,
    min_budget: Duration,
}

impl DeadlineLayer {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            min_budget: DEFAULT_MIN_BUDGET,
        }
    }

    /// Below this much of the caller's deadline, calls are not sent.
    pub fn with_min_budget(mut self, min_budget: Duration) -> Self {
        self.min_budget = min_budget;
        self
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline::new(inner, self.timeout).with_min_budget(self.min_budget)
    }
}
