use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::comment::v1::ListCommentsRequest;
use proto::content::v1::{CreateArticleRequest, GetArticleRequest, ListArticlesRequest};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::models::{
    Article, ArticleDetail, ArticlePage, Author, CreateArticle, PageQuery, comments_with_authors,
    next_cursor,
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
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
    )
)]
pub async fn create_article(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateArticle>,
) -> Result<(StatusCode, Json<Article>), ApiError> {
    let article = state
        .backends
        .content
        .clone()
        .create_article(CreateArticleRequest {
            author_id: user.id,
            title: body.title,
            body: body.body,
        })
        .await?
        .into_inner()
        .article
        .ok_or_else(|| ApiError::Internal("CreateArticle answered without an article".into()))?;
    let mut article = Article::from_proto(article);
    article.author = state
        .backends
        .users([user.id])
        .await
        .ok()
        .and_then(|users| users.get(&user.id).map(Author::from_proto));
    article.comment_count = Some(0);
    Ok((StatusCode::CREATED, Json(article)))
}

/// The newest articles, with their authors and comment counts.
///
/// Whatever the page size, a page costs three backend calls: the page of
/// articles, then one batch of authors and one batch of counts in parallel.
#[utoipa::path(
    get,
    path = "/api/v1/articles",
    tag = "articles",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of articles", body = ArticlePage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub async fn list_articles(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<ArticlePage>, ApiError> {
    let page = state
        .backends
        .content
        .clone()
        .list_articles(ListArticlesRequest {
            page_size: page_size(query.limit)?,
            page_token: query.cursor.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut items: Vec<Article> = page.articles.into_iter().map(Article::from_proto).collect();
    if !items.is_empty() {
        let backends = &state.backends;
        let (users, counts) = tokio::try_join!(
            backends.users(items.iter().map(|a| a.author_id)),
            backends.comment_counts(items.iter().map(|a| a.id)),
        )?;
        for article in &mut items {
            article.author = users.get(&article.author_id).map(Author::from_proto);
            article.comment_count = Some(counts.get(&article.id).copied().unwrap_or(0));
        }
    }
    Ok(Json(ArticlePage {
        items,
        next_cursor: next_cursor(page.next_page_token),
    }))
}

/// One article with its author, comment count and latest comments.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{id}",
    tag = "articles",
    params(("id" = i64, Path, description = "Article id")),
    responses(
        (status = 200, description = "The article", body = ArticleDetail),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
pub async fn get_article(
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<ArticleDetail>, ApiError> {
    let backends = &state.backends;
    let (article, comments, counts) = tokio::try_join!(
        async {
            backends
                .content
                .clone()
                .get_article(GetArticleRequest { id })
                .await
        },
        async {
            backends
                .comment
                .clone()
                .list_comments(ListCommentsRequest {
                    article_id: id,
                    page_size: LATEST_COMMENTS,
                    page_token: String::new(),
                })
                .await
        },
        backends.comment_counts([id]),
    )?;
    let article = article
        .into_inner()
        .article
        .ok_or_else(|| ApiError::Internal("GetArticle answered without an article".into()))?;
    let comments = comments.into_inner().comments;
    let users = backends
        .users(std::iter::once(article.author_id).chain(comments.iter().map(|c| c.author_id)))
        .await?;
    let mut article = Article::from_proto(article);
    article.author = users.get(&article.author_id).map(Author::from_proto);
    article.comment_count = Some(counts.get(&id).copied().unwrap_or(0));
    Ok(Json(ArticleDetail {
        article,
        comments: comments_with_authors(comments, &users),
    }))
}

/// `limit` as a page size: 1–100, default 20.
pub fn page_size(limit: Option<u32>) -> Result<i32, ApiError> {
    match limit {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n as i32),
        Some(n) => Err(ApiError::InvalidArgument(format!(
            "limit must be between 1 and 100, got {n}"
        ))),
    }
}
