//! The micro-cache through the real stack: what it answers from memory,
//! what reaches the services (counted in the gateway's gRPC client metrics,
//! never timed), and what it serves when they fail.

use std::time::Duration;

use gateway::cache::RoutePolicy;
use kit::db::Backend;
use kit::testing::metric;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestStack, spawn_stack_with};

const LIST: &str = "/api/v1/articles";
const ARTICLE: &str = "/api/v1/articles/{id}";
const COMMENTS: &str = "/api/v1/articles/{id}/comments";

/// A stack with the cache on and every route cached with `policy` (its
/// `query` as in base.yaml).
async fn stack_with(policy: RoutePolicy) -> TestStack {
    spawn_stack_with(Backend::MySql, move |settings| {
        settings.cache.enabled = true;
        for (route, cached) in settings.cache.routes.iter_mut() {
            *cached = RoutePolicy {
                query: cached.query.clone(),
                ..policy.clone()
            };
            assert!([LIST, ARTICLE, COMMENTS].contains(&route.as_str()));
        }
        // The single-flight test holds a load for as long as it needs.
        settings.platform.resilience.overrides.insert(
            "content.v1.ContentService".into(),
            json!({"timeout": "30s"}),
        );
    })
    .await
}

fn policy(ttl: u64, stale_while_revalidate: u64, stale_if_error: u64) -> RoutePolicy {
    RoutePolicy {
        ttl: Duration::from_secs(ttl),
        stale_while_revalidate: Duration::from_secs(stale_while_revalidate),
        stale_if_error: Duration::from_secs(stale_if_error),
        query: Vec::new(),
    }
}

/// Long enough that nothing expires during a test.
const HOUR: u64 = 3600;

/// Calls of `method` (`ListArticles`, `GetArticle`…) the gateway made.
async fn calls(stack: &TestStack, method: &str) -> f64 {
    let metrics = stack.gateway_metrics().await;
    let service = match method {
        "ListComments" | "CountComments" => "comment.v1.CommentService",
        _ => "content.v1.ContentService",
    };
    metric(
        &metrics,
        "grpc_client_requests_total",
        &[("method", &format!("/{service}/{method}"))],
    )
}

async fn outcomes(stack: &TestStack, route: &str, outcome: &str) -> f64 {
    metric(
        &stack.gateway_metrics().await,
        "http_cache_requests_total",
        &[("route", route), ("outcome", outcome)],
    )
}

