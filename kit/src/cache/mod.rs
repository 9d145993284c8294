//! Cache-aside for services: Redis when `cache.redis_url` is set, an
//! in-process cache otherwise, behind one API.
//!
//! A [`Cache`] is the store (one per process); a [`Keyspace`] is one kind of
//! cached value on it (users by id, comment counts by article), with its own
//! metrics label and request collapsing. The database stays the truth; the
//! cache only ever saves queries:
//!
//! - a cache that fails or times out is a miss (logged, counted, bypassed);
//! - concurrent misses of one key cost one load (`flight.rs`);
//! - a load that found nothing is cached for `negative_ttl`, so ids that do
//!   not exist cannot hammer the database;
//! - every TTL carries random jitter, so keys written together do not all
//!   expire together;
//! - a hot key does not expire under load: in the last `refresh_ahead` of
//!   its TTL, the first read reloads it while every other read keeps being
//!   served the cached copy (refresh-ahead). Without it, each expiry of a
//!   key that every request reads (the front page, its comment counts)
//!   sends every request of that moment to wait on one database load, a
//!   stall of the whole service's traffic once a TTL;
//! - a write replaces the key with a tombstone and a load only stores its
//!   result if the key still holds what the load saw when it missed, so a
//!   load that raced a write cannot put the old value back (the lease of
//!   Facebook's memcache paper). Read-your-write therefore holds as long as
//!   the cache answers the write's invalidation;
//! - a write's invalidation is armed before the write ([`Keyspace::invalidating`])
//!   and, once started, runs in a task of its own: a caller that goes away
//!   after the commit (hung up, deadline passed) cannot leave the old value
//!   cached for a whole TTL.

mod error;
mod flight;
mod local;
mod metrics;
mod redis;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

pub use error::CacheError;
pub use redis::connection as redis_connection;
pub use settings::CacheSettings;

use self::flight::{Flights, Joined};
use self::local::LocalStore;
use self::metrics::{CacheMetrics, Lookups};
use self::redis::RedisStore;
use crate::metrics::Registry;

/// How long a tombstone outlives a write: longer than any load that could
/// have started before the write may take (pool wait + query), so such a
/// load always finds the tombstone changed and does not store.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30);

/// A value without a refresh time (written by an earlier version): read,
/// never refreshed ahead.
const VALUE: u8 = b'v';
/// A value after the 8-byte little-endian Unix time, in milliseconds, from
/// which a read refreshes it.
const STAMPED: u8 = b'w';
const STAMP: usize = 1 + 8;
const NOT_FOUND: u8 = b'n';
const TOMBSTONE: u8 = b't';

/// The process's cache store. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: CacheSettings,
    metrics: CacheMetrics,
}

enum Store {
    Local(LocalStore),
    Redis(RedisStore),
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// A stored entry as the store returned it, for the compare-and-set.
type Raw = Option<Bytes>;

impl Cache {
    /// Redis if `settings.redis_url` is set, otherwise in-process. Never
    /// connects eagerly: a Redis that is down at start-up is only a miss.
    pub fn new(settings: &CacheSettings, registry: &Registry) -> Result<Self, CacheError> {
        // Checked here, before the service binds a port: a NaN would make
        // every cache write panic in `Duration::mul_f64`.
        for (key, value) in [
            ("jitter", settings.jitter),
            ("refresh_ahead", settings.refresh_ahead),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(CacheError::Fraction(key, value));
            }
        }
        let store = match &settings.redis_url {
            Some(url) => Store::Redis(RedisStore::new(url, settings)?),
            None => Store::Local(LocalStore::new(settings.max_entries)),
        };
        let cache = Self {
            inner: Arc::new(Inner {
                store,
                settings: settings.clone(),
                metrics: CacheMetrics::new(registry),
            }),
        };
        tracing::info!(backend = cache.backend(), "cache ready");
        Ok(cache)
    }

