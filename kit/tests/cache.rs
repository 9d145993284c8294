//! The cache against both stores: in-process and the shared Redis (each test
//! under its own key prefix), plus a private Redis that gets killed.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kit::cache::{Cache, CacheSettings, Keyspace};
use kit::metrics::Registry;
use kit::testing::{self, RedisProcess};
use tokio::sync::Notify;

/// A fake table: `loads` counts the calls, i.e. the queries a database
/// would have answered.
#[derive(Clone, Default)]
struct Table {
    rows: Arc<std::sync::Mutex<HashMap<i64, i64>>>,
    loads: Arc<AtomicUsize>,
}

impl Table {
    fn with(rows: &[(i64, i64)]) -> Self {
        let table = Self::default();
        table.rows.lock().unwrap().extend(rows.iter().copied());
        table
    }

    async fn load(&self, ids: Vec<i64>) -> Result<HashMap<i64, i64>, Infallible> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        // Long enough for concurrent requests to pile up on one load.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows = self.rows.lock().unwrap();
        Ok(ids
            .into_iter()
            .filter_map(|id| rows.get(&id).map(|v| (id, *v)))
            .collect())
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

fn stores() -> [(&'static str, CacheSettings); 2] {
    [
        ("local", testing::local_cache()),
        ("redis", testing::redis_cache("cache")),
    ]
}

fn keyspace(settings: &CacheSettings) -> (Keyspace<i64>, Registry) {
    let registry = Registry::new();
    let cache = Cache::new(settings, &registry).unwrap();
    (cache.keyspace("numbers"), registry)
}

fn requests(registry: &Registry, result: &str) -> f64 {
    testing::metric(
        &registry.encode(),
        "cache_requests_total",
        &[("cache", "numbers"), ("result", result)],
    )
}

#[tokio::test]
async fn a_miss_loads_once_and_then_hits() {
    for (store, settings) in stores() {
        let (numbers, registry) = keyspace(&settings);
        let table = Table::with(&[(1, 10), (2, 20)]);
        let load = |ids| table.load(ids);
        let first = numbers.get_many_or_load(&[1, 2, 3], load).await.unwrap();
        assert_eq!(first, HashMap::from([(1, 10), (2, 20)]), "{store}");
        let again = numbers.get_many_or_load(&[1, 2, 3], load).await.unwrap();
        assert_eq!(again, first, "{store}");
        assert_eq!(
            table.loads(),
            1,
            "{store}: the second read hit, absent id too"
        );
        assert_eq!(requests(&registry, "miss"), 3.0, "{store}");
        assert_eq!(requests(&registry, "hit"), 3.0, "{store}");
    }
}

#[tokio::test]
async fn a_missing_row_is_cached_only_briefly() {
    for (store, mut settings) in stores() {
        settings.negative_ttl = Duration::from_millis(200);
        settings.jitter = 0.0;
        let (numbers, _) = keyspace(&settings);
        let table = Table::default();
        let load = |ids| table.load(ids);
        assert_eq!(numbers.get_or_load(7, load).await.unwrap(), None);
        assert_eq!(numbers.get_or_load(7, load).await.unwrap(), None);
        assert_eq!(table.loads(), 1, "{store}: not-found was cached");
        table.rows.lock().unwrap().insert(7, 70);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            numbers.get_or_load(7, load).await.unwrap(),
            Some(70),
            "{store}"
        );
    }
}

#[tokio::test]
async fn an_invalidated_key_is_loaded_again_and_a_put_is_read_back() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&settings);
        let table = Table::with(&[(1, 10)]);
        let load = |ids| table.load(ids);
        assert_eq!(numbers.get_or_load(1, load).await.unwrap(), Some(10));
        table.rows.lock().unwrap().insert(1, 11);
        numbers.invalidate(&[1]).await;
        assert_eq!(
            numbers.get_or_load(1, load).await.unwrap(),
            Some(11),
            "{store}"
        );
        assert_eq!(table.loads(), 2, "{store}");

        // A put replaces a cached not-found at once.
        assert_eq!(numbers.get_or_load(5, load).await.unwrap(), None);
        numbers.put(5, &50).await;
        assert_eq!(
            numbers.get_or_load(5, load).await.unwrap(),
            Some(50),
            "{store}"
        );
        assert_eq!(table.loads(), 3, "{store}");
    }
}

