//! One log line per interval for events that can happen on every request
//! (a degraded answer, a bypassed cache): during an outage or a spike, a line
//! per request costs more CPU than the requests and buries everything else.
//! The event is counted in a metric by its caller; the log gets a summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Lets one event through per interval and counts the ones it held back.
#[derive(Debug)]
pub struct LogEvery {
    interval_ms: u64,
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogEvery {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were
    /// held back since the last logged one; `None` otherwise.
    pub fn check(&self) -> Option<u64> {
        let now = u64::try_from(crate::time::now_ms()).unwrap_or_default();
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.interval_ms
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_once_and_counts_the_rest() {
        let every = LogEvery::new(Duration::from_secs(3600));
        assert_eq!(every.check(), Some(0));
        for _ in 0..999 {
            assert_eq!(every.check(), None);
        }
        // The next window's line reports the 999 held back.
        every.last_ms.store(0, Ordering::Relaxed);
        assert_eq!(every.check(), Some(999));
    }
}
