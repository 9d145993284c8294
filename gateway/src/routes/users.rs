use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams};
use crate::limits::{Class, ClientIp, Key};
use crate::models::{CreateUser, User, UserId};
use crate::state::AppState;

/// Register an account.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 409, description = "The username is taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    state.limits.check(Class::SignUp, Key::Ip(ip)).await?;
    let user = state.backends.create_user(body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Fetch one user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(UserId),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.backends.user(super::id(id)?).await?))
}
