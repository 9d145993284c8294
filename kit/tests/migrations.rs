//! MySQL migrations against a real MariaDB: replicas that start together, and
//! an instance killed (SIGKILL) in the middle of a deliberately slow
//! migration, then started again.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kit::db::{DatabaseSettings, Migrations};
use kit::testing;
use sqlx::Connection;
use sqlx::mysql::MySqlConnection;

/// Marked idempotent: kit re-runs it after an interruption.
const IDEMPOTENT: Migrations = kit::migrations!(
    "$CARGO_MANIFEST_DIR/tests/migrations/idempotent",
    "$CARGO_MANIFEST_DIR/tests/migrations/idempotent"
);

/// Not marked: an interruption needs a person.
const MANUAL: Migrations = kit::migrations!(
    "$CARGO_MANIFEST_DIR/tests/migrations/manual",
    "$CARGO_MANIFEST_DIR/tests/migrations/manual"
);

/// Which migrations the child process runs, and on which database.
const CHILD_SET: &str = "KIT_TEST_MIGRATIONS_CHILD_SET";
const CHILD_URL: &str = "KIT_TEST_MIGRATIONS_CHILD_URL";

fn settings(url: &str) -> DatabaseSettings {
    DatabaseSettings {
        url: url.to_owned().into(),
        ..Default::default()
    }
}

/// The body of the instance process the tests below start, kill and restart
/// (this test binary run again, with only this test selected); without the
/// child's variables it does nothing.
#[tokio::test]
async fn the_child_instance_migrates_when_spawned_by_a_test() {
    let (Ok(set), Ok(url)) = (std::env::var(CHILD_SET), std::env::var(CHILD_URL)) else {
        return;
    };
    let migrations = if set == "idempotent" {
        IDEMPOTENT
    } else {
        MANUAL
    };
    match kit::db::connect(&settings(&url), migrations).await {
        Ok(_) => {
            println!("MIGRATED");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn instance(set: &str, url: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "the_child_instance_migrates_when_spawned_by_a_test",
            "--nocapture",
        ])
        .env(CHILD_SET, set)
        .env(CHILD_URL, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts an instance and SIGKILLs it once its migration is half-way: the
/// first table exists and `_sqlx_migrations` says "not done".
async fn kill_half_way(set: &str, url: &str) {
    let mut child: Child = instance(set, url).spawn().unwrap();
    let mut conn = MySqlConnection::connect(url).await.unwrap();
    let mut half_way = false;
    for _ in 0..400 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the instance finished before it could be killed"
        );
        half_way = tables(&mut conn).await.contains(&"first_half".to_owned())
            && migrations(&mut conn).await == [(1, false)];
        if half_way {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(half_way, "the migration never got half-way");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs an instance to its end; reports how long it took.
async fn restart(set: &str, url: &str) -> (Output, Duration) {
    let started = Instant::now();
    let mut command = instance(set, url);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("restart of a {set} instance took {took:?}");
    (output, took)
}

async fn tables(conn: &mut MySqlConnection) -> Vec<String> {
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE()",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    tables.sort();
    tables
}

async fn migrations(conn: &mut MySqlConnection) -> Vec<(i64, bool)> {
    sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn replicas_migrating_together_run_a_slow_migration_once() {
    testing::init_tracing();
    let url = testing::mysql_database("mig_together").await;
    let settings = settings(&url);
    let results =
        futures::future::join_all((0..4).map(|_| kit::db::connect(&settings, IDEMPOTENT))).await;
    for result in results {
        result.unwrap();
    }
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    assert_eq!(migrations(&mut conn).await, [(1, true)]);
}

#[tokio::test]
async fn an_instance_killed_inside_an_idempotent_migration_is_resumed_by_the_next_start() {
    let url = testing::mysql_database("mig_resume").await;
    kill_half_way("idempotent", &url).await;

    let (output, _) = restart("idempotent", &url).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    assert_eq!(migrations(&mut conn).await, [(1, true)]);
    assert_eq!(
        tables(&mut conn).await,
        ["_sqlx_migrations", "first_half", "second_half"]
    );
}

#[tokio::test]
async fn an_instance_killed_inside_another_migration_stops_the_next_start_with_the_recovery_steps()
{
    let url = testing::mysql_database("mig_manual").await;
    kill_half_way("manual", &url).await;

    // The next start refuses, and says what to do.
    let (output, _) = restart("manual", &url).await;
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    eprintln!("what the second start printed:\n{message}");
    let delete = "DELETE FROM `_sqlx_migrations` WHERE version = 1 AND success = 0;";
    assert!(message.contains(delete), "{message}");
    assert!(
        message.contains("CREATE TABLE first_half") && message.contains("CREATE TABLE second_half"),
        "{message}"
    );
    // So does every later start, rather than half-applying anything.
    let (again, _) = restart("manual", &url).await;
    assert!(!again.status.success());

    // Follow the steps: undo what took effect, delete the row, start again.
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("DROP TABLE IF EXISTS first_half, second_half")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(delete).execute(&mut conn).await.unwrap();
    let (output, _) = restart("manual", &url).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(migrations(&mut conn).await, [(1, true)]);
}
