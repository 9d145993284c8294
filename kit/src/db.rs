//! A database pool that is SQLite (zero setup) or MySQL/MariaDB, chosen by the
//! URL, with the service's migrations applied before it serves.
//!
//! Repositories use `sqlx::Any`, so one query text serves both backends;
//! migrations differ (DDL dialects do), so a service ships one directory per
//! backend and passes both migrators.
//!
//! # Migrations on MySQL/MariaDB
//!
//! Every replica of a service runs the migrations when it starts, so they
//! must run exactly once however many replicas start together:
//!
//! - **One migrator at a time.** Before migrating, an instance takes the
//!   named lock `kit.migrate.<database>` (`GET_LOCK`) on a connection of its
//!   own, and holds it until the migrations are done; the others wait (up to
//!   `database.migration_lock_timeout`), then find nothing left to do. sqlx's
//!   migrator takes a lock of its own, but with `GET_LOCK(name, -1)`, which
//!   MariaDB rejects (a negative timeout is "incorrect" there: it returns NULL
//!   at once) and sqlx ignores the result, so on MariaDB replicas raced.
//!   The lock belongs to the connection: an instance that dies, even by
//!   SIGKILL, releases it when the server sees the connection close.
//! - **A migration interrupted half-way is never a silent crash loop.** MySQL
//!   commits each DDL statement by itself, so a migration killed in the middle
//!   leaves some statements applied and its `_sqlx_migrations` row at
//!   `success = 0`. Holding the lock, an instance looks for such a row first.
//!   A migration whose leading comment lines include [`IDEMPOTENT_MARKER`]
//!   (every statement can run twice: `CREATE TABLE IF NOT EXISTS`, …) is
//!   re-run from the start. Any other stops the start with
//!   [`DbError::Interrupted`], whose message is the recovery procedure: the
//!   statements to check, and the exact `DELETE` to run once they are undone.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions, Connection};

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
    /// How long an instance waits while another one runs the migrations
    /// (MySQL only) before it gives up and exits.
    #[serde(with = "humantime_serde")]
    pub migration_lock_timeout: Duration,
    /// TLS to MySQL/MariaDB (needs the `kit/tls` build); SQLite has none.
    pub tls: DatabaseTls,
}

/// `database.tls`: how a MySQL connection is encrypted and verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseTls {
    /// `disabled`, `preferred` (TLS when the server offers it, the server
    /// not verified), `required` (TLS, not verified), `verify_ca` (TLS, the
    /// certificate signed by a trusted CA) or `verify_identity` (also for
    /// this host name). Unset: `verify_identity` if any file below is set,
    /// otherwise the URL's `ssl-mode` (sqlx's default is `preferred`).
    pub mode: Option<SslMode>,
    /// CA bundle (PEM) that signs the server's certificate; without it,
    /// Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for a server that requires one.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// MySQL's `ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    fn as_url(self) -> &'static str {
        match self {
            Self::Disabled => "DISABLED",
            Self::Preferred => "PREFERRED",
            Self::Required => "REQUIRED",
            Self::VerifyCa => "VERIFY_CA",
            Self::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/service.db"),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(3),
            migration_lock_timeout: Duration::from_secs(300),
            tls: DatabaseTls::default(),
        }
    }
}

impl DatabaseSettings {
    /// Checks the URL and the TLS settings without connecting: what
    /// [`connect`] would refuse before it tries.
    pub fn check(&self) -> Result<(), DbError> {
        self.connect_url().map(drop)
    }

    /// The backend, and the URL sqlx gets: SQLite's with `mode=rwc`,
    /// MySQL's with the TLS settings as `ssl-*` parameters.
    fn connect_url(&self) -> Result<(Backend, String), DbError> {
        let url = self.url.expose_secret();
        let backend = Backend::of(url)?;
        let url = match backend {
            Backend::Sqlite if self.tls != DatabaseTls::default() => {
                return Err(crate::tls::TlsError::NotTls {
                    what: "database.tls",
                    why: "database.url is SQLite",
                }
                .into());
            }
            Backend::Sqlite => sqlite_create_mode(url),
            Backend::MySql => mysql_tls_url(url, &self.tls)?,
        };
        Ok((backend, url))
    }
}

