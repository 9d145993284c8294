//! Capped exponential backoff with full jitter: after a shared failure (etcd
//! restarted) a whole fleet retries spread over the window instead of at once.

use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next retry.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(fastrand::f64())
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_doubling_ceiling_capped_at_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for ceiling_ms in [100, 200, 400, 800, 1000, 1000] {
            assert!(b.next_delay() <= Duration::from_millis(ceiling_ms));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
