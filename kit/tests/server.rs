//! The gRPC server bootstrap against a real etcd: registration, health,
//! readiness, reflection and the order of the shutdown sequence.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kit::PlatformSettings;
use kit::discovery::{ChannelSettings, Instance, Resolver};
use kit::metrics::Registry;
use kit::server::{GrpcServer, ServerError};
use kit::testing::{self, RunningServer};
use tonic::transport::Channel;

fn platform() -> PlatformSettings {
    testing::init_tracing();
    let mut platform = PlatformSettings::default();
    testing::prepare_platform(&mut platform, &format!("/{}", testing::unique_name("kit")));
    platform
}

async fn spawn(name: &str, platform: &PlatformSettings) -> RunningServer {
    let server = GrpcServer::bind(name, platform, &Registry::new())
        .await
        .unwrap();
    RunningServer::spawn(server)
}

async fn etcd_instances(platform: &PlatformSettings, service: &str) -> Vec<Instance> {
    let mut client = etcd_client::Client::connect(&platform.discovery.endpoints, None)
        .await
        .unwrap();
    let prefix = format!("{}/{service}/", platform.discovery.prefix);
    let found = client
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap();
    found
        .kvs()
        .iter()
        .map(|kv| serde_json::from_slice(kv.value()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_serving_server_is_registered_ready_and_serving() {
    let platform = platform();
    let server = spawn("alpha", &platform).await;
    server.wait_until_serving().await;

    let instances = etcd_instances(&platform, "alpha").await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].addr, server.grpc_addr.to_string());
    assert!(instances[0].id.starts_with("alpha-"));

    let admin = format!("http://{}", server.admin_addr);
    let ready = reqwest::get(format!("{admin}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(testing::metric(&metrics, "discovery_registered", &[]), 1.0);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_removes_the_key_while_the_listener_still_accepts() {
    let mut platform = platform();
    platform.shutdown.propagation_delay = Duration::from_millis(800);
    let server = spawn("beta", &platform).await;
    server.wait_until_serving().await;
    let addr = server.grpc_addr;

    let stopping = tokio::spawn(server.stop());
    let mut gone = false;
    for _ in 0..40 {
        if etcd_instances(&platform, "beta").await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the key is deleted at the start of shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_ok(),
        "still accepting during the propagation delay"
    );
    stopping.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "closed after draining"
    );
}

#[tokio::test]
async fn a_resolver_sees_instances_come_and_go() {
    let platform = platform();
    let resolver = Resolver::spawn(
        &platform.discovery,
        &ChannelSettings::default(),
        &Registry::new(),
    );
    resolver.wait_synced().await;
    let endpoints = resolver.endpoints("gamma");
    assert!(endpoints.is_empty());

    let one = spawn("gamma", &platform).await;
    let two = spawn("gamma", &platform).await;
    let expected = [one.grpc_addr.to_string(), two.grpc_addr.to_string()];
    tokio::time::timeout(
        Duration::from_secs(5),
        endpoints.wait_until(|i| i.len() == 2 && i.iter().all(|i| expected.contains(&i.addr))),
    )
    .await
    .unwrap();

    one.stop().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        endpoints.wait_until(|i| i.len() == 1),
    )
    .await
    .unwrap();
    assert_eq!(endpoints.instances()[0].addr, expected[1]);
    two.stop().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        endpoints.wait_until(<[_]>::is_empty),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn reflection_answers_like_grpcurl_asks() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let platform = platform();
    let server = spawn("delta", &platform).await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_wildcard_host_without_an_advertised_one_is_refused() {
    let mut platform = platform();
    platform.grpc.host = "0.0.0.0".into();
    let error = GrpcServer::bind("epsilon", &platform, &Registry::new())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, ServerError::NoAdvertiseHost(_)));
    assert!(
        error
            .to_string()
            .contains("APP_PLATFORM__GRPC__ADVERTISE_HOST")
    );
}

/// A gRPC service whose only method panics.
#[derive(Clone)]
struct Boom;

impl tonic::server::NamedService for Boom {
    const NAME: &'static str = "boom.v1.Boom";
}

impl tower::Service<http::Request<tonic::body::Body>> for Boom {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        panic!("the handler fell over")
    }
}

#[tokio::test]
async fn a_panicking_handler_fails_its_own_call_and_the_server_keeps_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tower::ServiceExt as _;

    let platform = platform();
    let server = GrpcServer::bind("boom", &platform, &Registry::new())
        .await
        .unwrap()
        .add_service(Boom);
    let server = RunningServer::spawn(server);
    server.wait_until_serving().await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let request = http::Request::post(format!("{}/boom.v1.Boom/Explode", server.url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .unwrap();
    let response = channel.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "13", "INTERNAL");

    // Same connection, next call: served.
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");
    server.stop().await;
}

/// A gRPC service whose only method answers after a second.
#[derive(Clone)]
struct Slow;

impl tonic::server::NamedService for Slow {
    const NAME: &'static str = "slow.v1.Slow";
}

impl tower::Service<http::Request<tonic::body::Body>> for Slow {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(tonic::Status::ok("").into_http())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_the_callers_deadline_always_answers_deadline_exceeded() {
    let platform = platform();
    let server = GrpcServer::bind("slow", &platform, &Registry::new())
        .await
        .unwrap()
        .add_service(Slow);
    let server = RunningServer::spawn(server);
    server.wait_until_serving().await;
    let tcp = tokio::net::TcpStream::connect(server.grpc_addr)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);

