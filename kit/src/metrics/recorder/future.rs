use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::Answered;

pin_project! {
    /// Records the outcome of the inner future when it completes.
    #[derive(Debug)]
    pub struct ResponseFuture<F, I> {
        #[pin]
        inner: F,
        in_flight: I,
    }
}

impl<F, I> ResponseFuture<F, I> {
    pub(super) fn new(inner: F, in_flight: I) -> Self {
        Self { inner, in_flight }
    }
}

impl<F, I, B, E> Future for ResponseFuture<F, I>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    I: Answered,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        this.in_flight.answered(&result);
        Poll::Ready(result)
    }
}
