use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::readiness::Report;
use serde_json::Value;

use crate::state::AppState;

/// The process is alive (for liveness probes; never touches dependencies).
pub async fn healthz() -> &'static str {
    "ok"
}

/// The gateway can serve the article API (see `kit::readiness`).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let report = readiness(&state);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report.body))
}

/// Ready while discovery has listed etcd (or holds last-known endpoints),
/// every critical backend has an instance and shutdown has not begun;
/// optional backends' counts are in the report, not in the verdict.
pub fn readiness(state: &AppState) -> Report {
    let mut report = state.dependencies.check();
    let accepting = *state.accepting.borrow();
    report.ready &= accepting;
    report.body["shutting_down"] = (!accepting).into();
    if !report.ready {
        report.body["status"] = "not ready".into();
    }
    report
}
