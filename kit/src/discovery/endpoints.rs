//! The live endpoints of one service, shared by the resolver (which writes
//! them as etcd reports changes) and every balancer of that service (which
//! reads them on each request without taking a lock).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;
use tokio::sync::watch;

use super::Instance;

/// How connections to discovered instances behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// HTTP/2 ping interval: a peer that vanished without closing the TCP
    /// connection (SIGKILL'd pod, cut network) is noticed within
    /// `keepalive_interval + keepalive_timeout`.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// An instance whose connection fails is skipped for this long, doubling
    /// on each further failure up to `ejection_max`; etcd may still list it
    /// (its lease outlives a crash by up to the TTL).
    #[serde(with = "humantime_serde")]
    pub ejection_base: Duration,
    #[serde(with = "humantime_serde")]
    pub ejection_max: Duration,
    /// Message size limits of the clients built on these channels.
    pub messages: crate::messages::MessageLimits,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            ejection_base: Duration::from_secs(1),
            ejection_max: Duration::from_secs(30),
            messages: crate::messages::MessageLimits::default(),
        }
    }
}

/// One instance and the connection to it.
#[derive(Debug)]
pub struct Endpoint {
    instance: Instance,
    channel: tonic::transport::Channel,
    in_flight: AtomicUsize,
    /// Consecutive connection failures.
    failures: AtomicU32,
    /// Time ([`crate::time::monotonic_nanos`]) before which this endpoint is skipped.
    ejected_until: AtomicU64,
    ejection_base: Duration,
    ejection_max: Duration,
}

