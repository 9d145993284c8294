use content::settings::{CONFIG_DIR, Settings};
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;
use tonic::transport::Channel;

pub struct TestApp {
    pub server: RunningServer,
    pub client: ContentServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn stop(self) {
        self.server.stop().await;
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

/// The service on MariaDB, as CI and production run it.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::MySql).await
}

/// The service on a fresh database of `backend`, a fresh etcd prefix and
/// free ports.
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
    let server = RunningServer::spawn(content::startup::build(settings).await.unwrap());
    let client = ContentServiceClient::connect(server.url()).await.unwrap();
    TestApp {
        server,
        client,
        _dir: dir,
    }
}
