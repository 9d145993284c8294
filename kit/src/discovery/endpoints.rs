//! The live endpoints of one service, shared by the resolver (which writes
//! them as etcd reports changes) and every balancer of that service (which
//! reads them on each request without taking a lock).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;
use tokio::sync::watch;

use super::Instance;

/// How connections to discovered instances behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// Also the budget of the health check that probes an ejected
    /// instance.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// HTTP/2 ping interval: a peer that vanished without closing the TCP
    /// connection (SIGKILL'd pod, cut network) is noticed within
    /// `keepalive_interval + keepalive_timeout`.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// An instance whose connection fails, or whose calls are abandoned at
    /// their deadline twice in a row, is ejected: skipped until, after this
    /// long, a gRPC health check answers within `connect_timeout`. Each
    /// failed check doubles the wait, up to `ejection_max`. etcd may still
    /// list it (its lease outlives a crash by up to the TTL; a partition
    /// between caller and instance leaves it alone).
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

/// Calls in a row abandoned at their deadline that eject an instance, as
/// Envoy's outlier detection counts timeouts among its consecutive gateway
/// failures. Two rather than Envoy's five: one gateway sees only its own
/// calls, and a silently cut-off instance holds every call sent to it for a
/// whole deadline, so each further one is a failed request; one slow answer
/// (a heavy query, a pause) must still not take a healthy instance out.
const TIMEOUTS_TO_EJECT: u32 = 2;

/// One instance and the connection to it.
#[derive(Debug)]
pub struct Endpoint {
    instance: Instance,
    channel: tonic::transport::Channel,
    in_flight: AtomicUsize,
    /// Ejections since the last answered call: the doubling of the wait.
    failures: AtomicU32,
    /// Calls in a row abandoned at their deadline.
    timeouts: AtomicU32,
    /// 0 while in rotation; otherwise ejected, and the time
    /// ([`crate::time::monotonic_nanos`]) of the next health probe.
    probe_at: AtomicU64,
    /// A probe task is running for this endpoint.
    probing: AtomicBool,
    probe_timeout: Duration,
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
            timeouts: AtomicU32::new(0),
            probe_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            probe_timeout: settings.connect_timeout,
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
        self.probe_at.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn record_success(&self) {
        // Only write when there is something to clear: a store on every
        // request would bounce the cache line between cores.
        if self.failures.load(Ordering::Relaxed) != 0 || self.timeouts.load(Ordering::Relaxed) != 0
        {
            self.failures.store(0, Ordering::Relaxed);
            self.timeouts.store(0, Ordering::Relaxed);
            self.probe_at.store(0, Ordering::Relaxed);
        }
    }

    /// The connection failed: ejected at once (a reconnect costs little,
    /// and the gateway retries a call that was never sent).
    pub(crate) fn record_failure(self: &Arc<Self>, error: &dyn std::error::Error) {
        self.eject(error);
    }

    /// A call got no answer within its deadline.
    pub(crate) fn record_timeout(self: &Arc<Self>) {
        let timeouts = self
            .timeouts
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if timeouts >= TIMEOUTS_TO_EJECT {
            self.eject(&NoAnswer(timeouts));
        }
    }

    /// Takes the endpoint out of rotation and starts probing it. Failures
    /// of calls already in flight when it was ejected change nothing: only
    /// a failed probe lengthens the wait.
    fn eject(self: &Arc<Self>, error: &dyn std::error::Error) {
        let ejection = self.ejection(self.failures.load(Ordering::Relaxed));
        let at = crate::time::monotonic_nanos().saturating_add(ejection.as_nanos() as u64);
        if self
            .probe_at
            .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.timeouts.store(0, Ordering::Relaxed);
        // Once per ejection, not once per call.
        tracing::warn!(
            instance = %self.instance.id,
            addr = %self.instance.addr,
            ?ejection,
            error = %Chain(error),
            "instance ejected until it answers a health check"
        );
        if !self.probing.swap(true, Ordering::AcqRel) {
            crate::telemetry::spawn("probe-ejected", probe(Arc::downgrade(self)));
        }
    }

    /// The wait before the probe after `failures` earlier ejections.
    fn ejection(&self, failures: u32) -> Duration {
        self.ejection_base
            .saturating_mul(1u32 << failures.min(16))
            .min(self.ejection_max)
    }

    /// Any answer of the instance's health service, SERVING or not: the
    /// probe asks whether calls reach the instance, not whether it is
    /// registered (during an etcd outage it may not be, and still serves).
    async fn answers(&self) -> bool {
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let check = health.check(tonic_health::pb::HealthCheckRequest::default());
        matches!(
            tokio::time::timeout(self.probe_timeout, check).await,
            Ok(Ok(_))
        )
    }
}