    /// `"redis"` or `"local"`.
    pub fn backend(&self) -> &'static str {
        match self.inner.store {
            Store::Local(_) => "local",
            Store::Redis(_) => "redis",
        }
    }

    /// A typed view of the keys `{prefix}{name}:{id}`; `name` is also the
    /// `cache` label of the metrics.
    pub fn keyspace<V>(&self, name: &'static str) -> Keyspace<V> {
        Keyspace {
            cache: self.clone(),
            name,
            key_prefix: format!("{}{name}:", self.inner.settings.prefix),
            lookups: self.inner.metrics.lookups(name),
            refreshes: self.inner.metrics.refreshes(name),
            decoded: None,
            flights: Flights::default(),
            _value: PhantomData,
        }
    }

    fn ttl(&self) -> Duration {
        jittered(self.inner.settings.ttl, self.inner.settings.jitter)
    }

    /// `value` as stored now, with its (jittered) TTL, stamped with when a
    /// read should start refreshing it.
    fn fresh<V: prost::Message>(&self, value: &V) -> (Bytes, Duration) {
        let ttl = self.ttl();
        // A fraction in 0..=1 (`Cache::new` checks).
        let ahead = self.inner.settings.refresh_ahead;
        let refresh_at = if ahead == 0.0 {
            u64::MAX
        } else {
            let fresh = u64::try_from(ttl.mul_f64(1.0 - ahead).as_millis()).unwrap_or(u64::MAX);
            unix_millis().saturating_add(fresh)
        };
        (encode_value(value, refresh_at), ttl)
    }

    fn negative_ttl(&self) -> Duration {
        jittered(self.inner.settings.negative_ttl, self.inner.settings.jitter)
    }

    async fn get_many(&self, name: &'static str, keys: &[String]) -> Option<Vec<Raw>> {
        let timeout = self.inner.settings.timeout;
        let result = match &self.inner.store {
            Store::Local(store) => Ok(store.get_many(keys).await),
            Store::Redis(store) => store.get_many(keys, timeout).await,
        };
        self.ok_or_log(name, "get", result)
    }

    /// Stores each `(key, seen, value, ttl)` only if the key still holds
    /// `seen`.
    async fn store_if_unchanged(
        &self,
        name: &'static str,
        items: Vec<(String, Raw, Bytes, Duration)>,
    ) {
        if items.is_empty() {
            return;
        }
        let timeout = self.inner.settings.timeout;
        let result = match &self.inner.store {
            Store::Local(store) => {
                store.set_if_unchanged(items).await;
                Ok(())
            }
            Store::Redis(store) => store.set_if_unchanged(&items, timeout).await,
        };
        self.ok_or_log(name, "set", result);
    }

    async fn set_many(&self, name: &'static str, items: Vec<(String, Bytes, Duration)>) {
        if items.is_empty() {
            return;
        }
        let timeout = self.inner.settings.timeout;
        let result = match &self.inner.store {
            Store::Local(store) => {
                store.set_many(items).await;
                Ok(())
            }
            Store::Redis(store) => store.set_many(&items, timeout).await,
        };
        self.ok_or_log(name, "set", result);
    }

    fn ok_or_log<T>(
        &self,
        name: &'static str,
        op: &str,
        result: Result<T, CacheError>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.inner.metrics.error(name);
                if let Some(suppressed) = self.inner.metrics.should_log() {
                    tracing::warn!(cache = name, op, %error, suppressed, "cache unavailable, using the database");
                }
                None
            }
        }
    }
}

/// One kind of cached value `V`, keyed by an `i64` id, stored as protobuf.
pub struct Keyspace<V> {
    cache: Cache,
    name: &'static str,
    /// `{prefix}{name}:`, built once: a page of 20 counts is 20 keys.
    key_prefix: String,
    lookups: Lookups,
    refreshes: prometheus_client::metrics::counter::Counter,
    decoded: Option<DecodedCopies<V>>,
    flights: Flights<V>,
    _value: PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Keyspace<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.name)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// What the cache said about one key.
enum Lookup<V> {
    Found(V),
    /// Found, and in the last part of its TTL: `seen` is the stored entry.
    Due {
        value: V,
        seen: Bytes,
    },
    NotFound,
    /// Absent, a tombstone or unreadable; `seen` is what a store must find
    /// unchanged (`None` inside means absent), `None` when the cache failed.
    Miss {
        seen: Option<Raw>,
    },
}

