use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, spawn_stack};

#[tokio::test]
async fn malformed_json_is_400_and_the_wrong_shape_422() {
    let stack = spawn_stack().await;
    let malformed = stack
        .http
        .post(stack.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );

    let wrong_shape = stack
        .post("/api/v1/users", json!({"username": 5}), None)
        .await;
    assert_eq!(
        error_code(wrong_shape, StatusCode::UNPROCESSABLE_ENTITY).await,
        "unprocessable_entity"
    );
    let unknown_field = stack
        .post(
            "/api/v1/users",
            json!({"username": "ida", "password": "long enough", "admin": true}),
            None,
        )
        .await;
    assert_eq!(unknown_field.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let not_json = stack
        .http
        .post(stack.url("/api/v1/users"))
        .body("username=ida")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("jack").await;
    let huge = "x".repeat(2 * gateway::models::LARGEST_VALID_BODY);
    let response = stack
        .post(
            "/api/v1/articles",
            json!({"title": "big", "body": huge}),
            Some(&token),
        )
        .await;
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
    stack.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let stack = spawn_stack().await;
    let response = stack.get("/api/v1/nothing/here").await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let response = stack
        .http
        .delete(stack.url("/api/v1/articles"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_service_with_no_instance_is_503_with_retry_after() {
    let mut stack = spawn_stack().await;
    for server in stack.content.drain(..) {
        server.stop().await;
    }
    stack.wait_for_instances("content", 0).await;
    let response = stack.get("/api/v1/articles").await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.text().await.unwrap();
    assert!(body.contains("\"unavailable\""), "{body}");
    assert!(!body.contains("127.0.0.1"), "internals leaked: {body}");
    stack.stop().await;
}
