//! Request collapsing: while one request loads a key, others that miss the
//! same key wait for its answer instead of querying the database too.
//!
//! Hand-written because loads here are batches: a `BatchGetUsers` that
//! misses fifty ids must lead the ids nobody is loading in one query and
//! follow the rest. Per-key singleflight crates (and moka's `get_with`)
//! would cost one query per key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use super::Raw;

/// `None` while loading; then `Some(value)`, where the inner `None` means
/// the load found nothing. A sender dropped without an answer means the
/// load failed or was cancelled.
type Answer<V> = Option<Option<V>>;

pub(super) struct Flights<V> {
    loading: Mutex<HashMap<i64, watch::Receiver<Answer<V>>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            loading: Mutex::new(HashMap::new()),
        }
    }
}

/// The missing ids of one request, split into those it loads and those it
/// waits for.
pub(super) struct Joined<'a, V> {
    pub lead: Lead<'a, V>,
    pub follow: Vec<(i64, watch::Receiver<Answer<V>>)>,
}

/// The ids a request loads; others may be waiting for them. Dropping it
/// (answered or not) ends the flights.
pub(super) struct Lead<'a, V> {
    flights: &'a Flights<V>,
    entries: Vec<LeadEntry<V>>,
}

struct LeadEntry<V> {
    id: i64,
    seen: Option<Raw>,
    /// A refresh ahead of expiry: the caller has a good copy already.
    refresh: bool,
    answer: watch::Sender<Answer<V>>,
}

impl<V: Clone> Flights<V> {
    /// Takes the lead on every id of `missing` and `due` that nobody is
    /// loading, and follows the loads of the other missing ids; a due id
    /// someone is loading already is left out (its cached copy serves).
    pub fn join(
        &self,
        missing: Vec<(i64, Option<Raw>)>,
        due: Vec<(i64, Option<Raw>)>,
    ) -> Joined<'_, V> {
        let mut loading = self.lock();
        let mut entries = Vec::new();
        let mut follow = Vec::new();
        let all = missing
            .into_iter()
            .map(|m| (m, false))
            .chain(due.into_iter().map(|d| (d, true)));
        for ((id, seen), refresh) in all {
            match loading.get(&id) {
                Some(_) if refresh => {}
                Some(rx) => follow.push((id, rx.clone())),
                None => {
                    let (answer, rx) = watch::channel(None);
                    loading.insert(id, rx);
                    entries.push(LeadEntry {
                        id,
                        seen,
                        refresh,
                        answer,
                    });
                }
            }
        }
        Joined {
            lead: Lead {
                flights: self,
                entries,
            },
            follow,
        }
    }

    /// Later requests for `ids` start their own load: the loads in flight
    /// may have read the database before a write to them.
    pub fn forget(&self, ids: &[i64]) {
        let mut loading = self.lock();
        for id in ids {
            loading.remove(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Receiver<Answer<V>>>> {
        self.loading.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V: Clone> Lead<'_, V> {
    pub fn ids(&self) -> Vec<i64> {
        self.entries.iter().map(|e| e.id).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many of the led ids are refreshes ahead of expiry.
    pub fn refreshing(&self) -> usize {
        self.entries.iter().filter(|e| e.refresh).count()
    }

    /// Each led id with what the cache held when it missed.
    pub fn seen(&self) -> impl Iterator<Item = (i64, &Option<Raw>)> {
        self.entries.iter().map(|e| (e.id, &e.seen))
    }

    /// Hands the load's answer to every waiting request.
    pub fn finish(&self, loaded: &HashMap<i64, V>) {
        for entry in &self.entries {
            entry
                .answer
                .send_replace(Some(loaded.get(&entry.id).cloned()));
        }
    }
}

impl<V> Drop for Lead<'_, V> {
    fn drop(&mut self) {
        let mut loading = self
            .flights
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for entry in &self.entries {
            // Only our own flight: `forget` may have let a newer one start.
            if loading
                .get(&entry.id)
                .is_some_and(|rx| rx.same_channel(&entry.answer.subscribe()))
            {
                loading.remove(&entry.id);
            }
        }
    }
}

/// Waits for the requests followed; returns what they found and the ids
/// whose loads failed (to be loaded by the caller).
pub(super) async fn wait_all<V: Clone>(
    follow: Vec<(i64, watch::Receiver<Answer<V>>)>,
) -> (HashMap<i64, V>, Vec<i64>) {
    let waits = follow.into_iter().map(|(id, mut rx)| async move {
        let answer = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|a| a.clone());
        (id, answer)
    });
    let mut found = HashMap::new();
    let mut orphaned = Vec::new();
    for (id, answer) in futures::future::join_all(waits).await {
        match answer {
            Some(Some(value)) => {
                found.insert(id, value);
            }
            Some(None) => {}
            None => orphaned.push(id),
        }
    }
    (found, orphaned)
}
