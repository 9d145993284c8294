//! A low-priority outage must never take the site down: with the comment
//! service SIGKILLed, the article list keeps answering and the gateway stays
//! ready (so Kubernetes keeps it in the Service) long after the dead
//! instance's lease has expired; with content gone, the gateway turns unready.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::scenarios::seed;
use crate::stack::{Stack, TTL};

/// How long the comment outage is watched: several lease TTLs, so the dead
/// instance has long left etcd.
const WATCH: Duration = Duration::from_secs(30);

#[tokio::test]
async fn with_the_comment_service_killed_the_list_degrades_and_the_gateway_stays_ready() {
    let mut stack = Stack::start().await;
    seed(&stack).await;
    let http = reqwest::Client::new();
    stack.take("comment").kill();
    let killed = Instant::now();

    let (mut lists, mut degraded, mut ready_polls, mut unready) = (0, 0, 0, Vec::new());
    while killed.elapsed() < WATCH {
        let list = http
            .get(stack.url("/api/v1/articles?limit=5"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            list.status(),
            200,
            "the list failed {:?} after the kill",
            killed.elapsed()
        );
        let body: Value = list.json().await.unwrap();
        lists += 1;
        if body["degraded"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "comments"))
        {
            degraded += 1;
        }
        let ready = http.get(stack.url("/readyz")).send().await.unwrap();
        ready_polls += 1;
        if ready.status() != 200 {
            unready.push((killed.elapsed(), ready.text().await.unwrap_or_default()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "CHAOS comment killed: {lists} list calls (all 200, {degraded} degraded), {ready_polls} readiness polls, {} not ready",
        unready.len()
    );
    assert!(
        unready.is_empty(),
        "unready after the comment kill: {unready:?}"
    );
    // Every answer after the first failed call knows comments are missing.
    assert!(
        degraded > 0 && degraded + 5 >= lists,
        "{degraded} of {lists} degraded"
    );
    let body: Value = http
        .get(stack.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["instances"]["comment"], 0, "the lease expired: {body}");
    assert_eq!(body["degraded"], serde_json::json!(["comment"]), "{body}");

    // Content is critical: without it the gateway must leave the Service.
    stack.take("content").kill();
    let killed = Instant::now();
    let limit = TTL * 3 + Duration::from_secs(5);
    loop {
        let ready = http.get(stack.url("/readyz")).send().await.unwrap();
        if ready.status() == 503 {
            let body: Value = ready.json().await.unwrap();
            assert_eq!(body["missing"], serde_json::json!(["content"]), "{body}");
            eprintln!(
                "CHAOS content killed: unready after {:?} (lease TTL {TTL:?})",
                killed.elapsed()
            );
            break;
        }
        assert!(
            killed.elapsed() < limit,
            "still ready {limit:?} after content died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
