use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::content::v1::ListArticlesRequest;

use super::{AUTHORS, COMMENTS, optional};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::models::{
    Article, ArticleDetail, ArticleId, ArticlePage, ArticleSummary, Author, CreateArticle,
    PageQuery, comments_with_authors, next_cursor,
};
use crate::state::AppState;

/// Comments shown with a single article.
const LATEST_COMMENTS: i32 = 10;

/// Publish an article as the logged-in user.
#[utoipa::path(
    post,
    path = "/api/v1/articles",
    tag = "articles",
    request_body = CreateArticle,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = Article),
    )
)]
pub async fn create_article(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateArticle>,
) -> Result<(StatusCode, Json<Article>), ApiError> {
    let author = super::writer(&state, &user).await?;
    let mut article = state.backends.create_article(user.id, body).await?;
    article.author = author;
    article.comment_count = Some(0);
    Ok((StatusCode::CREATED, Json(article)))
}

/// The newest articles, with their authors and comment counts.
///
/// Whatever the page size, a page costs three backend calls: the page of
/// articles, then one batch of authors and one batch of counts in parallel.
/// Authors and counts are optional: when their service fails the page still
/// answers 200 and lists what it left out in `degraded`.
#[utoipa::path(
    get,
    path = "/api/v1/articles",
    tag = "articles",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of articles", body = ArticlePage),
    )
)]
pub async fn list_articles(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<ArticlePage>, ApiError> {
    let backends = &state.backends;
    let (page_size, page_token) = super::page(query)?;
    let page = backends
        .list_articles(ListArticlesRequest {
            page_size,
            page_token,
        })
        .await?;
    let mut items: Vec<ArticleSummary> = page
        .articles
        .into_iter()
        .map(ArticleSummary::from_proto)
        .collect();
    let mut degraded = Vec::new();
    if !items.is_empty() {
        let (users, counts) = tokio::join!(
            backends.users(items.iter().map(|a| a.author_id)),
            backends.comment_counts(items.iter().map(|a| a.id)),
        );
        let users = optional(users, AUTHORS, &mut degraded);
        let counts = optional(counts, COMMENTS, &mut degraded);
        for article in &mut items {
            if let Some(users) = &users {
                article.author = users.get(&article.author_id).map(Author::from_proto);
            }
            if let Some(counts) = &counts {
                article.comment_count = Some(counts.get(&article.id).copied().unwrap_or(0));
            }
        }
    }
    Ok(Json(ArticlePage {
        items,
        next_cursor: next_cursor(page.next_page_token),
        degraded,
    }))
}

/// One article with its author, comment count and latest comments.
/// Comments and authors are optional, as in the list.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{id}",
    tag = "articles",
    params(ArticleId),
    responses(
        (status = 200, description = "The article", body = ArticleDetail),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
pub async fn get_article(
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<ArticleDetail>, ApiError> {
    let id = super::id(id)?;
    let backends = &state.backends;
    let (article, comments, counts) = tokio::join!(
        backends.article(id),
        backends.latest_comments(id, LATEST_COMMENTS),
        backends.comment_counts([id]),
    );
    let article = article?;
    let mut degraded = Vec::new();
    let comments = optional(comments, COMMENTS, &mut degraded);
    let counts = optional(counts, COMMENTS, &mut degraded);
    let author_ids =
        std::iter::once(article.author_id).chain(comments.iter().flatten().map(|c| c.author_id));
    let users = optional(backends.users(author_ids).await, AUTHORS, &mut degraded);
    let users = users.unwrap_or_default();

    let mut article = Article::from_proto(article);
    article.author = users.get(&article.author_id).map(Author::from_proto);
    article.comment_count = counts.map(|c| c.get(&id).copied().unwrap_or(0));
    Ok(Json(ArticleDetail {
        article,
        comments: comments_with_authors(comments.unwrap_or_default(), &users),
        degraded,
    }))
}