fn x_cache(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get(stack: &TestStack, path: &str) -> (StatusCode, String, Value) {
    let response = stack.get(path).await;
    let (status, cache) = (response.status(), x_cache(&response));
    (status, cache, response.json().await.unwrap())
}

async fn published(stack: &TestStack) -> (String, i64) {
    stack.publish_one("editor").await
}

#[tokio::test]
async fn a_repeated_anonymous_read_is_answered_from_memory_without_a_backend_call() {
    let stack = stack_with(policy(HOUR, 0, 0)).await;
    let (_, article) = published(&stack).await;
    let paths = [
        format!("{LIST}?limit=20"),
        format!("/api/v1/articles/{article}"),
        format!("/api/v1/articles/{article}/comments?limit=5"),
    ];
    for path in &paths {
        let (status, cache, first) = get(&stack, path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "MISS"), "{path}");
        let (status, cache, second) = get(&stack, path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"), "{path}");
        assert_eq!(first, second);
    }
    // The same key however the query is written.
    let (_, cache, _) = get(&stack, &format!("{LIST}?utm_source=x&limit=20")).await;
    assert_eq!(cache, "HIT");
    let (_, cache, _) = get(&stack, &format!("{LIST}?limit=21")).await;
    assert_eq!(cache, "MISS", "another page size is another answer");

    assert_eq!(calls(&stack, "ListArticles").await, 2.0);
    assert_eq!(calls(&stack, "GetArticle").await, 1.0);
    assert_eq!(calls(&stack, "ListComments").await, 2.0, "detail + page");
    assert_eq!(outcomes(&stack, LIST, "hit").await, 2.0);
    assert_eq!(outcomes(&stack, LIST, "miss").await, 2.0);
    let metrics = stack.gateway_metrics().await;
    assert!(metric(&metrics, "http_cache_bytes", &[("route", LIST)]) > 0.0);
    assert_eq!(
        metric(&metrics, "http_cache_entries", &[("route", LIST)]),
        2.0
    );
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_misses_of_one_page_cost_one_backend_load() {
    let stack = stack_with(policy(HOUR, 0, 0)).await;
    published(&stack).await;
    // Every ListArticles blocks on the table lock until we let go, so the
    // requests below all arrive while the first one's load is under way.
    let lock = stack.lock_table("content", "articles").await;

    const N: usize = 20;
    let requests: Vec<_> = (0..N)
        .map(|_| {
            let (http, url) = (stack.http.clone(), stack.url(LIST));
            tokio::spawn(async move { http.get(url).send().await.unwrap() })
        })
        .collect();
    let in_flight = |metrics: &str| metric(metrics, "http_server_in_flight_requests", &[]);
    let mut arrived = 0.0;
    for _ in 0..500 {
        arrived = in_flight(&stack.gateway_metrics().await);
        if arrived >= N as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(arrived >= N as f64, "every request is waiting: {arrived}");
    lock.unlock().await;

    let mut bodies = Vec::new();
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        bodies.push(response.json::<Value>().await.unwrap());
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    assert_eq!(calls(&stack, "ListArticles").await, 1.0, "one load for all");
    assert_eq!(outcomes(&stack, LIST, "miss").await, 1.0);
    let waited = outcomes(&stack, LIST, "coalesced").await + outcomes(&stack, LIST, "hit").await;
    assert_eq!(waited, (N - 1) as f64);
    stack.stop().await;
}

#[tokio::test]
async fn a_stale_copy_is_answered_at_once_while_one_refresh_fetches_the_new_one() {
    // Stale as soon as stored: every read after the first is answered from
    // the copy and starts (or joins) a refresh.
    let stack = stack_with(policy(0, HOUR, 0)).await;
    published(&stack).await;
    let (_, cache, first) = get(&stack, LIST).await;
    assert_eq!(cache, "MISS");

    // Published behind the gateway's back (as through another instance):
    // nothing evicts the copy here.
    let mut content = proto::content::v1::content_service_client::ContentServiceClient::connect(
        stack.content[0].url(),
    )
    .await
    .unwrap();
    let author = first["items"][0]["author_id"].as_i64().unwrap();
    content
        .create_article(proto::content::v1::CreateArticleRequest {
            author_id: author,
            title: "Breaking".into(),
            body: "Elsewhere.".into(),
        })
        .await
        .unwrap();

    let (status, cache, stale) = get(&stack, LIST).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "STALE"));
    assert_eq!(stale, first, "the old copy, not a wait for the new one");
    let mut refreshed = None;
    for _ in 0..200 {
        let (status, cache, page) = get(&stack, LIST).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "STALE"));
        if page["items"][0]["title"] == "Breaking" {
            refreshed = Some(page);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refreshed.is_some(), "a refresh brought the new article");
    assert!(outcomes(&stack, LIST, "stale").await >= 2.0);
    let metrics = stack.gateway_metrics().await;
    let refreshes = metric(&metrics, "http_cache_refreshes_total", &[("route", LIST)]);
    assert!(refreshes >= 1.0, "{refreshes}");
    // One load per refresh (the last may still be under way), and only
    // the first read loaded in the foreground.
    assert!(calls(&stack, "ListArticles").await <= 1.0 + refreshes);
    assert_eq!(outcomes(&stack, LIST, "miss").await, 1.0);
    stack.stop().await;
}

async fn assert_stale_if_error(stack: &TestStack, path: &str, before: &Value) {
    let response = stack.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(x_cache(&response), "STALE-IF-ERROR", "{path}");
    assert!(response.headers().contains_key("age"), "{path}");
    let mut page: Value = response.json().await.unwrap();
    let degraded = page["degraded"].as_array().unwrap().clone();
    assert!(degraded.contains(&json!("stale")), "{path}: {page}");
    page.as_object_mut().unwrap().remove("degraded");
    let mut before = before.clone();
    before.as_object_mut().unwrap().remove("degraded");
    assert_eq!(page, before, "{path}: the last good copy");
}