/// The migrations of one service, one directory per backend, embedded in the
/// binary by [`migrations!`](crate::migrations). Files follow sqlx's naming
/// (`<version>_<description>.sql`, `.up.sql`/`.down.sql`, a leading
/// `-- no-transaction`) and get sqlx's checksums, so databases migrated by
/// `sqlx::migrate!` or `sqlx migrate run` carry on unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static include_dir::Dir<'static>,
    pub mysql: &'static include_dir::Dir<'static>,
}

/// Embeds a service's `migrations/sqlite` and `migrations/mysql` (or the two
/// directories given, `$CARGO_MANIFEST_DIR`-relative paths allowed) as
/// [`Migrations`]. Like `sqlx::migrate!`, a file added to the directory is
/// picked up when the crate is next compiled; an edit to an embedded file
/// triggers that compile itself.
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::migrations!(
            "$CARGO_MANIFEST_DIR/migrations/sqlite",
            "$CARGO_MANIFEST_DIR/migrations/mysql"
        )
    };
    ($sqlite:tt, $mysql:tt) => {{
        // The expansion names `include_dir::…`; kit's copy, so a service
        // needs no dependency of its own.
        use $crate::db::__private::include_dir;
        $crate::db::Migrations {
            sqlite: &include_dir::include_dir!($sqlite),
            mysql: &include_dir::include_dir!($mysql),
        }
    }};
}

#[doc(hidden)]
pub mod __private {
    pub use include_dir;
}

impl Migrations {
    /// The migrator of `backend`, its migrations parsed as sqlx parses a
    /// migrations directory.
    pub fn migrator(&self, backend: Backend) -> Result<Migrator, DbError> {
        let dir = match backend {
            Backend::Sqlite => self.sqlite,
            Backend::MySql => self.mysql,
        };
        let mut migrations = Vec::new();
        for file in dir.files() {
            let name = file
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some((version, rest)) = name.split_once('_') else {
                continue;
            };
            if !rest.ends_with(".sql") {
                continue;
            }
            let bad =
                |why: &str| DbError::MigrationFile(format!("{}: {why}", file.path().display()));
            let version: i64 = version
                .parse()
                .map_err(|_| bad("expected an integer version before the first `_`"))?;
            let sql = file.contents_utf8().ok_or_else(|| bad("not UTF-8"))?;
            let kind = MigrationType::from_filename(rest);
            migrations.push(Migration::new(
                version,
                rest.trim_end_matches(kind.suffix())
                    .replace('_', " ")
                    .into(),
                kind,
                sqlx::SqlStr::from_static(sql),
                sql.starts_with("-- no-transaction"),
            ));
        }
        Ok(Migrator::with_migrations(migrations))
    }
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
    #[error("bad migration file {0}")]
    MigrationFile(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "another instance has been running the migrations for {0:?} (it holds the MySQL lock \
         `kit.migrate.<database>`); giving up. Raise database.migration_lock_timeout if \
         migrations take that long"
    )]
    MigrationLockTimeout(Duration),
    #[error("cannot take the migration lock: {0}")]
    MigrationLock(sqlx::Error),
    #[error("{0}")]
    Interrupted(Box<Interrupted>),
    #[error("cannot configure the database: {0}")]
    Configure(sqlx::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("database.url is not a valid URL: {0}")]
    Url(url::ParseError),
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
    let (backend, url) = settings.connect_url()?;
    if backend == Backend::Sqlite {
        create_sqlite_dir(&url)?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect(&url)
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
            migrations.migrator(backend)?.run(&pool).await?;
        }
        Backend::MySql => {
            migrate_mysql(&url, &migrations.migrator(backend)?, settings).await?;
        }
    }
    tracing::info!(?backend, "database ready, migrations applied");
    Ok(pool)
}

