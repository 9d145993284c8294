//! Secrets never leave: a whole stack runs with known secrets (the JWT
//! secret, the admin token, a user's password) and real telemetry (JSON
//! logs at debug level, Sentry to a local ingest); none of the secrets may
//! appear in any log line or error report. Its own test binary, run in a
//! child process: telemetry and Sentry are process globals, and the log is
//! what the child writes to stdout, as a pod's log collector sees it.

#![allow(clippy::unwrap_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use kit::db::Backend;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

const JWT_SECRET: &str = "jwt-secret-d6f1c0a2-never-leaves-the-gateway";
const ADMIN_TOKEN: &str = "admin-token-5b7e91-never-leaves";
const PASSWORD: &str = "password-7c2d-never-leaves";
const CHILD: &str = "NEWSROOM_SECRETS_CHILD_INGEST_PORT";
const TEST: &str = "no_secret_reaches_a_log_line_or_an_error_report";

type Envelopes = Arc<Mutex<Vec<String>>>;

#[test]
fn no_secret_reaches_a_log_line_or_an_error_report() {
    if let Ok(port) = std::env::var(CHILD) {
        return child(port.parse().unwrap());
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let envelopes = Envelopes::default();
    let port = runtime.block_on(async {
        let app = axum::Router::new()
            .route(
                "/api/{project}/envelope/",
                post(|State(e): State<Envelopes>, body: Bytes| async move {
                    e.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    StatusCode::OK
                }),
            )
            .with_state(envelopes.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    });
    let output = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, port.to_string())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child failed:\n{log}");
    let lines = log.lines().filter(|l| l.starts_with('{')).count();
    // The log is really there: JSON lines from debug level up, including
    // the rejections (debug) and the failure (error) the child provoked.
    assert!(lines > 50, "only {lines} JSON log lines:\n{log}");
    assert!(log.contains("request rejected"), "{log}");
    assert!(log.contains("requests failed"), "{log}");
    let reports = envelopes.lock().unwrap().clone();
    assert!(
        reports.iter().any(|e| e.contains("requests failed")),
        "no error report reached the ingest: {reports:#?}"
    );
    for secret in [JWT_SECRET, ADMIN_TOKEN, PASSWORD] {
        for line in log.lines() {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
        for report in &reports {
            assert!(
                !report.contains(secret),
                "{secret} in an error report: {report}"
            );
        }
    }
}

/// The stack, its traffic and a failure, under real telemetry.
fn child(ingest_port: u16) {
    let settings = kit::telemetry::TelemetrySettings {
        log_filter: "debug".into(),
        log_format: kit::telemetry::LogFormat::Json,
        sentry_dsn: Some(SecretString::from(format!(
            "http://public@127.0.0.1:{ingest_port}/42"
        ))),
        environment: Some("test".into()),
        ..Default::default()
    };
    let telemetry = kit::telemetry::init("gateway", &settings).unwrap();
    let runtime = kit::runtime::build(&Default::default()).unwrap();
    runtime.block_on(async {
        let stack = helpers::spawn_stack_with(Backend::MySql, |settings| {
            settings.auth.jwt_secret = JWT_SECRET.into();
            settings.admin_token = Some(ADMIN_TOKEN.into());
        })
        .await;
        let http = &stack.http;
        let signed_up = stack
            .post(
                "/api/v1/users",
                json!({"username": "keeper", "password": PASSWORD, "display_name": "Keeper"}),
                None,
            )
            .await;
        assert_eq!(signed_up.status(), StatusCode::CREATED);
        let login = |password: &'static str| {
            stack.post(
                "/api/v1/sessions",
                json!({"username": "keeper", "password": password}),
                None,
            )
        };
        let session: serde_json::Value = login(PASSWORD).await.json().await.unwrap();
        let token = session["token"].as_str().unwrap().to_owned();
        assert_eq!(
            login("a wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
        // The password where it does not belong: a user name, a too-short
        // field elsewhere, a malformed body.
        for body in [
            json!({"username": PASSWORD, "password": PASSWORD}),
            json!({"username": "keeper", "password": PASSWORD, "extra": PASSWORD}),
        ] {
            let response = stack.post("/api/v1/sessions", body, None).await;
            assert!(response.status().is_client_error());
        }
        let article = stack.publish(&token, "Kept").await;
        assert!(article["id"].is_i64());
        // Forged and stale credentials, on the API and the admin port.
        let forged = format!("{token}x");
        let response = stack
            .post(
                "/api/v1/articles",
                json!({"title": "t", "body": "b"}),
                Some(&forged),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        for auth in [
            format!("Bearer {ADMIN_TOKEN}"),
            format!("Bearer {ADMIN_TOKEN}-wrong"),
        ] {
            let _ = http
                .get(format!("{}/admin/breakers", stack.admin))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
        }
        // A failure the gateway reports while a login carries the
        // password: the operator forced the login method's breaker open.
        let forced = http
            .post(format!(
                "{}/admin/breakers/user.v1.UserService/Authenticate",
                stack.admin
            ))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"action": "force_open"}))
            .send()
            .await
            .unwrap();
        assert_eq!(forced.status(), StatusCode::OK);
        assert_eq!(
            login(PASSWORD).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // A failure logged at error level, and so reported (a forced-open
        // breaker is a shed, a warning): the users table is locked, so a
        // sign-up carrying the password runs out of time.
        let lock = stack.lock_table("user", "users").await;
        let stuck = stack
            .post(
                "/api/v1/users",
                json!({"username": "keeper2", "password": PASSWORD, "display_name": "Keeper"}),
                None,
            )
            .await;
        assert!(stuck.status().is_server_error(), "{}", stuck.status());
        lock.unlock().await;
        stack.stop().await;
        kit::telemetry::flush(Duration::from_secs(5)).await;
    });
    drop(telemetry);
}
