//! Articles in SQL. One query text serves SQLite and MySQL through `sqlx::Any`.

use kit::pagination::Page;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub id: i64,
    pub author_id: i64,
    pub title: String,
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ArticleRepository {
    pool: AnyPool,
}

impl ArticleRepository {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Inserts an article; returns once it is committed.
    pub async fn insert(&self, author_id: i64, title: &str, body: &str) -> Result<Article, Error> {
        let created_at = kit::time::now_ms();
        let insert = sqlx::query(
            "INSERT INTO articles (author_id, title, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(author_id)
        .bind(title)
        .bind(body)
        .bind(created_at);
        let id = kit::db::insert(&self.pool, insert).await?;
        Ok(Article {
            id,
            author_id,
            title: title.to_owned(),
            body: body.to_owned(),
            created_at,
        })
    }

    pub async fn by_id(&self, id: i64) -> Result<Option<Article>, Error> {
        let row =
            sqlx::query("SELECT id, author_id, title, body, created_at FROM articles WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(article).transpose()
    }

    /// One page, newest first, plus one extra row when another page follows
    /// (see [`Page::finish`]).
    pub async fn page(&self, page: &Page) -> Result<Vec<Article>, Error> {
        let rows = sqlx::query(
            "SELECT id, author_id, title, body, created_at FROM articles \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(article).collect()
    }
}

fn article(row: &AnyRow) -> Result<Article, Error> {
    Ok(Article {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}
