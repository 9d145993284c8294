//! The copies (moka, bounded by weight), the loads under way (one per key)
//! and the record of what writes evicted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use bytes::Bytes;
use futures::future::{BoxFuture, Shared};
use kit::metrics::Registry;
use moka::notification::RemovalCause;
use tokio::time::Instant;

use super::metrics::{Metrics, Served};
use super::{MicroCacheSettings, RoutePolicy, X_CACHE, http};

/// Bytes a copy costs beyond its key and body (the entry, its headers, the
/// store's own bookkeeping), so that many tiny copies still count.
const OVERHEAD: usize = 256;
/// While the loads of a key fail, at most one is tried per this interval;
/// the requests in between get the last good copy at once (Varnish's grace
/// with a sick backend) instead of each waiting for a doomed attempt.
const RETRY_FAILED_EVERY: Duration = Duration::from_secs(1);
/// Paths whose last eviction is remembered; past that the record is reset
/// and everything older counts as evicted (a rare, safe over-eviction).
const MAX_EVICTED_PATHS: usize = 65_536;

/// The micro-cache's state, shared by every clone of the layer. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("enabled", &self.inner.copies.is_some())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// `None` when the cache is off.
    copies: Option<moka::sync::Cache<Arc<str>, Arc<Entry>>>,
    routes: HashMap<String, Arc<Route>>,
    flights: Mutex<HashMap<Arc<str>, Flight>>,
    evicted: Evicted,
    metrics: Metrics,
    next_flight: AtomicU64,
    /// The origin of [`Store::ms`].
    epoch: Instant,
    /// The weight of the smallest copy: `max_bytes / max_entries`, so the
    /// one weight bound moka has also bounds the number of entries.
    min_weight: u32,
}

/// A cacheable route and what its answers say about it.
#[derive(Debug)]
pub(super) struct Route {
    pub(super) label: &'static str,
    pub(super) policy: RoutePolicy,
    cache_control: HeaderValue,
}

/// An answer as the handler gave it.
#[derive(Debug)]
pub(super) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn failed() -> Self {
        let body = br#"{"error":{"code":"internal","message":"internal error"}}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            body: Bytes::from_static(body),
        }
    }

    /// The backend failed or shed the load: a copy may stand in.
    pub(super) fn failed_load(&self) -> bool {
        self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS
    }

    pub(super) fn to_response(&self, served: Served) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
            .headers_mut()
            .insert(X_CACHE, HeaderValue::from_static(served.header()));
        response
    }
}

/// One stored copy.
pub(super) struct Entry {
    route: Arc<Route>,
    /// The eviction clock when its load started (see [`Evicted`]).
    seq: u64,
    stored: Instant,
    answer: Answer,
    etag: HeaderValue,
    /// The body with `"degraded":["stale"]`, made on its first use.
    stale_body: OnceLock<Bytes>,
    weight: u32,
    /// How long moka keeps it: the TTL plus the longer stale window.
    keep: Duration,
    /// A write evicted it (counted once).
    evicted: AtomicBool,
    /// When a load of its key last failed ([`Store::ms`]; 0: never).
    failed_at_ms: AtomicU64,
}

impl Entry {
    /// The answer for a request that sent `if_none_match`, at `now`.
    pub(super) fn respond(
        &self,
        served: Served,
        if_none_match: Option<&HeaderValue>,
        now: Instant,
    ) -> Response<Body> {
        let age = now.saturating_duration_since(self.stored).as_secs();
        let not_modified = http::matches(if_none_match, &self.etag);
        let body = if not_modified {
            Body::empty()
        } else if served == Served::StaleIfError {
            Body::from(
                self.stale_body
                    .get_or_init(|| http::mark_stale(&self.answer.body))
                    .clone(),
            )
        } else {
            Body::from(self.answer.body.clone())
        };
        let mut response = Response::new(body);
        if not_modified {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
        } else {
            *response.status_mut() = self.answer.status;
            *response.headers_mut() = self.answer.headers.clone();
        }
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, self.route.cache_control.clone());
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::AGE, HeaderValue::from(age));
        headers.insert(X_CACHE, HeaderValue::from_static(served.header()));
        response
    }
}

/// What the store holds for a key at some moment.
pub(super) enum Lookup {
    /// Within the TTL.
    Fresh(Arc<Entry>),
    /// Past the TTL, within stale-while-revalidate.
    Stale(Arc<Entry>),
    /// Past both, within stale-if-error: load, and fall back on failure.
    Fallback(Arc<Entry>),
    /// Stale or a fallback, and its last load failed less than
    /// [`RETRY_FAILED_EVERY`] ago: answered as stale-if-error, no load.
    Failing(Arc<Entry>),
    Absent,
}

/// What a load ended with: a stored (or storable) copy, or an answer that is
/// not cached (an error, a 404) but shared with everyone who waited.
pub(super) enum Landed {
    Copy(Arc<Entry>),
    Answer(Answer),
}