impl<V> Keyspace<V>
where
    V: prost::Message + Default + Clone + Send + Sync + 'static,
{
    /// Keeps up to `capacity` decoded copies beside the stored bytes, so
    /// that a hit is a comparison and a clone instead of a protobuf decode.
    /// Worth it for few, large, hot values (the front page's 20 summaries:
    /// its decode was a sixth of the content service's instructions per
    /// list); a small value decodes about as fast as it clones. A copy is
    /// used only while the store holds the very bytes it was decoded from.
    pub fn with_decoded_copies(mut self, capacity: usize) -> Self {
        self.decoded = Some(DecodedCopies::new(capacity));
        self
    }

    /// The value of `id`: from the cache, or from `load` (whose answer is
    /// then cached, `None` briefly).
    pub async fn get_or_load<E, F, Fut>(&self, id: i64, load: F) -> Result<Option<V>, E>
    where
        F: Fn(Vec<i64>) -> Fut,
        Fut: Future<Output = Result<HashMap<i64, V>, E>>,
    {
        let mut found = self.get_many_or_load(&[id], load).await?;
        Ok(found.remove(&id))
    }

    /// The values of those of `ids` that exist: cached ones from one
    /// multi-get, the rest from one call of `load` with the missing ids
    /// (ids another request is loading already are awaited, not loaded
    /// again).
    pub async fn get_many_or_load<E, F, Fut>(
        &self,
        ids: &[i64],
        load: F,
    ) -> Result<HashMap<i64, V>, E>
    where
        F: Fn(Vec<i64>) -> Fut,
        Fut: Future<Output = Result<HashMap<i64, V>, E>>,
    {
        let mut found = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(found);
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        let raws = self.cache.get_many(self.name, &keys).await;
        let mut missing = Vec::new();
        let mut due = Vec::new();
        let mut hits = 0;
        let mut now = Now::default();
        for (i, id) in ids.iter().enumerate() {
            let lookup = match &raws {
                Some(raws) => self.decode(*id, raws.get(i).cloned().flatten(), &mut now),
                None => Lookup::Miss { seen: None },
            };
            match lookup {
                Lookup::Found(value) => {
                    hits += 1;
                    found.insert(*id, value);
                }
                Lookup::Due { value, seen } => {
                    hits += 1;
                    found.insert(*id, value);
                    due.push((*id, Some(Some(seen))));
                }
                Lookup::NotFound => hits += 1,
                Lookup::Miss { seen } => missing.push((*id, seen)),
            }
        }
        self.lookups.record(hits, missing.len() as u64);
        if missing.is_empty() && due.is_empty() {
            return Ok(found);
        }

        // A due key another request is refreshing is served as it is; only
        // a missing one waits for the load.
        let Joined { lead, follow } = self.flights.join(missing, due);
        let refreshing = lead.refreshing();
        if refreshing > 0 {
            self.refreshes.inc_by(refreshing as u64);
        }
        let needed = lead.len() > refreshing;
        let load = &load;
        let leading = async move {
            let ids = lead.ids();
            if ids.is_empty() {
                return Ok(HashMap::new());
            }
            // `lead` drops when this block ends, answered or not, so nobody
            // waits on a load that is over.
            let loaded = load(ids).await?;
            lead.finish(&loaded);
            self.store_loaded(&lead, &loaded).await;
            Ok(loaded)
        };
        let (led, followed) = tokio::join!(leading, flight::wait_all(follow));
        match led {
            Ok(led) => found.extend(led),
            Err(error) if needed => return Err(error),
            // Only a refresh failed: the cached copies are still good for
            // the rest of their TTL, and the next read tries again.
            Err(_) => {}
        }
        let (answered, orphaned) = followed;
        found.extend(answered);
        if !orphaned.is_empty() {
            // The requests we waited on failed or were cancelled: load these
            // ourselves rather than fail a request for someone else's error.
            found.extend(load(orphaned).await?);
        }
        Ok(found)
    }

    /// Writes `value` for `id` (after a write that created it). Once
    /// started, the store write finishes even if the caller goes away.
    pub async fn put(&self, id: i64, value: &V) {
        self.flights.forget(&[id]);
        let (bytes, ttl) = self.cache.fresh(value);
        let item = (self.key(id), bytes, ttl);
        let _ = self.detached(vec![item]).await;
    }

    /// Marks `ids` as changed: the next read of each loads from the database,
    /// and loads that started before this call do not store their result.
    /// Once started, it finishes even if the caller goes away.
    pub async fn invalidate(&self, ids: &[i64]) {
        Invalidation::new(self, ids).run().await;
    }

    /// Runs `write`, a database write that changes `ids`, then invalidates
    /// `ids`. The invalidation is armed before the write starts: if the
    /// caller goes away while the write is under way — its commit may have
    /// landed, the answer not yet — the invalidation still happens, in a
    /// task of its own, instead of the old value staying cached for a whole
    /// TTL. A write that failed is followed by the invalidation too: a
    /// needless reload is cheap, and "failed" can mean "committed, answer
    /// lost".
    pub async fn invalidating<T>(&self, ids: &[i64], write: impl Future<Output = T>) -> T {
        let armed = Invalidation::new(self, ids);
        let written = write.await;
        armed.run().await;
        written
    }

    /// Writes `items` from a task of its own, so that dropping the caller
    /// cannot cancel the write half-way; the caller may await its end.
    fn detached(&self, items: Vec<(String, Bytes, Duration)>) -> tokio::task::JoinHandle<()> {
        use tracing::Instrument as _;
        let (cache, name) = (self.cache.clone(), self.name);
        crate::telemetry::spawn(
            "cache-write",
            async move { cache.set_many(name, items).await }.in_current_span(),
        )
    }

    fn tombstones(&self, ids: &[i64]) -> Vec<(String, Bytes, Duration)> {
        ids.iter()
            .map(|id| (self.key(*id), tombstone(), TOMBSTONE_TTL))
            .collect()
    }

    fn decode(&self, id: i64, raw: Raw, now: &mut Now) -> Lookup<V> {
        let (Some(decoded), Some(bytes)) = (&self.decoded, &raw) else {
            return decode(raw, now);
        };
        if let Some(value) = decoded.get(id, bytes) {
            return Lookup::hit(value, bytes, now);
        }
        let bytes = bytes.clone();
        let lookup: Lookup<V> = decode(raw, now);
        if let Lookup::Found(value) | Lookup::Due { value, .. } = &lookup {
            decoded.put(id, bytes, value.clone());
        }
        lookup
    }

    fn key(&self, id: i64) -> String {
        let mut digits = itoa::Buffer::new();
        let id = digits.format(id);
        let mut key = String::with_capacity(self.key_prefix.len() + id.len());
        key.push_str(&self.key_prefix);
        key.push_str(id);
        key
    }

    async fn store_loaded(&self, lead: &flight::Lead<'_, V>, loaded: &HashMap<i64, V>) {
        let items = lead
            .seen()
            .filter_map(|(id, seen)| {
                // The cache failed when we looked: storing blind could
                // overwrite a newer tombstone.
                let seen = seen.clone()?;
                let (bytes, ttl) = match loaded.get(&id) {
                    Some(value) => self.cache.fresh(value),
                    None => (Bytes::from_static(&[NOT_FOUND]), self.cache.negative_ttl()),
                };
                Some((self.key(id), seen, bytes, ttl))
            })
            .collect();
        self.cache.store_if_unchanged(self.name, items).await;
    }
}

