//! The resilience layers as tower services, over an inner service the test
//! controls (it answers when told to), with tokio's paused clock.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use kit::resilience::bulkhead::BulkheadSettings;
use kit::resilience::{Breaker, BreakerSettings, Bulkhead, Circuit, Deadline, Limiter, State};
use tokio::sync::Semaphore;
use tower::{BoxError, Service, ServiceExt};

/// Answers OK once the test adds a permit to `gate`; counts its calls.
#[derive(Clone)]
struct Held {
    gate: Arc<Semaphore>,
}

impl Service<http::Request<()>> for Held {
    type Response = http::Response<()>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        let gate = self.gate.clone();
        Box::pin(async move {
            gate.acquire().await?.forget();
            Ok(http::Response::new(()))
        })
    }
}

fn held() -> (Held, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    (Held { gate: gate.clone() }, gate)
}

fn limiter(n: usize) -> &'static Limiter {
    Limiter::new(
        "b",
        &BulkheadSettings {
            max_concurrent: n,
            adaptive: None,
        },
    )
    .into_static()
}

#[tokio::test]
async fn n_plus_one_concurrent_calls_through_a_bulkhead_of_n_reject_exactly_one() {
    let (inner, gate) = held();
    let limiter = limiter(5);
    let service = Bulkhead::new(inner, limiter);
    let calls: Vec<_> = (0..6)
        .map(|_| service.clone().oneshot(http::Request::new(())))
        .map(tokio::spawn)
        .collect();
    tokio::task::yield_now().await;
    gate.add_permits(6);
    let mut rejected = 0;
    for call in calls {
        if call.await.unwrap().is_err() {
            rejected += 1;
        }
    }
    assert_eq!(rejected, 1);
    assert_eq!(limiter.rejections(), 1);
    assert_eq!(limiter.in_flight(), 0, "every slot is given back");
}

