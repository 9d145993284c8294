//! Semaphore isolation (Hystrix's bulkhead) as tower middleware: at most
//! `limit` calls in flight; a call beyond that is rejected at once with
//! [`BulkheadFull`], never queued, so a slow dependency cannot pile up work.
//!
//! The limit is fixed, or adaptive: once per `window` it shrinks by `backoff`
//! when a call failed or timed out or the window's mean latency passed the
//! target, and grows by one when the limit was what held calls back,
//! between `min` and `max` (AIMD, as Netflix's concurrency-limits). The
//! target is `latency_target` when set, else `tolerance` × the latency the
//! callee answers with when nothing queues, learnt as the lowest window
//! mean (allowed to drift up 0.1 % a second, so that a callee that really
//! got slower is followed while a minute of overload is not). Little's law
//! makes that the bound that matters under overload: the calls a limit
//! admits wait for each other, so a count fixed for the quiet hour (200)
//! turns a 10× spike into seconds of queueing for everyone admitted.
//!
//! The slot is taken in `call`, not in `poll_ready`, so a service that was
//! made ready but never called holds nothing.

mod error;
mod future;
mod layer;
mod limiter;
mod permits;
mod service;

use std::time::Duration;

use serde::Deserialize;

pub use error::BulkheadFull;
pub use future::ResponseFuture;
pub use layer::BulkheadLayer;
pub use limiter::Limiter;
pub use service::Bulkhead;

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadSettings {
    /// Fixed limit of calls in flight; 0 means unlimited.
    pub max_concurrent: usize,
    /// When set, replaces the fixed limit with an adaptive one.
    pub adaptive: Option<AdaptiveSettings>,
}

impl Default for BulkheadSettings {
    fn default() -> Self {
        Self {
            max_concurrent: 200,
            adaptive: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveSettings {
    pub min: usize,
    pub max: usize,
    pub initial: usize,
    /// A window whose calls took longer than this on average counts as
    /// congestion; unset: `tolerance` × the learnt no-load latency.
    #[serde(with = "humantime_serde")]
    pub latency_target: Option<Duration>,
    /// The latency allowed, as a multiple of the no-load latency, when
    /// `latency_target` is unset.
    pub tolerance: f64,
    /// How often the limit is revised (and over how many calls' latency:
    /// those that ended in it, at least 5).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Factor applied to the limit on congestion.
    pub backoff: f64,
}

impl AdaptiveSettings {
    /// Refuses values that parse but cannot work, naming the setting under
    /// `key` (`bulkhead.adaptive`, `http.shed.adaptive`).
    pub fn check(&self, key: &str) -> Result<(), String> {
        if self.min == 0 {
            return Err(format!("{key}.min must be at least 1"));
        }
        if self.max == 0 {
            return Err(format!("{key}.max must be at least 1"));
        }
        if self.min > self.max {
            return Err(format!(
                "{key}.min ({}) is above {key}.max ({})",
                self.min, self.max
            ));
        }
        if !(self.min..=self.max).contains(&self.initial) {
            return Err(format!(
                "{key}.initial ({}) must be between min ({}) and max ({})",
                self.initial, self.min, self.max
            ));
        }
        // NaN fails this too: the limit would become NaN, i.e. no limit.
        if !(self.backoff > 0.0 && self.backoff < 1.0) {
            return Err(format!(
                "{key}.backoff must be above 0 and below 1, not {}",
                self.backoff
            ));
        }
        if self.latency_target.is_some_and(|t| t.is_zero()) {
            return Err(format!("{key}.latency_target must be positive"));
        }
        if self.tolerance.is_nan() || self.tolerance < 1.0 {
            return Err(format!(
                "{key}.tolerance must be at least 1, not {}",
                self.tolerance
            ));
        }
        if self.window.is_zero() {
            return Err(format!("{key}.window must be positive"));
        }
        Ok(())
    }
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        Self {
            min: 4,
            max: 500,
            initial: 50,
            latency_target: None,
            tolerance: 2.0,
            window: Duration::from_millis(100),
            backoff: 0.9,
        }
    }
}
