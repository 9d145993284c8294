use std::task::{Context, Poll};

use tower::Service;
use tower_http::trace::MakeSpan;
use tracing::Instrument as _;

use super::{RequestSpanLayer, ResponseFuture};

/// Runs each call of the inner service in a span of its own.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan<S, M> {
    inner: S,
    make: M,
}

impl<S, M> RequestSpan<S, M> {
    pub fn new(inner: S, make: M) -> Self {
        Self { inner, make }
    }
}

impl<M> RequestSpan<(), M> {
    /// `RequestSpan::layer(ServerSpan::grpc())`, for a `ServiceBuilder`.
    pub fn layer(make: M) -> RequestSpanLayer<M> {
        RequestSpanLayer::new(make)
    }
}

impl<S, M, B> Service<http::Request<B>> for RequestSpan<S, M>
where
    S: Service<http::Request<B>>,
    M: MakeSpan<B>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = self.make.make_span(&request);
        // The inner layers' synchronous work (the deadline read from the
        // headers, a shed decision) logs in the span too.
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        future.instrument(span)
    }
}
