//! __Names__ in SQL. One query text serves SQLite and MySQL through `sqlx::Any`.

use kit::db::Queries;
use kit::metrics::Registry;
use kit::pagination::Page;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct __Name__ {
    pub id: i64,
    pub author_id: i64,
    pub text: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct __Name__Repository {
    pool: AnyPool,
    queries: Queries,
}

impl __Name__Repository {
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

    /// Inserts a __name__; returns once it is committed.
    pub async fn insert(&self, author_id: i64, text: &str) -> Result<__Name__, Error> {
        let created_at = kit::time::now_ms();
        let insert =
            sqlx::query("INSERT INTO __names__ (author_id, text, created_at) VALUES (?, ?, ?)")
                .bind(author_id)
                .bind(text)
                .bind(created_at);
        self.queries.count("__name___insert");
        let id = kit::db::insert(&self.pool, insert).await?;
        Ok(__Name__ {
            id,
            author_id,
            text: text.to_owned(),
            created_at,
        })
    }

    pub async fn by_id(&self, id: i64) -> Result<Option<__Name__>, Error> {
        self.queries.count("__name___by_id");
        let row = sqlx::query("SELECT id, author_id, text, created_at FROM __names__ WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(__name__).transpose()
    }

    /// One page, newest first, plus one extra row when another page follows
    /// (see [`Page::finish`]).
    pub async fn page(&self, page: &Page) -> Result<Vec<__Name__>, Error> {
        self.queries.count("__names___page");
        let rows = sqlx::query(
            "SELECT id, author_id, text, created_at FROM __names__ \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(__name__).collect()
    }
}

fn __name__(row: &AnyRow) -> Result<__Name__, Error> {
    Ok(__Name__ {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        text: row.try_get("text")?,
        created_at: row.try_get("created_at")?,
    })
}
