//! The store's clock and bounds, with tokio's paused time; and single
//! flight through a real router whose handler waits on a gate. The API
//! tests (tests/api/cache.rs) cover the same through real services.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use bytes::Bytes;
use kit::metrics::Registry;
use tower::ServiceExt as _;

use super::store::{Landed, Lookup, Ticket};
use super::{MicroCache, MicroCacheSettings, RoutePolicy, Store};

const LIST: &str = "/api/v1/articles";

fn store(settings: &MicroCacheSettings) -> Store {
    Store::new(settings, &Registry::new())
}

fn policy(ttl: u64, swr: u64, sie: u64) -> MicroCacheSettings {
    let mut settings = MicroCacheSettings::default();
    for route in settings.routes.values_mut() {
        *route = RoutePolicy {
            ttl: Duration::from_secs(ttl),
            stale_while_revalidate: Duration::from_secs(swr),
            stale_if_error: Duration::from_secs(sie),
            query: route.query.clone(),
        };
    }
    settings
}

/// Stores `body` under `key` as a load that started at clock `seq`.
fn land(store: &Store, key: &str, seq: u64, body: &'static [u8]) -> bool {
    let route = store.route(LIST).unwrap().clone();
    let key: Arc<str> = key.into();
    let (parts, ()) = axum::http::Response::new(()).into_parts();
    let ticket = Ticket { id: 0, seq };
    let landed = store.land(&route, &key, ticket, parts, Bytes::from_static(body));
    matches!(landed, Landed::Copy(_))
}

fn state(store: &Store, key: &str) -> &'static str {
    let route = store.route(LIST).unwrap().clone();
    match store.lookup(&route, key, tokio::time::Instant::now()) {
        Lookup::Fresh(_) => "fresh",
        Lookup::Stale(_) => "stale",
        Lookup::Fallback(_) => "fallback",
        Lookup::Failing(_) => "failing",
        Lookup::Absent => "absent",
    }
}

#[tokio::test(start_paused = true)]
async fn a_copy_is_fresh_then_stale_then_a_fallback_then_gone() {
    let store = store(&policy(1, 10, 300));
    assert!(land(&store, LIST, store.clock(), b"{}"));
    assert_eq!(state(&store, LIST), "fresh");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(state(&store, LIST), "stale");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(state(&store, LIST), "fallback");
    tokio::time::advance(Duration::from_secs(290)).await;
    assert_eq!(state(&store, LIST), "absent");
}

#[tokio::test(start_paused = true)]
async fn while_loads_fail_one_is_tried_per_second_and_the_rest_get_the_copy() {
    let store = store(&policy(1, 10, 300));
    assert!(land(&store, LIST, store.clock(), b"{}"));
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(state(&store, LIST), "fallback");
    // A load fails (content down): the copy stands in without a new try…
    let route = store.route(LIST).unwrap().clone();
    let (mut parts, ()) = axum::http::Response::new(()).into_parts();
    parts.status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
    let ticket = Ticket {
        id: 1,
        seq: store.clock(),
    };
    store.land(&route, &LIST.into(), ticket, parts, Bytes::new());
    assert_eq!(state(&store, LIST), "failing");
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(state(&store, LIST), "failing");
    // …until a second has passed: then the next request tries again.
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(state(&store, LIST), "fallback");
}

#[tokio::test(start_paused = true)]
async fn a_load_that_raced_a_write_does_not_store_its_answer() {
    let store = store(&policy(60, 0, 0));
    let started = store.clock();
    store.evict_write(LIST);
    land(&store, LIST, started, b"{}");
    assert_eq!(state(&store, LIST), "absent");
    // A load that starts after the write stores as usual.
    land(&store, LIST, store.clock(), b"{}");
    assert_eq!(state(&store, LIST), "fresh");
}

#[tokio::test(start_paused = true)]
async fn a_write_evicts_its_path_and_its_parent_and_nothing_else() {
    let store = store(&policy(60, 0, 0));
    let keys = [
        "/api/v1/articles/7/comments?limit=5",
        "/api/v1/articles/7",
        "/api/v1/articles/8",
        "/api/v1/articles?limit=20",
    ];
    for key in keys {
        land(&store, key, store.clock(), b"{}");
    }
    store.evict_write("/api/v1/articles/7/comments");
    let states: Vec<_> = keys.iter().map(|k| state(&store, k)).collect();
    // Evicted copies only stand in for failed loads from now on.
    assert_eq!(states, ["fallback", "fallback", "fresh", "fresh"]);
}

#[tokio::test(start_paused = true)]
async fn the_store_holds_at_most_max_entries_copies() {
    let mut settings = policy(60, 0, 0);
    settings.max_entries = 4;
    settings.max_bytes = 4 * 4096;
    let store = store(&settings);
    for n in 0..100 {
        land(&store, &format!("{LIST}?limit={n}"), store.clock(), b"{}");
    }
    assert!(store.held() <= 4, "{}", store.held());
}

#[tokio::test]
async fn concurrent_misses_wait_for_one_load() {
    let store = store(&policy(60, 0, 0));
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let handler = {
        let (loads, gate) = (loads.clone(), gate.clone());
        move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            let _ = gate.acquire().await;
            "{\"items\":[]}"
        }
    };
    let router = Router::new()
        .route(LIST, get(handler))
        .layer(MicroCache::layer(&store));
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move {
                let request = Request::get(LIST).body(Body::empty()).unwrap();
                let response = router.oneshot(request).await.unwrap();
                response.headers()["x-cache"].to_str().unwrap().to_owned()
            })
        })
        .collect();
    // Let every request reach the cache before the load may finish.
    while loads.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers.sort();
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(answers.iter().filter(|a| *a == "MISS").count(), 1);
    assert_eq!(
        answers.iter().filter(|a| *a == "COALESCED").count(),
        9,
        "{answers:?}"
    );
}
