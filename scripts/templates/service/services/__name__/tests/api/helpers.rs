use __name__::settings::{CONFIG_DIR, Settings};
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::__name__::v1 as pb;
use proto::__name__::v1::__name___service_client::__Name__ServiceClient;
use tonic::transport::Channel;

pub struct TestApp {
    pub server: RunningServer,
    pub client: __Name__ServiceClient<Channel>,
    pub prefix: String,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// SQL statements named `query` the service has run so far.
    pub async fn queries(&self, query: &str) -> f64 {
        let metrics = reqwest::get(format!("http://{}/metrics", self.server.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        testing::metric(&metrics, "db_queries_total", &[("query", query)])
    }

    pub async fn create(&mut self, text: &str) -> pb::__Name__ {
        self.client
            .create___name__(pb::Create__Name__Request {
                author_id: 1,
                text: text.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .__name__
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
    testing::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("/{}", testing::unique_name("__name__"));
    let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut settings.platform, &prefix);
    settings.database.url = testing::database(backend, dir.path(), "__name__")
        .await
        .into();
    settings.cache = match backend {
        Backend::MySql => testing::redis_cache("__name__"),
        Backend::Sqlite => testing::local_cache(),
    };
    let server = RunningServer::spawn(__name__::startup::build(settings).await.unwrap());
    let client = __Name__ServiceClient::connect(server.url()).await.unwrap();
    TestApp {
        server,
        client,
        prefix,
        _dir: dir,
    }
}
