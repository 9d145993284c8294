//! The skeleton's canned data. `loadgen seed` writes the same text through
//! the real API, so both answer article pages of the same size.

use std::collections::HashMap;

use proto::Timestamp;
use proto::comment::v1::Comment;
use proto::content::v1::{Article, ArticleSummary};
use proto::user::v1::User;

/// Articles the skeleton serves (the largest page is 100).
pub const ARTICLES: i64 = 100;
/// Distinct authors among them.
pub const AUTHORS: i64 = 5;

pub const BODY: &str = "Policy makers kept the benchmark rate unchanged on Tuesday, citing cooling \
inflation and a labour market that is loosening only slowly. Markets had priced in the decision, \
and government bond yields barely moved after the announcement. In the statement, the committee \
said it would keep watching incoming data before deciding on the next step, while two members \
voted for an immediate cut. Analysts now expect the first reduction in the spring, when the \
next set of forecasts is published.";

pub fn title(n: i64) -> String {
    format!("Central bank holds rates steady, part {n}")
}

pub fn username(n: i64) -> String {
    format!("author{n}")
}

pub fn display_name(n: i64) -> String {
    format!("Staff Writer {n}")
}

/// When the canned data was "written": a fixed instant.
const CREATED: Timestamp = Timestamp {
    seconds: 1_795_000_000,
    nanos: 123_000_000,
};

/// Newest first, like the content service; ids `ARTICLES..=1`.
pub fn articles() -> Vec<Article> {
    (1..=ARTICLES)
        .rev()
        .map(|id| Article {
            id,
            author_id: id % AUTHORS + 1,
            title: title(id),
            body: BODY.to_owned(),
            created_at: Some(CREATED),
        })
        .collect()
}

/// What the list shows of each article: the content service's summary of
/// [`BODY`] (280 characters, "…" when cut), so the skeleton's page has the
/// platform's size.
pub fn summaries() -> Vec<ArticleSummary> {
    let cut: String = BODY.chars().take(279).collect();
    let summary = format!("{}…", cut.trim_end());
    articles()
        .into_iter()
        .map(|a| ArticleSummary {
            id: a.id,
            author_id: a.author_id,
            title: a.title,
            summary: summary.clone(),
            created_at: a.created_at,
        })
        .collect()
}

pub fn users() -> HashMap<i64, User> {
    (1..=AUTHORS)
        .map(|id| {
            let user = User {
                id,
                username: username(id),
                display_name: display_name(id),
                created_at: Some(CREATED),
            };
            (id, user)
        })
        .collect()
}

/// A plausible comment count without storage.
pub fn comment_count(article_id: i64) -> i64 {
    article_id % 7
}

/// A comment as the comment service answers a write.
pub fn comment(id: i64, article_id: i64, author_id: i64, body: String) -> Comment {
    Comment {
        id,
        article_id,
        author_id,
        body,
        created_at: Some(CREATED),
    }
}

/// The latest comments of an article: two, as `loadgen seed` writes to
/// the articles it comments on.
pub fn comments(article_id: i64, page_size: i32) -> Vec<Comment> {
    (1..=2.min(page_size.max(0) as i64))
        .map(|n| {
            let body = format!("Comment {n}: a sensible decision.");
            comment(article_id * 10 + n, article_id, n % AUTHORS + 1, body)
        })
        .collect()
}
