use std::task::{Context, Poll};

use tower::{BoxError, Service};

use super::{BulkheadLayer, Limiter, ResponseFuture};

/// Rejects calls beyond its limiter's limit.
#[derive(Debug, Clone)]
pub struct Bulkhead<S> {
    inner: S,
    limiter: &'static Limiter,
}

impl<S> Bulkhead<S> {
    pub fn new(inner: S, limiter: &'static Limiter) -> Self {
        Self { inner, limiter }
    }

    pub fn layer(limiter: &'static Limiter) -> BulkheadLayer {
        BulkheadLayer::new(limiter)
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Bulkhead<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        match self.limiter.try_acquire() {
            Ok(()) => ResponseFuture::called(self.inner.call(request), self.limiter),
            Err(full) => ResponseFuture::rejected(full),
        }
    }
}
