use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// The process is alive (for liveness probes; never touches dependencies).
pub async fn healthz() -> &'static str {
    "ok"
}

/// The gateway can serve: discovery has listed etcd, etcd has been heard from
/// recently enough, and every service has at least one live instance.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (ready, body) = readiness(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Whether the gateway is ready, and a report of why (or why not).
pub fn readiness(state: &AppState) -> (bool, Value) {
    let resolver = &state.resolver;
    let etcd_ok = resolver.has_synced()
        && (resolver.is_connected()
            || resolver
                .since_last_contact()
                .is_some_and(|d| d < state.readiness.etcd_stale_after));
    let services: serde_json::Map<String, Value> = state
        .services
        .all()
        .iter()
        .map(|name| ((*name).to_owned(), json!(resolver.endpoints(name).len())))
        .collect();
    let all_present = services.values().all(|n| n.as_u64().unwrap_or(0) > 0);
    let accepting = *state.accepting.borrow();
    let etcd = match (resolver.has_synced(), resolver.is_connected()) {
        (false, _) => "never listed".to_owned(),
        (true, true) => "connected".to_owned(),
        (true, false) => format!(
            "unreachable for {}s, serving last known endpoints",
            resolver.since_last_contact().map_or(0, |d| d.as_secs())
        ),
    };
    let ready = etcd_ok && all_present && accepting;
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "shutting_down": !accepting,
        "etcd": etcd,
        "instances": services,
    });
    (ready, body)
}
