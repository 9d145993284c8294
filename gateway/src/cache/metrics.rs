//! The micro-cache's families (names in `kit::metrics::names`): answers by
//! outcome, refreshes, evictions by cause, bytes and entries held, per route.

use kit::metrics::{Registry, names};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    route: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvictionLabels {
    route: &'static str,
    cause: &'static str,
}

/// How an answer was served: the `outcome` label and the `X-Cache` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Served {
    Hit,
    Coalesced,
    Stale,
    StaleIfError,
    Miss,
}

impl Served {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Coalesced => "coalesced",
            Self::Stale => "stale",
            Self::StaleIfError => "stale_if_error",
            Self::Miss => "miss",
        }
    }

    pub(super) fn header(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Coalesced => "COALESCED",
            Self::Stale => "STALE",
            Self::StaleIfError => "STALE-IF-ERROR",
            Self::Miss => "MISS",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Metrics {
    requests: Family<OutcomeLabels, Counter>,
    refreshes: Family<RouteLabels, Counter>,
    evictions: Family<EvictionLabels, Counter>,
    bytes: Family<RouteLabels, Gauge>,
    entries: Family<RouteLabels, Gauge>,
}

impl Metrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            refreshes: Family::default(),
            evictions: Family::default(),
            bytes: Family::default(),
            entries: Family::default(),
        };
        registry.register(
            names::HTTP_CACHE_REQUESTS,
            "Answers of the micro-cache by route and outcome",
            metrics.requests.clone(),
        );
        registry.register(
            names::HTTP_CACHE_REFRESHES,
            "Background refreshes of stale copies by route",
            metrics.refreshes.clone(),
        );
        registry.register(
            names::HTTP_CACHE_EVICTIONS,
            "Copies dropped by route and cause (write, size, expired)",
            metrics.evictions.clone(),
        );
        registry.register(
            names::HTTP_CACHE_BYTES,
            "Bytes of copies held by route",
            metrics.bytes.clone(),
        );
        registry.register(
            names::HTTP_CACHE_ENTRIES,
            "Copies held by route",
            metrics.entries.clone(),
        );
        metrics
    }

    pub(super) fn served(&self, route: &'static str, served: Served) {
        self.outcome(route, served.label());
    }

    pub(super) fn bypass(&self, route: &'static str) {
        self.outcome(route, "bypass");
    }

    fn outcome(&self, route: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&OutcomeLabels { route, outcome })
            .inc();
    }

    pub(super) fn refresh(&self, route: &'static str) {
        self.refreshes.get_or_create(&RouteLabels { route }).inc();
    }

    pub(super) fn stored(&self, route: &'static str, bytes: u32) {
        let labels = RouteLabels { route };
        self.bytes.get_or_create(&labels).inc_by(i64::from(bytes));
        self.entries.get_or_create(&labels).inc();
    }

    pub(super) fn evicted_by_write(&self, route: &'static str) {
        self.evictions
            .get_or_create(&EvictionLabels {
                route,
                cause: "write",
            })
            .inc();
    }

    /// A copy left the store; `cause` is `None` when a newer copy replaced it.
    pub(super) fn removed(&self, route: &'static str, bytes: u32, cause: Option<&'static str>) {
        let labels = RouteLabels { route };
        self.bytes.get_or_create(&labels).dec_by(i64::from(bytes));
        self.entries.get_or_create(&labels).dec();
        if let Some(cause) = cause {
            self.evictions
                .get_or_create(&EvictionLabels { route, cause })
                .inc();
        }
    }
}
