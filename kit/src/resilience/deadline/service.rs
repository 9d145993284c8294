use std::task::{Context, Poll};
use std::time::Duration;

use tower::{BoxError, Service};

use super::{DeadlineLayer, GRPC_TIMEOUT, ResponseFuture, encode, encode_static, remaining};

/// Bounds each call by `timeout` or the caller's remaining deadline.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
    /// `timeout` as `grpc-timeout`, encoded once: most calls send it as is.
    header: http::HeaderValue,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            header: encode_static(timeout),
        }
    }

    pub fn layer(timeout: Duration) -> DeadlineLayer {
        DeadlineLayer::new(timeout)
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Deadline<S>
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

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let (budget, header) = match remaining() {
            Some(left) if left < self.timeout => (left, encode(left)),
            _ => (self.timeout, self.header.clone()),
        };
        request.headers_mut().insert(GRPC_TIMEOUT, header);
        ResponseFuture::new(self.inner.call(request), budget)
    }
}
