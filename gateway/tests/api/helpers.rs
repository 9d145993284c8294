//! A whole newsroom in one test process: the three services and the gateway,
//! on free ports, sharing a fresh etcd prefix, each service with its own
//! fresh database.

use gateway::settings::{CONFIG_DIR, Settings};
use kit::db::Backend;
use kit::testing::{self, RunningServer};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestStack {
    pub base: String,
    pub admin: String,
    pub http: Client,
    /// The etcd prefix the stack registers under: a service a test starts
    /// itself on it is discovered by the gateway like the stack's own (the
    /// tests `make new-service` generates do; none of the checked-in ones).
    #[allow(dead_code)]
    pub prefix: String,
    pub user: RunningServer,
    pub content: Vec<RunningServer>,
    pub comment: Option<RunningServer>,
    pub content_settings: content::settings::Settings,
    pub user_settings: user::settings::Settings,
    comment_settings: comment::settings::Settings,
    gateway_stop: Option<oneshot::Sender<()>>,
    gateway: Option<JoinHandle<Result<(), kit::server::ServerError>>>,
    _dir: tempfile::TempDir,
}

/// The stack on MariaDB and Redis, as CI and production run it.
pub async fn spawn_stack() -> TestStack {
    spawn_stack_on(Backend::MySql).await
}

/// Each service's cache: on Redis (under its own prefix) with MariaDB,
/// in-process with SQLite.
fn cache(backend: Backend, kind: &str) -> kit::cache::CacheSettings {
    match backend {
        Backend::MySql => testing::redis_cache(kind),
        Backend::Sqlite => testing::local_cache(),
    }
}

pub async fn spawn_stack_on(backend: Backend) -> TestStack {
    spawn_stack_with(backend, |_| {}).await
}

