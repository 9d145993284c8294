use comment::settings::{CONFIG_DIR, Settings};
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::comment::v1 as pb;
use proto::comment::v1::comment_service_client::CommentServiceClient;
use proto::content::v1::CreateArticleRequest;
use proto::content::v1::content_service_client::ContentServiceClient;
use tonic::transport::Channel;

pub struct TestApp {
    pub server: RunningServer,
    pub client: CommentServiceClient<Channel>,
    /// The content service this one checks articles with, on the same prefix.
    pub content: Option<RunningServer>,
    pub content_client: ContentServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// SQL statements named `query` the comment service has run so far.
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

    pub async fn stop(self) {
        self.server.stop().await;
        if let Some(content) = self.content {
            content.stop().await;
        }
    }

    pub async fn article(&mut self) -> i64 {
        self.content_client
            .create_article(CreateArticleRequest {
                author_id: 1,
                title: "t".into(),
                body: "b".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .article
            .unwrap()
            .id
    }

    pub async fn comment(&mut self, article_id: i64, body: &str) -> pb::Comment {
        self.client
            .create_comment(pb::CreateCommentRequest {
                article_id,
                author_id: 2,
                body: body.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap()
    }
}

/// The service on MariaDB and Redis, as CI and production run it.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::MySql).await
}

/// The comment service and the content service it depends on, each on a
/// fresh database of `backend`, sharing a fresh etcd prefix.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, true).await
}

/// Like [`spawn_app_on`]; with `content_first` false the comment service
/// starts before any content instance exists.
pub async fn spawn_app_with(backend: Backend, content_first: bool) -> TestApp {
    testing::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("/{}", testing::unique_name("comment"));

    let mut content_settings: content::settings::Settings =
        kit::config::load_files(content::settings::CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut content_settings.platform, &prefix);
    content_settings.database.url = testing::database(backend, dir.path(), "content")
        .await
        .into();
    let start_content = || async {
        let server = content::startup::build(content_settings).await.unwrap();
        let content = RunningServer::spawn(server);
        content.wait_until_serving().await;
        content
    };
    let early = if content_first {
        Some(start_content.clone()().await)
    } else {
        None
    };

    let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut settings.platform, &prefix);
    settings.database.url = testing::database(backend, dir.path(), "comment")
        .await
        .into();
    settings.cache = match backend {
        Backend::MySql => testing::redis_cache("comment"),
        Backend::Sqlite => testing::local_cache(),
    };
    let server = RunningServer::spawn(comment::startup::build(settings).await.unwrap());
    server.wait_until_serving().await;
    let content = match early {
        Some(content) => content,
        None => start_content().await,
    };

    TestApp {
        client: CommentServiceClient::connect(server.url()).await.unwrap(),
        content_client: ContentServiceClient::connect(content.url()).await.unwrap(),
        server,
        content: Some(content),
        _dir: dir,
    }
}
