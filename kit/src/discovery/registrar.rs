//! Keeps one instance registered in etcd for as long as the process serves.
//!
//! The registrar is a supervisor that never gives up. A registration session
//! connects, grants (or re-uses) a lease, puts the key and then renews the
//! lease by reading the keep-alive answer stream: `LeaseKeeper::keep_alive`
//! returning `Ok` only means a request was queued, so a missing answer, a
//! closed stream or an answer with `ttl <= 0` is treated as a lost lease.
//! Every failure ends the session; the supervisor waits a jittered, capped
//! backoff and starts a new one from a fresh client (the old client's channel
//! and keeper may be dead after a disconnect).
//!
//! A session that ends while the lease is still valid (the etcd member it
//! talked to died, or a leader election outlasted a request) does not make
//! the instance unregistered: etcd keeps the key until the lease's TTL, so
//! readiness stays up and the next session re-uses the lease. Only when the
//! last known expiry passes without a new answer does `registered` turn
//! false. Without this, killing one etcd member turned every service
//! connected to it unready for a moment and counted a re-registration,
//! although no caller ever lost its key.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{Client, PutOptions};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, interval_at, timeout};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::backoff::Backoff;
use super::{CallError, bounded};
use super::{DiscoverySettings, Instance};
use crate::metrics::Registry;

/// Why a registration session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the lease expired (keep-alive answered ttl <= 0)")]
    LeaseExpired,
    #[error("the keep-alive stream closed")]
    KeepAliveClosed,
    #[error("cannot encode the instance: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Handle to a running registration. Dropping it stops renewing (the key then
/// expires with its lease); [`Registrar::deregister`] removes it at once.
pub struct Registrar {
    instance: Instance,
    registered: watch::Receiver<bool>,
    lease: Arc<Mutex<Option<Lease>>>,
    request_timeout: Duration,
    stop: CancellationToken,
    task: JoinHandle<()>,
    _stop_on_drop: DropGuard,
}

#[derive(Clone)]
struct Lease {
    client: Client,
    id: i64,
}

impl Registrar {
    /// Starts registering `instance` of `service`; returns at once.
    pub fn spawn(
        settings: &DiscoverySettings,
        service: &str,
        instance: Instance,
        registry: &Registry,
    ) -> Self {
        Self::spawn_after(
            std::future::ready(()),
            settings,
            service,
            instance,
            registry,
        )
    }

