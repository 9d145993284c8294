//! Per-call overhead of the protection stack (breaker → bulkhead → deadline)
//! against the bare service it wraps, single-threaded and with a second
//! thread hammering the same breaker and bulkhead.
//!
//! `cargo bench -p kit --bench resilience`; the difference between a
//! protected id and `bare` is the stack's cost per call. `guarded` adds
//! what production adds: finding the stack of the called gRPC method.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use kit::resilience::bulkhead::BulkheadSettings;
use kit::resilience::{
    Breaker, BreakerSettings, Breakers, Bulkhead, Circuit, Deadline, Guarded, Limiter,
    ResilienceSettings,
};
use tower::{BoxError, Service};

/// The cheapest possible callee: answers at once.
#[derive(Clone)]
struct Bare;

impl Service<http::Request<()>> for Bare {
    type Response = http::Response<()>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<http::Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(())))
    }
}

type Stack = Breaker<Bulkhead<Deadline<Bare>>>;

fn stack() -> Stack {
    let circuit = Circuit::new("bench", BreakerSettings::default()).into_static();
    let limiter = Limiter::new("bench", &BulkheadSettings::default()).into_static();
    Breaker::new(
        Bulkhead::new(Deadline::new(Bare, Duration::from_secs(2)), limiter),
        circuit,
    )
}

/// The production path: the method's stack found by its path, then called.
fn guarded() -> Guarded<Bare> {
    Guarded::new(
        Bare,
        Arc::new(ResilienceSettings::default()),
        Breakers::default(),
    )
}

/// The time driver the deadline layer needs, on this thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// A request as tonic's generated client hands it to the channel's layers:
/// its headers are already there, so inserting `grpc-timeout` does not
/// allocate the map.
fn request() -> http::Request<()> {
    let mut request = http::Request::new(());
    *request.uri_mut() = http::Uri::from_static("/comment.v1.CommentService/CountComments");
    let headers = request.headers_mut();
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    request
}

/// One call, polled to completion (the bare callee is ready at once).
fn call<S, B>(service: &mut S) -> bool
where
    S: Service<http::Request<()>, Response = http::Response<B>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = std::pin::pin!(service.call(request()));
    matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_)))
}

fn overhead(c: &mut Criterion) {
    let runtime = runtime();
    let _entered = runtime.enter();

    let mut group = c.benchmark_group("per_call");
    let mut bare = Bare;
    group.bench_function("bare", |b| b.iter(|| call(&mut bare)));
    let mut protected = stack();
    group.bench_function("breaker+bulkhead+deadline", |b| {
        b.iter(|| call(&mut protected))
    });
    let mut guarded = guarded();
    group.bench_function("guarded", |b| b.iter(|| call(&mut guarded)));

    // The same services shared with a second thread calling them flat out.
    contended(&mut group, &runtime, "bare, 2 threads", Bare);
    contended(
        &mut group,
        &runtime,
        "breaker+bulkhead+deadline, 2 threads",
        stack(),
    );
    contended(&mut group, &runtime, "guarded, 2 threads", guarded.clone());
    group.finish();
}

/// `service` called by this thread while a clone of it is called flat out
/// by another: what sharing breakers and bulkheads between cores costs.
fn contended<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    id: &str,
    service: S,
) where
    S: Service<http::Request<()>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let contender = {
        let mut other = service.clone();
        let stop = stop.clone();
        let handle = runtime.handle().clone();
        std::thread::spawn(move || {
            let _entered = handle.enter();
            while !stop.load(Ordering::Relaxed) {
                call(&mut other);
            }
        })
    };
    let mut mine = service;
    group.bench_function(id, |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                call(&mut mine);
            }
            start.elapsed()
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = contender.join();
}

/// `RESILIENCE_INSTR=<variant>:<calls>` runs `calls` calls of one variant
/// (`bare`, `stack` or `guarded`) inside [`counted_calls`] and exits:
/// `scripts/bench-instr.sh` runs it under callgrind with collection toggled
/// on that function only, so the count per call is exact and repeatable,
/// unlike the wall-clock figures above.
fn instructions(spec: &str) {
    let (variant, calls) = spec
        .split_once(':')
        .expect("RESILIENCE_INSTR=<variant>:<calls>");
    let calls: u64 = calls.parse().expect("a number of calls");
    let runtime = runtime();
    let _entered = runtime.enter();
    match variant {
        "bare" => warm_then_count(&mut Bare, calls),
        "stack" => warm_then_count(&mut stack(), calls),
        "guarded" => warm_then_count(&mut guarded(), calls),
        other => panic!("unknown variant {other}: bare, stack or guarded"),
    }
}

/// The first calls fill the method slots and the allocator's caches: not
/// what a call costs in a serving process.
fn warm_then_count<S, B>(service: &mut S, calls: u64)
where
    S: Service<http::Request<()>, Response = http::Response<B>>,
{
    for _ in 0..1000 {
        call(service);
    }
    assert_eq!(counted_calls(service, calls), calls);
}

#[inline(never)]
fn counted_calls<S, B>(service: &mut S, calls: u64) -> u64
where
    S: Service<http::Request<()>, Response = http::Response<B>>,
{
    (0..calls).map(|_| u64::from(call(service))).sum()
}

criterion_group!(benches, overhead);

fn main() {
    if let Ok(spec) = std::env::var("RESILIENCE_INSTR") {
        instructions(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
