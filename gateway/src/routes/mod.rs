//! The HTTP API. Each module holds the handlers of one resource; the OpenAPI
//! document is collected from their `#[utoipa::path]` annotations.

mod articles;
mod comments;
mod health;
mod responses;
mod sessions;
mod users;

// new-service: modules

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cache::{MicroCache, Store};
use crate::error::{ApiError, ErrorBody};
use crate::models::PageQuery;
use crate::state::AppState;

pub use health::readiness;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "newsroom API",
        description = "Articles, comments and accounts of a 7×24 news site.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Probes of the process (liveness, readiness), not API calls: the
/// dashboard leaves them out, so start-up readiness polls (503 until the
/// services are found) never show as API errors.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const PROBES: [&str; 2] = [HEALTHZ, READYZ];

/// The GET routes the micro-cache may answer (`cache.routes` names some of
/// them): anonymous reads whose answer depends only on the path and query.
pub const CACHEABLE: &[&str] = &[
    "/api/v1/articles",
    "/api/v1/articles/{id}",
    "/api/v1/articles/{id}/comments",
];

/// The API routes and the OpenAPI document describing them.
pub fn api(body_limit: usize, cache: &Store) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::create_user))
        .routes(routes!(users::get_user))
        .routes(routes!(sessions::create_session))
        .routes(routes!(articles::create_article, articles::list_articles))
        .routes(routes!(articles::get_article))
        .routes(routes!(comments::create_comment, comments::list_comments))
        // new-service: routes
        .split_for_parts();
    let mut openapi = openapi;
    responses::document(&mut openapi);
    let router = router
        .route(HEALTHZ, axum::routing::get(health::healthz))
        .route(READYZ, axum::routing::get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Around each route, after matching: it keys copies by the matched
        // template and answers hits before any extractor or handler runs.
        .layer(MicroCache::layer(cache))
        .layer(DefaultBodyLimit::max(body_limit));
    (router, openapi)
}

/// `?limit=&cursor=` as a list RPC's page size and token (the rules are
/// `kit::pagination`'s), checked here so a bad one costs no backend call.
pub(crate) fn page(query: PageQuery) -> Result<(i32, String), ApiError> {
    let size = kit::pagination::limit(query.limit).map_err(|e| ApiError::InvalidArgument(e.0))?;
    let token = match query.cursor {
        None => String::new(),
        // An empty `cursor=` is not "the first page": that is no cursor.
        Some(cursor) if kit::pagination::decode(&cursor).is_some() => cursor,
        Some(_) => {
            return Err(ApiError::InvalidArgument(
                "cursor is not a next_cursor this API issued".into(),
            ));
        }
    };
    // At most MAX_SIZE, so it fits.
    Ok((size as i32, token))
}

/// A path id, if it is one (ids are positive), before any backend call.
pub(crate) fn id(id: i64) -> Result<i64, ApiError> {
    kit::validate::positive("id", id).map_err(|e| ApiError::InvalidArgument(e.0))
}

/// The author of a write by `user`, after its rate limit. A token outlives
/// its user when the account is deleted: such a token gets 401, not a
/// write. When the user service cannot say, the write goes ahead without
/// the author in its answer, as any page does without an optional part.
pub(crate) async fn writer(
    state: &AppState,
    user: &crate::auth::AuthUser,
) -> Result<Option<crate::models::Author>, ApiError> {
    use crate::limits::{Class, Key};
    state.limits.check(Class::Write, Key::User(user.id)).await?;
    match state.backends.users([user.id]).await {
        Ok(users) => users
            .get(&user.id)
            .map(|u| Some(crate::models::Author::from_proto(u)))
            .ok_or_else(|| ApiError::Unauthenticated("the token's user no longer exists".into())),
        Err(_) => Ok(None),
    }
}

/// Parts of an answer a failed low-priority call leaves out.
pub(crate) const AUTHORS: &str = "authors";
pub(crate) const COMMENTS: &str = "comments";

/// The value of a call the page can do without; a failure is logged and
/// noted in `degraded` instead of failing the page.
pub(crate) fn optional<T>(
    result: Result<T, tonic::Status>,
    part: &'static str,
    degraded: &mut Vec<&'static str>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(status) => {
            // Every page fails the same way during an outage: one summary
            // line per interval, never one per page (the breaker logs its own
            // transitions; the answers say `degraded`).
            static LOG: kit::telemetry::LogEvery =
                kit::telemetry::LogEvery::new(std::time::Duration::from_secs(10));
            if let Some(suppressed) = LOG.check() {
                let open = crate::error::breaker_open(&status).is_some();
                tracing::warn!(part, code = ?status.code(), message = status.message(), breaker_open = open, suppressed, "degraded answers (one line per 10 s; suppressed = since the last line)");
            }
            if !degraded.contains(&part) {
                degraded.push(part);
            }
            None
        }
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::NotFound(format!("no route for {method} {path}"))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
