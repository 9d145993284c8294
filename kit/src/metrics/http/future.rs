use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::InFlight;

pin_project! {
    /// Records the status and latency of the inner future when it completes.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        in_flight: InFlight,
        started: Instant,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, in_flight: InFlight) -> Self {
        Self {
            inner,
            in_flight,
            started: Instant::now(),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            // The server answers an unhandled service error with a 500.
            Err(_) => 500,
        };
        this.in_flight.finish(status, this.started.elapsed());
        Poll::Ready(result)
    }
}
