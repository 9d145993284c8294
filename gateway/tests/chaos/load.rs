use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Steady load on one URL from a few concurrent clients, recording every
/// answer.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    log: Arc<Mutex<Vec<(Instant, bool)>>>,
    started: Instant,
}

/// What the clients saw.
#[derive(Debug)]
pub struct Report {
    pub requests: usize,
    pub failures: usize,
    /// From `since` to the last failure, when there was one.
    pub last_failure_after: Option<Duration>,
    /// Every failure, as time after `since` (before it: zero).
    pub failures_after: Vec<Duration>,
}

impl Load {
    pub fn start(url: String, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let http = reqwest::Client::new();
        let workers = (0..clients)
            .map(|_| {
                let (stop, log, http, url) = (stop.clone(), log.clone(), http.clone(), url.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let ok = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                        log.lock().await.push((Instant::now(), ok));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            workers,
            log,
            started: Instant::now(),
        }
    }

    pub async fn stop(self, since: Instant) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.await;
        }
        let log = self.log.lock().await;
        let failures: Vec<Instant> = log.iter().filter(|(_, ok)| !ok).map(|(t, _)| *t).collect();
        let _ = self.started;
        Report {
            requests: log.len(),
            failures: failures.len(),
            last_failure_after: failures.last().map(|t| t.saturating_duration_since(since)),
            failures_after: failures
                .iter()
                .map(|t| t.saturating_duration_since(since))
                .collect(),
        }
    }
}

/// One row of the table `make chaos` prints (scripts/chaos.sh): scenario,
/// requests, failed requests, and the recovery figures.
pub fn row(scenario: &str, requests: usize, failed: usize, recovery: &str) {
    let (requests, failed) = if requests == 0 {
        ("-".to_owned(), "-".to_owned())
    } else {
        (requests.to_string(), failed.to_string())
    };
    println!("CHAOS-ROW\t{scenario}\t{requests}\t{failed}\t{recovery}");
}

/// A measured time for the table: `1.2 s`, or `never`.
pub fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}