/// A load under way, awaited by every request for its key.
pub(super) type Load = Shared<BoxFuture<'static, Arc<Landed>>>;

struct Flight {
    ticket: Ticket,
    load: Load,
}

/// Which load this is (`id`) and the eviction clock when it started.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) seq: u64,
}

/// Which paths writes evicted, and when, on a clock that every load reads
/// when it starts. A copy whose load started before the last eviction of its
/// path is evicted: never answered as current again, only as a stand-in for
/// a failed load (a slightly old page beats a 503). The clock also drops
/// answers of loads that raced a write, which deleting the copies alone
/// would miss (the load stores after the write).
struct Evicted {
    clock: AtomicU64,
    paths: RwLock<HashMap<Box<str>, u64>>,
    /// Everything before this is evicted (set when `paths` is reset).
    floor: AtomicU64,
}

impl Evicted {
    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// When `path` was last evicted.
    fn since(&self, path: &str) -> u64 {
        let floor = self.floor.load(Ordering::SeqCst);
        let paths = self.paths.read().unwrap_or_else(PoisonError::into_inner);
        paths.get(path).copied().unwrap_or(0).max(floor)
    }

    fn evict(&self, path: &str) {
        let at = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        let mut paths = self.paths.write().unwrap_or_else(PoisonError::into_inner);
        if paths.len() >= MAX_EVICTED_PATHS && !paths.contains_key(path) {
            paths.clear();
            self.floor.store(at, Ordering::SeqCst);
        }
        paths.insert(path.into(), at);
    }
}

/// The path a copy's key belongs to (writes evict paths).
fn path_of(key: &str) -> &str {
    key.split_once('?').map_or(key, |(path, _)| path)
}

impl Store {
    pub fn new(settings: &MicroCacheSettings, registry: &Registry) -> Self {
        let metrics = Metrics::new(registry);
        let routes = settings
            .routes
            .iter()
            .map(|(template, policy)| {
                // Bounded by the configured routes, and lets the metric
                // labels be `Copy`.
                let label: &'static str = Box::leak(template.clone().into_boxed_str());
                let route = Route {
                    label,
                    cache_control: http::cache_control(policy),
                    policy: policy.clone(),
                };
                (template.clone(), Arc::new(route))
            })
            .collect();
        let min_weight = u32::try_from(settings.max_bytes / settings.max_entries.max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        let copies = settings.enabled.then(|| {
            let listener = metrics.clone();
            moka::sync::Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(|_: &Arc<str>, entry: &Arc<Entry>| entry.weight)
                .expire_after(KeepFor)
                .eviction_listener(move |_, entry: Arc<Entry>, cause| {
                    let cause = match cause {
                        // Evictions by writes are counted when found.
                        RemovalCause::Replaced | RemovalCause::Explicit => None,
                        RemovalCause::Size => Some("size"),
                        RemovalCause::Expired => Some("expired"),
                    };
                    listener.removed(entry.route.label, entry.weight, cause);
                })
                .build()
        });
        Self {
            inner: Arc::new(Inner {
                copies,
                routes,
                flights: Mutex::default(),
                evicted: Evicted {
                    clock: AtomicU64::new(1),
                    paths: RwLock::default(),
                    floor: AtomicU64::new(0),
                },
                metrics,
                next_flight: AtomicU64::new(0),
                epoch: Instant::now(),
                min_weight,
            }),
        }
    }

    /// The eviction clock now (what a load starting now records).
    #[cfg(test)]
    pub(super) fn clock(&self) -> u64 {
        self.inner.evicted.now()
    }

    /// Copies held, once moka has applied its bounds.
    #[cfg(test)]
    pub(super) fn held(&self) -> u64 {
        self.inner.copies.as_ref().map_or(0, |copies| {
            copies.run_pending_tasks();
            copies.entry_count()
        })
    }

    pub(super) fn enabled(&self) -> bool {
        self.inner.copies.is_some()
    }

    pub(super) fn route(&self, template: &str) -> Option<&Arc<Route>> {
        self.inner.routes.get(template)
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(super) fn lookup(&self, route: &Route, key: &str, now: Instant) -> Lookup {
        let Some(copies) = &self.inner.copies else {
            return Lookup::Absent;
        };
        let Some(entry) = copies.get(key) else {
            return Lookup::Absent;
        };
        let policy = &route.policy;
        let age = now.saturating_duration_since(entry.stored);
        let evicted = entry.seq < self.inner.evicted.since(path_of(key));
        if evicted && !entry.evicted.swap(true, Ordering::Relaxed) {
            self.inner.metrics.evicted_by_write(route.label);
        }
        let lookup = if age < policy.ttl && !evicted {
            return Lookup::Fresh(entry);
        } else if age < policy.ttl + policy.stale_while_revalidate && !evicted {
            Lookup::Stale(entry)
        } else if age < policy.ttl + policy.stale_if_error {
            // An evicted copy (a write changed it) is never answered as
            // current again, but still beats an error.
            Lookup::Fallback(entry)
        } else {
            return Lookup::Absent;
        };
        match lookup {
            Lookup::Stale(entry) | Lookup::Fallback(entry) if self.failing(&entry, now) => {
                Lookup::Failing(entry)
            }
            other => other,
        }
    }

    /// Whether the last load of `entry`'s key failed within
    /// [`RETRY_FAILED_EVERY`] of `now`.
    fn failing(&self, entry: &Entry, now: Instant) -> bool {
        let failed = entry.failed_at_ms.load(Ordering::Relaxed);
        failed != 0 && self.ms(now).saturating_sub(failed) < RETRY_FAILED_EVERY.as_millis() as u64
    }

    /// `at` in milliseconds since the store was made, from 1 (0 is "never").
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.inner.epoch).as_millis() as u64 + 1
    }

