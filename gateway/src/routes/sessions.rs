use axum::Json;
use axum::extract::State;

use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::limits::{Class, ClientIp, Key};
use crate::models::{CreateSession, Session, rfc3339_of};
use crate::state::AppState;

/// Log in: trade a username and password for a bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "sessions",
    request_body = CreateSession,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 401, description = "Wrong username or password (a malformed one included: the answer never says which part was wrong)", body = ErrorBody),
    )
)]
pub async fn create_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<CreateSession>,
) -> Result<Json<Session>, ApiError> {
    state.limits.check(Class::Login, Key::Ip(ip)).await?;
    let user = state.backends.authenticate(body).await?;
    let (token, expires) = state.tokens.issue(user.id, &user.username)?;
    Ok(Json(Session {
        token,
        expires_at: rfc3339_of(expires),
    }))
}
