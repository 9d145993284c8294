//! Articles in SQL. One query text serves SQLite and MySQL through `sqlx::Any`.

use kit::db::Queries;
use kit::metrics::Registry;
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

/// What a page of the list holds of an article: its summary, not its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleSummary {
    pub id: i64,
    pub author_id: i64,
    pub title: String,
    pub summary: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ArticleRepository {
    pool: AnyPool,
    queries: Queries,
}

impl ArticleRepository {
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

    /// Inserts an article; returns once it is committed.
    pub async fn insert(&self, author_id: i64, title: &str, body: &str) -> Result<Article, Error> {
        let created_at = kit::time::now_ms();
        let insert = sqlx::query(
            "INSERT INTO articles (author_id, title, body, summary, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(author_id)
        .bind(title)
        .bind(body)
        .bind(crate::summary::summary(body))
        .bind(created_at);
        self.queries.count("article_insert");
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
        self.queries.count("article_by_id");
        let row =
            sqlx::query("SELECT id, author_id, title, body, created_at FROM articles WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(article).transpose()
    }

    /// One page, newest first, plus one extra row when another page follows
    /// (see [`Page::finish`]).
    pub async fn page(&self, page: &Page) -> Result<Vec<ArticleSummary>, Error> {
        self.queries.count("articles_page");
        let rows = sqlx::query(
            "SELECT id, author_id, title, summary, created_at FROM articles \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
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

fn summary(row: &AnyRow) -> Result<ArticleSummary, Error> {
    Ok(ArticleSummary {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary")?,
        created_at: row.try_get("created_at")?,
    })
}
