//! The operator API on the admin port: see and steer every circuit breaker
//! during an incident, without a redeploy.
//!
//! `GET /admin/breakers` lists them; `POST /admin/breakers/{name}` with
//! `{"action": "force_open" | "force_closed" | "auto" | "reset"}` steers one
//! (`name` is the gRPC method, e.g. `comment.v1.CommentService/CountComments`).
//!
//! Every gateway admin route (this API and the dashboard) needs the admin
//! credential, checked by [`require_token`]: `Authorization: Bearer
//! <admin_token>`, or HTTP Basic with the token as password, so a browser
//! can open the dashboard through its own login prompt.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use kit::resilience::{BreakerSnapshot, Breakers, Force};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::JsonBody;

#[derive(Clone)]
struct AdminApi {
    breakers: Breakers,
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

/// The breaker API. Mount it behind [`require_token`].
pub fn router(breakers: Breakers) -> Router {
    Router::new()
        .route("/admin/breakers", get(list))
        .route("/admin/breakers/{*name}", post(steer))
        .with_state(AdminApi { breakers })
}

/// Puts every route of `routes` behind the admin credential.
pub fn require_token(routes: Router, token: Option<SecretString>) -> Router {
    routes.route_layer(axum::middleware::from_fn_with_state(
        token.map(Arc::new),
        check_token,
    ))
}

async fn check_token(
    State(token): State<Option<Arc<SecretString>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = token else {
        return ApiError::Forbidden(
            "the admin surfaces are disabled: set admin_token (APP_GATEWAY__ADMIN_TOKEN)".into(),
        )
        .into_response();
    };
    if presented(request.headers())
        .is_some_and(|given| bool::from(given.ct_eq(expected.expose_secret().as_bytes())))
    {
        return next.run(request).await;
    }
    let mut response = ApiError::Unauthenticated("the admin credential is missing or wrong".into())
        .into_response();
    // Basic first, so a browser asks for it; Bearer for API clients.
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"newsroom admin\", charset=\"UTF-8\""),
    );
    headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The token the request presents: a Bearer token, or the password of
/// HTTP Basic (any user name).
fn presented(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

async fn list(State(api): State<AdminApi>) -> Json<Vec<BreakerSnapshot>> {
    Json(api.breakers.snapshot())
}

async fn steer(
    State(api): State<AdminApi>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Steer>,
) -> Result<Json<BreakerSnapshot>, ApiError> {
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