/// A leading comment line that declares a MySQL migration safe to run twice,
/// so that kit re-runs it after an interruption instead of stopping.
pub const IDEMPOTENT_MARKER: &str = "-- kit:idempotent";

/// The table where sqlx records applied migrations.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// A MySQL migration that started and never finished: the message is the
/// recovery procedure.
#[derive(Debug)]
pub struct Interrupted {
    pub version: i64,
    pub description: String,
    /// The migration's SQL, if this build still has that migration.
    pub sql: Option<String>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            version,
            description,
            sql,
        } = self;
        writeln!(
            f,
            "migration {version} ({description}) was interrupted half-way: `{MIGRATIONS_TABLE}` \
             records it with success = 0, and MySQL commits each DDL statement by itself, so \
             some of its statements may have taken effect. No migration runs until this is \
             resolved by hand:"
        )?;
        writeln!(
            f,
            "  1. check each statement of the migration (below) against the database \
             (SHOW TABLES, SHOW CREATE TABLE …) and undo those that took effect;"
        )?;
        writeln!(
            f,
            "  2. run: DELETE FROM `{MIGRATIONS_TABLE}` WHERE version = {version} AND success = 0;"
        )?;
        writeln!(
            f,
            "  3. start the service again: it applies the migration anew."
        )?;
        writeln!(
            f,
            "(Or finish the migration by hand and run: UPDATE `{MIGRATIONS_TABLE}` SET success = 1 \
             WHERE version = {version};)"
        )?;
        write!(
            f,
            "A migration that can run twice says so with a leading `{IDEMPOTENT_MARKER}` line \
             and is then re-run by itself."
        )?;
        match sql {
            Some(sql) => write!(
                f,
                "\nThe statements of migration {version}:\n{}",
                sql.trim_end()
            ),
            None => write!(f, "\nThis build does not contain migration {version}."),
        }
    }
}

/// Whether `sql` declares itself safe to run twice: [`IDEMPOTENT_MARKER`]
/// among the comment lines before the first statement.
fn is_idempotent(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .take_while(|line| line.is_empty() || line.starts_with("--"))
        .any(|line| line == IDEMPOTENT_MARKER)
}

/// Runs `migrator` while holding the database's migration lock on a
/// connection of its own, after dealing with an interrupted migration.
async fn migrate_mysql(
    url: &str,
    migrator: &Migrator,
    settings: &DatabaseSettings,
) -> Result<(), DbError> {
    // Not a pooled connection: closing it is what guarantees the lock is
    // gone, whatever happens below. Waiting for the lock and migrating are
    // slow by nature: sqlx's slow-statement warning would cry wolf.
    let options = sqlx::any::AnyConnectOptions::from_str(url)
        .map_err(DbError::MigrationLock)?
        .log_slow_statements(log::LevelFilter::Info, Duration::from_secs(1));
    let mut conn = sqlx::AnyConnection::connect_with(&options)
        .await
        .map_err(|source| DbError::Connect {
            backend: Backend::MySql,
            source,
        })?;
    let lock = "LEFT(CONCAT('kit.migrate.', DATABASE()), 64)";
    let taken = |wait: u64| {
        sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(GET_LOCK({lock}, {wait}) AS SIGNED)"
        )))
    };
    // MariaDB rejects negative timeouts (sqlx's own lock fails that way), so
    // the wait is always a positive number of seconds.
    let mut got = taken(0)
        .fetch_one(&mut conn)
        .await
        .map_err(DbError::MigrationLock)?;
    if got == Some(0) {
        tracing::info!(
            timeout = ?settings.migration_lock_timeout,
            "another instance is running the migrations; waiting for it"
        );
        got = taken(settings.migration_lock_timeout.as_secs().max(1))
            .fetch_one(&mut conn)
            .await
            .map_err(DbError::MigrationLock)?;
    }
    match got {
        Some(1) => {}
        Some(_) => {
            return Err(DbError::MigrationLockTimeout(
                settings.migration_lock_timeout,
            ));
        }
        None => {
            return Err(DbError::MigrationLock(sqlx::Error::Protocol(
                "GET_LOCK returned NULL".into(),
            )));
        }
    }
    resume_interrupted(&mut conn, migrator).await?;
    migrator.run(&mut conn).await?;
    // Closing the connection would release it too; this says so explicitly.
    sqlx::query(sqlx::AssertSqlSafe(format!("DO RELEASE_LOCK({lock})")))
        .execute(&mut conn)
        .await
        .map_err(DbError::MigrationLock)?;
    let _ = conn.close().await;
    Ok(())
}

