use kit::testing::metric;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_stack};

#[tokio::test]
async fn the_whole_story_works_through_the_gateway() {
    let stack = spawn_stack().await;
    let (alice, alice_token) = stack.login_as("alice").await;
    let (bob, bob_token) = stack.login_as("bob").await;
    let first = stack.publish(&alice_token, "Rates hold").await;
    let second = stack.publish(&bob_token, "Markets rally").await;
    assert_eq!(first["author"]["username"], "alice");
    assert_eq!(first["comment_count"], 0);
    stack
        .comment_on(&bob_token, first["id"].as_i64().unwrap(), "Expected.")
        .await;
    stack
        .comment_on(&alice_token, first["id"].as_i64().unwrap(), "Indeed.")
        .await;

    let page: Value = stack.get("/api/v1/articles").await.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], second["id"], "newest first");
    assert_eq!(items[0]["author"]["id"], bob["id"]);
    assert_eq!(items[0]["comment_count"], 0);
    assert_eq!(items[1]["author"]["id"], alice["id"]);
    assert_eq!(items[1]["comment_count"], 2);
    assert!(page["next_cursor"].is_null());

    let detail: Value = stack
        .get(&format!("/api/v1/articles/{}", first["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["title"], "Rates hold");
    assert_eq!(detail["author"]["username"], "alice");
    assert_eq!(detail["comment_count"], 2);
    let comments = detail["comments"].as_array().unwrap();
    assert_eq!(comments[0]["body"], "Indeed.");
    assert_eq!(comments[0]["author"]["username"], "alice");
    assert_eq!(comments[1]["author"]["username"], "bob");
    stack.stop().await;
}

#[tokio::test]
async fn an_article_page_costs_three_backend_calls_whatever_its_size() {
    let stack = spawn_stack().await;
    let mut tokens = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        tokens.push(stack.login_as(name).await.1);
    }
    for i in 0..20 {
        let article = stack
            .publish(&tokens[i % tokens.len()], &format!("Story {i}"))
            .await;
        if i % 3 == 0 {
            stack
                .comment_on(&tokens[0], article["id"].as_i64().unwrap(), "first")
                .await;
        }
    }
    let calls = |text: &str, method: &str| {
        metric(text, "grpc_client_requests_total", &[("method", method)])
    };
    for limit in [1, 5, 20] {
        let before = stack.gateway_metrics().await;
        let page: Value = stack
            .get(&format!("/api/v1/articles?limit={limit}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), limit);
        assert!(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["author"].is_object())
        );
        let after = stack.gateway_metrics().await;
        let total = metric(&after, "grpc_client_requests_total", &[])
            - metric(&before, "grpc_client_requests_total", &[]);
        assert_eq!(total, 3.0, "limit={limit}");
        for method in [
            "/content.v1.ContentService/ListArticles",
            "/user.v1.UserService/BatchGetUsers",
            "/comment.v1.CommentService/CountComments",
        ] {
            assert_eq!(
                calls(&after, method) - calls(&before, method),
                1.0,
                "{method}, limit={limit}"
            );
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_cursor_walks_every_article_once() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("writer").await;
    let mut published = Vec::new();
    for i in 0..7 {
        published.push(
            stack.publish(&token, &format!("n{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    published.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/v1/articles?limit=3".to_owned();
    loop {
        let page: Value = stack.get(&path).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/articles?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, published);
    stack.stop().await;
}

#[tokio::test]
async fn publishing_needs_a_valid_token() {
    let stack = spawn_stack().await;
    let body = json!({"title": "t", "body": "b"});
    let anonymous = stack.post("/api/v1/articles", body.clone(), None).await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    let forged = stack.post("/api/v1/articles", body, Some("a.b.c")).await;
    assert_eq!(
        error_code(forged, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    stack.stop().await;
}

#[tokio::test]
async fn invalid_articles_and_pages_are_400() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("fred").await;
    let empty_title = stack
        .post(
            "/api/v1/articles",
            json!({"title": " ", "body": "b"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        error_code(empty_title, StatusCode::BAD_REQUEST).await,
        "invalid_argument"
    );
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=x",
        "cursor=forged",
        "cursor=",
        "cursor=AAAAAAAAAAB",
    ] {
        let response = stack.get(&format!("/api/v1/articles?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // Ids outside the documented 1..=i64::MAX, past int64 included.
    for path in [
        "/api/v1/articles/0",
        "/api/v1/articles/-1",
        "/api/v1/articles/9223372036854775808",
        "/api/v1/articles/0/comments",
        "/api/v1/users/0",
        "/api/v1/users/99999999999999999999999",
    ] {
        let response = stack.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn an_unknown_article_is_404() {
    let stack = spawn_stack().await;
    let response = stack.get("/api/v1/articles/424242").await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_page_of_fifty_articles_costs_at_most_one_user_query() {
    let stack = spawn_stack().await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(stack.login_as(&format!("writer{i}")).await.1);
    }
    for i in 0..50 {
        stack
            .publish(&tokens[i % tokens.len()], &format!("Story {i}"))
            .await;
    }
    for _ in 0..2 {
        let before = stack.user_reads().await;
        let page: Value = stack
            .get("/api/v1/articles?limit=50")
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 50);
        assert!(items.iter().all(|a| a["author"]["username"].is_string()));
        let cost = stack.user_reads().await - before;
        assert!(cost <= 1.0, "a page of 50 cost {cost} user queries");
    }
    stack.stop().await;
}

/// CJK characters take three bytes: 85,000 of them make a 255 KB body, under
/// the gateway's request limit (512 KiB).
fn long_cjk_body() -> String {
    "央行维持利率不变".repeat(85_000 / 8)
}

#[tokio::test]
async fn a_page_of_long_articles_still_answers_with_summaries() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("longform").await;
    let body = long_cjk_body();
    // 17 whole bodies would be 4.3 MB, past tonic's 4 MiB default.
    for i in 0..17 {
        let r = stack
            .post(
                "/api/v1/articles",
                json!({"title": format!("long {i}"), "body": body}),
                Some(&token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let list = stack.get("/api/v1/articles?limit=20").await;
    assert_eq!(list.status(), StatusCode::OK);
    let page: Value = list.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 17);
    for item in items {
        let summary = item["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), 280);
        assert!(summary.ends_with('…'));
        assert!(item.get("body").is_none(), "a list never carries bodies");
    }
    // The whole body is on the article's own page.
    let id = items[0]["id"].as_i64().unwrap();
    let detail: Value = stack
        .get(&format!("/api/v1/articles/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["body"].as_str().unwrap(), body);
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_too_large_to_decode_is_an_opaque_500_not_a_400() {
    let stack = crate::helpers::spawn_stack_with(kit::db::Backend::MySql, |s| {
        s.platform.channel.messages.max_decoding_bytes = 16 * 1024;
    })
    .await;
    let id = publish_directly(&stack, 50_000).await;
    let response = stack.get(&format!("/api/v1/articles/{id}")).await;
    assert_eq!(
        error_code(response, StatusCode::INTERNAL_SERVER_ERROR).await,
        "internal"
    );
    // The list carries summaries, so the same article does not break it.
    assert_eq!(stack.get("/api/v1/articles").await.status(), StatusCode::OK);
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_past_the_services_encode_limit_is_a_500_and_a_breaker_failure() {
    let mut stack = crate::helpers::spawn_stack().await;
    let id = publish_directly(&stack, 50_000).await;
    // Content restarted with a 16 KiB limit on what it sends.
    for old in std::mem::take(&mut stack.content) {
        old.stop().await;
    }
    stack
        .content_settings
        .platform
        .grpc
        .messages
        .max_encoding_bytes = 16 * 1024;
    stack.add_content_instance().await;

    let response = stack.get(&format!("/api/v1/articles/{id}")).await;
    assert_eq!(
        error_code(response, StatusCode::INTERNAL_SERVER_ERROR).await,
        "internal"
    );
    // tonic sends that error in trailers after an OK header: the breaker
    // reads the trailers, so the callee's fault counts against it.
    let breaker = stack.breaker("content.v1.ContentService/GetArticle").await;
    assert_eq!(breaker["window"]["failures"], 1, "{breaker}");
    assert_eq!(breaker["window"]["successes"], 0, "{breaker}");
    stack.stop().await;
}

/// Publishes an article of `len` characters straight to the content
/// service (past any gateway limit); returns its id.
async fn publish_directly(stack: &crate::helpers::TestStack, len: usize) -> i64 {
    let mut content = proto::content::v1::content_service_client::ContentServiceClient::connect(
        stack.content[0].url(),
    )
    .await
    .unwrap();
    content
        .create_article(proto::content::v1::CreateArticleRequest {
            author_id: 1,
            title: "huge".into(),
            body: "x".repeat(len),
        })
        .await
        .unwrap()
        .into_inner()
        .article
        .unwrap()
        .id
}
