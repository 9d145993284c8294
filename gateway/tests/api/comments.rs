use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_stack};

#[tokio::test]
async fn comments_page_newest_first_with_their_authors() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("gina").await;
    let article = stack.publish(&token, "Oil").await["id"].as_i64().unwrap();
    for i in 0..5 {
        stack.comment_on(&token, article, &format!("c{i}")).await;
    }
    let first: Value = stack
        .get(&format!("/api/v1/articles/{article}/comments?limit=3"))
        .await
        .json()
        .await
        .unwrap();
    let bodies: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["c4", "c3", "c2"]);
    assert_eq!(first["items"][0]["author"]["username"], "gina");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = stack
        .get(&format!(
            "/api/v1/articles/{article}/comments?limit=3&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert!(second["next_cursor"].is_null());
    stack.stop().await;
}

#[tokio::test]
async fn commenting_needs_a_token_an_article_and_a_body() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("hank").await;
    let article = stack.publish(&token, "Gold").await["id"].as_i64().unwrap();
    let path = format!("/api/v1/articles/{article}/comments");

    let anonymous = stack.post(&path, json!({"body": "hi"}), None).await;
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    let nowhere = stack
        .post(
            "/api/v1/articles/999999/comments",
            json!({"body": "hi"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        error_code(nowhere, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let blank = stack.post(&path, json!({"body": "  "}), Some(&token)).await;
    assert_eq!(
        error_code(blank, StatusCode::BAD_REQUEST).await,
        "invalid_argument"
    );
    stack.stop().await;
}
