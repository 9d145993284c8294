//! Lists and watches the discovery prefix and keeps every service's
//! [`EndpointSet`] equal to what etcd holds.
//!
//! A session lists the prefix at revision `R`, replaces every set with that
//! snapshot, then watches from `R + 1`. Any watch error, cancellation (for
//! example `ErrCompacted` after a compaction past the watcher's revision), a
//! closed stream or a failed periodic re-list ends the session; the next one
//! starts from a fresh list, so nothing is lost or duplicated. While etcd is
//! unreachable the sets keep their last known endpoints.
//!
//! Every request requires a leader (etcd's `hasleader` metadata): a member
//! cut off from its cluster's majority ends the watch with "no leader"
//! within a few election timeouts, and the next session goes to a member
//! that has one. Without it, the watch on such a member stays open and
//! silent — it can no longer see changes — until the periodic re-list.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::time::{Instant, interval_at};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::backoff::Backoff;
use super::endpoints::ChannelSettings;
use super::{CallError, bounded};
use super::{DiscoverySettings, EndpointSet, Instance};
use crate::metrics::Registry;

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("watch cancelled by etcd (compacted at revision {compact_revision}): {reason}")]
    Cancelled {
        compact_revision: i64,
        reason: String,
    },
    #[error("the watch stream closed")]
    Closed,
}

/// A cheap, cloneable handle to the discovery state of a process. The watch
/// task stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
    _stop: Arc<DropGuard>,
}

#[derive(Debug)]
struct Inner {
    settings: DiscoverySettings,
    channel: ChannelSettings,
    sets: Mutex<HashMap<String, Arc<EndpointSet>>>,
    connected: AtomicBool,
    /// Set when the process begins its shutdown ([`Resolver::closing`]).
    closing: AtomicBool,
    synced: watch::Sender<bool>,
    /// When the watch last heard from etcd (for "stale for N s").
    last_contact: Mutex<Option<Instant>>,
    /// Wall-clock time of the first failure since the watch last ran, for
    /// operators ("unreachable since 10:42:07"); `None` while connected.
    unreachable_since: Mutex<Option<SystemTime>>,
    endpoints_gauge: Family<ServiceLabels, Gauge>,
    resyncs: Counter<u64>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

impl Resolver {
    /// Starts listing and watching `settings.prefix`; returns at once.
    pub fn spawn(
        settings: &DiscoverySettings,
        channel: &ChannelSettings,
        registry: &Registry,
    ) -> Self {
        let inner = Arc::new(Inner {
            settings: settings.clone(),
            channel: channel.clone(),
            sets: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            synced: watch::channel(false).0,
            last_contact: Mutex::new(None),
            unreachable_since: Mutex::new(None),
            endpoints_gauge: Family::default(),
            resyncs: Counter::default(),
        });
        registry.register(
            "discovery_endpoints",
            "Live instances known per service",
            inner.endpoints_gauge.clone(),
        );
        registry.register(
            "discovery_relists",
            "Full re-lists of the discovery prefix (start, reconnects, watch errors, periodic resync)",
            inner.resyncs.clone(),
        );
        let stop = CancellationToken::new();
        crate::telemetry::spawn("resolver", inner.clone().run(stop.clone()));
        Self {
            inner,
            _stop: Arc::new(stop.drop_guard()),
        }
    }

    /// Marks the process as shutting down: when the watch's connection goes
    /// now, the watch ends quietly (the endpoints it knows serve the drain)
    /// instead of warning and retrying while the process exits.
    pub fn closing(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
    }

    /// The endpoints of `service`, kept up to date from now on (empty until
    /// etcd lists an instance).
    pub fn endpoints(&self, service: &str) -> Arc<EndpointSet> {
        self.inner.set(service)
    }

    /// Every service seen so far and its endpoints.
    pub fn services(&self) -> Vec<Arc<EndpointSet>> {
        let sets = self
            .inner
            .sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = sets.values().cloned().collect();
        all.sort_by(|a, b| a.service().cmp(b.service()));
        all
    }

