//! A Prometheus registry per process (not a global, so that tests can run a
//! gateway and three services in one process and still tell them apart), and
//! the metric families every process exports.

pub mod grpc;
pub mod http;
pub mod names;
mod process;
pub mod recorder;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Metric;

pub use grpc::{GrpcMetrics, GrpcMetricsLayer};
pub use http::{HttpMetrics, HttpMetricsLayer};

/// Latency buckets (seconds) fine enough around the usual API budget that a
/// p98 computed with `histogram_quantile` is within a few milliseconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192,
];

/// A cheap, cloneable handle to one process's metrics.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<prometheus_client::registry::Registry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with the process families (memory, CPU) already in it.
    pub fn new() -> Self {
        let registry = Self::default();
        registry
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register_collector(Box::new(process::ProcessCollector));
        registry
    }

    /// Registers `metric` under `name`. Metrics are handles: keep a clone and
    /// update it; the registry reads the same value when scraped.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// Registers a collector, read at every scrape (for values that live
    /// elsewhere, such as breaker counts).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register_collector(collector);
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// Rewrites OpenMetrics text (what [`Registry::encode`] writes) into the
/// classic Prometheus text format: counter families are named with their
/// `_total` suffix, and `# UNIT` and `# EOF` lines, which that format does
/// not have, are dropped.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        match meta {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let name = rest.split(' ').next().unwrap_or("");
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push_str(&rest[name.len()..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Turns request paths into `&'static str` label values, so that labelling a
/// request allocates nothing after the first call of each method. Only a
/// bounded number of names is kept: anything beyond that (a scanner trying
/// random paths) is labelled `other`, so it cannot grow the series count.
#[derive(Debug)]
pub(crate) struct Interner {
    names: RwLock<HashMap<Box<str>, &'static str>>,
    limit: usize,
}

impl Interner {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            names: RwLock::new(HashMap::new()),
            limit,
        }
    }

    pub(crate) fn intern(&self, name: &str) -> &'static str {
        if let Some(found) = self
            .names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return found;
        }
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = names.get(name) {
            return found;
        }
        if names.len() >= self.limit {
            return "other";
        }
        // Leaking is bounded by `limit` and lets label sets be `Copy`.
        let leaked: &'static str = Box::leak(name.into());
        names.insert(name.into(), leaked);
        leaked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_the_same_name_twice_gives_the_same_str() {
        let interner = Interner::new(10);
        let a = interner.intern("/a.v1.A/Get");
        let b = interner.intern("/a.v1.A/Get");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn names_past_the_limit_are_labelled_other() {
        let interner = Interner::new(2);
        interner.intern("a");
        interner.intern("b");
        assert_eq!(interner.intern("c"), "other");
        assert_eq!(interner.intern("a"), "a");
    }

    #[test]
    fn the_text_format_names_counters_with_their_suffix() {
        let text = "# HELP x Things.\n# TYPE x counter\n# UNIT x things\nx_total 1\n# HELP g G.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            to_text_format(text),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n# HELP g G.\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn the_registry_encodes_registered_metrics() {
        let registry = Registry::new();
        let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("widgets", "Widgets made", counter.clone());
        counter.inc();
        assert!(registry.encode().contains("widgets_total 1"));
    }
}
