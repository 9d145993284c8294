use std::time::Duration;

use kit::testing::metric;
use tokio::time::Instant;

use crate::load::{Load, row, secs};
use crate::stack::{Stack, TTL};

const LIST: &str = "/content.v1.ContentService/ListArticles";

async fn served(process: &crate::stack::Process) -> f64 {
    metric(
        &process.metrics().await,
        "grpc_server_requests_total",
        &[("method", LIST)],
    )
}

pub async fn seed(stack: &Stack) {
    let http = reqwest::Client::new();
    let register = serde_json::json!({"username": "chaos", "password": "chaos-password"});
    http.post(stack.url("/api/v1/users"))
        .json(&register)
        .send()
        .await
        .unwrap();
    let session: serde_json::Value = http
        .post(stack.url("/api/v1/sessions"))
        .json(&register)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap();
    for i in 0..3 {
        let article = serde_json::json!({"title": format!("t{i}"), "body": "b"});
        let r = http
            .post(stack.url("/api/v1/articles"))
            .bearer_auth(token)
            .json(&article)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
}

#[tokio::test]
async fn sigkill_of_one_of_two_content_instances_under_load() {
    let mut stack = Stack::start().await;
    seed(&stack).await;
    stack.start_service("content").await;
    stack.wait_for_instances("content", 2).await;

    let load = Load::start(stack.url("/api/v1/articles?limit=5"), 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = stack.take("content");
    let killed = Instant::now();
    victim.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = load.stop(killed).await;
    println!(
        "CHAOS sigkill: {} requests, {} failed, last failure {:?} after the kill",
        report.requests, report.failures, report.last_failure_after
    );
    row(
        "SIGKILL one of two content instances",
        report.requests,
        report.failures,
        &format!(
            "last failure {} after the kill",
            secs(report.last_failure_after)
        ),
    );
    assert!(report.requests > 100, "the load ran: {report:?}");
    assert!(
        report
            .last_failure_after
            .is_none_or(|d| d < Duration::from_secs(1)),
        "errors stop within a second: {report:?}"
    );
    let survivor = stack.instances("content")[0];
    assert!(served(survivor).await > 0.0);
}

#[tokio::test]
async fn a_rolling_restart_of_every_service_under_load_fails_no_request() {
    let mut stack = Stack::start().await;
    seed(&stack).await;
    let load = Load::start(stack.url("/api/v1/articles?limit=5"), 4);
    let started = Instant::now();
    for service in ["user", "content", "comment"] {
        stack.start_service(service).await;
        stack.wait_for_instances(service, 2).await;
        let old = stack.take(service);
        let took = old.terminate().await;
        stack.wait_for_instances(service, 1).await;
        println!("CHAOS rolling: {service} replaced; old instance exited {took:?} after SIGTERM");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop(started).await;
    println!(
        "CHAOS rolling: {} requests, {} failed during the rolling restart",
        report.requests, report.failures
    );
    row(
        "rolling restart of every service",
        report.requests,
        report.failures,
        "-",
    );
    assert!(report.requests > 100, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
}

#[tokio::test]
async fn a_new_instance_gets_traffic_soon_after_it_registers() {
    let mut stack = Stack::start().await;
    seed(&stack).await;
    let load = Load::start(stack.url("/api/v1/articles?limit=5"), 4);
    stack.start_service("content").await;
    let registered = Instant::now();
    let newcomer = stack.instances("content")[1];
    let mut first_traffic = None;
    for _ in 0..200 {
        if served(newcomer).await > 0.0 {
            first_traffic = Some(registered.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let report = load.stop(registered).await;
    println!("CHAOS join: first request {first_traffic:?} after registration; {report:?}");
    assert!(
        first_traffic.is_some(),
        "the new instance never got traffic"
    );
    assert_eq!(report.failures, 0);
}

#[tokio::test]
async fn etcd_down_for_30_seconds_the_gateway_keeps_answering_and_services_re_register() {
    let mut stack = Stack::start().await;
    seed(&stack).await;
    let load = Load::start(stack.url("/api/v1/articles?limit=5"), 2);
    stack.etcd().kill();
    let down = Instant::now();
    // Every gateway loses etcd at the same moment: readiness must hold on
    // last-known endpoints for the whole outage (no cliff after N seconds).
    let http = reqwest::Client::new();
    let mut unready = 0;
    let mut report_body = serde_json::Value::Null;
    while down.elapsed() < Duration::from_secs(30) {
        let ready = http.get(stack.url("/readyz")).send().await.unwrap();
        if ready.status() != 200 {
            unready += 1;
        }
        report_body = ready.json().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(unready, 0, "unready while etcd was down: {report_body}");
    let etcd = report_body["etcd"].as_str().unwrap_or_default();
    assert!(etcd.starts_with("unreachable since "), "{report_body}");
    stack.etcd().restart().await;
    let back = Instant::now();
    let mut all_back = None;
    while back.elapsed() < TTL + Duration::from_secs(10) {
        let mut n = 0;
        for service in ["user", "content", "comment"] {
            n += stack.registered(service).await.min(1);
        }
        if n == 3 {
            all_back = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = load.stop(down).await;
    println!(
        "CHAOS etcd outage: {report:?}; every service registered {all_back:?} after etcd returned"
    );
    row(
        "single etcd down 30 s",
        report.requests,
        report.failures,
        &format!("all registered {} after etcd returned", secs(all_back)),
    );
    assert!(all_back.is_some(), "services did not re-register");
    assert_eq!(report.failures, 0, "the gateway kept answering: {report:?}");
}

#[tokio::test]
async fn sigterm_with_an_open_stream_still_exits_within_the_grace_period() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;

    let mut stack = Stack::start().await;
    let content = stack.take("content");
    // Find the instance's gRPC address in etcd and hold a stream open on it.
    let mut etcd = etcd_client::Client::connect(&stack.endpoints, None)
        .await
        .unwrap();
    let found = etcd
        .get(
            format!("{}/content/", stack.prefix),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let instance: kit::discovery::Instance =
        serde_json::from_slice(found.kvs()[0].value()).unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", instance.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<ServerReflectionRequest>(1);
    let _open = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap();

    let took = content.terminate().await;
    drop(tx);
    println!(
        "CHAOS sigterm with an open stream: exited after {took:?} (propagation 0.5 s + drain limit 3 s)"
    );
    assert!(
        took < Duration::from_secs(8),
        "exited within its grace period: {took:?}"
    );
}