    /// Joins the load under way for `key`, or starts one with `start`
    /// (given its ticket): `(load, true)` when this request started it.
    pub(super) fn join_or_start(
        &self,
        key: &Arc<str>,
        start: impl FnOnce(Ticket) -> Load,
    ) -> (Load, bool) {
        let since = self.inner.evicted.since(path_of(key));
        let mut flights = self
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(&**key).filter(|f| f.ticket.seq >= since) {
            return (flight.load.clone(), false);
        }
        let ticket = Ticket {
            id: self.inner.next_flight.fetch_add(1, Ordering::Relaxed),
            seq: self.inner.evicted.now(),
        };
        // Under the lock: the load's task cannot end (and remove its
        // flight) before the flight is in the map.
        let load = start(ticket);
        flights.insert(
            key.clone(),
            Flight {
                ticket,
                load: load.clone(),
            },
        );
        (load, true)
    }

    /// What the load `ticket` of `key` brought: stored when it is a 200
    /// and no write evicted its path since it started.
    pub(super) fn land(
        &self,
        route: &Arc<Route>,
        key: &Arc<str>,
        ticket: Ticket,
        parts: axum::http::response::Parts,
        body: Bytes,
    ) -> Landed {
        let (status, mut headers) = (parts.status, parts.headers);
        // The body may be changed (stale marker): hyper sets the length.
        headers.remove(header::CONTENT_LENGTH);
        let answer = Answer {
            status,
            headers,
            body,
        };
        let landed = if status == StatusCode::OK {
            let policy = &route.policy;
            let size = key.len() + answer.body.len() + OVERHEAD;
            let entry = Arc::new(Entry {
                route: route.clone(),
                seq: ticket.seq,
                stored: Instant::now(),
                etag: http::etag(&answer.body),
                answer,
                stale_body: OnceLock::new(),
                evicted: AtomicBool::new(false),
                failed_at_ms: AtomicU64::new(0),
                weight: u32::try_from(size)
                    .unwrap_or(u32::MAX)
                    .max(self.inner.min_weight),
                keep: policy.ttl + policy.stale_while_revalidate.max(policy.stale_if_error),
            });
            if let Some(copies) = &self.inner.copies
                && ticket.seq >= self.inner.evicted.since(path_of(key))
            {
                self.inner.metrics.stored(route.label, entry.weight);
                copies.insert(key.clone(), entry.clone());
            }
            Landed::Copy(entry)
        } else {
            if answer.failed_load()
                && let Some(copy) = self.inner.copies.as_ref().and_then(|c| c.get(&**key))
            {
                copy.failed_at_ms
                    .store(self.ms(Instant::now()), Ordering::Relaxed);
            }
            Landed::Answer(answer)
        };
        self.abandon(key, ticket.id);
        landed
    }

    /// The end of a load that produced nothing (its task failed).
    pub(super) fn failed() -> Arc<Landed> {
        Arc::new(Landed::Answer(Answer::failed()))
    }

    /// Forgets the flight `id` of `key` (it ended, or failed without an
    /// answer); a newer flight of the key stays.
    pub(super) fn abandon(&self, key: &str, id: u64) {
        let mut flights = self
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if flights.get(key).is_some_and(|f| f.ticket.id == id) {
            flights.remove(key);
        }
    }

    /// A write to `path` may have happened: its path and its parent's are
    /// evicted (the collection it was posted to, the resource owning it).
    pub(super) fn evict_write(&self, path: &str) {
        if !self.enabled() {
            return;
        }
        let path = path.trim_end_matches('/');
        self.inner.evicted.evict(path);
        if let Some((parent, _)) = path.rsplit_once('/')
            && !parent.is_empty()
        {
            self.inner.evicted.evict(parent);
        }
    }
}

/// Each copy lives in moka for its own route's TTL plus stale window.
struct KeepFor;

impl moka::Expiry<Arc<str>, Arc<Entry>> for KeepFor {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        entry: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.keep)
    }

    fn expire_after_update(
        &self,
        _: &Arc<str>,
        entry: &Arc<Entry>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.keep)
    }
}