#[tokio::test]
async fn a_decoded_copy_is_served_only_while_the_store_holds_its_bytes() {
    for (store, settings) in stores() {
        let numbers = keyspace(&settings).0.with_decoded_copies(8);
        let table = Table::with(&[(1, 10)]);
        let load = |ids| table.load(ids);
        for _ in 0..2 {
            assert_eq!(
                numbers.get_or_load(1, load).await.unwrap(),
                Some(10),
                "{store}"
            );
        }
        table.rows.lock().unwrap().insert(1, 11);
        numbers.invalidate(&[1]).await;
        assert_eq!(
            numbers.get_or_load(1, load).await.unwrap(),
            Some(11),
            "{store}"
        );
        numbers.put(1, &12).await;
        assert_eq!(
            numbers.get_or_load(1, load).await.unwrap(),
            Some(12),
            "{store}"
        );
        assert_eq!(table.loads(), 2, "{store}");
    }
}

#[tokio::test]
async fn a_load_that_raced_a_write_does_not_store_the_old_value() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&settings);
        let numbers = Arc::new(numbers);
        let table = Table::with(&[(1, 10)]);
        let read = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        // A slow reader reads the old row, then stalls before storing it.
        let slow = tokio::spawn({
            let (numbers, table) = (numbers.clone(), table.clone());
            let (read, release) = (read.clone(), release.clone());
            async move {
                numbers
                    .get_or_load(1, |ids| {
                        let (table, read, release) = (table.clone(), read.clone(), release.clone());
                        async move {
                            let old = table.load(ids).await;
                            read.notify_one();
                            release.notified().await;
                            old
                        }
                    })
                    .await
                    .unwrap()
            }
        });
        read.notified().await;
        // The write commits and invalidates while the slow load is out.
        table.rows.lock().unwrap().insert(1, 11);
        numbers.invalidate(&[1]).await;
        release.notify_one();
        assert_eq!(slow.await.unwrap(), Some(10));

        let load = |ids| table.load(ids);
        assert_eq!(
            numbers.get_or_load(1, load).await.unwrap(),
            Some(11),
            "{store}: the writer reads its write"
        );
    }
}

#[tokio::test]
async fn concurrent_misses_of_one_key_cost_one_load() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&settings);
        let numbers = Arc::new(numbers);
        let table = Table::with(&[(1, 10)]);
        let reads = (0..100).map(|_| {
            let (numbers, table) = (numbers.clone(), table.clone());
            tokio::spawn(async move { numbers.get_or_load(1, |ids| table.load(ids)).await })
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap().unwrap(), Some(10), "{store}");
        }
        assert_eq!(table.loads(), 1, "{store}");
    }
}

#[tokio::test]
async fn overlapping_batches_load_each_id_once() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&settings);
        let numbers = Arc::new(numbers);
        let rows: Vec<(i64, i64)> = (1..=30).map(|id| (id, id * 10)).collect();
        let table = Table::with(&rows);
        let loaded = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batches = [1..=20, 10..=30, 5..=25].map(|range| {
            let (numbers, table, loaded) = (numbers.clone(), table.clone(), loaded.clone());
            let ids: Vec<i64> = range.collect();
            tokio::spawn(async move {
                let found = numbers
                    .get_many_or_load(&ids, |ids| {
                        loaded.lock().unwrap().extend(ids.iter().copied());
                        table.load(ids)
                    })
                    .await
                    .unwrap();
                assert_eq!(found.len(), ids.len());
            })
        });
        for batch in futures::future::join_all(batches).await {
            batch.unwrap();
        }
        let mut loaded = loaded.lock().unwrap().clone();
        loaded.sort();
        assert_eq!(loaded, (1..=30).collect::<Vec<_>>(), "{store}");
    }
}