impl Endpoint {
    fn new(instance: Instance, settings: &ChannelSettings) -> Option<Self> {
        let uri = format!("http://{}", instance.addr);
        let channel = tonic::transport::Endpoint::from_shared(uri)
            .map_err(
                |e| tracing::warn!(addr = %instance.addr, error = %e, "unusable instance address"),
            )
            .ok()?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(settings.keepalive_interval)
            .keep_alive_timeout(settings.keepalive_timeout)
            .keep_alive_while_idle(true)
            .connect_lazy();
        Some(Self {
            instance,
            channel,
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejection_base: settings.ejection_base,
            ejection_max: settings.ejection_max,
        })
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    pub(crate) fn channel(&self) -> &tonic::transport::Channel {
        &self.channel
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn start_request(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end_request(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > crate::time::monotonic_nanos()
    }

    pub(crate) fn record_success(&self) {
        // Only write when there is something to clear: a store on every
        // request would bounce the cache line between cores.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.ejected_until.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_failure(&self, error: &dyn std::error::Error) {
        let was_ejected = self.is_ejected();
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let ejection = self
            .ejection_base
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(self.ejection_max);
        self.ejected_until.store(
            crate::time::monotonic_nanos().saturating_add(ejection.as_nanos() as u64),
            Ordering::Relaxed,
        );
        // Once per outage, not once per call: while every instance is out,
        // calls still try one, and each would log the same failure again.
        if was_ejected {
            tracing::debug!(
                instance = %self.instance.id,
                ?ejection,
                error = %Chain(error),
                "connection failed again; ejection extended"
            );
        } else {
            tracing::warn!(
                instance = %self.instance.id,
                addr = %self.instance.addr,
                ?ejection,
                error = %Chain(error),
                "connection failed; instance ejected"
            );
        }
    }
}

/// An error with its sources, `a: b: c`.
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// The live endpoints of one service.
#[derive(Debug)]
pub struct EndpointSet {
    service: String,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    settings: ChannelSettings,
    /// Bumped on every change, so callers can wait for one.
    version: watch::Sender<u64>,
}

impl EndpointSet {
    pub(crate) fn new(service: &str, settings: ChannelSettings) -> Self {
        Self {
            service: service.to_owned(),
            endpoints: ArcSwap::from_pointee(Vec::new()),
            settings,
            version: watch::channel(0).0,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn len(&self) -> usize {
        self.endpoints.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The instances currently known, e.g. for a dashboard.
    pub fn instances(&self) -> Vec<Instance> {
        self.endpoints
            .load()
            .iter()
            .map(|e| e.instance.clone())
            .collect()
    }

    /// Waits until `ready` holds for the current instances.
    pub async fn wait_until(&self, mut ready: impl FnMut(&[Instance]) -> bool) {
        let mut changes = self.version.subscribe();
        while !ready(&self.instances()) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Power of two choices: two distinct random endpoints, the one with fewer
    /// requests in flight wins. Ejected endpoints are skipped unless every
    /// endpoint is ejected (then all are candidates: a guess beats certain
    /// failure).
    pub(crate) fn pick(&self) -> Option<Arc<Endpoint>> {
        let endpoints = self.endpoints.load();
        match endpoints.len() {
            0 => None,
            1 => Some(endpoints[0].clone()),
            n => {
                let healthy = endpoints.iter().filter(|e| !e.is_ejected()).count();
                let (count, only_healthy) = if healthy == 0 {
                    (n, false)
                } else {
                    (healthy, true)
                };
                let nth = |k: usize| {
                    endpoints
                        .iter()
                        .filter(|e| !only_healthy || !e.is_ejected())
                        .nth(k)
                };
                if count == 1 {
                    return nth(0).cloned();
                }
                let a = fastrand::usize(..count);
                let mut b = fastrand::usize(..count - 1);
                if b >= a {
                    b += 1;
                }
                match (nth(a), nth(b)) {
                    (Some(x), Some(y)) => {
                        Some(if y.in_flight() < x.in_flight() { y } else { x }.clone())
                    }
                    // The ejection state changed between counting and picking.
                    (Some(x), None) | (None, Some(x)) => Some(x.clone()),
                    (None, None) => endpoints.first().cloned(),
                }
            }
        }
    }

    /// Makes the set exactly `instances`, keeping the connections (and their
    /// statistics) of instances that did not change.
    pub(crate) fn replace(&self, instances: Vec<Instance>) {
        let current = self.endpoints.load();
        let mut by_id: HashMap<&str, &Arc<Endpoint>> = current
            .iter()
            .map(|e| (e.instance.id.as_str(), e))
            .collect();
        let next: Vec<Arc<Endpoint>> = instances
            .into_iter()
            .filter_map(|instance| match by_id.remove(instance.id.as_str()) {
                Some(existing) if existing.instance == instance => Some(existing.clone()),
                _ => self.connect(instance),
            })
            .collect();
        // A periodic resync usually finds what we already have: say nothing.
        let unchanged = next.len() == current.len()
            && next
                .iter()
                .zip(current.iter())
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !unchanged {
            self.store(next);
        }
    }

    /// Adds or updates one instance.
    pub(crate) fn upsert(&self, instance: Instance) {
        let current = self.endpoints.load();
        if current.iter().any(|e| e.instance == instance) {
            return;
        }
        let Some(endpoint) = self.connect(instance) else {
            return;
        };
        let mut next: Vec<Arc<Endpoint>> = current
            .iter()
            .filter(|e| e.instance.id != endpoint.instance.id)
            .cloned()
            .collect();
        next.push(endpoint);
        self.store(next);
    }

    /// Removes one instance; in-flight requests keep their connection until
    /// they finish.
    pub(crate) fn remove(&self, id: &str) {
        let current = self.endpoints.load();
        if !current.iter().any(|e| e.instance.id == id) {
            return;
        }
        let next = current
            .iter()
            .filter(|e| e.instance.id != id)
            .cloned()
            .collect();
        self.store(next);
    }

    fn connect(&self, instance: Instance) -> Option<Arc<Endpoint>> {
        Endpoint::new(instance, &self.settings).map(Arc::new)
    }

    fn store(&self, next: Vec<Arc<Endpoint>>) {
        let ids: Vec<&str> = next.iter().map(|e| e.instance.addr.as_str()).collect();
        tracing::info!(service = %self.service, endpoints = ?ids, "endpoints changed");
        self.endpoints.store(Arc::new(next));
        self.version.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAKE: std::fmt::Error = std::fmt::Error;

    fn instance(id: &str, port: u16) -> Instance {
        Instance {
            id: id.into(),
            addr: format!("127.0.0.1:{port}"),
            version: String::new(),
            started_at: 0,
        }
    }

    #[tokio::test]
    async fn replace_keeps_unchanged_endpoints_and_drops_missing_ones() {
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1), instance("b", 2)]);
        let a_before = set.pick_by_id("a");
        set.replace(vec![instance("a", 1), instance("c", 3)]);
        assert!(Arc::ptr_eq(&a_before, &set.pick_by_id("a")));
        let mut ids: Vec<String> = set.instances().into_iter().map(|i| i.id).collect();
        ids.sort();
        assert_eq!(ids, ["a", "c"]);
    }

    #[tokio::test]
    async fn an_upsert_with_a_new_address_replaces_the_endpoint() {
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.upsert(instance("a", 1));
        set.upsert(instance("a", 2));
        assert_eq!(set.instances(), vec![instance("a", 2)]);
        set.remove("a");
        assert!(set.is_empty());
    }

    #[tokio::test]
    async fn ejected_endpoints_are_not_picked_while_others_are_healthy() {
        tokio::time::pause();
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1), instance("b", 2), instance("c", 3)]);
        set.pick_by_id("a").record_failure(&FAKE);
        for _ in 0..100 {
            assert_ne!(set.pick().unwrap().instance.id, "a");
        }
        tokio::time::advance(Duration::from_millis(1001)).await;
        let picked_a = (0..200).any(|_| set.pick().unwrap().instance.id == "a");
        assert!(picked_a, "an endpoint comes back once its ejection expires");
    }

    #[tokio::test]
    async fn when_every_endpoint_is_ejected_one_is_still_picked() {
        tokio::time::pause();
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1), instance("b", 2)]);
        set.pick_by_id("a").record_failure(&FAKE);
        set.pick_by_id("b").record_failure(&FAKE);
        assert!(set.pick().is_some());
    }

    #[tokio::test]
    async fn the_less_loaded_of_two_endpoints_wins() {
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1), instance("b", 2)]);
        set.pick_by_id("a").start_request();
        for _ in 0..50 {
            assert_eq!(set.pick().unwrap().instance.id, "b");
        }
    }

    #[tokio::test]
    async fn repeated_failures_double_the_ejection_up_to_the_cap() {
        tokio::time::pause();
        let settings = ChannelSettings {
            ejection_base: Duration::from_secs(1),
            ejection_max: Duration::from_secs(3),
            ..Default::default()
        };
        let set = EndpointSet::new("s", settings);
        set.replace(vec![instance("a", 1)]);
        let a = set.pick_by_id("a");
        a.record_failure(&FAKE);
        a.record_failure(&FAKE);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(a.is_ejected(), "second failure ejects for 2s");
        a.record_failure(&FAKE);
        tokio::time::advance(Duration::from_millis(3001)).await;
        assert!(!a.is_ejected(), "third failure is capped at 3s");
        a.record_success();
        a.record_failure(&FAKE);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(!a.is_ejected(), "success resets the doubling");
    }

    impl EndpointSet {
        fn pick_by_id(&self, id: &str) -> Arc<Endpoint> {
            self.endpoints
                .load()
                .iter()
                .find(|e| e.instance.id == id)
                .cloned()
                .unwrap()
        }
    }
}