    let call = |budget: String| {
        let mut sender = sender.clone();
        let uri = format!("{}/slow.v1.Slow/Wait", server.url());
        async move {
            let request = http::Request::post(uri)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", budget)
                .body(tonic::body::Body::empty())
                .unwrap();
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            response
                .headers()
                .get("grpc-status")
                .map_or("none".to_owned(), |v| v.to_str().unwrap().to_owned())
        }
    };
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    // Sequential calls with budgets of every size around the timer's
    // millisecond resolution, then bursts whose deadlines expire on the
    // same timer tick (a busy server), where two timers for one deadline
    // would race.
    for i in 0..48u64 {
        let budget = match i % 4 {
            0 => format!("{}m", 1 + i % 7),
            1 => format!("{}u", 300 + i * 137),
            2 => format!("{}m", 10 + i),
            _ => format!("{}n", 1_000_000 + i * 90_001),
        };
        *codes.entry(call(budget).await).or_default() += 1;
    }
    for _ in 0..8 {
        let burst: Vec<_> = (0..100)
            .map(|_| tokio::spawn(call("20m".to_owned())))
            .collect();
        for answer in burst {
            *codes.entry(answer.await.unwrap()).or_default() += 1;
        }
    }
    assert_eq!(
        codes,
        [("4".to_owned(), 848)].into(),
        "grpc-status of calls past their deadline (4: DEADLINE_EXCEEDED, 1: CANCELLED)"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_caller_past_its_deadline_always_sees_deadline_exceeded_counted_as_a_timeout() {
    use tower::ServiceExt as _;

    let platform = platform();
    let server = GrpcServer::bind("slow", &platform, &Registry::new())
        .await
        .unwrap()
        .add_service(Slow);
    let server = RunningServer::spawn(server);
    server.wait_until_serving().await;

    let registry = Registry::new();
    let resolver = Resolver::spawn(&platform.discovery, &ChannelSettings::default(), &registry);
    tokio::time::timeout(
        Duration::from_secs(10),
        resolver.endpoints("slow").wait_until(|i| i.len() == 1),
    )
    .await
    .unwrap();
    let mut resilience = kit::resilience::ResilienceSettings::default();
    // Keep the circuit closed: every call must reach the server.
    resilience.default.breaker.request_volume_threshold = u32::MAX;
    let clients = kit::client::Clients::new(&resolver, &registry, &resilience).unwrap();
    let channel = clients.channel("slow");

    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..40u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(10 + i % 25);
        let request = http::Request::post("/slow.v1.Slow/Wait")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::empty())
            .unwrap();
        let answer =
            kit::resilience::deadline::scope(deadline, channel.clone().oneshot(request)).await;
        let code = match answer {
            Ok(response) => response
                .headers()
                .get("grpc-status")
                .map_or("0".to_owned(), |v| v.to_str().unwrap().to_owned()),
            Err(status) => format!("{}", status.code() as i32),
        };
        *codes.entry(code).or_default() += 1;
    }
    assert_eq!(
        codes,
        [("4".to_owned(), 40)].into(),
        "codes the caller saw (4: DEADLINE_EXCEEDED, 1: CANCELLED, 14: UNAVAILABLE)"
    );
    let breaker = clients.breakers().find("slow.v1.Slow/Wait").unwrap();
    assert_eq!(breaker.counts().timeouts, 40, "{:?}", breaker.counts());
    server.stop().await;
}

/// `/readyz` of `server` until it answers `status`; panics after 10 s.
async fn wait_readyz(server: &RunningServer, status: u16) -> serde_json::Value {
    let url = format!("http://{}/readyz", server.admin_addr);
    for _ in 0..400 {
        let response = reqwest::get(&url).await.unwrap();
        if response.status() == status {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never answered {status}");
}

#[tokio::test]
async fn a_service_is_ready_only_while_its_critical_backends_have_an_instance() {
    let mut platform = platform();
    platform.readiness.critical = vec!["upstream".into()];
    let registry = Registry::new();
    let resolver = Resolver::spawn(&platform.discovery, &platform.channel, &registry);
    let server = GrpcServer::bind("caller", &platform, &registry)
        .await
        .unwrap()
        .calls_through(resolver, &["upstream", "extra"])
        .unwrap();
    let caller = RunningServer::spawn(server);
    // Registered (gRPC health follows registration alone), but no upstream:
    // not ready, and the body says why.
    caller.wait_until_serving().await;
    let body = wait_readyz(&caller, 503).await;
    assert_eq!(body["missing"], serde_json::json!(["upstream"]), "{body}");
    assert_eq!(body["registered"], true, "{body}");

    let upstream = spawn("upstream", &platform).await;
    let body = wait_readyz(&caller, 200).await;
    // An optional backend without instances only shows in the report.
    assert_eq!(body["degraded"], serde_json::json!(["extra"]), "{body}");

    upstream.stop().await;
    wait_readyz(&caller, 503).await;
    caller.stop().await;
}

#[tokio::test]
async fn a_critical_backend_the_service_does_not_call_is_refused() {
    let mut platform = platform();
    platform.readiness.critical = vec!["contnet".into()];
    let registry = Registry::new();
    let resolver = Resolver::spawn(&platform.discovery, &platform.channel, &registry);
    let result = GrpcServer::bind("caller", &platform, &registry)
        .await
        .unwrap()
        .calls_through(resolver, &["content"]);
    let Err(error) = result else {
        panic!("a typo in readiness.critical was accepted")
    };
    assert!(matches!(error, ServerError::Readiness(_)), "{error}");
    assert!(error.to_string().contains("contnet"), "{error}");
}