/// The invalidation of some ids, done exactly once: when run, or — if the
/// future that would have run it is dropped first — on drop.
struct Invalidation<'a, V>
where
    V: prost::Message + Default + Clone + Send + Sync + 'static,
{
    keyspace: &'a Keyspace<V>,
    ids: &'a [i64],
    started: bool,
}

impl<'a, V> Invalidation<'a, V>
where
    V: prost::Message + Default + Clone + Send + Sync + 'static,
{
    fn new(keyspace: &'a Keyspace<V>, ids: &'a [i64]) -> Self {
        Self {
            keyspace,
            ids,
            started: false,
        }
    }

    fn start(&mut self) -> tokio::task::JoinHandle<()> {
        self.started = true;
        // Loads that started before the write must not be joined by reads
        // that come after it.
        self.keyspace.flights.forget(self.ids);
        self.keyspace.detached(self.keyspace.tombstones(self.ids))
    }

    /// Invalidates now and waits until the cache has the tombstones (read
    /// your write).
    async fn run(mut self) {
        let _ = self.start().await;
    }
}

impl<V> Drop for Invalidation<'_, V>
where
    V: prost::Message + Default + Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        // Outside a runtime nothing can be spawned, and nothing is serving.
        if !self.started && tokio::runtime::Handle::try_current().is_ok() {
            // Detached: nobody is left to wait for it.
            drop(self.start());
        }
    }
}

