use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::BoxError;

use super::TimedOut;

pin_project! {
    /// The inner call raced against its budget.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        budget: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, budget: Duration) -> Self {
        Self {
            inner,
            sleep: tokio::time::sleep(budget),
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
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimedOut {
                budget: *this.budget,
            }
            .into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
