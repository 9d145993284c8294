//! The in-process store (quick_cache): the zero-setup default, and right for
//! a single instance. Several instances each keep their own copy, which a
//! write on another instance cannot invalidate: run them on Redis.
//!
//! quick_cache rather than moka: a page of 20 comment counts is 20 lookups,
//! and moka's per-read bookkeeping (a read-log entry, a clock read, epoch
//! pins and the housekeeping it triggers) was a sixth of the comment
//! service's instructions per page (`make bench-instr`). quick_cache reads are
//! a sharded hash-table lookup. It has no TTLs, so an entry carries its
//! deadline and a read past it is a miss (the slot is reused by the next
//! write or evicted); a batch reads the clock once.

use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::UnitWeighter;
use quick_cache::sync::{Cache, DefaultLifecycle};

use super::Raw;

#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    expires: Instant,
}

type Hasher = foldhash::quality::RandomState;

/// A quick_cache of at most `items` entries, hashed with a per-process seed.
pub(super) type Bounded<K, V> = Cache<K, V, UnitWeighter, Hasher>;

pub(super) fn bounded<K: Eq + std::hash::Hash, V: Clone>(items: u64) -> Bounded<K, V> {
    let items = items.max(1);
    Cache::with(
        usize::try_from(items).unwrap_or(usize::MAX),
        items,
        UnitWeighter,
        Hasher::default(),
        DefaultLifecycle::default(),
    )
}

pub(super) struct LocalStore {
    /// foldhash instead of SipHash: seeded per process, so keys built from
    /// request ids cannot be aimed at one bucket.
    entries: Bounded<String, Entry>,
    /// A write of a key holds its stripe's lock, so a compare-and-set cannot
    /// interleave with another write of that key (a tombstone landing
    /// between a load's comparison and its store). Reads never lock.
    writes: Box<[Mutex<()>]>,
    stripes: Hasher,
}

/// Enough that writes of different keys rarely wait on each other.
const WRITE_STRIPES: usize = 64;

impl LocalStore {
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: bounded(max_entries),
            writes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            stripes: Hasher::default(),
        }
    }

    pub async fn get_many(&self, keys: &[String]) -> Vec<Raw> {
        let now = Instant::now();
        keys.iter().map(|key| self.live(key, now)).collect()
    }

    pub async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) {
        let now = Instant::now();
        for (key, bytes, ttl) in items {
            let _write = self.lock(&key);
            self.put(key, bytes, now + ttl);
        }
    }

    pub async fn set_if_unchanged(&self, items: Vec<(String, Raw, Bytes, Duration)>) {
        let now = Instant::now();
        for (key, seen, bytes, ttl) in items {
            let _write = self.lock(&key);
            if self.live(&key, now) == seen {
                self.put(key, bytes, now + ttl);
            }
        }
    }

    /// The key's bytes unless absent or past their deadline.
    fn live(&self, key: &str, now: Instant) -> Raw {
        self.entries
            .get(key)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.bytes)
    }

    fn put(&self, key: String, bytes: Bytes, expires: Instant) {
        self.entries.insert(key, Entry { bytes, expires });
    }

    fn lock(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        let stripe = self.stripes.hash_one(key) as usize % self.writes.len();
        // The lock guards no data: a panic while holding it leaves nothing
        // half-written.
        self.writes[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, ttl: Duration) -> (String, Bytes, Duration) {
        (key.to_owned(), Bytes::from_static(b"v"), ttl)
    }

    #[tokio::test]
    async fn an_entry_past_its_ttl_reads_as_absent() {
        let store = LocalStore::new(10);
        store
            .set_many(vec![
                item("gone", Duration::ZERO),
                item("kept", Duration::from_secs(60)),
            ])
            .await;
        let read = store.get_many(&["gone".into(), "kept".into()]).await;
        assert_eq!(read, vec![None, Some(Bytes::from_static(b"v"))]);
    }

    #[tokio::test]
    async fn an_expired_entry_counts_as_absent_for_a_compare_and_set() {
        let store = LocalStore::new(10);
        store.set_many(vec![item("k", Duration::ZERO)]).await;
        let new = Bytes::from_static(b"new");
        store
            .set_if_unchanged(vec![(
                "k".into(),
                None,
                new.clone(),
                Duration::from_secs(60),
            )])
            .await;
        assert_eq!(store.get_many(&["k".into()]).await, vec![Some(new)]);
    }

    #[tokio::test]
    async fn the_store_keeps_no_more_than_its_bound() {
        let store = LocalStore::new(100);
        let items = (0..1000)
            .map(|i| item(&format!("k{i}"), Duration::from_secs(60)))
            .collect();
        store.set_many(items).await;
        assert!(
            store.entries.len() <= 100,
            "{} entries",
            store.entries.len()
        );
    }
}
