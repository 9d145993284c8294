//! Helpers for integration tests against real infrastructure: etcd, MariaDB
//! and Redis. Each test gets its own etcd prefix and database so tests run in
//! parallel without seeing each other.
//!
//! The shared servers come from `make test` (`scripts/deps.sh`), which
//! starts them when they are not already running; their addresses can be
//! moved with `NEWSROOM_TEST_ETCD`, `NEWSROOM_TEST_MYSQL` and
//! `NEWSROOM_TEST_REDIS`. Tests that break etcd or Redis on purpose start a
//! private [`EtcdProcess`] or [`RedisProcess`] instead.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::PlatformSettings;
use crate::db::Backend;
use crate::server::GrpcServer;

/// The shared etcd for tests.
pub fn etcd_endpoint() -> String {
    std::env::var("NEWSROOM_TEST_ETCD").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
}

/// The MariaDB/MySQL server for tests, as a URL without a database.
pub fn mysql_server() -> String {
    std::env::var("NEWSROOM_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The shared Redis for tests; isolate with a [`unique_name`] key prefix.
pub fn redis_url() -> String {
    std::env::var("NEWSROOM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Cache settings on the shared Redis under a fresh key prefix.
pub fn redis_cache(kind: &str) -> crate::cache::CacheSettings {
    crate::cache::CacheSettings {
        redis_url: Some(redis_url().into()),
        prefix: format!("{}:", unique_name(kind)),
        ..Default::default()
    }
}

/// In-process cache settings.
pub fn local_cache() -> crate::cache::CacheSettings {
    crate::cache::CacheSettings::default()
}

/// A prefix no other test uses, for etcd keys and Redis keys.
pub fn unique_name(kind: &str) -> String {
    format!("t_{kind}_{}_{:08x}", std::process::id(), fastrand::u32(..))
}

/// Creates a fresh, empty MySQL database and returns its URL.
pub async fn mysql_database(kind: &str) -> String {
    let name = unique_name(kind);
    let server = mysql_server();
    let mut conn = sqlx::mysql::MySqlConnection::connect(&server)
        .await
        .unwrap_or_else(|e| {
            panic!("MariaDB at {server} is not reachable ({e}); run `make test`, which starts it")
        });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{server}/{name}")
}

/// A SQLite URL for a fresh file in `dir`.
pub fn sqlite_database(dir: &Path, kind: &str) -> String {
    format!("sqlite://{}/{kind}.db", dir.display())
}

/// A fresh database of `backend` (SQLite files go into `dir`).
pub async fn database(backend: Backend, dir: &Path, kind: &str) -> String {
    match backend {
        Backend::MySql => mysql_database(kind).await,
        Backend::Sqlite => sqlite_database(dir, kind),
    }
}

/// Points `platform` at the test etcd under `prefix`, on free ports, with no
/// shutdown propagation delay.
pub fn prepare_platform(platform: &mut PlatformSettings, prefix: &str) {
    platform.grpc.host = "127.0.0.1".into();
    platform.grpc.port = 0;
    platform.grpc.advertise_host = None;
    platform.admin.host = "127.0.0.1".into();
    platform.admin.port = 0;
    platform.discovery.endpoints = vec![etcd_endpoint()];
    platform.discovery.prefix = prefix.into();
    platform.shutdown.propagation_delay = Duration::ZERO;
}

/// A [`GrpcServer`] running in the background of a test.
pub struct RunningServer {
    pub grpc_addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), crate::server::ServerError>>,
}

impl RunningServer {
    pub fn spawn(server: GrpcServer) -> Self {
        let grpc_addr = server.local_addr();
        let admin_addr = server.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            grpc_addr,
            admin_addr,
            stop: Some(stop),
            task,
        }
    }

    /// `http://host:port` of the gRPC port, for `…Client::connect`.
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// Waits until the server reports SERVING, i.e. it is registered in etcd.
    pub async fn wait_until_serving(&self) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let channel = tonic::transport::Endpoint::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        for _ in 0..200 {
            let status = client
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{} never became SERVING", self.grpc_addr);
    }

    /// What SIGTERM does: runs the whole shutdown sequence.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

/// Logs for tests, once per test binary; `RUST_LOG` picks the level.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Instances of `service` registered under `prefix` in the shared etcd: a
/// process is ready once its key is there.
pub async fn registered_instances(prefix: &str, service: &str) -> usize {
    let Ok(mut client) = etcd_client::Client::connect([etcd_endpoint()], None).await else {
        return 0;
    };
    client
        .get(
            format!("{}/{service}/", prefix.trim_end_matches('/')),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .map(|r| r.kvs().len())
        .unwrap_or(0)
}

/// Waits (up to 10 s) until `expected` instances of `service` are registered
/// under `prefix` and returns how many there are: registration follows the
/// listener asynchronously, and a loaded CI machine can lag behind a test.
pub async fn await_registered(prefix: &str, service: &str, expected: usize) -> usize {
    let mut found = 0;
    for _ in 0..200 {
        found = registered_instances(prefix, service).await;
        if found == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}

/// A free TCP port on 127.0.0.1 (for processes that cannot be told port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of workspace binary `name`, built first if it is missing (when
/// only one package's tests were asked for).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", name, "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build {name}");
    }
    path
}

/// The sum of every sample of `name` in a Prometheus text exposition whose
/// labels include all of `labels`.
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// Input a client that skips the gateway may send: each must be answered
/// `INVALID_ARGUMENT` by the service, before any query runs. One list for
/// every service's tests, so each service is held to the same attacks.
pub mod hostile {
    /// Ids outside the positive int64 range.
    pub const IDS: [i64; 3] = [0, -1, i64::MIN];

    /// `page_size`s outside 0 (the default) to `pagination::MAX_SIZE`.
    pub const PAGE_SIZES: [i32; 4] = [
        -1,
        i32::MIN,
        crate::pagination::MAX_SIZE as i32 + 1,
        i32::MAX,
    ];

    /// Page tokens no list issues: garbage, the old `v1:` text format, the
    /// token of id -1, non-zero trailing bits, padding, and 1 MiB.
    pub fn page_tokens() -> Vec<String> {
        vec![
            "forged".into(),
            "djE6MTIz".into(),
            crate::pagination::encode(-1),
            "AAAAAAAAAAB".into(),
            "AAAAAAAAAAE=".into(),
            "A".repeat(1 << 20),
        ]
    }

    /// Values breaking a text rule of at most `max` characters ([`crate::validate::text`]):
    /// empty, white space only, one character too long, control characters,
    /// 1 MiB.
    pub fn texts(max: usize) -> Vec<String> {
        vec![
            String::new(),
            " \n\t\u{3000}".into(),
            "é".repeat(max + 1),
            "a\u{0}b".into(),
            "a\u{1b}[31m".into(),
            "x".repeat(1 << 20),
        ]
    }

    /// Batches of ids no batch call accepts: one id too many, a
    /// non-positive id among good ones, 100,000 ids.
    pub fn batches() -> Vec<Vec<i64>> {
        let max = crate::validate::MAX_BATCH as i64;
        vec![
            (1..=max + 1).collect(),
            vec![1, 0, 2],
            vec![i64::MIN],
            (1..=100_000).collect(),
        ]
    }
}

/// A private etcd server that a test may stop, restart or wipe.
pub struct EtcdProcess {
    child: Option<Child>,
    data: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl EtcdProcess {
    /// Starts etcd on free ports with a fresh data directory and waits until
    /// it answers.
    pub async fn start() -> Self {
        let mut etcd = Self {
            child: None,
            data: tempfile::tempdir().unwrap(),
            client_port: free_port(),
            peer_port: free_port(),
        };
        etcd.spawn().await;
        etcd
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn data_dir(&self) -> PathBuf {
        self.data.path().join("etcd")
    }

    async fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(self.data_dir())
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is not installed; run `make test`, which installs it");
        self.child = Some(child);
        self.wait_until_up().await;
    }

    async fn wait_until_up(&self) {
        for _ in 0..200 {
            if let Ok(mut client) = etcd_client::Client::connect([self.endpoint()], None).await
                && client.get("health-probe", None).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("etcd at {} did not come up", self.endpoint());
    }

    /// Kills etcd (SIGKILL); its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Starts etcd again on the same ports with all data lost.
    pub async fn restart_empty(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.data_dir());
        self.spawn().await;
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private Redis that a test may kill, never the shared one.
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
}

impl RedisProcess {
    /// Starts `redis-server` on a free port, without persistence, and waits
    /// until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed; run `make test`, which installs it");
        let redis = Self {
            child: Some(child),
            port,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not come up");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts that a binary's checked-in config files load into `T` for the
/// environments a deployment uses (`local` for make run, `production` for
/// the images): the test every binary's settings module runs.
pub fn assert_checked_in_configs_load<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    config_dir: &str,
) {
    for environment in ["local", "production"] {
        let loaded = crate::config::load_files::<T>(config_dir, environment);
        assert!(loaded.is_ok(), "{config_dir} {environment}: {loaded:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_the_matching_series() {
        let text = "# HELP x_total X\nx_total{method=\"a\",code=\"OK\"} 2\nx_total{method=\"a\",code=\"NOT_FOUND\"} 1\nx_total{method=\"b\",code=\"OK\"} 5\ny 7\n";
        assert_eq!(metric(text, "x_total", &[("method", "a")]), 3.0);
        assert_eq!(metric(text, "x_total", &[]), 8.0);
        assert_eq!(metric(text, "y", &[]), 7.0);
        assert_eq!(metric(text, "x_total", &[("method", "c")]), 0.0);
    }
}
