use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_stack};

#[tokio::test]
async fn a_user_registers_logs_in_and_can_be_fetched() {
    let stack = spawn_stack().await;
    let (user, token) = stack.login_as("Alice").await;
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "ALICE");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert!(token.split('.').count() == 3, "a JWT");

    let id = user["id"].as_i64().unwrap();
    let fetched: Value = stack
        .get(&format!("/api/v1/users/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, user);
    stack.stop().await;
}

#[tokio::test]
async fn a_session_says_when_it_expires() {
    let stack = spawn_stack().await;
    stack.login_as("bob").await;
    let session: Value = stack
        .post(
            "/api/v1/sessions",
            json!({"username": "bob", "password": "correct horse"}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let expires = session["expires_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(expires).is_ok(), "{expires}");
    stack.stop().await;
}

#[tokio::test]
async fn a_taken_username_is_409() {
    let stack = spawn_stack().await;
    stack.login_as("carol").await;
    let again = stack
        .post(
            "/api/v1/users",
            json!({"username": "CAROL", "password": "another one!"}),
            None,
        )
        .await;
    assert_eq!(
        error_code(again, StatusCode::CONFLICT).await,
        "already_exists"
    );
    stack.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_401() {
    let stack = spawn_stack().await;
    stack.login_as("dave").await;
    for (username, password) in [("dave", "wrong password"), ("nobody", "correct horse")] {
        let response = stack
            .post(
                "/api/v1/sessions",
                json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            error_code(response, StatusCode::UNAUTHORIZED).await,
            "unauthenticated"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn fields_that_break_the_rules_are_400() {
    let stack = spawn_stack().await;
    for body in [
        json!({"username": "ab", "password": "long enough"}),
        json!({"username": "erin", "password": "short"}),
        json!({"username": "has space", "password": "long enough"}),
    ] {
        let response = stack.post("/api/v1/users", body.clone(), None).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_argument",
            "{body}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn unknown_users_are_404_and_bad_ids_400() {
    let stack = spawn_stack().await;
    let response = stack.get("/api/v1/users/987654").await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let response = stack.get("/api/v1/users/abc").await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
    let response = stack.get("/api/v1/users/0").await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_argument"
    );
    stack.stop().await;
}

#[tokio::test]
async fn fifty_parallel_sign_ups_of_one_name_give_exactly_one_201() {
    let stack = spawn_stack().await;
    let attempts = (0..50).map(|i| {
        stack.post(
            "/api/v1/users",
            json!({"username": "racer", "password": format!("password {i}")}),
            None,
        )
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 49), "{statuses:?}");
    stack.stop().await;
}
