use std::task::{Context, Poll};

use tower::Service;

use super::{HttpMetrics, ResponseFuture};

#[derive(Clone, Debug)]
pub struct HttpMetricsService<S> {
    inner: S,
    metrics: HttpMetrics,
}

impl<S> HttpMetricsService<S> {
    pub fn new(inner: S, metrics: HttpMetrics) -> Self {
        Self { inner, metrics }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for HttpMetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let in_flight = self.metrics.start(&request);
        ResponseFuture::new(self.inner.call(request), in_flight)
    }
}