#[tokio::test]
async fn a_killed_redis_is_a_miss_not_a_failure() {
    let mut redis = RedisProcess::start().await;
    let settings = CacheSettings {
        redis_url: Some(redis.url().into()),
        prefix: format!("{}:", testing::unique_name("cache")),
        ..Default::default()
    };
    let (numbers, registry) = keyspace(&settings);
    let table = Table::with(&[(1, 10)]);
    let load = |ids| table.load(ids);
    assert_eq!(numbers.get_or_load(1, load).await.unwrap(), Some(10));
    assert_eq!(numbers.get_or_load(1, load).await.unwrap(), Some(10));
    assert_eq!(table.loads(), 1);

    redis.kill();
    for _ in 0..5 {
        assert_eq!(numbers.get_or_load(1, load).await.unwrap(), Some(10));
        numbers.invalidate(&[1]).await;
        numbers.put(2, &20).await;
    }
    assert_eq!(table.loads(), 6);
    let errors = testing::metric(
        &registry.encode(),
        "cache_errors_total",
        &[("cache", "numbers")],
    );
    assert!(errors >= 5.0, "errors counted: {errors}");
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_up_does_not_stop_the_service() {
    let port = testing::free_port();
    let settings = CacheSettings {
        redis_url: Some(format!("redis://127.0.0.1:{port}").into()),
        ..Default::default()
    };
    let (numbers, _) = keyspace(&settings);
    let table = Table::with(&[(1, 10)]);
    assert_eq!(
        numbers.get_or_load(1, |ids| table.load(ids)).await.unwrap(),
        Some(10)
    );
}

#[tokio::test]
async fn a_write_whose_caller_goes_away_right_after_the_commit_still_invalidates() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&settings);
        let table = Table::with(&[(7, 1)]);
        let read = || numbers.get_or_load(7, |ids| table.load(ids));
        assert_eq!(read().await.unwrap(), Some(1), "{store}: cached");

        let mut write = Box::pin(numbers.invalidating(&[7], async {
            table.rows.lock().unwrap().insert(7, 2);
            // Committed; the caller goes away before the database's answer
            // arrives (a client that hung up, a deadline that passed).
            std::future::pending::<()>().await;
        }));
        assert!(futures::poll!(write.as_mut()).is_pending());
        drop(write);
        assert_eq!(table.rows.lock().unwrap()[&7], 2, "{store}: committed");

        // The invalidation may land a moment later; a stale cache would
        // answer 1 for the whole TTL.
        let fresh = tokio::time::timeout(Duration::from_secs(5), async {
            while read().await.unwrap() != Some(2) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            fresh.is_ok(),
            "{store}: the cache still holds the value from before the write"
        );
    }
}

/// Settings where every value enters its refresh window after a second and
/// expires three seconds later: room for a slow machine between the two.
fn refreshing(mut settings: CacheSettings) -> CacheSettings {
    settings.ttl = Duration::from_secs(4);
    settings.jitter = 0.0;
    settings.refresh_ahead = 0.75;
    settings
}

#[tokio::test]
async fn a_hot_key_near_its_expiry_is_reloaded_by_one_read_while_the_others_keep_the_cached_copy() {
    for (store, settings) in stores() {
        let (numbers, registry) = keyspace(&refreshing(settings));
        let numbers = Arc::new(numbers);
        let table = Table::with(&[(1, 10)]);
        assert_eq!(
            numbers.get_or_load(1, |ids| table.load(ids)).await.unwrap(),
            Some(10)
        );
        table.rows.lock().unwrap().insert(1, 11);
        tokio::time::sleep(Duration::from_millis(1200)).await;

        let reads = (0..100).map(|_| {
            let (numbers, table) = (numbers.clone(), table.clone());
            tokio::spawn(async move { numbers.get_or_load(1, |ids| table.load(ids)).await })
        });
        let mut answers = HashMap::<i64, usize>::new();
        for read in futures::future::join_all(reads).await {
            *answers.entry(read.unwrap().unwrap().unwrap()).or_default() += 1;
        }
        assert_eq!(table.loads(), 2, "{store}: one refresh, not one per read");
        // The reads that came while the refresh ran did not wait for it.
        assert!(
            answers.get(&10).copied().unwrap_or(0) >= 90,
            "{store}: {answers:?}"
        );
        assert_eq!(
            numbers.get_or_load(1, |ids| table.load(ids)).await.unwrap(),
            Some(11),
            "{store}: the refreshed value is stored"
        );
        assert_eq!(table.loads(), 2, "{store}");
        let refreshes = testing::metric(
            &registry.encode(),
            "cache_refreshes_total",
            &[("cache", "numbers")],
        );
        assert_eq!(refreshes, 1.0, "{store}");
    }
}

#[tokio::test]
async fn a_refresh_that_fails_leaves_the_cached_copy_serving() {
    for (store, settings) in stores() {
        let (numbers, _) = keyspace(&refreshing(settings));
        let table = Table::with(&[(1, 10)]);
        assert_eq!(
            numbers.get_or_load(1, |ids| table.load(ids)).await.unwrap(),
            Some(10)
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;

        let failing = |_| async { Err::<HashMap<i64, i64>, _>("database down") };
        assert_eq!(
            numbers.get_or_load(1, failing).await,
            Ok(Some(10)),
            "{store}: a refresh is best effort"
        );
        // A key that is really missing still needs its load.
        assert!(numbers.get_or_load(2, failing).await.is_err(), "{store}");
    }
}