#[tokio::test]
async fn a_service_made_ready_but_never_called_holds_no_slot() {
    let (inner, _gate) = held();
    let limiter = limiter(1);
    let mut service = Bulkhead::new(inner, limiter);
    for _ in 0..3 {
        service.ready().await.unwrap();
    }
    assert_eq!(limiter.in_flight(), 0);
    // An abandoned call gives its slot back too.
    let call = service.call(http::Request::new(()));
    assert_eq!(limiter.in_flight(), 1);
    drop(call);
    assert_eq!(limiter.in_flight(), 0);
    assert!(service.ready().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_budget_times_out_and_counts_against_the_breaker() {
    let (inner, _gate) = held();
    let circuit = Circuit::new(
        "m",
        BreakerSettings {
            request_volume_threshold: 3,
            ..BreakerSettings::default()
        },
    )
    .into_static();
    let service = Breaker::new(Deadline::new(inner, Duration::from_millis(100)), circuit);
    for _ in 0..3 {
        let error = service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap_err();
        assert!(error.is::<kit::resilience::TimedOut>(), "{error}");
    }
    assert_eq!(circuit.counts().timeouts, 3);
    assert_eq!(circuit.state(), State::Open);
    let error = service
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap_err();
    assert!(error.is::<kit::resilience::BreakerOpen>(), "{error}");
}

#[tokio::test]
async fn the_deadline_layer_sends_the_budget_as_grpc_timeout() {
    #[derive(Clone)]
    struct Echo;
    impl Service<http::Request<()>> for Echo {
        type Response = http::Response<()>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<http::Response<()>, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            let mut response = http::Response::new(());
            if let Some(v) = request.headers().get("grpc-timeout") {
                response.headers_mut().insert("echo", v.clone());
            }
            std::future::ready(Ok(response))
        }
    }
    let response = Deadline::new(Echo, Duration::from_millis(250))
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(response.headers()["echo"], "250m");

    // Inside a shorter caller deadline, what is left of it wins.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(40);
    let response = kit::resilience::deadline::scope(
        deadline,
        Deadline::new(Echo, Duration::from_secs(2)).oneshot(http::Request::new(())),
    )
    .await
    .unwrap();
    let sent: u64 = response.headers()["echo"]
        .to_str()
        .unwrap()
        .trim_end_matches('m')
        .parse()
        .unwrap();
    assert!(sent <= 40, "{sent}");
}

/// Never answers; counts the calls that reached it.
#[derive(Clone, Default)]
struct Callee {
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Service<http::Request<()>> for Callee {
    type Response = http::Response<()>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_inherited_deadline_is_spent_fails_at_once_without_blaming_the_callee() {
    let callee = Callee::default();
    let circuit = Circuit::new(
        "m",
        BreakerSettings {
            request_volume_threshold: 3,
            ..BreakerSettings::default()
        },
    )
    .into_static();
    let service = Breaker::new(
        Deadline::new(callee.clone(), Duration::from_secs(2)),
        circuit,
    );
    for left in [0, 1, 2, 4, 0, 3, 1, 2, 4, 0] {
        // A slow caller with a few milliseconds (or none) of its own budget left.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left);
        let error = kit::resilience::deadline::scope(
            deadline,
            service.clone().oneshot(http::Request::new(())),
        )
        .await
        .unwrap_err();
        assert_eq!(
            kit::resilience::status(error).code(),
            tonic::Code::DeadlineExceeded,
            "{left} ms left"
        );
    }
    assert_eq!(
        callee.calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was sent"
    );
    assert_eq!(circuit.counts().timeouts, 0, "the callee is not blamed");
    assert_eq!(circuit.state(), State::Closed);

    // With more than the floor left, the call is sent (and bounded by it).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    let error =
        kit::resilience::deadline::scope(deadline, service.clone().oneshot(http::Request::new(())))
            .await
            .unwrap_err();
    assert!(error.is::<kit::resilience::TimedOut>(), "{error}");
    assert_eq!(callee.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Fills a bulkhead of one with a call that never ends, then sends 30
/// more through the breaker above it; returns the breaker's state.
async fn rejections_through_a_full_bulkhead(breaker: serde_json::Value) -> (State, u64) {
    let settings: BreakerSettings = serde_json::from_value(breaker).unwrap();
    let circuit = Circuit::new("m", settings).into_static();
    let service = Breaker::new(Bulkhead::new(Callee::default(), limiter(1)), circuit);
    let _hog = tokio::spawn(service.clone().oneshot(http::Request::new(())));
    tokio::task::yield_now().await;
    for _ in 0..30 {
        let error = service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap_err();
        assert!(
            error.is::<kit::resilience::BulkheadFull>()
                || error.is::<kit::resilience::BreakerOpen>(),
            "{error}"
        );
    }
    (circuit.state(), circuit.counts().rejections)
}

#[tokio::test(start_paused = true)]
async fn bulkhead_rejections_trip_the_breaker_only_when_the_method_counts_them() {
    let (state, rejections) =
        rejections_through_a_full_bulkhead(serde_json::json!({"count_bulkhead_rejections": true}))
            .await;
    assert_eq!(state, State::Open, "counted as failures, as Hystrix does");
    assert_eq!(
        rejections, 20,
        "the 20th rejection trips it; the rest are short-circuited"
    );

    let (state, rejections) =
        rejections_through_a_full_bulkhead(serde_json::json!({"count_bulkhead_rejections": false}))
            .await;
    assert_eq!(
        state,
        State::Closed,
        "neutral: a full bulkhead is our own limit"
    );
    assert_eq!(rejections, 30);

    let (state, _) = rejections_through_a_full_bulkhead(serde_json::json!({})).await;
    assert_eq!(state, State::Closed, "the documented default: neutral");
}

/// Fails the way a tonic channel does when the `grpc-timeout` it was handed
/// runs out first: tonic enforces the header on the client side too.
#[derive(Clone)]
struct TonicTimesOut;

impl Service<http::Request<()>> for TonicTimesOut {
    type Response = http::Response<()>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<http::Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Err(tonic::TimeoutExpired(()).into()))
    }
}

#[tokio::test(start_paused = true)]
async fn tonics_own_timeout_of_the_same_deadline_reads_as_deadline_exceeded_and_a_timeout() {
    let circuit = Circuit::new("m", BreakerSettings::default()).into_static();
    let service = Breaker::new(
        Deadline::new(TonicTimesOut, Duration::from_secs(2)),
        circuit,
    );
    let error = service.oneshot(http::Request::new(())).await.unwrap_err();
    assert_eq!(
        kit::resilience::status(error).code(),
        tonic::Code::DeadlineExceeded,
        "not UNAVAILABLE (which the gateway would retry as never acted on)"
    );
    assert_eq!(circuit.counts().timeouts, 1, "{:?}", circuit.counts());
}

#[tokio::test]
async fn a_service_refuses_adaptive_bulkhead_settings_that_cannot_work_before_serving() {
    // What every service's start-up does before binding a port
    // (`Clients::new` validates its `platform.resilience`).
    let registry = kit::metrics::Registry::new();
    let resolver = kit::discovery::Resolver::spawn(
        &kit::discovery::DiscoverySettings::default(),
        &kit::discovery::ChannelSettings::default(),
        &registry,
    );
    let settings: kit::resilience::ResilienceSettings = serde_json::from_value(serde_json::json!({
        "overrides": {"content.v1.ContentService": {"bulkhead": {"adaptive": {"min": 8, "max": 4}}}}
    }))
    .unwrap();
    let Err(refused) = kit::client::Clients::new(&resolver, &registry, &settings) else {
        panic!("accepted");
    };
    let message = refused.to_string();
    assert!(
        message.contains("overrides.content.v1.ContentService")
            && message.contains("bulkhead.adaptive.min"),
        "{message}"
    );
}
