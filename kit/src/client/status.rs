//! Turns the errors of the layers below into `tonic::Status`es.
//!
//! A named service rather than `tower::util::MapErr` with a function
//! pointer: the pointer's higher-ranked lifetime makes async handlers that
//! hold the channel fail their `Send` check.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tonic::Status;
use tower::{BoxError, Service};

#[derive(Debug, Clone)]
pub struct ToStatus<S> {
    inner: S,
}

impl<S> ToStatus<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, Request> Service<Request> for ToStatus<S>
where
    S: Service<Request, Error = BoxError>,
{
    type Response = S::Response;
    type Error = Status;
    type Future = StatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx).map_err(crate::resilience::status)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        StatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    pub struct StatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T> Future for StatusFuture<F>
where
    F: Future<Output = Result<T, BoxError>>,
{
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(ready!(self.project().inner.poll(cx)).map_err(crate::resilience::status))
    }
}