#[tokio::test]
async fn with_content_down_the_last_good_copy_is_served_marked_stale() {
    let mut stack = stack_with(policy(0, 0, HOUR)).await;
    let (_, article) = published(&stack).await;
    let detail = format!("/api/v1/articles/{article}");
    let (_, _, list) = get(&stack, LIST).await;
    let (_, _, single) = get(&stack, &detail).await;

    stack.content.pop().unwrap().stop().await;
    stack.wait_for_instances("content", 0).await;
    for _ in 0..3 {
        assert_stale_if_error(&stack, LIST, &list).await;
        assert_stale_if_error(&stack, &detail, &single).await;
    }
    // Without a copy there is nothing to stand in.
    let never = stack.get(&format!("{LIST}?limit=3")).await;
    assert_eq!(never.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(outcomes(&stack, LIST, "stale_if_error").await, 3.0);
    stack.stop().await;
}

#[tokio::test]
async fn with_the_breaker_forced_open_the_last_good_copy_is_served() {
    let stack = stack_with(policy(0, 0, HOUR)).await;
    published(&stack).await;
    let (_, _, list) = get(&stack, LIST).await;
    let forced = stack
        .http
        .post(format!(
            "{}/admin/breakers/content.v1.ContentService/ListArticles",
            stack.admin
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"action": "force_open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), StatusCode::OK);
    assert_stale_if_error(&stack, LIST, &list).await;
    let metrics = stack.gateway_metrics().await;
    assert!(
        metric(
            &metrics,
            "breaker_calls_total",
            &[
                ("breaker", "content.v1.ContentService/ListArticles"),
                ("outcome", "short_circuited")
            ]
        ) >= 1.0,
        "the load was shed by the breaker"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_stale_copy_past_its_stale_if_error_age_is_not_served() {
    // No stale-if-error window: the copy is too old the moment it is stale.
    let mut stack = stack_with(policy(0, 0, 0)).await;
    published(&stack).await;
    assert_eq!(get(&stack, LIST).await.0, StatusCode::OK);
    stack.content.pop().unwrap().stop().await;
    stack.wait_for_instances("content", 0).await;
    assert_eq!(
        stack.get(LIST).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    stack.stop().await;
}

#[tokio::test]
async fn requests_with_authorization_bypass_the_cache() {
    let stack = stack_with(policy(HOUR, 0, 0)).await;
    let (token, _) = published(&stack).await;
    for _ in 0..2 {
        let response = stack
            .http
            .get(stack.url(LIST))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("x-cache"));
        assert!(!response.headers().contains_key("etag"));
        assert!(!response.headers().contains_key("cache-control"));
    }
    assert_eq!(calls(&stack, "ListArticles").await, 2.0);
    assert_eq!(outcomes(&stack, LIST, "bypass").await, 2.0);
    // Nor did they fill it.
    assert_eq!(get(&stack, LIST).await.1, "MISS");
    stack.stop().await;
}

#[tokio::test]
async fn a_write_through_the_gateway_evicts_what_it_changes_at_once() {
    let stack = stack_with(policy(HOUR, 0, 0)).await;
    let (token, article) = published(&stack).await;
    let detail = format!("/api/v1/articles/{article}");
    let comments = format!("/api/v1/articles/{article}/comments");
    for path in [LIST, detail.as_str(), comments.as_str()] {
        get(&stack, path).await;
        assert_eq!(get(&stack, path).await.1, "HIT", "{path}");
    }

    // A write that was refused wrote nothing and evicts nothing.
    let refused = stack
        .post(LIST, json!({"title": "", "body": "x"}), Some(&token))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get(&stack, LIST).await.1, "HIT");

    stack.publish(&token, "Second story").await;
    let (_, cache, page) = get(&stack, LIST).await;
    assert_eq!(cache, "MISS");
    assert_eq!(page["items"][0]["title"], "Second story");

    stack.comment_on(&token, article, "second").await;
    let (_, cache, page) = get(&stack, &detail).await;
    assert_eq!(cache, "MISS");
    assert_eq!(page["comments"][0]["body"], "second");
    let (_, cache, page) = get(&stack, &comments).await;
    assert_eq!(cache, "MISS");
    assert_eq!(page["items"][0]["body"], "second");
    // The list's comment counts converge within the TTL instead.
    assert_eq!(get(&stack, LIST).await.1, "HIT");

    let metrics = stack.gateway_metrics().await;
    assert!(
        metric(
            &metrics,
            "http_cache_evictions_total",
            &[("cause", "write")]
        ) >= 3.0
    );
    stack.stop().await;
}

#[tokio::test]
async fn cached_answers_carry_validators_and_if_none_match_is_answered_304() {
    let stack = stack_with(policy(1, 10, 300)).await;
    published(&stack).await;
    let first = stack.get(LIST).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(
        first.headers()["cache-control"],
        "public, max-age=1, s-maxage=1, stale-while-revalidate=10, stale-if-error=300"
    );
    assert!(first.headers().contains_key("age"));
    let body = first.text().await.unwrap();

    let revalidated = stack
        .http
        .get(stack.url(LIST))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()["etag"].to_str().unwrap(), etag);
    assert!(revalidated.text().await.unwrap().is_empty());

    let changed = stack
        .http
        .get(stack.url(LIST))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.text().await.unwrap(), body);
    stack.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_every_read_reaches_the_services_and_says_nothing_of_caching() {
    let stack = spawn_stack_with(Backend::MySql, |_| {}).await;
    published(&stack).await;
    for _ in 0..2 {
        let response = stack.get(LIST).await;
        assert_eq!(response.status(), StatusCode::OK);
        for header in ["x-cache", "etag", "cache-control", "age"] {
            assert!(!response.headers().contains_key(header), "{header}");
        }
    }
    assert_eq!(calls(&stack, "ListArticles").await, 2.0);
    stack.stop().await;
}