/// Probes an ejected endpoint until it answers (then it is back in
/// rotation), a call to it succeeds meanwhile, or discovery drops it.
/// Probes rather than a trial call: a trial to a silently cut-off instance
/// would cost a user request a whole deadline each time.
async fn probe(endpoint: Weak<Endpoint>) {
    loop {
        let Some(e) = endpoint.upgrade() else { return };
        let at = e.probe_at.load(Ordering::Relaxed);
        if at == 0 {
            e.probing.store(false, Ordering::Release);
            // An ejection between the load and the store saw `probing`
            // still set and left the probing to this task.
            if e.probe_at.load(Ordering::Relaxed) == 0 || e.probing.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        // Not held while waiting: a removed endpoint closes its connection.
        drop(e);
        let wait = at.saturating_sub(crate::time::monotonic_nanos());
        tokio::time::sleep(Duration::from_nanos(wait)).await;
        let Some(e) = endpoint.upgrade() else { return };
        // Back in (a call got through and succeeded), or ejected anew.
        if e.probe_at.load(Ordering::Relaxed) != at {
            continue;
        }
        if e.answers().await {
            e.probe_at.store(0, Ordering::Relaxed);
            tracing::info!(instance = %e.instance.id, "instance answers again; back in rotation");
        } else {
            let failures = e.failures.fetch_add(1, Ordering::Relaxed);
            let ejection = e.ejection(failures);
            let next = crate::time::monotonic_nanos().saturating_add(ejection.as_nanos() as u64);
            // Unless a call got through and succeeded meanwhile.
            let _ = e
                .probe_at
                .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed);
            tracing::debug!(instance = %e.instance.id, ?ejection, "health check failed; still ejected");
        }
    }
}

/// Why an endpoint whose calls timed out was ejected.
#[derive(Debug, thiserror::Error)]
#[error("{0} calls in a row got no answer within their deadline")]
struct NoAnswer(u32);

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

    #[tokio::test(start_paused = true)]
    async fn ejected_endpoints_are_not_picked_while_others_are_healthy() {
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1), instance("b", 2), instance("c", 3)]);
        set.pick_by_id("a").record_failure(&FAKE);
        for _ in 0..100 {
            assert_ne!(set.pick().unwrap().instance.id, "a");
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..100 {
            assert_ne!(
                set.pick().unwrap().instance.id,
                "a",
                "nothing answers on port 1: no health check lets it back"
            );
        }
    }

    #[tokio::test]
    async fn an_ejected_endpoint_returns_once_it_answers_a_health_check() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let settings = ChannelSettings {
            ejection_base: Duration::from_millis(10),
            ..Default::default()
        };
        let set = EndpointSet::new("s", settings);
        set.replace(vec![instance("a", port)]);
        let a = set.pick_by_id("a");
        a.record_failure(&FAKE);
        assert!(a.is_ejected());
        // Real time and a real server: wait, bounded, for the probe.
        for _ in 0..500 {
            if !a.is_ejected() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the health check never let the endpoint back");
    }

    #[tokio::test(start_paused = true)]
    async fn two_calls_in_a_row_without_an_answer_eject_an_endpoint() {
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![instance("a", 1)]);
        let a = set.pick_by_id("a");
        a.record_timeout();
        assert!(!a.is_ejected(), "one slow answer says little");
        a.record_success();
        a.record_timeout();
        assert!(!a.is_ejected(), "an answer in between resets the count");
        a.record_timeout();
        assert!(a.is_ejected());
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

    #[tokio::test(start_paused = true)]
    async fn each_failed_health_check_doubles_the_wait_up_to_the_cap() {
        // A port that accepts connections and never answers: every probe
        // waits out its budget.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let settings = ChannelSettings {
            ejection_base: Duration::from_secs(1),
            ejection_max: Duration::from_secs(4),
            ..Default::default()
        };
        let set = EndpointSet::new("s", settings);
        set.replace(vec![instance("a", silent.local_addr().unwrap().port())]);
        let a = set.pick_by_id("a");
        a.record_failure(&FAKE);
        let mut waits = vec![a.wait()];
        a.record_failure(&FAKE);
        assert_eq!(
            a.wait(),
            waits[0],
            "calls failing while ejected change nothing"
        );
        for _ in 0..3 {
            let at = a.probe_at.load(Ordering::Relaxed);
            while a.probe_at.load(Ordering::Relaxed) == at {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            waits.push(a.wait());
        }
        let secs: Vec<u64> = waits
            .iter()
            .map(|w| w.as_secs_f64().round() as u64)
            .collect();
        assert_eq!(secs, [1, 2, 4, 4]);
        assert!(a.is_ejected());
        a.record_success();
        assert!(!a.is_ejected(), "an answered call lets it back at once");
        a.record_failure(&FAKE);
        assert_eq!(
            a.wait().as_secs_f64().round(),
            1.0,
            "and resets the doubling"
        );
    }

    impl Endpoint {
        /// Time until the next probe.
        fn wait(&self) -> Duration {
            let at = self.probe_at.load(Ordering::Relaxed);
            Duration::from_nanos(at.saturating_sub(crate::time::monotonic_nanos()))
        }
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