    /// Like [`Registrar::spawn`], but registers only once `gate` completes
    /// (for example once the service knows the endpoints it depends on).
    pub fn spawn_after(
        gate: impl Future<Output = ()> + Send + 'static,
        settings: &DiscoverySettings,
        service: &str,
        instance: Instance,
        registry: &Registry,
    ) -> Self {
        let registered_gauge = Gauge::<i64>::default();
        let reregistrations = Counter::<u64>::default();
        registry.register(
            "discovery_registered",
            "1 while this instance's key is known to be in etcd",
            registered_gauge.clone(),
        );
        registry.register(
            "discovery_reregistrations",
            "Registrations after the first: each one follows a lost lease or key",
            reregistrations.clone(),
        );
        let (tx, registered) = watch::channel(false);
        let tx = Arc::new(tx);
        let lease = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let supervisor = Supervisor {
            settings: settings.clone(),
            key: settings.service_key(service, &instance.id),
            instance: instance.clone(),
            registered: tx,
            registered_gauge,
            reregistrations,
            registrations: 0,
            lease: lease.clone(),
            valid_until: Arc::new(Mutex::new(None)),
        };
        let stopped = stop.clone();
        let task = crate::telemetry::spawn("registrar", async move {
            tokio::select! {
                () = stopped.cancelled() => {}
                () = gate => supervisor.run(stopped).await,
            }
        });
        Self {
            instance,
            registered,
            lease,
            request_timeout: settings.request_timeout,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            task,
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// `true` while the key is known to be in etcd; readiness follows it.
    pub fn registered(&self) -> watch::Receiver<bool> {
        self.registered.clone()
    }

    /// Stops renewing and revokes the lease, which deletes the key at once, so
    /// watchers stop routing here before the listener closes.
    pub async fn deregister(self) {
        self.stop.cancel();
        let _ = self.task.await;
        let lease = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(Lease { mut client, id }) = lease else {
            tracing::info!("was not registered; nothing to remove from discovery");
            return;
        };
        match timeout(self.request_timeout, client.lease_revoke(id)).await {
            Ok(Ok(_)) => tracing::info!(instance = %self.instance.id, "deregistered"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not revoke the lease; the key expires with its TTL")
            }
            Err(_) => {
                tracing::warn!("etcd did not answer the revoke; the key expires with its TTL")
            }
        }
    }
}

struct Supervisor {
    settings: DiscoverySettings,
    key: String,
    instance: Instance,
    registered: Arc<watch::Sender<bool>>,
    registered_gauge: Gauge<i64>,
    reregistrations: Counter<u64>,
    registrations: u64,
    lease: Arc<Mutex<Option<Lease>>>,
    /// Until when etcd keeps the key without a further keep-alive, as far as
    /// the last answer tells; `None` when not known to be registered.
    valid_until: Arc<Mutex<Option<Instant>>>,
}

/// Turns `registered` false when the lease's last known expiry passes
/// without a new keep-alive answer.
struct Expiry {
    registered: Arc<watch::Sender<bool>>,
    registered_gauge: Gauge<i64>,
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl Expiry {
    async fn watch(&self) -> Infallible {
        loop {
            let until = *self
                .valid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match until {
                Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
                Some(_) => {
                    let mut valid_until = self
                        .valid_until
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    // A keep-alive answer may have moved it meanwhile.
                    if valid_until.is_some_and(|at| at <= Instant::now()) {
                        *valid_until = None;
                        self.registered_gauge.set(0);
                        if self.registered.send_replace(false) {
                            tracing::warn!(
                                "the lease expired before etcd could be reached again; unregistered"
                            );
                        }
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Supervisor {
    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.backoff_base, self.settings.backoff_max);
        let expiry = Expiry {
            registered: self.registered.clone(),
            registered_gauge: self.registered_gauge.clone(),
            valid_until: self.valid_until.clone(),
        };
        loop {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = self.session(&mut backoff) => result,
                never = expiry.watch() => match never {},
            };
            let delay = backoff.next_delay();
            let Err(error) = result;
            let still_listed = !matches!(error, SessionError::LeaseExpired)
                && self
                    .valid_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some_and(|at| at > Instant::now());
            if still_listed {
                tracing::warn!(%error, key = %self.key, retry_in = ?delay, "etcd session ended; the key stays until the lease's TTL, reconnecting");
            } else if self.set_registered(false) {
                tracing::warn!(%error, key = %self.key, retry_in = ?delay, "registration lost");
            } else {
                tracing::warn!(%error, key = %self.key, retry_in = ?delay, "cannot register yet");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
                never = expiry.watch() => match never {},
            }
        }
    }

    /// Records that etcd keeps the key for `ttl` seconds counted from `from`.
    fn valid_for(&self, from: Instant, ttl: i64) {
        let until = (ttl > 0).then(|| from + Duration::from_secs(ttl.unsigned_abs()));
        *self
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = until;
    }

    /// One registration, from connecting to the first failure.
    async fn session(&mut self, backoff: &mut Backoff) -> Result<Infallible, SessionError> {
        let limit = self.settings.request_timeout;
        let mut client = self.settings.connect().await?;
        let asked = Instant::now();
        let (lease_id, ttl, reused) = match self.live_lease(&mut client).await? {
            Some((id, ttl)) => (id, ttl, true),
            None => {
                let ttl = self.settings.lease_ttl.as_secs().max(1) as i64;
                let granted = bounded(limit, client.lease_grant(ttl, None)).await?;
                (granted.id(), granted.ttl(), false)
            }
        };
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = Some(Lease {
            client: client.clone(),
            id: lease_id,
        });
        let value = serde_json::to_string(&self.instance)?;
        let put = PutOptions::new().with_lease(lease_id);
        bounded(
            limit,
            client.put(self.key.as_str(), value.as_str(), Some(put.clone())),
        )
        .await?;
        self.registrations += 1;
        // With the lease re-used the key never left etcd: nothing was lost.
        if self.registrations > 1 && !reused {
            self.reregistrations.inc();
        }
        self.valid_for(asked, ttl);
        self.set_registered(true);
        backoff.reset();
        tracing::info!(key = %self.key, addr = %self.instance.addr, lease = lease_id, "registered");

        let (mut keeper, mut answers) = bounded(limit, client.lease_keep_alive(lease_id)).await?;
        let period = (self.settings.lease_ttl / 3).max(Duration::from_millis(500));
        let mut renew = interval_at(Instant::now() + period, period);
        let check_period = self.settings.key_check_interval;
        let mut check = interval_at(Instant::now() + check_period, check_period);
        loop {
            tokio::select! {
                _ = renew.tick() => {
                    let sent = Instant::now();
                    bounded(limit, keeper.keep_alive()).await?;
                    match bounded(limit, answers.message()).await? {
                        Some(answer) if answer.ttl() > 0 => self.valid_for(sent, answer.ttl()),
                        Some(_) => return Err(SessionError::LeaseExpired),
                        None => return Err(SessionError::KeepAliveClosed),
                    }
                }
                _ = check.tick() => {
                    let found = bounded(limit, client.get(self.key.as_str(), None)).await?;
                    if found.kvs().is_empty() {
                        tracing::warn!(key = %self.key, "registration key was deleted; putting it back");
                        bounded(limit, client.put(self.key.as_str(), value.as_str(), Some(put.clone()))).await?;
                        self.reregistrations.inc();
                    }
                }
            }
        }
    }

    /// The lease of a previous session and its remaining TTL if etcd still
    /// holds it (a short network cut, a new leader, an etcd restart that
    /// kept its data), so that the key is not deleted and re-created
    /// needlessly. Only etcd's answer decides that it is gone (ttl -1): a
    /// failed call (no leader yet, a dead member) ends the session instead,
    /// or a lease that is alive would be replaced after every election.
    async fn live_lease(&self, client: &mut Client) -> Result<Option<(i64, i64)>, CallError> {
        let Some(id) = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|lease| lease.id)
        else {
            return Ok(None);
        };
        let answer = bounded(
            self.settings.request_timeout,
            client.lease_time_to_live(id, None),
        )
        .await?;
        Ok((answer.ttl() > 0).then_some((id, answer.ttl())))
    }

    /// Returns the previous state.
    fn set_registered(&self, registered: bool) -> bool {
        self.registered_gauge.set(i64::from(registered));
        self.registered.send_replace(registered)
    }
}
