//! Per-call overhead of the protection stack (breaker → bulkhead → deadline)
//! against the bare service it wraps, single-threaded and with a second
//! thread hammering the same breaker and bulkhead.
//!
//! `cargo bench -p kit --bench resilience`; the difference between the two
//! benchmark ids is the stack's cost per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kit::resilience::bulkhead::BulkheadSettings;
use kit::resilience::{Breaker, BreakerSettings, Bulkhead, Circuit, Deadline, Limiter};
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
    let circuit = Arc::new(Circuit::new("bench", BreakerSettings::default()));
    let limiter = Arc::new(Limiter::new("bench", &BulkheadSettings::default()));
    Breaker::new(
        Bulkhead::new(Deadline::new(Bare, Duration::from_secs(2)), limiter),
        circuit,
    )
}

/// One call, polled to completion (the bare callee is ready at once).
fn call<S>(service: &mut S) -> bool
where
    S: Service<http::Request<()>, Response = http::Response<()>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = std::pin::pin!(service.call(http::Request::new(())));
    matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_)))
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();

    let mut group = c.benchmark_group("per_call");
    let mut bare = Bare;
    group.bench_function("bare", |b| b.iter(|| call(&mut bare)));
    let mut protected = stack();
    group.bench_function("breaker+bulkhead+deadline", |b| {
        b.iter(|| call(&mut protected))
    });

    // The same stack shared with a second thread calling it flat out.
    let shared = stack();
    let stop = Arc::new(AtomicBool::new(false));
    let contender = {
        let mut other = shared.clone();
        let stop = stop.clone();
        let handle = runtime.handle().clone();
        std::thread::spawn(move || {
            let _entered = handle.enter();
            while !stop.load(Ordering::Relaxed) {
                call(&mut other);
            }
        })
    };
    let mut mine = shared.clone();
    group.bench_function("breaker+bulkhead+deadline, 2 threads", |b| {
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
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
