//! `make spike`: a news spike with faults, open loop, against a stack of
//! its own (scripts/spike.sh starts it and injects the faults; this module
//! makes the load, measures it per second and writes the report).
//!
//! Phases: steady (the news-site mix at `steady_rate`), spike (`factor` ×
//! that for `spike` seconds, half of it on one article published as the
//! spike starts), outage (steady again; the script kills content for a
//! while and restarts etcd), recovery (steady). Every request is recorded
//! in the second it started: status, latency, and how the gateway's
//! micro-cache served it (`X-Cache`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::time::MissedTickBehavior;

/// Requests unanswered this long after the load ends count as errors.
const GRACE: Duration = Duration::from_secs(10);
/// Requests in flight at most: past it a request due is not sent and counts
/// as an error of its second (the server is that far behind), instead of
/// opening connections until the process runs out of descriptors.
const MAX_OUTSTANDING: u64 = 8192;
/// failed-reads.txt stops here: an outage of a long run fails thousands.
const MAX_FAILED_LINES: usize = 1000;
/// Kept-alive connections to the gateway at most, as an Ingress's upstream
/// pool (see [`crate::load::http`]): a request due while all are busy waits
/// for one, and its latency counts from when it was due.
const CONNECTIONS: usize = crate::load::CONNECTIONS;

/// The scenario's shape (seconds and requests per second).
#[derive(Debug, Clone)]
pub struct Plan {
    pub steady_rate: f64,
    pub factor: f64,
    pub steady: f64,
    pub spike: f64,
    pub outage: f64,
    pub recovery: f64,
    /// Share of the spike's requests on the fresh article.
    pub fresh_share: f64,
    /// Reads' p99 bound per phase, in ms (a threshold of the exit code).
    pub p99_max_ms: f64,
}

impl Plan {
    fn total(&self) -> f64 {
        self.steady + self.spike + self.outage + self.recovery
    }

    fn spike_window(&self) -> (f64, f64) {
        (self.steady, self.steady + self.spike)
    }

    fn rate_at(&self, t: f64) -> f64 {
        let (from, to) = self.spike_window();
        if (from..to).contains(&t) {
            self.steady_rate * self.factor
        } else {
            self.steady_rate
        }
    }

    fn phases(&self) -> Vec<(&'static str, f64, f64)> {
        let a = self.steady;
        let b = a + self.spike;
        let c = b + self.outage;
        vec![
            ("steady", 0.0, a),
            ("spike", a, b),
            ("outage", b, c),
            ("recovery", c, self.total()),
        ]
    }
}

/// What the seeded stack holds (from `loadgen seed`, via the environment).
#[derive(Debug, Clone)]
pub struct Seed {
    pub token: String,
    pub first_article: i64,
    pub last_article: i64,
}

/// One second of the run.
struct Second {
    requests: u64,
    reads: u64,
    ok: u64,
    /// Non-2xx answers or no answer.
    errors: u64,
    read_5xx: u64,
    /// Of `read_5xx`, reads of a page no earlier request saw answered 2xx:
    /// the gateway had no copy to stand in for the failed load.
    read_5xx_unseen: u64,
    /// Answered with the last good copy (`X-Cache: STALE-IF-ERROR`).
    stale: u64,
    /// Answered from memory without a load of its own.
    cached: u64,
    /// Not sent: [`MAX_OUTSTANDING`] requests were in flight already.
    dropped: u64,
    latency: Histogram<u64>,
}

impl Second {
    fn new() -> Self {
        Self {
            requests: 0,
            reads: 0,
            ok: 0,
            errors: 0,
            read_5xx: 0,
            read_5xx_unseen: 0,
            stale: 0,
            cached: 0,
            dropped: 0,
            // 1 µs to 60 s; reads only (writes are a different budget).
            // Constant bounds hdrhistogram accepts: this cannot fail.
            latency: Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid bounds"),
        }
    }

    fn add(&mut self, other: &Second) {
        self.requests += other.requests;
        self.reads += other.reads;
        self.ok += other.ok;
        self.errors += other.errors;
        self.read_5xx += other.read_5xx;
        self.read_5xx_unseen += other.read_5xx_unseen;
        self.stale += other.stale;
        self.cached += other.cached;
        self.dropped += other.dropped;
        let _ = self.latency.add(&other.latency);
    }
}