fn decode<V: prost::Message + Default>(raw: Raw, now: &mut Now) -> Lookup<V> {
    let Some(bytes) = raw else {
        return Lookup::Miss { seen: Some(None) };
    };
    let body = match bytes.first() {
        Some(&NOT_FOUND) => return Lookup::NotFound,
        Some(&VALUE) => &bytes[1..],
        Some(&STAMPED) if bytes.len() >= STAMP => &bytes[STAMP..],
        _ => {
            return Lookup::Miss {
                seen: Some(Some(bytes)),
            };
        }
    };
    match V::decode(body) {
        Ok(value) => Lookup::hit(value, &bytes, now),
        // Written by an incompatible version: reload and overwrite.
        Err(_) => Lookup::Miss {
            seen: Some(Some(bytes)),
        },
    }
}

impl<V> Lookup<V> {
    /// `value`, read from the stored entry `bytes`: due for a refresh if
    /// its stamp says so.
    fn hit(value: V, bytes: &Bytes, now: &mut Now) -> Self {
        if now.due(bytes) {
            Self::Due {
                value,
                seen: bytes.clone(),
            }
        } else {
            Self::Found(value)
        }
    }
}

/// The clock of one lookup, read at most once and only if a stamped value
/// is found.
#[derive(Default)]
struct Now(Option<u64>);

impl Now {
    /// Whether the stored entry `bytes` is in its refresh window.
    fn due(&mut self, bytes: &[u8]) -> bool {
        let Some(stamp) = bytes
            .get(1..STAMP)
            .filter(|_| bytes[0] == STAMPED)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
        else {
            return false;
        };
        let refresh_at = u64::from_le_bytes(stamp);
        refresh_at != u64::MAX && *self.0.get_or_insert_with(unix_millis) >= refresh_at
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Values as decoded from the stored bytes, by id.
struct DecodedCopies<V> {
    copies: local::Bounded<i64, Arc<(Bytes, V)>>,
}

impl<V: Clone> DecodedCopies<V> {
    fn new(capacity: usize) -> Self {
        Self {
            copies: local::bounded(u64::try_from(capacity).unwrap_or(u64::MAX)),
        }
    }

    /// The copy of `id` if it was decoded from exactly `bytes`.
    fn get(&self, id: i64, bytes: &Bytes) -> Option<V> {
        self.copies
            .get(&id)
            .filter(|copy| copy.0 == *bytes)
            .map(|copy| copy.1.clone())
    }

    fn put(&self, id: i64, bytes: Bytes, value: V) {
        self.copies.insert(id, Arc::new((bytes, value)));
    }
}

fn encode_value<V: prost::Message>(value: &V, refresh_at: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(STAMP + value.encoded_len());
    buf.put_u8(STAMPED);
    buf.put_u64_le(refresh_at);
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = value.encode(&mut buf);
    buf.freeze()
}

/// A tombstone unique to this write, so that a load which saw an earlier
/// tombstone can tell that another write happened since.
fn tombstone() -> Bytes {
    let mut buf = BytesMut::with_capacity(17);
    buf.put_u8(TOMBSTONE);
    buf.put_slice(format!("{:016x}", fastrand::u64(..)).as_bytes());
    buf.freeze()
}

/// `ttl` ± `jitter` (a fraction), so that keys cached together expire apart.
fn jittered(ttl: Duration, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    if jitter == 0.0 || ttl.is_zero() {
        return ttl;
    }
    let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
    ttl.mul_f64(factor).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests;
