//! Replicas of the real binary starting together on one fresh MariaDB
//! database, as a Deployment's first roll-out does.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kit::testing;
use sqlx::Connection;

/// The binary, killed when the test ends however it ends.
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A config directory: the service's own `base.yaml`, and a `test.yaml` that
/// points it at `database_url`, the shared etcd under `prefix`, port 0.
fn config_dir(dir: &Path, database_url: &str, prefix: &str) {
    let own = Path::new(comment::settings::CONFIG_DIR).join("base.yaml");
    std::fs::copy(own, dir.join("base.yaml")).unwrap();
    std::fs::write(
        dir.join("test.yaml"),
        format!(
            "platform:\n  grpc:\n    port: 0\n  admin:\n    port: 0\n  discovery:\n    \
             endpoints: [\"{}\"]\n    prefix: \"{prefix}\"\n  shutdown:\n    \
             propagation_delay: 0s\ndatabase:\n  url: \"{database_url}\"\n",
            testing::etcd_endpoint()
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn four_replicas_starting_together_on_a_fresh_database_all_become_ready() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = testing::mysql_database("replicas").await;
    let prefix = format!("/{}", testing::unique_name("replicas"));
    config_dir(dir.path(), &database_url, &prefix);

    let mut instances: Vec<Instance> = (0..4)
        .map(|_| {
            Instance(
                Command::new(env!("CARGO_BIN_EXE_comment"))
                    .env("APP_ENVIRONMENT", "test")
                    .env("APP_CONFIG_DIR", dir.path())
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();

    let mut ready = 0;
    for _ in 0..600 {
        ready = testing::registered_instances(&prefix, "comment").await;
        let exited = instances
            .iter_mut()
            .filter_map(|i| i.0.try_wait().unwrap())
            .collect::<Vec<_>>();
        assert!(exited.is_empty(), "an instance exited: {exited:?}");
        if ready == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, 4, "instances registered in etcd");

    // Each migration ran once and completed.
    let mut conn = sqlx::mysql::MySqlConnection::connect(&database_url)
        .await
        .unwrap();
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(i64, bool)> = comment::startup::MIGRATIONS
        .migrator(kit::db::Backend::MySql)
        .unwrap()
        .iter()
        .map(|m| (m.version, true))
        .collect();
    assert_eq!(rows, expected);
}