/// How one request went.
struct Outcome {
    read: bool,
    status: Option<u16>,
    cache: Option<String>,
    micros: u64,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_some_and(|c| (200..300).contains(&c))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    List,
    Article(i64),
    Comments(i64),
    Comment(i64),
    Publish,
}

impl Kind {
    /// The page a read asks for; `None` for a write.
    fn page(self) -> Option<String> {
        match self {
            Kind::List => Some("/api/v1/articles?limit=20".into()),
            Kind::Article(id) => Some(format!("/api/v1/articles/{id}")),
            Kind::Comments(id) => Some(format!("/api/v1/articles/{id}/comments?limit=20")),
            Kind::Comment(_) | Kind::Publish => None,
        }
    }
}

/// The news-site mix of loadtest/mix.lua without logins (argon2 would
/// measure password hashing): per 1000, 480 lists, 330 articles, 150
/// comment pages, 30 comments, 10 articles published.
fn pick(seed: &Seed, fresh: Option<i64>, in_spike: bool, fresh_share: f64) -> Kind {
    if in_spike
        && let Some(fresh) = fresh
        && fastrand::f64() < fresh_share
    {
        return Kind::Article(fresh);
    }
    let article = fastrand::i64(seed.first_article..=seed.last_article);
    match fastrand::u32(0..1000) {
        0..480 => Kind::List,
        480..810 => Kind::Article(article),
        810..960 => Kind::Comments(article),
        960..990 => Kind::Comment(article),
        _ => Kind::Publish,
    }
}

