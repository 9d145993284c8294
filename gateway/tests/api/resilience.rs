//! Hystrix-style protection through the real stack: a failing or slow
//! low-priority service must not hurt the article API.

use std::time::Duration;

use kit::db::Backend;
use kit::testing::metric;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestStack, error_code, spawn_stack_with};

const COUNT: &str = "comment.v1.CommentService/CountComments";

/// A stack whose comment breakers trip after 5 calls and sleep 300 ms.
async fn stack() -> TestStack {
    spawn_stack_with(Backend::MySql, |settings| {
        settings.platform.resilience.overrides.insert(
            "comment.v1.CommentService".into(),
            json!({
                "timeout": "300ms",
                "breaker": {"request_volume_threshold": 5, "sleep_window": "300ms"}
            }),
        );
    })
    .await
}

async fn publish_one(stack: &TestStack) -> (String, i64) {
    stack.publish_one("writer").await
}

#[tokio::test]
async fn articles_stay_200_and_say_what_is_degraded_while_comments_are_down() {
    let mut stack = stack().await;
    let (token, article) = publish_one(&stack).await;
    stack.comment.take().unwrap().stop().await;
    stack.wait_for_instances("comment", 0).await;

    for _ in 0..3 {
        let page = stack.get("/api/v1/articles").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page: Value = page.json().await.unwrap();
        assert_eq!(page["degraded"], json!(["comments"]));
        assert!(page["items"][0]["comment_count"].is_null());
        assert_eq!(
            page["items"][0]["author"]["username"], "writer",
            "authors still there"
        );

        let detail = stack.get(&format!("/api/v1/articles/{article}")).await;
        assert_eq!(detail.status(), StatusCode::OK);
        let detail: Value = detail.json().await.unwrap();
        assert_eq!(detail["degraded"], json!(["comments"]));
        assert_eq!(detail["title"], "Rates hold");
    }

    // Writes never fall back: they fail clearly.
    let write = stack
        .post(
            &format!("/api/v1/articles/{article}/comments"),
            json!({"body": "x"}),
            Some(&token),
        )
        .await;
    assert!(write.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(write, StatusCode::SERVICE_UNAVAILABLE).await,
        "unavailable"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_comment_breaker_opens_on_failures_and_closes_when_the_service_returns() {
    let mut stack = stack().await;
    publish_one(&stack).await;
    stack.comment.take().unwrap().stop().await;
    stack.wait_for_instances("comment", 0).await;

    for _ in 0..10 {
        assert_eq!(stack.get("/api/v1/articles").await.status(), StatusCode::OK);
    }
    let breaker = stack.breaker(COUNT).await;
    assert_eq!(breaker["state"], "open", "{breaker}");
    let short_circuited = breaker["window"]["short_circuits"].as_u64().unwrap();
    assert!(
        short_circuited > 0,
        "open rejects without calling: {breaker}"
    );

    stack.start_comment().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut closed = false;
    for _ in 0..20 {
        let page: Value = stack.get("/api/v1/articles").await.json().await.unwrap();
        if stack.breaker(COUNT).await["state"] == "closed" && page.get("degraded").is_none() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "a successful trial closes the circuit: {}",
        stack.breaker(COUNT).await
    );
    let metrics = stack.gateway_metrics().await;
    assert_eq!(
        metric(&metrics, "breaker_state", &[("breaker", COUNT)]),
        0.0
    );
    assert!(
        metric(
            &metrics,
            "breaker_calls_total",
            &[("breaker", COUNT), ("outcome", "short_circuited")]
        ) > 0.0
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_slow_comment_service_times_out_into_a_degraded_page() {
    let stack = stack().await;
    let (_, article) = publish_one(&stack).await;
    // A real fault: the comment table is locked, so counting blocks.
    let lock = stack.lock_table("comment", "comments").await;

    let page = stack.get("/api/v1/articles").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page: Value = page.json().await.unwrap();
    assert_eq!(page["degraded"], json!(["comments"]));
    let detail: Value = stack
        .get(&format!("/api/v1/articles/{article}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["degraded"], json!(["comments"]));

    let metrics = stack.gateway_metrics().await;
    assert!(
        metric(
            &metrics,
            "breaker_calls_total",
            &[("breaker", COUNT), ("outcome", "timeout")]
        ) >= 1.0
    );
    lock.unlock().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_deadline_spent_down_the_chain_is_504_and_the_leaf_stops_working() {
    let stack = stack().await;
    let (token, article) = publish_one(&stack).await;
    // comment → content: content's article table is locked, so the leaf
    // blocks until the caller's deadline (the gateway's 300 ms) runs out.
    let lock = stack.lock_table("content", "articles").await;

    let response = stack
        .post(
            &format!("/api/v1/articles/{article}/comments"),
            json!({"body": "late"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        error_code(response, StatusCode::GATEWAY_TIMEOUT).await,
        "deadline_exceeded"
    );

    // The leaf saw its call end early: cancelled by the caller or cut by its
    // own copy of the deadline, never completed normally.
    let leaf = stack.content_metrics().await;
    let get = [("method", "/content.v1.ContentService/GetArticle")];
    let abandoned = metric(
        &leaf,
        "grpc_server_requests_total",
        &[get[0], ("code", "CANCELLED")],
    ) + metric(
        &leaf,
        "grpc_server_requests_total",
        &[get[0], ("code", "DEADLINE_EXCEEDED")],
    );
    assert!(abandoned >= 1.0, "{leaf}");
    lock.unlock().await;

    // Nothing was stored for the failed write.
    let page: Value = stack
        .get(&format!("/api/v1/articles/{article}/comments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn operators_can_force_a_breaker_open_and_reset_it() {
    let stack = stack().await;
    publish_one(&stack).await;
    stack.get("/api/v1/articles").await;
    let admin = |path: &str| format!("{}{path}", stack.admin);

    let anonymous = stack
        .http
        .get(admin("/admin/breakers"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = stack
        .http
        .get(admin("/admin/breakers"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let steer = |action: &'static str| {
        stack
            .http
            .post(admin(&format!("/admin/breakers/{COUNT}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "action": action }))
            .send()
    };
    let forced: Value = steer("force_open").await.unwrap().json().await.unwrap();
    assert_eq!(forced["forced"], "open");
    let page: Value = stack.get("/api/v1/articles").await.json().await.unwrap();
    assert_eq!(
        page["degraded"],
        json!(["comments"]),
        "forced open sheds the dependency"
    );

    let reset: Value = steer("reset").await.unwrap().json().await.unwrap();
    assert_eq!(
        (reset["forced"].as_str(), reset["state"].as_str()),
        (Some("auto"), Some("closed"))
    );
    let page: Value = stack.get("/api/v1/articles").await.json().await.unwrap();
    assert!(page.get("degraded").is_none());

    let unknown = stack
        .http
        .post(admin("/admin/breakers/no.Such/Method"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"action": "reset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    stack.stop().await;
}

/// A content service that is up but answers every call with UNAVAILABLE.
struct Unavailable;

#[tonic::async_trait]
impl proto::content::v1::content_service_server::ContentService for Unavailable {
    async fn create_article(
        &self,
        _: tonic::Request<proto::content::v1::CreateArticleRequest>,
    ) -> Result<tonic::Response<proto::content::v1::CreateArticleResponse>, tonic::Status> {
        Err(tonic::Status::unavailable("down"))
    }
    async fn get_article(
        &self,
        _: tonic::Request<proto::content::v1::GetArticleRequest>,
    ) -> Result<tonic::Response<proto::content::v1::GetArticleResponse>, tonic::Status> {
        Err(tonic::Status::unavailable("down"))
    }
    async fn list_articles(
        &self,
        _: tonic::Request<proto::content::v1::ListArticlesRequest>,
    ) -> Result<tonic::Response<proto::content::v1::ListArticlesResponse>, tonic::Status> {
        Err(tonic::Status::unavailable("down"))
    }
}

#[tokio::test]
async fn retries_of_a_dead_service_stay_within_the_retry_budget() {
    let mut stack = spawn_stack_with(Backend::MySql, |settings| {
        // Without the breaker, only the retry budget stands between the
        // callee and a retry storm.
        settings.platform.resilience.overrides.insert(
            "content.v1.ContentService".into(),
            json!({"breaker": {"enabled": false}}),
        );
    })
    .await;
    let mut platform = stack.content_settings.platform.clone();
    platform.grpc.port = 0;
    platform.admin.port = 0;
    let faulty =
        kit::server::GrpcServer::bind("content", &platform, &kit::metrics::Registry::new())
            .await
            .unwrap()
            .add_service(
                proto::content::v1::content_service_server::ContentServiceServer::new(Unavailable),
            );
    let faulty = kit::testing::RunningServer::spawn(faulty);
    faulty.wait_until_serving().await;
    for server in stack.content.drain(..) {
        server.stop().await;
    }
    stack.wait_for_instances("content", 1).await;

    let calls = 300;
    for _ in 0..calls {
        let response = stack.get("/api/v1/articles").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let text = reqwest::get(format!("http://{}/metrics", faulty.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reached = metric(
        &text,
        "grpc_server_requests_total",
        &[("method", "/content.v1.ContentService/ListArticles")],
    );
    let retries = metric(&stack.gateway_metrics().await, "client_retries_total", &[]);
    println!("{calls} client calls → {reached} backend calls ({retries} retries)");
    assert!(retries > 0.0, "reads are retried");
    // ratio 0.2, plus the budget's floor of 5 retries/s over its 10 s window.
    assert!(
        reached <= calls as f64 * 1.2 + 50.0,
        "{reached} backend calls for {calls}"
    );
    faulty.stop().await;
    stack.stop().await;
}
