//! The JSON the API speaks. These types are the public contract (and the
//! OpenAPI schemas); the gRPC messages behind them may change freely.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{comment::v1 as comment_pb, content::v1 as content_pb, user::v1 as user_pb};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// The largest body a valid request can have: an article of the longest
/// title and body, every character 4 bytes of UTF-8 (JSON escapes of quotes,
/// tabs and line breaks take 2), plus 1 KiB for the JSON around them. The
/// gateway's body limit may not be smaller (`Settings::validate`). A client
/// that escapes every non-ASCII character as `\uXXXX` (6–12 bytes) can
/// still go past it; UTF-8 is what JSON is sent as.
pub const LARGEST_VALID_BODY: usize =
    4 * (kit::validate::TITLE_MAX + kit::validate::ARTICLE_BODY_MAX) + 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(schema_with = schema::username)]
    pub username: String,
    #[schema(schema_with = schema::password)]
    pub password: String,
    #[serde(default)]
    #[schema(schema_with = schema::display_name)]
    pub display_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    #[schema(schema_with = schema::username)]
    pub username: String,
    #[schema(schema_with = schema::password)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// RFC 3339.
    #[schema(example = "2026-11-25T18:00:00Z")]
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A user as shown next to their articles and comments.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArticle {
    #[schema(schema_with = schema::title)]
    pub title: String,
    #[schema(schema_with = schema::article_body)]
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Article {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
    pub author_id: i64,
    pub author: Option<Author>,
    pub comment_count: Option<i64>,
}

/// An article as a list shows it: its summary instead of its body, so a
/// page's size is bounded whatever the articles' length.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleSummary {
    pub id: i64,
    pub title: String,
    /// At most 280 characters of the body, ending in "…" when cut; the whole
    /// body is at `GET /api/v1/articles/{id}`.
    pub summary: String,
    /// RFC 3339.
    pub created_at: String,
    pub author_id: i64,
    pub author: Option<Author>,
    pub comment_count: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticlePage {
    pub items: Vec<ArticleSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Parts left out because a low-priority service failed: `authors`
    /// (then only `author_id` is set) or `comments` (no `comment_count`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleDetail {
    #[serde(flatten)]
    pub article: Article,
    /// The newest comments, newest first.
    pub comments: Vec<Comment>,
    /// Parts left out because a low-priority service failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<&'static str>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    #[schema(schema_with = schema::comment_body)]
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub article_id: i64,
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
    pub author_id: i64,
    pub author: Option<Author>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentPage {
    pub items: Vec<Comment>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// `authors` when the user service failed (only `author_id` is set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<&'static str>,
}

/// `?limit=&cursor=` of list endpoints (parameters in the document:
/// `schema::page_params`).
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl IntoParams for PageQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        schema::page_params()
    }
}

/// `{id}` of `/users/{id}`.
pub struct UserId;

impl IntoParams for UserId {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![schema::path_id("User id")]
    }
}

/// `{id}` of `/articles/{id}…`.
pub struct ArticleId;

impl IntoParams for ArticleId {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![schema::path_id("Article id")]
    }
}

impl User {
    pub fn from_proto(user: user_pb::User) -> Self {
        Self {
            id: user.id,
            created_at: rfc3339(user.created_at),
            username: user.username,
            display_name: user.display_name,
        }
    }
}

impl Author {
    pub fn from_proto(user: &user_pb::User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

impl Article {
    pub fn from_proto(article: content_pb::Article) -> Self {
        Self {
            id: article.id,
            title: article.title,
            body: article.body,
            created_at: rfc3339(article.created_at),
            author_id: article.author_id,
            author: None,
            comment_count: None,
        }
    }
}

impl ArticleSummary {
    pub fn from_proto(article: content_pb::ArticleSummary) -> Self {
        Self {
            id: article.id,
            title: article.title,
            summary: article.summary,
            created_at: rfc3339(article.created_at),
            author_id: article.author_id,
            author: None,
            comment_count: None,
        }
    }
}

impl Comment {
    pub fn from_proto(comment: comment_pb::Comment) -> Self {
        Self {
            id: comment.id,
            article_id: comment.article_id,
            body: comment.body,
            created_at: rfc3339(comment.created_at),
            author_id: comment.author_id,
            author: None,
        }
    }
}

/// `comments` with their authors filled in from `users`.
pub fn comments_with_authors(
    comments: Vec<comment_pb::Comment>,
    users: &HashMap<i64, user_pb::User>,
) -> Vec<Comment> {
    comments
        .into_iter()
        .map(|c| {
            let mut comment = Comment::from_proto(c);
            comment.author = users.get(&comment.author_id).map(Author::from_proto);
            comment
        })
        .collect()
}

/// An empty cursor from a service means "no next page".
pub fn next_cursor(token: String) -> Option<String> {
    (!token.is_empty()).then_some(token)
}

pub fn rfc3339_of(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

pub(crate) fn rfc3339(timestamp: Option<proto::Timestamp>) -> String {
    let t = timestamp.unwrap_or_default();
    let since_epoch = Duration::new(
        t.seconds.max(0) as u64,
        t.nanos.clamp(0, 999_999_999) as u32,
    );
    rfc3339_of(UNIX_EPOCH + since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339_with_milliseconds() {
        let t = proto::Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        };
        assert_eq!(rfc3339(Some(t)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(None), "1970-01-01T00:00:00.000Z");
    }
}