/// Deals with a migration left at `success = 0`: forgets it so that it runs
/// again if it is idempotent, or stops with the recovery procedure.
async fn resume_interrupted(
    conn: &mut sqlx::AnyConnection,
    migrator: &Migrator,
) -> Result<(), DbError> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::Configure)?;
    if exists == 0 {
        return Ok(());
    }
    let failed: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, CAST(description AS CHAR) FROM `{MIGRATIONS_TABLE}` \
         WHERE success = 0 ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::Configure)?;
    for (version, description) in failed {
        let migration = migrator
            .iter()
            .find(|m| m.version == version && !m.migration_type.is_down_migration());
        let sql = migration.map(|m| m.sql.as_str().to_owned());
        if !sql.as_deref().is_some_and(is_idempotent) {
            return Err(DbError::Interrupted(Box::new(Interrupted {
                version,
                description,
                sql,
            })));
        }
        tracing::warn!(
            version,
            %description,
            "migration was interrupted half-way; it is idempotent, so it runs again"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM `{MIGRATIONS_TABLE}` WHERE version = ? AND success = 0"
        )))
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(DbError::Configure)?;
    }
    Ok(())
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
fn sqlite_create_mode(url: &str) -> String {
    if !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

/// The MySQL URL with `database.tls` added as sqlx's `ssl-*` parameters;
/// refuses TLS in a build without it, whether asked for by the settings or
/// by the URL itself.
fn mysql_tls_url(url: &str, tls: &DatabaseTls) -> Result<String, DbError> {
    const WHAT: &str = "database.tls";
    let mut parsed = url::Url::parse(url).map_err(DbError::Url)?;
    let files = crate::tls::TlsFiles {
        ca_file: tls.ca_file.clone(),
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
    };
    let mode = tls
        .mode
        .or(files.is_set().then_some(SslMode::VerifyIdentity));
    let url_wants_tls = parsed.query_pairs().any(|(key, value)| match &*key {
        "ssl-mode" | "sslmode" => !matches!(
            value.to_ascii_lowercase().as_str(),
            "disabled" | "preferred"
        ),
        "ssl-ca" | "sslca" | "ssl-cert" | "sslcert" | "ssl-key" | "sslkey" => true,
        _ => false,
    });
    let wants_tls = url_wants_tls
        || files.is_set()
        || mode.is_some_and(|m| !matches!(m, SslMode::Disabled | SslMode::Preferred));
    if !wants_tls {
        if let Some(mode) = mode {
            parsed
                .query_pairs_mut()
                .append_pair("ssl-mode", mode.as_url());
        }
        return Ok(parsed.into());
    }
    if files.is_set() {
        // Read now so a missing or half-set file fails the start; sqlx reads
        // them again for every new connection (a renewed certificate is
        // picked up without a restart).
        files.read(WHAT)?;
    } else if !crate::tls::BUILT {
        return Err(crate::tls::TlsError::NotBuilt { what: WHAT }.into());
    }
    let mut query = parsed.query_pairs_mut();
    if let Some(mode) = mode {
        query.append_pair("ssl-mode", mode.as_url());
    }
    for (key, path) in [
        ("ssl-ca", &files.ca_file),
        ("ssl-cert", &files.cert_file),
        ("ssl-key", &files.key_file),
    ] {
        if let Some(path) = path {
            query.append_pair(key, &path.to_string_lossy());
        }
    }
    drop(query);
    Ok(parsed.into())
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
    async fn embedded_migrations_are_the_ones_sqlx_reads_from_the_directory() {
        // Same versions, descriptions, checksums and transaction mode as
        // sqlx's own reading, so databases it migrated carry on unchanged.
        const EMBEDDED: Migrations = crate::migrations!(
            "$CARGO_MANIFEST_DIR/tests/migrations/idempotent",
            "$CARGO_MANIFEST_DIR/tests/migrations/manual"
        );
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrations");
        for (backend, name) in [(Backend::Sqlite, "idempotent"), (Backend::MySql, "manual")] {
            let ours = EMBEDDED.migrator(backend).unwrap();
            let theirs = Migrator::new(dir.join(name)).await.unwrap();
            let key = |m: &Migration| {
                (
                    m.version,
                    m.description.to_string(),
                    m.migration_type,
                    m.checksum.to_vec(),
                    m.no_tx,
                )
            };
            let ours: Vec<_> = ours.iter().map(key).collect();
            assert!(!ours.is_empty());
            assert_eq!(ours, theirs.iter().map(key).collect::<Vec<_>>());
        }
    }

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
    fn only_a_marker_before_the_first_statement_makes_a_migration_idempotent() {
        assert!(is_idempotent(
            "-- no-transaction\n-- kit:idempotent\nCREATE TABLE IF NOT EXISTS a (b INT);"
        ));
        assert!(!is_idempotent(
            "CREATE TABLE a (b INT);\n-- kit:idempotent\n"
        ));
        assert!(!is_idempotent(
            "-- kit:idempotently\nCREATE TABLE a (b INT);"
        ));
    }

    #[test]
    fn an_interrupted_migration_reads_as_its_recovery_steps() {
        let message = DbError::Interrupted(Box::new(Interrupted {
            version: 42,
            description: "add flags".into(),
            sql: Some("ALTER TABLE a ADD COLUMN b INT;\n".into()),
        }))
        .to_string();
        assert!(message.contains("migration 42 (add flags) was interrupted"));
        assert!(
            message.contains("DELETE FROM `_sqlx_migrations` WHERE version = 42 AND success = 0;")
        );
        assert!(
            message.ends_with("ALTER TABLE a ADD COLUMN b INT;"),
            "{message}"
        );
    }

    fn mysql(url: &str, tls: DatabaseTls) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(url),
            tls,
            ..Default::default()
        }
    }

    #[test]
    fn a_url_without_tls_settings_is_left_alone_in_any_build() {
        for url in ["mysql://u:p@db:3306/x", "mysql://db/x?ssl-mode=DISABLED"] {
            let (_, got) = mysql(url, DatabaseTls::default()).connect_url().unwrap();
            assert_eq!(got, url);
        }
    }

    #[test]
    fn tls_settings_on_sqlite_are_refused() {
        let settings = mysql(
            "sqlite://a.db",
            DatabaseTls {
                mode: Some(SslMode::Required),
                ..Default::default()
            },
        );
        assert!(settings.check().unwrap_err().to_string().contains("SQLite"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_settings_become_sqlx_ssl_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not parsed here").unwrap();
        let tls = DatabaseTls {
            ca_file: Some(ca.clone()),
            ..Default::default()
        };
        let (_, url) = mysql("mysql://u@db/x", tls).connect_url().unwrap();
        assert_eq!(
            url,
            format!(
                "mysql://u@db/x?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
                ca.display().to_string().replace('/', "%2F")
            )
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_lean_build_refuses_tls_asked_for_by_settings_or_url() {
        let by_mode = mysql(
            "mysql://u@db/x",
            DatabaseTls {
                mode: Some(SslMode::VerifyCa),
                ..Default::default()
            },
        );
        let by_url = mysql("mysql://u@db/x?sslmode=required", DatabaseTls::default());
        for settings in [by_mode, by_url] {
            let message = settings.check().unwrap_err().to_string();
            assert!(message.contains("`kit/tls`"), "{message}");
        }
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
            sqlite_create_mode("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_mode("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
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
