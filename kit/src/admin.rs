//! The admin HTTP port every process runs beside its main port: Prometheus
//! scrapes `/metrics`, Kubernetes probes `/healthz` and `/readyz`. Keeping it
//! off the main port means a scrape or probe never competes with user traffic
//! for the main port's limits, and network policies can expose it separately.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Registry;
use crate::readiness::Report;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    pub host: String,
    /// 0 picks a free port (tests); deployments set a fixed one to scrape.
    pub port: u16,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
        }
    }
}

impl AdminSettings {
    pub async fn bind(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind((self.host.as_str(), self.port)).await
    }
}

/// Answers whether the process should get traffic now, with a report.
pub type Readiness = Arc<dyn Fn() -> Report + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    ready: Readiness,
}

/// Readiness that follows a watch channel.
pub fn follow(ready: watch::Receiver<bool>) -> Readiness {
    Arc::new(move || verdict(*ready.borrow()))
}

/// A report that says only ready or not.
pub fn verdict(ready: bool) -> Report {
    Report {
        ready,
        body: serde_json::json!({ "status": if ready { "ready" } else { "not ready" } }),
    }
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (it should get
/// traffic). Callers merge their own admin routes into it.
pub fn router(registry: Registry, ready: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { registry, ready })
}

/// OpenMetrics for scrapers that ask for it (Prometheus does); the classic
/// text format (0.0.4) for everything else: curl, `promtool check metrics`,
/// older agents.
async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = state.registry.encode();
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::to_text_format(&text),
        )
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let report = (state.ready)();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report.body))
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
