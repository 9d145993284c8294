//! `cache_requests_total{cache,result}` (one per key looked up, `hit` or
//! `miss`) and `cache_errors_total{cache}`; the hit rate is
//! hits / (hits + misses).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Registry;

/// At most one "cache unavailable" log line per this many milliseconds: a
/// Redis outage under load must not turn into a log flood.
const LOG_EVERY_MS: u64 = 10_000;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    cache: &'static str,
}

pub(super) struct CacheMetrics {
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    last_log_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl CacheMetrics {
    pub fn new(registry: &Registry) -> Self {
        let requests = Family::default();
        let errors = Family::default();
        registry.register(
            "cache_requests",
            "Cache lookups by key, by result (hit or miss)",
            requests.clone(),
        );
        registry.register(
            "cache_errors",
            "Cache calls that failed or timed out and were bypassed",
            errors.clone(),
        );
        Self {
            requests,
            errors,
            last_log_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    pub fn hit(&self, cache: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                cache,
                result: "hit",
            })
            .inc();
    }

    pub fn miss(&self, cache: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                cache,
                result: "miss",
            })
            .inc();
    }

    pub fn error(&self, cache: &'static str) {
        self.errors.get_or_create(&ErrorLabels { cache }).inc();
    }

    /// Whether to log this error; if so, how many were not logged since.
    pub fn should_log(&self) -> Option<u64> {
        let now = u64::try_from(crate::time::now_ms()).unwrap_or_default();
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_MS
            && self
                .last_log_ms
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
