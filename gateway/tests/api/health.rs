use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_stack;

#[tokio::test]
async fn healthz_and_readyz_report_a_ready_stack() {
    let stack = spawn_stack().await;
    assert_eq!(stack.get("/healthz").await.status(), StatusCode::OK);
    let ready = stack.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["etcd"], "connected");
    let admin = stack
        .http
        .get(format!("{}/readyz", stack.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    stack.stop().await;
}

#[tokio::test]
async fn readyz_stays_200_without_an_optional_backend_and_reports_it() {
    let mut stack = spawn_stack().await;
    stack.comment.take().unwrap().stop().await;
    stack.wait_for_instances("comment", 0).await;
    let response = stack.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instances"]["comment"], 0);
    assert_eq!(body["degraded"], serde_json::json!(["comment"]));
    stack.stop().await;
}

#[tokio::test]
async fn readyz_is_503_while_a_critical_backend_has_no_instance() {
    let mut stack = spawn_stack().await;
    for content in stack.content.drain(..) {
        content.stop().await;
    }
    stack.wait_for_instances("content", 0).await;
    let response = stack.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["missing"], serde_json::json!(["content"]));
    // Liveness never looks at a dependency.
    assert_eq!(stack.get("/healthz").await.status(), StatusCode::OK);
    stack.stop().await;
}

#[tokio::test]
async fn openapi_describes_every_endpoint() {
    let stack = spawn_stack().await;
    let doc: Value = stack.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/articles", "post"),
        ("/api/v1/articles", "get"),
        ("/api/v1/articles/{id}", "get"),
        ("/api/v1/articles/{id}/comments", "post"),
        ("/api/v1/articles/{id}/comments", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    stack.stop().await;
}
