//! A flood of rejections costs a counter each and a log line per interval,
//! never a line (nor, with Sentry, an error report) per request. Its own
//! test binary: it counts the lines of the process-wide log.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kit::db::Backend;
use kit::testing::metric;
use reqwest::StatusCode;
use serde_json::json;

/// Every log line of the process, as written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

const FLOOD: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_a_full_bulkhead_is_counted_and_logged_once_per_interval() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber_init(move || writer.clone());

    let stack = helpers::spawn_stack_with(Backend::MySql, |settings| {
        // One call to content at a time, for as long as the test holds it.
        settings.platform.resilience.overrides.insert(
            "content.v1.ContentService".into(),
            json!({"timeout": "30s", "bulkhead": {"max_concurrent": 1}}),
        );
    })
    .await;
    let (_, token) = stack.login_as("editor").await;
    stack.publish(&token, "Rates hold").await;

    // The one slot is taken by a read blocked on a table lock.
    let lock = stack.lock_table("content", "articles").await;
    let holder = {
        let (http, url) = (stack.http.clone(), stack.url("/api/v1/articles"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
    };
    let mut held = false;
    for _ in 0..500 {
        let metrics = stack.content_metrics().await;
        let method = [("method", "/content.v1.ContentService/ListArticles")];
        if metric(&metrics, "grpc_server_in_flight_requests", &method) >= 1.0 {
            held = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(held);
    let before = log.lines().len();
    let started = Instant::now();

    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (http, url) = (stack.http.clone(), stack.url("/api/v1/articles"));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    let mut shed = 0;
    for request in flood {
        if request.await.unwrap() == StatusCode::SERVICE_UNAVAILABLE {
            shed += 1;
        }
    }
    let elapsed = started.elapsed();
    lock.unlock().await;
    assert_eq!(holder.await.unwrap(), StatusCode::OK);

    assert_eq!(shed, FLOOD, "every request of the flood was shed");
    let metrics = stack.gateway_metrics().await;
    let rejected = metric(
        &metrics,
        "breaker_calls_total",
        &[
            ("breaker", "content.v1.ContentService/ListArticles"),
            ("outcome", "rejected"),
        ],
    );
    assert!(
        rejected >= FLOOD as f64,
        "each rejection counted: {rejected}"
    );

    let lines = log.lines()[before..].to_vec();
    let errors: Vec<&String> = lines.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no ERROR line for shedding: {errors:#?}");
    let summaries = lines
        .iter()
        .filter(|l| l.contains("requests shed") && l.contains("bulkhead_full"))
        .count();
    // One line per 10 s interval the flood lasted, whatever its size.
    let intervals = 1 + elapsed.as_secs() as usize / 10;
    assert!(
        (1..=intervals).contains(&summaries),
        "{summaries} summary lines in {elapsed:?} for {FLOOD} rejections"
    );
    assert!(
        lines.len() <= 4 * intervals,
        "{} log lines for {FLOOD} rejections: {lines:#?}",
        lines.len()
    );
    stack.stop().await;
}

/// The global subscriber of this binary, at `warn` like production's
/// default filter for our crates, writing where the test reads.
fn tracing_subscriber_init<W>(make: impl Fn() -> W + Send + Sync + 'static)
where
    W: Write + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_ansi(false)
        .with_writer(make)
        .init();
}