/// The token of the operator API in tests.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The admin credential as a browser sends it after its Basic prompt.
pub fn admin_basic() -> String {
    use base64::Engine;
    let pair = format!("operator:{ADMIN_TOKEN}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Like [`spawn_stack_on`], letting the test change the gateway's settings.
pub async fn spawn_stack_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> TestStack {
    testing::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("/{}", testing::unique_name("stack"));

    let mut user_settings: user::settings::Settings =
        kit::config::load_files(user::settings::CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut user_settings.platform, &prefix);
    user_settings.database.url = testing::database(backend, dir.path(), "user").await.into();
    user_settings.password.memory_kib = 64;
    user_settings.password.iterations = 1;
    user_settings.cache = cache(backend, "user");
    let user = RunningServer::spawn(user::startup::build(user_settings.clone()).await.unwrap());

    let mut content_settings: content::settings::Settings =
        kit::config::load_files(content::settings::CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut content_settings.platform, &prefix);
    content_settings.database.url = testing::database(backend, dir.path(), "content")
        .await
        .into();
    content_settings.cache = cache(backend, "content");
    let content = RunningServer::spawn(
        content::startup::build(content_settings.clone())
            .await
            .unwrap(),
    );

    let mut comment_settings: comment::settings::Settings =
        kit::config::load_files(comment::settings::CONFIG_DIR, "local").unwrap();
    testing::prepare_platform(&mut comment_settings.platform, &prefix);
    comment_settings.database.url = testing::database(backend, dir.path(), "comment")
        .await
        .into();
    comment_settings.cache = cache(backend, "comment");
    let comment = RunningServer::spawn(
        comment::startup::build(comment_settings.clone())
            .await
            .unwrap(),
    );

    let mut settings: Settings = kit::config::load_files(CONFIG_DIR, "local").unwrap();
    settings.http.port = 0;
    settings.platform.admin.port = 0;
    settings.platform.discovery.endpoints = vec![testing::etcd_endpoint()];
    settings.platform.discovery.prefix = prefix.clone();
    settings.platform.shutdown.propagation_delay = std::time::Duration::ZERO;
    settings.admin_token = Some(ADMIN_TOKEN.into());
    // Off unless a test turns it on (tests/api/cache.rs): the other tests
    // watch backends fail and recover between two reads, which a copy
    // answered from memory would hide.
    settings.cache.enabled = false;
    // Tests sign up, log in and write far faster than any person; the
    // rate-limit tests (abuse.rs) turn limits on with their own rates.
    settings.limits.enabled = false;
    configure(&mut settings);
    let gateway = gateway::startup::build(settings).await.unwrap();
    let base = format!("http://{}", gateway.local_addr());
    let admin = format!("http://{}", gateway.admin_addr());
    let (gateway_stop, stopped) = oneshot::channel::<()>();
    let gateway = tokio::spawn(gateway.run_until(async {
        let _ = stopped.await;
    }));

    let stack = TestStack {
        base,
        admin,
        http: Client::new(),
        prefix,
        user,
        content: vec![content],
        comment: Some(comment),
        content_settings,
        user_settings,
        comment_settings,
        gateway_stop: Some(gateway_stop),
        gateway: Some(gateway),
        _dir: dir,
    };
    stack.wait_for_instances("user", 1).await;
    stack.wait_for_instances("content", 1).await;
    stack.wait_for_instances("comment", 1).await;
    stack
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Registers `username` and logs in; returns the user and a token.
    pub async fn login_as(&self, username: &str) -> (Value, String) {
        let user = self
            .post(
                "/api/v1/users",
                json!({"username": username, "password": "correct horse", "display_name": username.to_uppercase()}),
                None,
            )
            .await;
        assert_eq!(user.status(), StatusCode::CREATED);
        let user: Value = user.json().await.unwrap();
        let session = self
            .post(
                "/api/v1/sessions",
                json!({"username": username, "password": "correct horse"}),
                None,
            )
            .await;
        assert_eq!(session.status(), StatusCode::OK);
        let session: Value = session.json().await.unwrap();
        (user, session["token"].as_str().unwrap().to_owned())
    }

    pub async fn publish(&self, token: &str, title: &str) -> Value {
        let response = self
            .post(
                "/api/v1/articles",
                json!({"title": title, "body": format!("The body of {title}.")}),
                Some(token),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Registers `username`, publishes "Rates hold" and comments "first" on
    /// it; returns the token and the article's id.
    pub async fn publish_one(&self, username: &str) -> (String, i64) {
        let (_, token) = self.login_as(username).await;
        let article = self.publish(&token, "Rates hold").await["id"]
            .as_i64()
            .unwrap();
        self.comment_on(&token, article, "first").await;
        (token, article)
    }

    /// A real fault: `table` of `service`'s database (MariaDB stacks) locked
    /// for writing by another connection, so every query of it blocks until
    /// [`TableLock::unlock`].
    pub async fn lock_table(&self, service: &str, table: &str) -> TableLock {
        let mut connection =
            <sqlx::MySqlConnection as sqlx::Connection>::connect(&self.database_url(service))
                .await
                .unwrap();
        // The table's name comes from the test itself.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("LOCK TABLES {table} WRITE")))
            .execute(&mut connection)
            .await
            .unwrap();
        TableLock(connection)
    }

    pub async fn comment_on(&self, token: &str, article: i64, body: &str) -> Value {
        let response = self
            .post(
                &format!("/api/v1/articles/{article}/comments"),
                json!({ "body": body }),
                Some(token),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// SQL statements that read users by id, so far.
    pub async fn user_reads(&self) -> f64 {
        let metrics = self
            .http
            .get(format!("http://{}/metrics", self.user.admin_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        testing::metric(&metrics, "db_queries_total", &[("query", "users_by_ids")])
            + testing::metric(&metrics, "db_queries_total", &[("query", "user_by_id")])
    }

    pub async fn gateway_metrics(&self) -> String {
        self.text(&format!("{}/metrics", self.admin)).await
    }

    /// The metrics of the first content instance.
    pub async fn content_metrics(&self) -> String {
        self.text(&format!("http://{}/metrics", self.content[0].admin_addr))
            .await
    }

    async fn text(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Starts one more content instance on the same database.
    pub async fn add_content_instance(&mut self) {
        let server = RunningServer::spawn(
            content::startup::build(self.content_settings.clone())
                .await
                .unwrap(),
        );
        self.content.push(server);
        self.wait_for_instances("content", self.content.len()).await;
    }

    /// The database URL of `service` (MariaDB stacks).
    pub fn database_url(&self, service: &str) -> String {
        use secrecy::ExposeSecret;
        let url = match service {
            "comment" => &self.comment_settings.database.url,
            "content" => &self.content_settings.database.url,
            "user" => &self.user_settings.database.url,
            other => panic!("no database kept for {other}"),
        };
        url.expose_secret().to_owned()
    }

    /// Starts the comment service again (on its database).
    pub async fn start_comment(&mut self) {
        let server = RunningServer::spawn(
            comment::startup::build(self.comment_settings.clone())
                .await
                .unwrap(),
        );
        self.comment = Some(server);
        self.wait_for_instances("comment", 1).await;
    }

    /// The operator API's view of one breaker.
    pub async fn breaker(&self, name: &str) -> Value {
        let all: Value = self
            .http
            .get(format!("{}/admin/breakers", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits until the gateway sees `n` instances of `service`.
    pub async fn wait_for_instances(&self, service: &str, n: usize) {
        for _ in 0..400 {
            let body: Value = self.get("/readyz").await.json().await.unwrap();
            if body["instances"][service].as_u64() == Some(n as u64) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the gateway never saw {n} instance(s) of {service}");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.gateway_stop.take() {
            let _ = stop.send(());
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.await.unwrap().unwrap();
        }
        for server in self.content.drain(..) {
            server.stop().await;
        }
        if let Some(comment) = self.comment.take() {
            comment.stop().await;
        }
        self.user.stop().await;
    }
}

/// A table locked by [`TestStack::lock_table`].
pub struct TableLock(sqlx::MySqlConnection);

impl TableLock {
    pub async fn unlock(mut self) {
        sqlx::raw_sql("UNLOCK TABLES")
            .execute(&mut self.0)
            .await
            .unwrap();
    }
}

/// Asserts the uniform error shape and returns the error code.
pub async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_owned()
}
