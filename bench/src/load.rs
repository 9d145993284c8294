//! An open-loop load generator: requests start at a fixed rate whatever the
//! answers do, so a slow server shows up as latency instead of quietly
//! lowering the load (what a closed-loop tool like wrk does). Used for the
//! "gateway adds ≤ 1 ms" comparison at half of the measured maximum.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::time::MissedTickBehavior;

use crate::canned;

/// Requests still unanswered this long after the last one started count as
/// errors.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// What a run measured. Displays as one `RESULT key=value …` line that
/// scripts/bench.sh parses.
pub struct Report {
    pub requests: u64,
    pub errors: u64,
    /// 2xx answers marked `"degraded":[…]` (counted by `loadgen http`
    /// only): answered, but without a low-priority part or from a stale
    /// copy, so cheaper for the services than a whole answer.
    pub degraded: u64,
    pub elapsed: Duration,
    /// Latencies of successful requests, in microseconds.
    pub latency: Histogram<u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        write!(
            f,
            "RESULT rps={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} requests={} errors={} degraded={}",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            self.latency.max() as f64 / 1000.0,
            self.requests,
            self.errors,
            self.degraded,
        )
    }
}

/// Starts `operation` `rate` times a second for `duration`, each in its own
/// task, and reports latencies measured from each start.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    operation: F,
) -> anyhow::Result<Report>
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    // 1 µs to 60 s at three significant digits.
    let latency = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?));
    let errors = Arc::new(AtomicU64::new(0));
    let outstanding = Arc::new(AtomicU64::new(0));
    // Tokio's timer has millisecond resolution: every tick starts whatever
    // the schedule says is due, so the rate holds whatever the interval.
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut started = 0u64;
    loop {
        ticker.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while started < due {
            started += 1;
            let request = operation();
            let (latency, errors, outstanding) =
                (latency.clone(), errors.clone(), outstanding.clone());
            outstanding.fetch_add(1, Ordering::Relaxed);
            let begun = Instant::now();
            tokio::spawn(async move {
                if request.await {
                    let micros = begun.elapsed().as_micros().max(1) as u64;
                    if let Ok(mut histogram) = latency.lock() {
                        histogram.saturating_record(micros);
                    }
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                outstanding.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    let elapsed = start.elapsed();
    let deadline = Instant::now() + GRACE;
    while outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let latency = latency
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    Ok(Report {
        requests: started,
        errors: errors.load(Ordering::Relaxed) + outstanding.load(Ordering::Relaxed),
        degraded: 0,
        elapsed,
        latency,
    })
}

/// The connections a generator keeps to the gateway by default: what the
/// issue's wrk runs used, and the order of an Ingress controller's upstream
/// keep-alive pool, which is what a gateway pod sees in production.
pub const CONNECTIONS: usize = 1000;

/// `GET` each of `urls` in turn (one server: several pages of a list, so
/// the load is not one key a cache or a single flight can share) at `rate`
/// over at most `connections` kept-alive connections; a success is a 2xx
/// with its whole body read.
///
/// A request due while every connection is busy waits for one, and its
/// latency counts from when it was due (wrk2's correction for coordinated
/// omission). Without the bound, every request a slow server leaves
/// unanswered opens a connection of its own: at 10× overload that is 20k
/// connects a second, a SYN flood no application-level shedding sees, which
/// an Ingress in front of the gateway never sends.
pub async fn http(
    urls: &[String],
    rate: f64,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<Report> {
    crate::raw::open_loop_get(urls, rate, duration, connections).await
}

/// `requests` requests one after another on one kept-alive connection
/// (`POST body` with a bearer `token` when `body` is set, else `GET`): a
/// fixed amount of work, for counting instructions and system calls per
/// request. Any answer but a 2xx fails the run.
pub async fn fixed(
    url: &str,
    requests: u64,
    body: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .build()?;
    let url = reqwest::Url::parse(url)?;
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    let start = Instant::now();
    for n in 0..requests {
        let mut request = match body {
            Some(body) => client
                .post(url.clone())
                .header("content-type", "application/json")
                .body(body.to_owned()),
            None => client.get(url.clone()),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let begun = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(anyhow!("request {n} of {requests}: {status} {text}"));
        }
        latency.saturating_record(begun.elapsed().as_micros().max(1) as u64);
    }
    Ok(Report {
        requests,
        errors: 0,
        degraded: 0,
        elapsed: start.elapsed(),
        latency,
    })
}

/// The gateway's article page made directly over gRPC at `rate`.
pub async fn grpc_page(
    clients: crate::skeleton::Clients,
    limit: i32,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Report> {
    clients
        .page(limit)
        .await
        .context("a first article page over gRPC")?;
    open_loop(rate, duration, || {
        let clients = clients.clone();
        async move { clients.page(limit).await.is_ok() }
    })
    .await
}

/// What `seed` created, as `KEY=value` lines for a shell to `eval`.
pub struct Seeded {
    pub username: String,
    pub password: String,
    pub token: String,
    pub article_ids: Vec<i64>,
}

impl fmt::Display for Seeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let min = self.article_ids.iter().min().copied().unwrap_or(0);
        let max = self.article_ids.iter().max().copied().unwrap_or(0);
        writeln!(f, "BENCH_USERNAME={}", self.username)?;
        writeln!(f, "BENCH_PASSWORD={}", self.password)?;
        writeln!(f, "BENCH_TOKEN={}", self.token)?;
        writeln!(f, "BENCH_ARTICLE_MIN={min}")?;
        write!(f, "BENCH_ARTICLE_MAX={max}")
    }
}

/// Writes the skeleton's canned text through the public API of the gateway
/// at `base`: its authors, `articles` articles and `comments` comments.
pub async fn seed(base: &str, articles: i64, comments: i64) -> anyhow::Result<Seeded> {
    let client = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let path = path.to_owned();
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await?;
            if !status.is_success() {
                return Err(anyhow!("POST {path}: {status} {body}"));
            }
            Ok::<_, anyhow::Error>(body)
        }
    };
    // Fresh names on every run, so seeding an existing stack works too.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        % 1_000_000_000;
    let password = "bench-password".to_owned();
    let mut authors = Vec::new();
    for n in 1..=canned::AUTHORS {
        let username = format!("b{run}{}", canned::username(n));
        let user = json!({"username": username, "password": password, "display_name": canned::display_name(n)});
        post("/api/v1/users", None, user).await?;
        let login = json!({"username": username, "password": password});
        let session = post("/api/v1/sessions", None, login).await?;
        let token = session["token"]
            .as_str()
            .ok_or_else(|| anyhow!("a session without a token: {session}"))?;
        authors.push((username, token.to_owned()));
    }
    let mut article_ids = Vec::new();
    for n in 1..=articles {
        let (_, token) = &authors[n as usize % authors.len()];
        let article = json!({"title": canned::title(n), "body": canned::BODY});
        let created = post("/api/v1/articles", Some(token), article).await?;
        article_ids.push(
            created["id"]
                .as_i64()
                .ok_or_else(|| anyhow!("no id in {created}"))?,
        );
    }
    // Comments need an article to hang on.
    let comments = if article_ids.is_empty() { 0 } else { comments };
    for n in 0..comments {
        let (_, token) = &authors[n as usize % authors.len()];
        let article = article_ids[(n * 7) as usize % article_ids.len()];
        let comment = json!({"body": format!("Comment {n}: a sensible decision.")});
        post(
            &format!("/api/v1/articles/{article}/comments"),
            Some(token),
            comment,
        )
        .await?;
    }
    let (username, token) = authors.swap_remove(0);
    Ok(Seeded {
        username,
        password,
        token,
        article_ids,
    })
}
