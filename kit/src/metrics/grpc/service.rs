use std::task::{Context, Poll};

use tower::Service;

use super::{GrpcMetrics, ResponseFuture};

#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S> GrpcMetricsService<S> {
    pub fn new(inner: S, metrics: GrpcMetrics) -> Self {
        Self { inner, metrics }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcMetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let in_flight = self.metrics.start(req.uri().path());
        ResponseFuture::new(self.inner.call(req), in_flight)
    }
}
