//! The in-process store (moka): the zero-setup default, and right for a
//! single instance. Several instances each keep their own copy, which a
//! write on another instance cannot invalidate: run them on Redis.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use super::Raw;

#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    ttl: Duration,
}

/// Each entry lives for the TTL it was written with.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

pub(super) struct LocalStore {
    /// foldhash instead of SipHash: a page of 20 counts is 20 lookups, an
    /// eighth of the comment service's CPU in a profile (seeded per process,
    /// so keys built from request ids cannot be aimed at one bucket).
    entries: Cache<String, Entry, foldhash::quality::RandomState>,
}

impl LocalStore {
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build_with_hasher(foldhash::quality::RandomState::default()),
        }
    }

    pub async fn get_many(&self, keys: &[String]) -> Vec<Raw> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.entries.get(key).await.map(|e| e.bytes));
        }
        out
    }

    pub async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) {
        for (key, bytes, ttl) in items {
            self.entries.insert(key, Entry { bytes, ttl }).await;
        }
    }

    pub async fn set_if_unchanged(&self, items: Vec<(String, Raw, Bytes, Duration)>) {
        for (key, seen, bytes, ttl) in items {
            // `and_compute_with` runs atomically per key, so a write cannot
            // slip between the comparison and the store.
            self.entries
                .entry(key)
                .and_compute_with(|current| async move {
                    if current.map(|e| e.into_value().bytes) == seen {
                        Op::Put(Entry { bytes, ttl })
                    } else {
                        Op::Nop
                    }
                })
                .await;
        }
    }
}
