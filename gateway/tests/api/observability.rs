//! Metrics as Prometheus scrapes them, and the live dashboard as a person
//! sees it (headless Chromium).

use std::path::PathBuf;
use std::time::Duration;

use kit::testing::metric;
use reqwest::StatusCode;

use crate::browser::Browser;
use crate::helpers::{self, TestStack, spawn_stack};

fn series(exposition: &str, prefix: &str) -> usize {
    exposition.lines().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test]
async fn a_thousand_random_unknown_paths_add_no_series() {
    let stack = spawn_stack().await;
    assert_eq!(
        stack.get("/no/such/path").await.status(),
        StatusCode::NOT_FOUND
    );
    let before = stack.gateway_metrics().await;
    for i in 0..1000 {
        let path = format!("/random/{i}/{}", fastrand_path(i));
        assert_eq!(stack.get(&path).await.status(), StatusCode::NOT_FOUND);
    }
    let after = stack.gateway_metrics().await;
    assert_eq!(
        series(&before, "http_server_"),
        series(&after, "http_server_"),
        "unknown paths added series"
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        metric(&after, "http_server_requests_total", &unmatched),
        1001.0
    );
    assert!(!after.contains("/random/"));
    stack.stop().await;
}

fn fastrand_path(i: u32) -> String {
    format!("{:x}", i.wrapping_mul(2_654_435_761))
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("metra").await;
    let article = stack.publish(&token, "Counted").await;
    let id = article["id"].as_i64().unwrap();
    assert_eq!(
        stack.get(&format!("/api/v1/articles/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        stack.get("/api/v1/articles/999999").await.status(),
        StatusCode::NOT_FOUND
    );
    let text = stack.gateway_metrics().await;
    let route = ("route", "/api/v1/articles/{id}");
    assert_eq!(
        metric(
            &text,
            "http_server_requests_total",
            &[route, ("method", "GET"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "http_server_requests_total",
            &[route, ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "http_server_request_duration_seconds_count",
            &[route]
        ),
        2.0
    );
    assert!(text.contains("http_server_in_flight_requests"));
    assert!(metric(&text, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(text.contains("process_cpu_seconds_total"));
    stack.stop().await;
}

#[tokio::test]
async fn every_metrics_endpoint_passes_promtool() {
    let stack = spawn_stack().await;
    let (_, token) = stack.login_as("prom").await;
    stack.publish(&token, "Linted").await;
    stack.get("/api/v1/articles").await;
    stack.get("/nowhere").await;
    let admins = [
        stack.admin.clone(),
        format!("http://{}", stack.user.admin_addr),
        format!("http://{}", stack.content[0].admin_addr),
    ];
    for admin in admins {
        let text = stack
            .http
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        promtool_check(&text).await;
    }
    stack.stop().await;
}

async fn promtool_check(exposition: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian `prometheus`; scripts/deps.sh test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(exposition.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool rejected the exposition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Requests to the gateway for `duration`, bounded in count.
fn load(stack: &TestStack, duration: Duration) -> tokio::task::JoinHandle<()> {
    let http = stack.http.clone();
    let base = stack.base.clone();
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + duration;
        for i in 0..20_000u32 {
            if tokio::time::Instant::now() > until {
                break;
            }
            let path = if i % 5 == 0 {
                "/api/v1/articles/1"
            } else {
                "/api/v1/articles"
            };
            let _ = http.get(format!("{base}{path}")).send().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// The text of the element with `id` in a dumped DOM.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = start + dom[start..].find('>').unwrap() + 1;
    let close = open + dom[open..].find('<').unwrap();
    dom[open..close].to_owned()
}

fn number(dom: &str, id: &str) -> f64 {
    let text = text_of(dom, id);
    text.trim()
        .trim_end_matches(" s")
        .parse()
        .unwrap_or_else(|_| panic!("#{id} is not a number: {text:?}"))
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 10_000, "a near-empty screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test]
async fn the_dashboard_shows_live_numbers_and_open_breakers_in_a_browser() {
    let mut stack = spawn_stack().await;
    let (_, token) = stack.login_as("dash").await;
    stack.publish(&token, "Watched").await;
    let url = format!("{}/admin/dashboard", stack.admin);

    let load_task = load(&stack, Duration::from_secs(30));
    let mut browser = Browser::launch().await;
    browser
        .always_send("authorization", &helpers::admin_basic())
        .await;
    browser.open(&url).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = browser.dom().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = browser.dom().await;
    assert!(
        number(&second, "seq") > number(&first, "seq"),
        "the dashboard did not refresh"
    );
    assert!(
        number(&second, "requests") > number(&first, "requests"),
        "the request count did not move under load"
    );
    assert!(number(&second, "qps") > 0.0);
    assert!(second.contains("data-api=\"GET /api/v1/articles\""));
    assert!(second.contains("data-status=\"200\""));
    for service in ["user", "content", "comment"] {
        assert!(
            second.contains(&format!("data-service=\"{service}\" data-instances=\"1\"")),
            "{service} is not listed live"
        );
    }

    // A killed service: once the gateway's breaker for its method opens,
    // the page must say so.
    const LIST: &str = "content.v1.ContentService/ListArticles";
    for server in stack.content.drain(..) {
        server.stop().await;
    }
    stack.wait_for_instances("content", 0).await;
    let mut open = false;
    for _ in 0..200 {
        let _ = stack.get("/api/v1/articles").await;
        let text = stack.gateway_metrics().await;
        if metric(&text, "breaker_state", &[("breaker", LIST)]) == 1.0 {
            open = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the next push of the stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dom = browser.dom().await;
    assert!(dom.contains("data-service=\"content\" data-instances=\"0\""));
    assert!(open, "the ListArticles breaker never opened");
    assert!(
        dom.contains(&format!("data-breaker=\"{LIST}\" data-state=\"open\"")),
        "breaker_state says open but the page does not"
    );

    // Kept for people (and CI artifacts) to look at.
    let png = browser.screenshot_png().await;
    let (width, height) = png_size(&png);
    assert!(width >= 1000 && height >= 600, "{width}x{height}");
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&screenshot, &png).unwrap();
    eprintln!("dashboard screenshot: {}", screenshot.display());

    load_task.abort();
    stack.stop().await;
}

#[tokio::test]
async fn readiness_polls_are_in_the_metrics_but_not_among_the_dashboards_apis() {
    let stack = spawn_stack().await;
    for _ in 0..20 {
        assert_eq!(stack.get("/readyz").await.status(), StatusCode::OK);
        assert_eq!(stack.get("/healthz").await.status(), StatusCode::OK);
    }
    stack.get("/api/v1/articles").await;
    let metrics = stack.gateway_metrics().await;
    let probes = metric(
        &metrics,
        "http_server_requests_total",
        &[("route", "/readyz"), ("status", "200")],
    );
    assert!(probes >= 20.0, "{probes}");

    // The sampler reads the registry once a second: wait until it has seen
    // the API call, then the probes must be nowhere in the snapshot.
    let url = format!("{}/admin/dashboard/snapshot", stack.admin);
    let mut snapshot = serde_json::Value::Null;
    for _ in 0..100 {
        snapshot = stack
            .http
            .get(&url)
            .bearer_auth(helpers::ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if snapshot["requests"].as_f64() > Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let routes: Vec<&str> = snapshot["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|api| api["route"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["/api/v1/articles"], "{snapshot}");
    assert_eq!(snapshot["requests"].as_f64(), Some(1.0), "{snapshot}");
    stack.stop().await;
}
