use kit::cache::CacheSettings;
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::user::v1::user_service_client::UserServiceClient;
use tonic::transport::Channel;
use user::password::PasswordSettings;
use user::settings::{CONFIG_DIR, Settings};

pub struct TestApp {
    pub server: RunningServer,
    pub client: UserServiceClient<Channel>,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// SQL statements named `query` the service has run so far.
    pub async fn queries(&self, query: &str) -> f64 {
        testing::metric(
            &self.metrics().await,
            "db_queries_total",
            &[("query", query)],
        )
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.server.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The service on MariaDB and Redis, as CI and production run it.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::MySql).await
}

/// The service on a fresh database of `backend`, a fresh etcd prefix and
/// free ports; on Redis with MariaDB, in-process cache with SQLite.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    let cache = match backend {
        Backend::MySql => testing::redis_cache("user"),
        Backend::Sqlite => testing::local_cache(),
    };
    spawn_app_with(backend, cache).await
}

pub async fn spawn_app_with(backend: Backend, cache: CacheSettings) -> TestApp {
    testing::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(
        &mut settings.platform,
        &format!("/{}", testing::unique_name("user")),
    );
    let database_url = testing::database(backend, dir.path(), "user").await;
    settings.database.url = database_url.clone().into();
    settings.cache = cache;
    // Cheap hashing: these tests check behaviour, not cost parameters.
    settings.password = PasswordSettings {
        memory_kib: 64,
        iterations: 1,
        max_concurrent: 0,
    };
    let server = RunningServer::spawn(user::startup::build(settings).await.unwrap());
    let client = UserServiceClient::connect(server.url()).await.unwrap();
    TestApp {
        server,
        client,
        database_url,
        _dir: dir,
    }
}