    /// Whether the watch is currently connected to etcd.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Whether etcd has been listed, and watched from there, at least once
    /// since start.
    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Completes once etcd has been listed and watched (at once if it has
    /// been).
    pub async fn wait_synced(&self) {
        let mut synced = self.inner.synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// Since when etcd cannot be reached (wall clock); `None` while the
    /// watch runs.
    pub fn unreachable_since(&self) -> Option<SystemTime> {
        *self
            .inner
            .unreachable_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long since etcd was last heard from; `None` before the first contact.
    pub fn since_last_contact(&self) -> Option<Duration> {
        self.inner
            .last_contact
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|t| t.elapsed())
    }
}

impl Inner {
    fn set(&self, service: &str) -> Arc<EndpointSet> {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        sets.entry(service.to_owned())
            .or_insert_with(|| Arc::new(EndpointSet::new(service, self.channel.clone())))
            .clone()
    }

    fn touch(&self) {
        *self
            .last_contact
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.backoff_base, self.settings.backoff_max);
        loop {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = self.session(&mut backoff) => result,
            };
            let Err(error) = result;
            if self.closing.load(Ordering::Relaxed) {
                // The process is on its way out and its connections with it;
                // the endpoints it knows serve the drain.
                tracing::debug!(%error, "discovery watch ended during shutdown");
                return;
            }
            let was_connected = self.connected.swap(false, Ordering::Relaxed);
            self.unreachable_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(SystemTime::now);
            let delay = backoff.next_delay();
            if was_connected {
                tracing::warn!(%error, retry_in = ?delay, "discovery watch lost; serving last known endpoints");
            } else {
                tracing::warn!(%error, retry_in = ?delay, "cannot reach etcd for discovery");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(&self, backoff: &mut Backoff) -> Result<Infallible, SessionError> {
        let limit = self.settings.request_timeout;
        let mut client = self
            .settings
            .connect_with(etcd_client::ConnectOptions::new().with_require_leader(true))
            .await?;
        let mut revision = self.relist(&mut client).await?;
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = bounded(
            limit,
            client.watch(self.settings.watch_prefix(), Some(options)),
        )
        .await?;
        self.connected.store(true, Ordering::Relaxed);
        *self
            .unreachable_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // Synced only once the watch runs: from here on no change is missed.
        self.synced.send_replace(true);
        backoff.reset();
        tracing::info!(prefix = %self.settings.prefix, revision, "discovery watch started");

        let period = self.settings.resync_interval;
        let mut resync = interval_at(Instant::now() + period, period);
        loop {
            tokio::select! {
                message = stream.message() => {
                    let Some(response) = message.map_err(CallError::from)? else {
                        return Err(SessionError::Closed);
                    };
                    self.touch();
                    if response.canceled() {
                        return Err(SessionError::Cancelled {
                            compact_revision: response.compact_revision(),
                            reason: response.cancel_reason().to_owned(),
                        });
                    }
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        // A re-list already reflects everything up to its revision.
                        if kv.mod_revision() <= revision {
                            continue;
                        }
                        self.apply(event.event_type(), kv);
                    }
                }
                _ = resync.tick() => {
                    revision = self.relist(&mut client).await?;
                }
            }
        }
    }

    /// Replaces every set with what etcd holds now; returns its revision.
    async fn relist(&self, client: &mut Client) -> Result<i64, SessionError> {
        let limit = self.settings.request_timeout;
        let prefix = self.settings.watch_prefix();
        let response = bounded(
            limit,
            client.get(prefix, Some(GetOptions::new().with_prefix())),
        )
        .await?;
        self.resyncs.inc();
        self.touch();
        let mut snapshot: HashMap<String, Vec<Instance>> = HashMap::new();
        for kv in response.kvs() {
            if let Some((service, instance)) = self.decode(kv) {
                snapshot.entry(service).or_default().push(instance);
            }
        }
        for service in snapshot.keys() {
            self.set(service);
        }
        let sets: Vec<Arc<EndpointSet>> = self
            .sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for set in sets {
            let instances = snapshot.remove(set.service()).unwrap_or_default();
            set.replace(instances);
            self.count(&set);
        }
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    fn apply(&self, kind: EventType, kv: &KeyValue) {
        let Ok(key) = kv.key_str() else { return };
        let Some((service, id)) = self.settings.parse_key(key) else {
            return;
        };
        let set = self.set(service);
        match kind {
            EventType::Put => {
                if let Some((_, instance)) = self.decode(kv) {
                    set.upsert(instance);
                }
            }
            EventType::Delete => set.remove(id),
        }
        self.count(&set);
    }

    fn decode(&self, kv: &KeyValue) -> Option<(String, Instance)> {
        let key = kv.key_str().ok()?;
        let (service, id) = self.settings.parse_key(key)?;
        match serde_json::from_slice::<Instance>(kv.value()) {
            Ok(instance) if instance.id == id => Some((service.to_owned(), instance)),
            Ok(instance) => {
                tracing::warn!(key, value_id = %instance.id, "instance id does not match its key; ignored");
                None
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "undecodable instance; ignored");
                None
            }
        }
    }

    fn count(&self, set: &EndpointSet) {
        self.endpoints_gauge
            .get_or_create(&ServiceLabels {
                service: set.service().to_owned(),
            })
            .set(set.len() as i64);
    }
}