/// Runs `plan` against `base`, writes `timeline.csv`, `report.md` and
/// `spike.svg` into `out`, and returns whether every threshold held.
/// `started` is written (with the start's Unix time) the moment the load
/// begins, so the fault script can time its faults from it; `faults` is
/// read at the end (`<seconds since start> <event>` per line).
pub async fn run(
    base: &str,
    seed: Seed,
    plan: Plan,
    out: &Path,
    faults: &Path,
) -> anyhow::Result<bool> {
    std::fs::create_dir_all(out)?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(15))
        .build()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    // A first request, so a wrong URL fails loudly.
    client
        .get(format!("{base}/api/v1/articles?limit=20"))
        .send()
        .await?
        .error_for_status()
        .context("the stack does not answer")?;

    let seconds = plan.total().ceil() as usize + 1;
    let timeline: Arc<Vec<Mutex<Second>>> =
        Arc::new((0..seconds).map(|_| Mutex::new(Second::new())).collect());
    let outstanding = Arc::new(AtomicU64::new(0));
    let fresh: Arc<Mutex<Option<i64>>> = Arc::default();
    // Pages answered 2xx so far: the gateway holds a copy of each.
    let answered: Arc<Mutex<HashSet<Kind>>> = Arc::default();
    // Reads that failed, one line each, so a failed threshold names them.
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let (spike_from, _) = plan.spike_window();

    let start = Instant::now();
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    std::fs::write(out.join("started"), format!("{epoch:.3}\n"))?;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut started = 0.0_f64;
    let mut last = 0.0_f64;
    let mut published = false;
    loop {
        ticker.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t >= plan.total() {
            break;
        }
        if !published && t >= spike_from {
            // The story everybody wants: published as the spike begins.
            published = true;
            let (client, base, token, fresh) = (
                client.clone(),
                base.to_owned(),
                seed.token.clone(),
                fresh.clone(),
            );
            tokio::spawn(async move {
                let body = json!({"title": "Rates cut by 50 basis points", "body": "The central bank moved."});
                if let Ok(response) = client
                    .post(format!("{base}/api/v1/articles"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    && let Ok(article) = response.json::<serde_json::Value>().await
                {
                    *fresh.lock().unwrap_or_else(|e| e.into_inner()) = article["id"].as_i64();
                }
            });
        }
        // Integrate the rate: the schedule holds through the step.
        started += plan.rate_at(t) * (t - last);
        last = t;
        let in_spike = plan.spike_window().0 <= t && t < plan.spike_window().1;
        let fresh_id = *fresh.lock().unwrap_or_else(|e| e.into_inner());
        while started >= 1.0 {
            started -= 1.0;
            let kind = pick(&seed, fresh_id, in_spike, plan.fresh_share);
            let second = (t as usize).min(seconds - 1);
            let (client, base, token) = (client.clone(), base.to_owned(), seed.token.clone());
            let (timeline, outstanding, slots, answered, failed) = (
                timeline.clone(),
                outstanding.clone(),
                slots.clone(),
                answered.clone(),
                failed.clone(),
            );
            if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
                // Not the server's answer: an error, but no read 5xx.
                let mut s = timeline[second].lock().unwrap_or_else(|e| e.into_inner());
                s.requests += 1;
                s.errors += 1;
                s.dropped += 1;
                continue;
            }
            outstanding.fetch_add(1, Ordering::Relaxed);
            let due = Instant::now();
            tokio::spawn(async move {
                // Never closed: `ok()` only spares an unwrap.
                let _slot = slots.acquire_owned().await.ok();
                let outcome = send(&client, &base, &token, kind, due).await;
                let seen = {
                    let mut answered = answered.lock().unwrap_or_else(|e| e.into_inner());
                    let seen = answered.contains(&kind);
                    if outcome.read && outcome.ok() {
                        answered.insert(kind);
                    }
                    seen
                };
                record(&timeline[second], &outcome, seen);
                if outcome.read
                    && !outcome.ok()
                    && let Some(page) = kind.page()
                {
                    let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
                    if failed.len() < MAX_FAILED_LINES {
                        let status = outcome.status.map_or("no-answer".into(), |c| c.to_string());
                        let seen = if seen {
                            "answered-before"
                        } else {
                            "never-answered"
                        };
                        failed.push(format!("{second} {status} {seen} GET {page}"));
                    }
                }
                outstanding.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    let deadline = Instant::now() + GRACE;
    while outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unanswered = outstanding.load(Ordering::Relaxed);

    let timeline: Vec<Second> = timeline
        .iter()
        .map(|s| {
            let mut copy = Second::new();
            copy.add(&s.lock().unwrap_or_else(|e| e.into_inner()));
            copy
        })
        .collect();
    let faults = read_faults(faults);
    write_csv(&out.join("timeline.csv"), &timeline)?;
    let failed: String = failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(out.join("failed-reads.txt"), failed)?;
    std::fs::write(out.join("spike.svg"), svg(&plan, &timeline, &faults))?;
    let (report, passed) = report(&plan, &timeline, &faults, unanswered);
    std::fs::write(out.join("report.md"), &report)?;
    print!("{report}");
    Ok(passed)
}

/// Latency counts from `due`, when the schedule said to send, so time spent
/// waiting for a free connection is the server's too.
async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    kind: Kind,
    due: Instant,
) -> Outcome {
    let page = kind.page();
    let read = page.is_some();
    let request = match (kind, page) {
        (_, Some(page)) => client.get(format!("{base}{page}")),
        (Kind::Comment(id), None) => client
            .post(format!("{base}/api/v1/articles/{id}/comments"))
            .bearer_auth(token)
            .json(&json!({"body": "Written during the spike."})),
        // Kind::Publish: the reads all have a page.
        (_, None) => client
            .post(format!("{base}/api/v1/articles"))
            .bearer_auth(token)
            .json(&json!({"title": "More on the rate decision", "body": "Markets moved."})),
    };
    let (status, cache) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let cache = response
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // The whole body, as a reader would.
            match response.bytes().await {
                Ok(_) => (Some(status), cache),
                Err(_) => (None, None),
            }
        }
        Err(_) => (None, None),
    };
    Outcome {
        read,
        status,
        cache,
        micros: due.elapsed().as_micros().max(1) as u64,
    }
}

/// `seen`: an earlier request had this page answered 2xx.
fn record(second: &Mutex<Second>, outcome: &Outcome, seen: bool) {
    let mut s = second.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    let ok = outcome.ok();
    if ok {
        s.ok += 1;
    } else {
        s.errors += 1;
    }
    if outcome.read {
        s.reads += 1;
        if outcome.status.is_none_or(|c| c >= 500) {
            s.read_5xx += 1;
            if !seen {
                s.read_5xx_unseen += 1;
            }
        }
        if ok {
            s.latency.saturating_record(outcome.micros);
        }
        match outcome.cache.as_deref() {
            Some("STALE-IF-ERROR") => {
                s.stale += 1;
                s.cached += 1;
            }
            Some("HIT" | "COALESCED" | "STALE") => s.cached += 1,
            _ => {}
        }
    }
}

/// `<seconds> <event>` lines written by scripts/spike.sh.
fn read_faults(path: &Path) -> Vec<(f64, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (at, what) = line.trim().split_once(' ')?;
            Some((at.parse().ok()?, what.trim().to_owned()))
        })
        .collect()
}

