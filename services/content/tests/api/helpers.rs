use content::settings::{CONFIG_DIR, Settings};
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;
use tonic::transport::Channel;

pub struct TestApp {
    pub server: RunningServer,
    pub client: ContentServiceClient<Channel>,
    pub settings: Settings,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops the service and starts it again on the same database.
    pub async fn restart(&mut self) {
        let server = RunningServer::spawn(
            content::startup::build(self.settings.clone())
                .await
                .unwrap(),
        );
        let old = std::mem::replace(&mut self.server, server);
        old.stop().await;
        self.client = ContentServiceClient::connect(self.server.url())
            .await
            .unwrap();
    }

    /// SQL statements named `query` the service has run so far.
    pub async fn queries(&self, query: &str) -> f64 {
        self.queries_matching(&[("query", query)]).await
    }

    /// SQL statements of every kind the service has run so far.
    pub async fn all_queries(&self) -> f64 {
        self.queries_matching(&[]).await
    }

    async fn queries_matching(&self, labels: &[(&str, &str)]) -> f64 {
        let metrics = reqwest::get(format!("http://{}/metrics", self.server.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        testing::metric(&metrics, "db_queries_total", labels)
    }

    pub async fn create(&mut self, author_id: i64, title: &str) -> pb::Article {
        self.client
            .create_article(pb::CreateArticleRequest {
                author_id,
                title: title.into(),
                body: format!("body of {title}"),
            })
            .await
            .unwrap()
            .into_inner()
            .article
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
    let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(
        &mut settings.platform,
        &format!("/{}", testing::unique_name("content")),
    );
    settings.database.url = testing::database(backend, dir.path(), "content")
        .await
        .into();
    settings.cache = match backend {
        Backend::MySql => testing::redis_cache("content"),
        Backend::Sqlite => testing::local_cache(),
    };
    let server = RunningServer::spawn(content::startup::build(settings.clone()).await.unwrap());
    let client = ContentServiceClient::connect(server.url()).await.unwrap();
    TestApp {
        server,
        client,
        settings,
        _dir: dir,
    }
}
