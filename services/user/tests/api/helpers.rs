use kit::db::Backend;
use kit::testing::{self, RunningServer};
use proto::user::v1::user_service_client::UserServiceClient;
use tonic::transport::Channel;
use user::password::PasswordSettings;
use user::settings::{CONFIG_DIR, Settings};

pub struct TestApp {
    pub server: RunningServer,
    pub client: UserServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn stop(self) {
        self.server.stop().await;
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
        &format!("/{}", testing::unique_name("user")),
    );
    settings.database.url = testing::database(backend, dir.path(), "user").await.into();
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
        _dir: dir,
    }
}
