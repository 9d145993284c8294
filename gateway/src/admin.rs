//! The operator API on the admin port: see and steer every circuit breaker
//! during an incident, without a redeploy.
//!
//! `GET /admin/breakers` lists them; `POST /admin/breakers/{name}` with
//! `{"action": "force_open" | "force_closed" | "auto" | "reset"}` steers one
//! (`name` is the gRPC method, e.g. `comment.v1.CommentService/CountComments`).
//! Both need `Authorization: Bearer <admin_token>`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use kit::resilience::{BreakerSnapshot, Breakers, Force};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::JsonBody;

#[derive(Clone)]
struct AdminApi {
    breakers: Breakers,
    token: Option<Arc<SecretString>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    ForceOpen,
    ForceClosed,
    Auto,
    Reset,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Steer {
    action: Action,
}

pub fn router(breakers: Breakers, token: Option<SecretString>) -> Router {
    Router::new()
        .route("/admin/breakers", get(list))
        .route("/admin/breakers/{*name}", post(steer))
        .with_state(AdminApi {
            breakers,
            token: token.map(Arc::new),
        })
}

impl AdminApi {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Err(ApiError::Forbidden(
                "the admin API is disabled: set admin_token (APP_GATEWAY__ADMIN_TOKEN)".into(),
            ));
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("missing admin bearer token".into()))?;
        if constant_time_eq(given.as_bytes(), expected.expose_secret().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Unauthenticated("wrong admin token".into()))
        }
    }
}

async fn list(
    State(api): State<AdminApi>,
    headers: HeaderMap,
) -> Result<Json<Vec<BreakerSnapshot>>, ApiError> {
    api.authorize(&headers)?;
    Ok(Json(api.breakers.snapshot()))
}

async fn steer(
    State(api): State<AdminApi>,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Steer>,
) -> Result<Json<BreakerSnapshot>, ApiError> {
    api.authorize(&headers)?;
    let circuit = api
        .breakers
        .find(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no breaker named {name}")))?;
    match body.action {
        Action::ForceOpen => circuit.set_force(Force::Open),
        Action::ForceClosed => circuit.set_force(Force::Closed),
        Action::Auto => circuit.set_force(Force::Auto),
        Action::Reset => {
            circuit.set_force(Force::Auto);
            circuit.reset();
        }
    }
    api.breakers
        .snapshot()
        .into_iter()
        .find(|s| s.name == circuit.name())
        .map(Json)
        .ok_or_else(|| ApiError::Internal("breaker vanished".into()))
}

/// Compares without an early exit, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
