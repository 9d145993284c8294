//! A database pool that is SQLite (zero setup) or MySQL/MariaDB, chosen by the
//! URL, with the service's migrations applied before it serves.
//!
//! Repositories use `sqlx::Any`, so one query text serves both backends;
//! migrations differ (DDL dialects do), so a service ships one directory per
//! backend and passes both migrators.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use crate::metrics::Registry;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `mysql://user:pass@host:3306/db`.
    /// Secret: it may carry a password, so it is never logged.
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/service.db"),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// The migrations of one service, one set per backend.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub mysql: &'static Migrator,
}

/// Which database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url must start with sqlite:// or mysql://")]
    UnsupportedUrl,
    #[error("cannot create the directory of the SQLite file {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the {backend:?} database: {source}")]
    Connect {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot configure the database: {0}")]
    Configure(sqlx::Error),
}

impl Backend {
    pub fn of(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Self::MySql)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }
}

/// Connects, prepares the backend and applies `migrations`.
pub async fn connect(
    settings: &DatabaseSettings,
    migrations: Migrations,
) -> Result<AnyPool, DbError> {
    sqlx::any::install_default_drivers();
    let url = settings.url.expose_secret();
    let backend = Backend::of(url)?;
    if backend == Backend::Sqlite {
        create_sqlite_dir(url)?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect(&sqlite_create_mode(url, backend))
        .await
        .map_err(|source| DbError::Connect { backend, source })?;
    match backend {
        Backend::Sqlite => {
            // WAL lets readers proceed during a write; the mode is stored in
            // the file, so setting it once here covers every connection.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(DbError::Configure)?;
            migrations.sqlite.run(&pool).await?;
        }
        Backend::MySql => migrations.mysql.run(&pool).await?,
    }
    tracing::info!(?backend, "database ready, migrations applied");
    Ok(pool)
}

/// Executes an `INSERT` and returns the id the database assigned.
///
/// `sqlx::Any` reports MySQL's insert id but not SQLite's (the SQLite Any
/// driver leaves `last_insert_id` empty), and `RETURNING` is not in MySQL
/// 8, so the SQLite id is read with `last_insert_rowid()` on the same
/// connection.
pub async fn insert(
    pool: &AnyPool,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<i64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let done = query.execute(&mut *conn).await?;
    match done.last_insert_id() {
        Some(id) => Ok(id),
        None => {
            sqlx::query_scalar("SELECT last_insert_rowid()")
                .fetch_one(&mut *conn)
                .await
        }
    }
}

/// `db_queries_total{query}`: statements sent to the database, by name.
/// Repositories count every query, so tests (and dashboards) can see what a
/// request really cost, e.g. that a cache hit cost none.
#[derive(Debug, Clone)]
pub struct Queries {
    counts: Family<QueryLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    query: &'static str,
}

impl Queries {
    pub fn new(registry: &Registry) -> Self {
        let counts = Family::default();
        registry.register(
            "db_queries",
            "SQL statements sent to the database, by query",
            counts.clone(),
        );
        Self { counts }
    }

    /// Counts one execution of `query`.
    pub fn count(&self, query: &'static str) {
        self.counts.get_or_create(&QueryLabels { query }).inc();
    }

    /// Executions of `query` so far.
    pub fn get(&self, query: &'static str) -> u64 {
        self.counts.get_or_create(&QueryLabels { query }).get()
    }
}

/// Exports `db_pool_connections{state="idle|in_use"}` for `pool`, read when
/// scraped.
pub fn export_pool(pool: &AnyPool, registry: &Registry) {
    registry.register(
        "db_pool_connections",
        "Open database connections, idle or in use",
        PoolGauge(pool.clone()),
    );
}

#[derive(Debug)]
struct PoolGauge(AnyPool);

impl EncodeMetric for PoolGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let idle = i64::try_from(self.0.num_idle()).unwrap_or(i64::MAX);
        let in_use = i64::from(self.0.size()) - idle;
        encoder
            .encode_family(&[("state", "idle")])?
            .encode_gauge(&idle)?;
        encoder
            .encode_family(&[("state", "in_use")])?
            .encode_gauge(&in_use.max(0))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// SQLite URLs get `mode=rwc` unless they say otherwise, so the file is
/// created on first start.
fn sqlite_create_mode(url: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

fn create_sqlite_dir(url: &str) -> Result<(), DbError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: path.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queries_and_pool_connections_are_exported() {
        let registry = Registry::new();
        let queries = Queries::new(&registry);
        queries.count("a");
        queries.count("a");
        let settings = DatabaseSettings {
            url: SecretString::from("sqlite::memory:"),
            ..Default::default()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .connect({
                sqlx::any::install_default_drivers();
                settings.url.expose_secret()
            })
            .await
            .unwrap();
        export_pool(&pool, &registry);
        let _held = pool.acquire().await.unwrap();
        let text = registry.encode();
        assert_eq!(queries.get("a"), 2);
        assert!(text.contains("db_queries_total{query=\"a\"} 2"), "{text}");
        assert!(
            text.contains("db_pool_connections{state=\"in_use\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn the_backend_follows_the_url_scheme() {
        assert_eq!(Backend::of("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of("mysql://root@localhost/x").unwrap(),
            Backend::MySql
        );
        assert!(Backend::of("postgres://x").is_err());
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(
            sqlite_create_mode("sqlite://a.db", Backend::Sqlite),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_mode("sqlite://a.db?mode=ro", Backend::Sqlite),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            sqlite_create_mode("mysql://x/y", Backend::MySql),
            "mysql://x/y"
        );
    }

    #[test]
    fn the_directory_of_a_sqlite_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/c.db");
        create_sqlite_dir(&format!("sqlite://{}", file.display())).unwrap();
        assert!(dir.path().join("a/b").is_dir());
    }
}
