use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower::BoxError;

use super::{TimedOut, Timer, Until};

pin_project! {
    /// The inner call raced against its budget, counted from its first poll
    /// (which follows `call` at once in every tower caller).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        timer: Timer,
        budget: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, budget: Duration) -> Self {
        Self {
            inner,
            timer: Timer::new(Until::After(budget)),
            budget,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        ready!(this.timer.poll_expired(cx));
        Poll::Ready(Err(TimedOut {
            budget: *this.budget,
        }
        .into()))
    }
}
