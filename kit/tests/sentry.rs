//! Error reports reach a Sentry ingest endpoint (the real envelope protocol,
//! served here by a small HTTP server) with the trace id and without
//! secrets. Its own test binary: Sentry and the subscriber are globals.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use kit::telemetry::propagation::ServerSpan;
use kit::telemetry::report::ReportLayer;
use kit::telemetry::span::RequestSpan;
use secrecy::SecretString;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

const PASSWORD: &str = "hunter2-never-leaves";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

type Envelopes = Arc<Mutex<Vec<String>>>;

/// What Sentry's ingest does with `POST /api/<project>/envelope/`: accept
/// the envelope. Kept whole, to look for anything that should not be there.
async fn ingest(
    State(envelopes): State<Envelopes>,
    Path(project): Path<String>,
    body: Bytes,
) -> StatusCode {
    assert_eq!(project, "42");
    envelopes
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::OK
}

/// The event payloads among the envelopes: each envelope is a header line,
/// then per item an item header line and a payload line.
fn events(envelopes: &Envelopes) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    for envelope in envelopes.lock().unwrap().iter() {
        let lines: Vec<&str> = envelope.lines().collect();
        for pair in lines[1..].chunks(2) {
            let header: serde_json::Value = serde_json::from_str(pair[0]).unwrap_or_default();
            if header["type"] == "event"
                && let Some(payload) = pair.get(1)
            {
                events.push(serde_json::from_str(payload).unwrap());
            }
        }
    }
    events
}

async fn login(body: String) -> StatusCode {
    // A careless handler: logs the credentials it was sent, then fails.
    tracing::error!(password = %body, "login failed with an internal error");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn boom() -> StatusCode {
    panic!("the handler fell over")
}

#[test]
fn panics_and_internal_errors_are_reported_with_the_trace_id_and_no_password() {
    let ingest_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ingest_listener.set_nonblocking(true).unwrap();
    let ingest_port = ingest_listener.local_addr().unwrap().port();
    let settings = kit::telemetry::TelemetrySettings {
        log_filter: "warn".into(),
        sentry_dsn: Some(SecretString::from(format!(
            "http://public@127.0.0.1:{ingest_port}/42"
        ))),
        environment: Some("test".into()),
        ..Default::default()
    };
    // As in a service's main: telemetry first, then the runtime.
    let telemetry = kit::telemetry::init("reporter", &settings).unwrap();
    let runtime = kit::runtime::build(&Default::default()).unwrap();
    runtime.block_on(async {
        let envelopes = Envelopes::default();
        let ingest_app = Router::new()
            .route("/api/{project}/envelope/", post(ingest))
            .with_state(envelopes.clone());
        let ingest_listener = tokio::net::TcpListener::from_std(ingest_listener).unwrap();
        tokio::spawn(async move { axum::serve(ingest_listener, ingest_app).await });

        let app = Router::new()
            .route("/login", post(login))
            .route("/boom", post(boom))
            .layer(
                ServiceBuilder::new()
                    .layer(CatchPanicLayer::new())
                    .layer(RequestSpan::layer(ServerSpan::http()))
                    .layer(ReportLayer::new()),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let http = reqwest::Client::new();
        let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
        for path in ["/login", "/boom"] {
            let response = http
                .post(format!("{base}{path}"))
                .header("traceparent", &traceparent)
                .body(format!("username=ann&password={PASSWORD}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}"
            );
        }
        // The panic answered its own request; the server still serves.
        let again = http.post(format!("{base}/login")).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::INTERNAL_SERVER_ERROR);

        kit::telemetry::flush(Duration::from_secs(5)).await;
        let mut found = Vec::new();
        for _ in 0..100 {
            found = events(&envelopes);
            if found.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let traced: Vec<_> = found
            .iter()
            .filter(|e| e["tags"]["trace_id"] == TRACE_ID)
            .collect();
        assert!(
            traced
                .iter()
                .any(|e| e.to_string().contains("login failed")),
            "no report of the internal error: {found:#?}"
        );
        assert!(
            traced
                .iter()
                .any(|e| e.to_string().contains("the handler fell over")),
            "no report of the panic: {found:#?}"
        );
        for event in &found {
            assert_eq!(event["tags"]["service"], "reporter");
            assert_eq!(event["environment"], "test");
        }
        for envelope in envelopes.lock().unwrap().iter() {
            assert!(
                !envelope.contains(PASSWORD),
                "a password was reported: {envelope}"
            );
        }
    });
    drop(telemetry);
}
