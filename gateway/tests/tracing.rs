//! One gateway request is one trace across every service, as seen by a real
//! OTLP receiver (the collector's gRPC protocol, from `opentelemetry-proto`).
//! Its own test binary: telemetry is a process-wide global.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use reqwest::StatusCode;
use tokio_stream::wrappers::TcpListenerStream;

/// Keeps every exported span.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), receiver)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_listing_is_one_trace_through_every_service() {
    let (endpoint, receiver) = start_receiver().await;
    let settings = kit::telemetry::TelemetrySettings {
        log_filter: "warn".into(),
        otlp_endpoint: Some(endpoint),
        export_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let telemetry = kit::telemetry::init("newsroom", &settings).unwrap();

    let stack = helpers::spawn_stack().await;
    let (_, token) = stack.login_as("tracy").await;
    let article = stack.publish(&token, "Traced").await;
    stack
        .comment_on(&token, article["id"].as_i64().unwrap(), "seen")
        .await;
    let listing = stack.get("/api/v1/articles").await;
    assert_eq!(listing.status(), StatusCode::OK);
    kit::telemetry::flush(Duration::from_secs(5)).await;

    let wanted = [
        "/content.v1.ContentService/ListArticles",
        "/user.v1.UserService/BatchGetUsers",
        "/comment.v1.CommentService/CountComments",
    ];
    let mut trace = Vec::new();
    for _ in 0..100 {
        let spans = receiver.spans.lock().unwrap().clone();
        if let Some(root) = spans
            .iter()
            .find(|s| s.name == "GET /api/v1/articles" && s.parent_span_id.is_empty())
        {
            trace = spans
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .cloned()
                .collect();
            let servers = trace
                .iter()
                .filter(|s| s.kind == SpanKind::Server as i32)
                .count();
            if servers == 1 + wanted.len() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let by_id: HashMap<String, &Span> = trace.iter().map(|s| (hex(&s.span_id), s)).collect();
    let root = trace
        .iter()
        .find(|s| s.name == "GET /api/v1/articles")
        .expect("the gateway's request span was exported");
    assert_eq!(root.kind, SpanKind::Server as i32);
    for method in wanted {
        let server = trace
            .iter()
            .find(|s| s.name == method && s.kind == SpanKind::Server as i32)
            .unwrap_or_else(|| panic!("no server span for {method} in the trace"));
        // The service's span continues the gateway's client span of that
        // call, which in turn descends from the gateway's request span.
        let client = by_id
            .get(&hex(&server.parent_span_id))
            .unwrap_or_else(|| panic!("the parent of {method} is not in the trace"));
        assert_eq!(client.kind, SpanKind::Client as i32, "{method}");
        assert_eq!(client.name, method);
        let mut ancestor = *client;
        while !ancestor.parent_span_id.is_empty() {
            ancestor = by_id[&hex(&ancestor.parent_span_id)];
        }
        assert_eq!(ancestor.span_id, root.span_id, "{method}");
    }

    // Service → service: the comment service's check of the article is a
    // child of the comment service's own request span.
    let spans = receiver.spans.lock().unwrap().clone();
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let check = spans
        .iter()
        .find(|s| {
            s.name == "/content.v1.ContentService/GetArticle" && s.kind == SpanKind::Server as i32
        })
        .expect("the content service's span of the article check");
    let client = by_id[&hex(&check.parent_span_id)];
    assert_eq!(client.kind, SpanKind::Client as i32);
    let caller = by_id[&hex(&client.parent_span_id)];
    assert_eq!(caller.name, "/comment.v1.CommentService/CreateComment");
    assert_eq!(caller.kind, SpanKind::Server as i32);
    let gateway = by_id[&hex(&by_id[&hex(&caller.parent_span_id)].parent_span_id)];
    assert_eq!(gateway.name, "POST /api/v1/articles/{id}/comments");
    assert!(
        [check, client, caller, gateway]
            .iter()
            .all(|s| s.trace_id == check.trace_id)
    );

    stack.stop().await;
    drop(telemetry);
}
