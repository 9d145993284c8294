//! Semaphore isolation (Hystrix's bulkhead) as tower middleware: at most
//! `limit` calls in flight; a call beyond that is rejected at once with
//! [`BulkheadFull`], never queued, so a slow dependency cannot pile up work.
//!
//! The limit is fixed, or adaptive (AIMD, as Netflix's concurrency-limits):
//! it grows by `1/limit` per call that finished within `latency_target` and
//! shrinks by `backoff` on a slow or failed call, between `min` and `max`.
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
    /// Calls slower than this count as congestion.
    #[serde(with = "humantime_serde")]
    pub latency_target: Duration,
    /// Factor applied to the limit on congestion.
    pub backoff: f64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        Self {
            min: 4,
            max: 500,
            initial: 50,
            latency_target: Duration::from_millis(100),
            backoff: 0.9,
        }
    }
}