fn write_csv(path: &Path, timeline: &[Second]) -> anyhow::Result<()> {
    let mut csv = String::from(
        "second,requests,ok,errors,reads,read_5xx,stale,cached,dropped,read_5xx_unseen,p50_ms,p99_ms\n",
    );
    for (i, s) in timeline.iter().enumerate() {
        let (p50, p99) = quantiles(s);
        let _ = writeln!(
            csv,
            "{i},{},{},{},{},{},{},{},{},{},{p50:.3},{p99:.3}",
            s.requests,
            s.ok,
            s.errors,
            s.reads,
            s.read_5xx,
            s.stale,
            s.cached,
            s.dropped,
            s.read_5xx_unseen
        );
    }
    std::fs::write(path, csv)?;
    Ok(())
}

fn quantiles(s: &Second) -> (f64, f64) {
    if s.latency.is_empty() {
        return (0.0, 0.0);
    }
    let ms = |q: f64| s.latency.value_at_quantile(q) as f64 / 1000.0;
    (ms(0.5), ms(0.99))
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn sum(timeline: &[Second], from: f64, to: f64) -> Second {
    let mut total = Second::new();
    let (from, to) = (
        from.floor() as usize,
        (to.ceil() as usize).min(timeline.len()),
    );
    for s in timeline.get(from..to).unwrap_or_default() {
        total.add(s);
    }
    total
}

/// The content outage as the faults file says it: killed → back.
fn content_down(faults: &[(f64, String)]) -> Option<(f64, f64)> {
    let down = faults.iter().find(|(_, w)| w == "content_killed")?.0;
    let up = faults
        .iter()
        .find(|(at, w)| w == "content_serving" && *at >= down)
        .map_or(f64::INFINITY, |(at, _)| *at);
    Some((down, up))
}

fn report(
    plan: &Plan,
    timeline: &[Second],
    faults: &[(f64, String)],
    unanswered: u64,
) -> (String, bool) {
    let mut md = String::new();
    let _ = writeln!(md, "# make spike\n");
    let _ = writeln!(
        md,
        "Open loop: {:.0} req/s of the news-site mix, ×{:.0} for {:.0} s from {:.0} s ({:.0} % of it on one article published as the spike began); {:.0} s in all. Plot: [spike.svg](spike.svg); per second: timeline.csv; each failed read: failed-reads.txt.\n",
        plan.steady_rate,
        plan.factor,
        plan.spike,
        plan.steady,
        plan.fresh_share * 100.0,
        plan.total()
    );
    let _ = writeln!(md, "## Faults\n");
    for (at, what) in faults {
        let _ = writeln!(md, "- {at:.1} s: {what}");
    }
    if faults.is_empty() {
        let _ = writeln!(md, "- none recorded");
    }
    let _ = writeln!(
        md,
        "\n## Phases\n\nErrors: non-2xx or no answer; read 5xx: reads answered 5xx or not at all; stale: reads answered with the last good copy (`X-Cache: STALE-IF-ERROR`, `\"degraded\":[\"stale\"]`); from cache: reads answered without a load of their own; not sent: due while {MAX_OUTSTANDING} requests were in flight (the generator's backlog; counted as errors, not as read 5xx).\n\n| phase | s | requests | req/s answered 2xx | reads p50 ms | reads p99 ms | errors | read 5xx | stale | from cache | not sent |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut rows = plan.phases();
    let down = content_down(faults);
    if let Some((from, to)) = down {
        rows.push(("content down", from, to.min(plan.total())));
    }
    let mut passed = true;
    let mut verdicts = Vec::new();
    for (name, from, to) in &rows {
        let s = sum(timeline, *from, *to);
        let (p50, p99) = quantiles(&s);
        let _ = writeln!(
            md,
            "| {name} | {from:.0}–{to:.0} | {} | {:.0} | {p50:.2} | {p99:.2} | {:.2} % | {} | {:.1} % | {:.1} % | {} |",
            s.requests,
            s.ok as f64 / (to - from).max(1.0),
            100.0 * share(s.errors, s.requests),
            s.read_5xx,
            100.0 * share(s.stale, s.reads),
            100.0 * share(s.cached, s.reads),
            s.dropped,
        );
        if *name != "content down" {
            let ok = p99 <= plan.p99_max_ms;
            passed &= ok;
            verdicts.push(format!(
                "{} reads' p99 in {name}: {p99:.1} ms (bound {:.0} ms)",
                if ok { "PASS" } else { "FAIL" },
                plan.p99_max_ms
            ));
        }
    }
    match down {
        Some((from, to)) => {
            // Reads that started while content was down, from the first
            // whole second after the kill to the last before it was back.
            // A page never answered before has no copy to stand in (in
            // the smoke run, a comment page first asked for after the
            // comment service was killed): counted, not failed.
            let s = sum(timeline, from.ceil(), to.floor());
            let with_copy = s.read_5xx - s.read_5xx_unseen;
            let ok = with_copy == 0 && s.reads > 0;
            passed &= ok;
            verdicts.push(format!(
                "{} no 5xx on reads of answered pages while content was down ({} of {} reads; {} served stale; {} 5xx on pages never answered before)",
                if ok { "PASS" } else { "FAIL" },
                with_copy,
                s.reads,
                s.stale,
                s.read_5xx_unseen
            ));
        }
        None => {
            passed = false;
            verdicts.push("FAIL the content outage was not recorded".into());
        }
    }
    let ok = unanswered == 0;
    passed &= ok;
    verdicts.push(format!(
        "{} every request answered within {} s of the end ({unanswered} not)",
        if ok { "PASS" } else { "FAIL" },
        GRACE.as_secs()
    ));
    let _ = writeln!(md, "\n## Thresholds\n");
    for verdict in verdicts {
        let _ = writeln!(md, "- {verdict}");
    }
    let _ = writeln!(md, "\nResult: **{}**", if passed { "PASS" } else { "FAIL" });
    (md, passed)
}

/// A hand-written SVG (no plotting crate for three line charts): throughput,
/// read latency p50/p99 (log scale) and the error and stale shares, per
/// second, with the phases shaded and the faults marked.
fn svg(plan: &Plan, timeline: &[Second], faults: &[(f64, String)]) -> String {
    const W: f64 = 960.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const PANEL: f64 = 170.0;
    const GAP: f64 = 40.0;
    const TOP: f64 = 40.0;
    let total = plan.total().max(1.0);
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * t / total;
    let height = TOP + 3.0 * (PANEL + GAP) + 20.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">make spike: throughput, read latency, error and stale shares per second</text>"##
    );

    // Whole seconds of load only: the last bucket holds a partial second.
    let timeline = &timeline[..timeline.len().min(total.floor() as usize)];
    let secs: Vec<f64> = (0..timeline.len()).map(|i| i as f64 + 0.5).collect();
    let rps: Vec<f64> = timeline.iter().map(|s| s.requests as f64).collect();
    let ok: Vec<f64> = timeline.iter().map(|s| s.ok as f64).collect();
    let p50: Vec<f64> = timeline.iter().map(|s| quantiles(s).0).collect();
    let p99: Vec<f64> = timeline.iter().map(|s| quantiles(s).1).collect();
    let errors: Vec<f64> = timeline
        .iter()
        .map(|s| 100.0 * share(s.errors, s.requests))
        .collect();
    let stale: Vec<f64> = timeline
        .iter()
        .map(|s| 100.0 * share(s.stale, s.reads))
        .collect();

    // (title, log scale, [(series name, colour, values)]).
    type Panel<'a> = (&'a str, bool, Vec<(&'a str, &'a str, &'a Vec<f64>)>);
    let panels: [Panel<'_>; 3] = [
        (
            "requests per second",
            false,
            vec![("started", "#58a6ff", &rps), ("2xx", "#2da44e", &ok)],
        ),
        (
            "read latency, ms (log)",
            true,
            vec![("p50", "#2da44e", &p50), ("p99", "#cf222e", &p99)],
        ),
        (
            "share, %",
            false,
            vec![
                ("errors (non-2xx)", "#cf222e", &errors),
                ("reads served stale", "#bf8700", &stale),
            ],
        ),
    ];
    for (i, (title, log, series)) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        let bottom = top + PANEL;
        let max = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0_f64, f64::max)
            .max(if *log { 10.0 } else { 1.0 });
        let (lo, hi) = if *log {
            (0.1_f64.log10(), max.log10().ceil())
        } else {
            (0.0, max * 1.1)
        };
        let y = |v: f64| {
            let v = if *log { v.max(0.1).log10() } else { v };
            bottom - PANEL * ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        };
        // Phases.
        for (n, (name, from, to)) in plan.phases().iter().enumerate() {
            let fill = if n % 2 == 0 { "#f6f8fa" } else { "#eef2f6" };
            let _ = writeln!(
                svg,
                r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{PANEL}" fill="{fill}"/>"##,
                x(*from),
                x(*to) - x(*from)
            );
            if i == 0 {
                let _ = writeln!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" fill="#57606a">{name}</text>"##,
                    x(*from) + 4.0,
                    top + 12.0
                );
            }
        }
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{title}</text>"##,
            top - 6.0
        );
        // Axis labels: top and bottom values.
        let top_label = if *log { 10f64.powf(hi) } else { hi };
        let bottom_label = if *log { 0.1 } else { 0.0 };
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{top_label:.0}</text><text x="{:.1}" y="{bottom:.1}" text-anchor="end">{bottom_label}</text>"##,
            LEFT - 4.0,
            top + 10.0,
            LEFT - 4.0
        );
        if *log {
            let mut decade = 1.0;
            while decade < top_label {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#d0d7de" stroke-dasharray="2,3"/><text x="{:.1}" y="{:.1}" text-anchor="end">{decade}</text>"##,
                    W - RIGHT,
                    y(decade),
                    y(decade),
                    LEFT - 4.0,
                    y(decade) + 4.0
                );
                decade *= 10.0;
            }
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{PANEL}" fill="none" stroke="#8c959f"/>"##,
            W - LEFT - RIGHT
        );
        for (n, (name, colour, values)) in series.iter().enumerate() {
            let points: Vec<String> = secs
                .iter()
                .zip(values.iter())
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"##,
                points.join(" ")
            );
            // The legend above the panel's right end, clear of the lines.
            let lx = W - RIGHT - 300.0 + 150.0 * n as f64;
            let ly = top - 6.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">{name}</text>"##,
                lx + 16.0,
                ly - 4.0,
                ly - 4.0,
                lx + 20.0
            );
        }
        // Faults; events less than a second apart share one label.
        let mut labels: Vec<(f64, String)> = Vec::new();
        for (at, what) in faults {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{bottom}" stroke="#6e40c9" stroke-dasharray="4,3"/>"##,
                x(*at)
            );
            match labels.last_mut() {
                Some((last, text)) if at - *last < 1.0 => {
                    text.push_str(" / ");
                    text.push_str(what);
                }
                _ => labels.push((*at, what.clone())),
            }
        }
        if i == 2 {
            for (at, text) in labels {
                let _ = writeln!(
                    svg,
                    r##"<text transform="translate({:.1},{:.1}) rotate(-90)" fill="#6e40c9">{text}</text>"##,
                    x(at) + 10.0,
                    bottom - 4.0
                );
            }
        }
    }
    let axis = TOP + 3.0 * (PANEL + GAP) - GAP + 14.0;
    let mut t = 0.0;
    while t <= total {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{axis:.1}" text-anchor="middle">{t:.0} s</text>"##,
            x(t)
        );
        t += if total > 60.0 { 15.0 } else { 5.0 };
    }
    svg.push_str("</svg>\n");
    svg
}

