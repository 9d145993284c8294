use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::comment::v1::ListCommentsRequest;

use super::{AUTHORS, optional};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::models::{
    ArticleId, Comment, CommentPage, CreateComment, PageQuery, comments_with_authors, next_cursor,
};
use crate::state::AppState;

/// Comment on an article as the logged-in user.
#[utoipa::path(
    post,
    path = "/api/v1/articles/{id}/comments",
    tag = "comments",
    params(ArticleId),
    request_body = CreateComment,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Posted", body = Comment),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
pub async fn create_comment(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(article_id): PathParams<i64>,
    JsonBody(body): JsonBody<CreateComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    let article_id = super::id(article_id)?;
    let author = super::writer(&state, &user).await?;
    let mut comment = state
        .backends
        .create_comment(article_id, user.id, body)
        .await?;
    comment.author = author;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// An article's comments, newest first, with their authors.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{id}/comments",
    tag = "comments",
    params(ArticleId, PageQuery),
    responses(
        (status = 200, description = "A page of comments (none for an unknown article)", body = CommentPage),
    )
)]
pub async fn list_comments(
    State(state): State<AppState>,
    PathParams(article_id): PathParams<i64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<CommentPage>, ApiError> {
    let article_id = super::id(article_id)?;
    let (page_size, page_token) = super::page(query)?;
    let page = state
        .backends
        .list_comments(ListCommentsRequest {
            article_id,
            page_size,
            page_token,
        })
        .await?;
    let mut degraded = Vec::new();
    let users = state
        .backends
        .users(page.comments.iter().map(|c| c.author_id))
        .await;
    let users = optional(users, AUTHORS, &mut degraded).unwrap_or_default();
    Ok(Json(CommentPage {
        items: comments_with_authors(page.comments, &users),
        next_cursor: next_cursor(page.next_page_token),
        degraded,
    }))
}
