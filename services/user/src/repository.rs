//! Users in SQL. One query text serves SQLite and MySQL through `sqlx::Any`.

use kit::db::Queries;
use kit::metrics::Registry;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, QueryBuilder, Row};

use crate::domain::{DisplayName, Username};
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A user with the hash to check a password against; never leaves the service.
#[derive(Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

const COLUMNS: &str = "id, username, display_name, created_at";

#[derive(Debug, Clone)]
pub struct UserRepository {
    pool: AnyPool,
    queries: Queries,
}

impl UserRepository {
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

    /// Inserts a user; a taken username (also under a concurrent race) is
    /// [`Error::UsernameTaken`], decided by the unique index.
    pub async fn insert(
        &self,
        username: &Username,
        display_name: &DisplayName,
        password_hash: &str,
    ) -> Result<User, Error> {
        let created_at = kit::time::now_ms();
        let insert = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(username.as_str())
        .bind(display_name.as_str())
        .bind(password_hash)
        .bind(created_at);
        self.queries.count("user_insert");
        let id = kit::db::insert(&self.pool, insert)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    Error::UsernameTaken(username.as_str().to_owned())
                }
                other => Error::Database(other),
            })?;
        Ok(User {
            id,
            username: username.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            created_at,
        })
    }

    pub async fn by_id(&self, id: i64) -> Result<Option<User>, Error> {
        self.queries.count("user_by_id");
        let row =
            sqlx::query("SELECT id, username, display_name, created_at FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn credentials(&self, username: &Username) -> Result<Option<Credentials>, Error> {
        self.queries.count("user_credentials");
        let row = sqlx::query(
            "SELECT id, username, display_name, created_at, password_hash FROM users WHERE username = ?",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Credentials {
                user: user(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// The users among `ids` that exist, in one query.
    pub async fn by_ids(&self, ids: &[i64]) -> Result<Vec<User>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM users WHERE id IN ("));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        self.queries.count("users_by_ids");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(user).collect()
    }
}

fn user(row: &AnyRow) -> Result<User, Error> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
    })
}