/// The seed from `loadgen seed`'s variables in the environment.
pub fn seed_from_env() -> anyhow::Result<Seed> {
    let var = |name: &str| {
        std::env::var(name)
            .map_err(|_| anyhow!("{name} is not set (eval \"$(loadgen seed …)\" first)"))
    };
    Ok(Seed {
        token: var("BENCH_TOKEN")?,
        first_article: var("BENCH_ARTICLE_MIN")?.parse()?,
        last_article: var("BENCH_ARTICLE_MAX")?.parse()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            steady_rate: 10.0,
            factor: 10.0,
            steady: 2.0,
            spike: 2.0,
            outage: 4.0,
            recovery: 2.0,
            fresh_share: 0.5,
            p99_max_ms: 100.0,
        }
    }

    fn second(reads: u64, read_5xx: u64, ms: u64) -> Second {
        let mut s = Second::new();
        s.requests = reads;
        s.reads = reads;
        s.ok = reads - read_5xx;
        s.errors = read_5xx;
        s.read_5xx = read_5xx;
        for _ in 0..reads {
            s.latency.saturating_record(ms * 1000);
        }
        s
    }

    /// Content killed at 4.2 s and serving again at 7.1 s.
    fn outage() -> Vec<(f64, String)> {
        vec![
            (4.2, "content_killed".into()),
            (7.1, "content_serving".into()),
        ]
    }

    /// Eleven seconds of 10 reads answered in 5 ms.
    fn calm() -> Vec<Second> {
        (0..11).map(|_| second(10, 0, 5)).collect()
    }

    #[test]
    fn the_rate_is_ten_times_higher_during_the_spike_only() {
        let plan = plan();
        assert_eq!(plan.rate_at(1.0), 10.0);
        assert_eq!(plan.rate_at(2.5), 100.0);
        assert_eq!(plan.rate_at(4.0), 10.0);
    }

    #[test]
    fn a_5xx_read_while_content_is_down_fails_the_run() {
        let faults = outage();
        let good: Vec<Second> = calm();
        let (_, passed) = report(&plan(), &good, &faults, 0);
        assert!(passed);
        let mut bad: Vec<Second> = calm();
        bad[5] = second(10, 1, 5);
        let (md, passed) = report(&plan(), &bad, &faults, 0);
        assert!(!passed, "{md}");
        assert!(md.contains("FAIL no 5xx on reads of answered pages while content was down (1 of"));
        // Outside the outage a 5xx does not fail this threshold.
        let mut before: Vec<Second> = calm();
        before[1] = second(10, 1, 5);
        assert!(report(&plan(), &before, &faults, 0).1);
    }

    #[test]
    fn a_5xx_on_a_page_never_answered_before_is_counted_but_does_not_fail_the_run() {
        let faults = outage();
        let mut run: Vec<Second> = calm();
        run[5] = second(10, 1, 5);
        run[5].read_5xx_unseen = 1;
        let (md, passed) = report(&plan(), &run, &faults, 0);
        assert!(passed, "{md}");
        assert!(
            md.contains("(0 of 20 reads; 0 served stale; 1 5xx on pages never answered before)"),
            "{md}"
        );
    }

    #[test]
    fn a_slow_phase_fails_the_p99_bound() {
        let faults = outage();
        let mut slow: Vec<Second> = calm();
        slow[3] = second(10, 0, 500);
        let (md, passed) = report(&plan(), &slow, &faults, 0);
        assert!(!passed);
        assert!(md.contains("FAIL reads' p99 in spike"), "{md}");
        let svg = svg(&plan(), &slow, &faults);
        assert!(svg.starts_with("<svg") && svg.contains("content_killed"));
    }
}
