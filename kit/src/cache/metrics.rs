//! `cache_requests_total{cache,result}` (one per key looked up, `hit` or
//! `miss`), `cache_refreshes_total{cache}` (hits that reloaded their key
//! ahead of its expiry) and `cache_errors_total{cache}`; the hit rate is
//! hits / (hits + misses).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Registry;
use crate::telemetry::LogEvery;

/// At most one "cache unavailable" log line per interval: a
/// Redis outage under load must not turn into a log flood.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
}

pub(super) struct CacheMetrics {
    requests: Family<RequestLabels, Counter>,
    refreshes: Family<CacheLabel, Counter>,
    errors: Family<CacheLabel, Counter>,
    log: LogEvery,
}

impl CacheMetrics {
    pub fn new(registry: &Registry) -> Self {
        let requests = Family::default();
        let errors = Family::default();
        let refreshes = Family::default();
        registry.register(
            "cache_requests",
            "Cache lookups by key, by result (hit or miss)",
            requests.clone(),
        );
        registry.register(
            "cache_refreshes",
            "Cache hits that reloaded their key ahead of its expiry",
            refreshes.clone(),
        );
        registry.register(
            "cache_errors",
            "Cache calls that failed or timed out and were bypassed",
            errors.clone(),
        );
        Self {
            requests,
            refreshes,
            errors,
            log: LogEvery::new(LOG_EVERY),
        }
    }

    /// The hit and miss counters of one keyspace, looked up once: a page of
    /// 20 counts would otherwise pay 40 label-set hashes and lock rounds
    /// for its metrics alone (a sixth of the comment service's instructions
    /// per page in `make bench-instr`).
    pub fn lookups(&self, cache: &'static str) -> Lookups {
        let counter = |result| {
            self.requests
                .get_or_create(&RequestLabels { cache, result })
                .clone()
        };
        Lookups {
            hits: counter("hit"),
            misses: counter("miss"),
        }
    }

    /// The refresh counter of one keyspace, looked up once.
    pub fn refreshes(&self, cache: &'static str) -> Counter {
        self.refreshes.get_or_create(&CacheLabel { cache }).clone()
    }

    pub fn error(&self, cache: &'static str) {
        self.errors.get_or_create(&CacheLabel { cache }).inc();
    }

    /// Whether to log this error; if so, how many were not logged since.
    pub fn should_log(&self) -> Option<u64> {
        self.log.check()
    }
}

/// One keyspace's `cache_requests_total` counters; they share their values
/// with the registered family.
pub(super) struct Lookups {
    hits: Counter,
    misses: Counter,
}

impl Lookups {
    /// Counts one lookup of `hits + misses` keys.
    pub fn record(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.hits.inc_by(hits);
        }
        if misses > 0 {
            self.misses.inc_by(misses);
        }
    }
}
