//! Comments in SQL. One query text serves SQLite and MySQL through `sqlx::Any`.

use std::collections::HashMap;

use kit::db::Queries;
use kit::metrics::Registry;
use kit::pagination::Page;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, QueryBuilder, Row};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub article_id: i64,
    pub author_id: i64,
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct CommentRepository {
    pool: AnyPool,
    queries: Queries,
}

impl CommentRepository {
    /// Counts its queries in `db_queries_total` on `registry`.
    pub fn new(pool: AnyPool, registry: &Registry) -> Self {
        Self {
            pool,
            queries: Queries::new(registry),
        }
    }

    /// The counter of this repository's queries.
    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Inserts a comment; returns once it is committed.
    pub async fn insert(
        &self,
        article_id: i64,
        author_id: i64,
        body: &str,
    ) -> Result<Comment, Error> {
        let created_at = kit::time::now_ms();
        let insert = sqlx::query(
            "INSERT INTO comments (article_id, author_id, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(article_id)
        .bind(author_id)
        .bind(body)
        .bind(created_at);
        self.queries.count("comment_insert");
        let id = kit::db::insert(&self.pool, insert).await?;
        Ok(Comment {
            id,
            article_id,
            author_id,
            body: body.to_owned(),
            created_at,
        })
    }

    /// One page of an article's comments, newest first, plus one extra row
    /// when another page follows (see [`Page::finish`]).
    pub async fn page(&self, article_id: i64, page: &Page) -> Result<Vec<Comment>, Error> {
        self.queries.count("comments_page");
        let rows = sqlx::query(
            "SELECT id, article_id, author_id, body, created_at FROM comments \
             WHERE article_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(article_id)
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(comment).collect()
    }

    /// Comment counts of `article_ids` in one query; articles without
    /// comments are absent.
    pub async fn counts(&self, article_ids: &[i64]) -> Result<HashMap<i64, i64>, Error> {
        if article_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut query = QueryBuilder::new(
            "SELECT article_id, COUNT(*) AS n FROM comments WHERE article_id IN (",
        );
        let mut list = query.separated(", ");
        for id in article_ids {
            list.push_bind(*id);
        }
        query.push(") GROUP BY article_id");
        self.queries.count("comment_counts");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("article_id")?, row.try_get("n")?)))
            .collect()
    }
}

fn comment(row: &AnyRow) -> Result<Comment, Error> {
    Ok(Comment {
        id: row.try_get("id")?,
        article_id: row.try_get("article_id")?,
        author_id: row.try_get("author_id")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}
