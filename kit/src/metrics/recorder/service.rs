use std::task::{Context, Poll};

use tower::Service;

use super::{Recorder, ResponseFuture};

#[derive(Clone, Debug)]
pub struct MetricsService<S, R> {
    inner: S,
    metrics: R,
}

impl<S, R: Recorder> MetricsService<S, R> {
    pub fn new(inner: S, metrics: R) -> Self {
        Self { inner, metrics }
    }
}

impl<S, R, ReqBody, ResBody> Service<http::Request<ReqBody>> for MetricsService<S, R>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    R: Recorder,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, R::InFlight>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let in_flight = self.metrics.start(&request);
        ResponseFuture::new(self.inner.call(request), in_flight)
    }
}
