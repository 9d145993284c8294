use std::task::{Context, Poll};
use std::time::Duration;

use tower::{BoxError, Service};

use super::{
    DEFAULT_MIN_BUDGET, DeadlineLayer, DeadlineSpent, GRPC_TIMEOUT, ResponseFuture, encode,
    encode_static, remaining,
};

/// Bounds each call by `timeout` or the caller's remaining deadline; a call
/// left with less than `min_budget` of the caller's deadline fails at once
/// with [`DeadlineSpent`] instead of being sent.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
    min_budget: Duration,
    /// `timeout` as `grpc-timeout`, encoded once: most calls send it as is.
    header: http::HeaderValue,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            min_budget: DEFAULT_MIN_BUDGET,
            header: encode_static(timeout),
        }
    }

    /// A deadline whose `grpc-timeout` was encoded beforehand (`header`
    /// must be `timeout` encoded): [`crate::resilience::Guarded`] makes one per call.
    pub(crate) fn with_header(
        inner: S,
        timeout: Duration,
        min_budget: Duration,
        header: http::HeaderValue,
    ) -> Self {
        Self {
            inner,
            timeout,
            min_budget,
            header,
        }
    }

    /// Below this much of the caller's deadline, calls are not sent.
    pub fn with_min_budget(mut self, min_budget: Duration) -> Self {
        self.min_budget = min_budget;
        self
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
            // Not even a round trip's worth: the answer could not arrive
            // in time, and its timeout would be blamed on the callee.
            Some(left) if left < self.min_budget => {
                return ResponseFuture::spent(DeadlineSpent {
                    left,
                    floor: self.min_budget,
                });
            }
            Some(left) if left < self.timeout => (left, encode(left)),
            _ => (self.timeout, self.header.clone()),
        };
        request.headers_mut().insert(GRPC_TIMEOUT, header);
        ResponseFuture::new(self.inner.call(request), budget)
    }
}
