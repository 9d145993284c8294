use std::task::{Context, Poll};

use tower::{BoxError, Service};

use super::{BreakerLayer, BreakerOpen, Circuit, ResponseBody, ResponseFuture};

/// Rejects calls while its circuit is open; records every outcome.
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    circuit: &'static Circuit,
}

impl<S> Breaker<S> {
    pub fn new(inner: S, circuit: &'static Circuit) -> Self {
        Self { inner, circuit }
    }

    pub fn layer(circuit: &'static Circuit) -> BreakerLayer {
        BreakerLayer::new(circuit)
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Breaker<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        match self.circuit.acquire() {
            Some(permit) => ResponseFuture::called(self.inner.call(request), self.circuit, permit),
            None => ResponseFuture::rejected(BreakerOpen {
                breaker: self.circuit.name().to_owned(),
                retry_after: self.circuit.retry_after(),
            }),
        }
    }
}
