//! The server half: honour the caller's `grpc-timeout`.
//!
//! tonic's server enforces `grpc-timeout` too, outside every layer we can
//! add (`transport::Server` wraps the whole stack in its own timer, with no
//! way to turn it off in tonic 0.14), and answers CANCELLED when it fires.
//! Two timers for one deadline race, and a caller whose deadline passed
//! would sometimes see CANCELLED. So the deadline is enforced here, one
//! timer tick before tonic's: tonic arms its timer after this layer's
//! `call` returns, for the same budget, so a deadline one tick (1 ms, the
//! resolution of tokio's timer) earlier always lands on an earlier tick and
//! this layer answers DEADLINE_EXCEEDED first; tonic's timer never fires
//! for a call this layer bounds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{DEADLINE, Timer, Until, decode};

/// The resolution of tokio's timer: deadlines are rounded up to it.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Applies the caller's deadline to the handler (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ServerDeadlineLayer {
    /// Cap for calls that carry no deadline (or a longer one).
    max: Option<Duration>,
}

impl ServerDeadlineLayer {
    pub fn new(max: Option<Duration>) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for ServerDeadlineLayer {
    type Service = ServerDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerDeadline {
            inner,
            max: self.max,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerDeadline<S> {
    inner: S,
    max: Option<Duration>,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for ServerDeadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let asked = request.headers().get(&super::GRPC_TIMEOUT).and_then(decode);
        let budget = match (asked, self.max) {
            (Some(a), Some(m)) => Some(a.min(m)),
            (a, m) => a.or(m),
        };
        match budget {
            None => ServerFuture::Unbounded {
                inner: self.inner.call(request),
            },
            Some(budget) => {
                let deadline = Instant::now() + budget.saturating_sub(TIMER_TICK);
                ServerFuture::Bounded {
                    inner: DEADLINE.scope(deadline, self.inner.call(request)),
                    timer: Timer::new(Until::Deadline(deadline)),
                }
            }
        }
    }
}

pin_project! {
    #[project = Proj]
    pub enum ServerFuture<F> {
        Unbounded { #[pin] inner: F },
        Bounded {
            #[pin]
            inner: TaskLocalFuture<Instant, F>,
            #[pin]
            timer: Timer,
        },
    }
}

impl<F, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Unbounded { inner } => inner.poll(cx),
            Proj::Bounded { inner, timer } => {
                if let Poll::Ready(result) = inner.poll(cx) {
                    return Poll::Ready(result);
                }
                ready!(timer.poll_expired(cx));
                // Answering drops the handler: its work stops here.
                tracing::debug!("deadline exceeded; handler cancelled");
                Poll::Ready(Ok(
                    tonic::Status::deadline_exceeded("deadline exceeded").into_http()
                ))
            }
        }
    }
}
