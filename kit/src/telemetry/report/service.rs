use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use sentry::{Hub, SentryFuture};
use tower::Service;

#[derive(Debug, Clone)]
pub struct ReportService<S> {
    inner: S,
}

impl<S> ReportService<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, R> Service<R> for ReportService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<SentryFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if !crate::telemetry::reporting_enabled() {
            return Either::Right(self.inner.call(request));
        }
        let hub = Arc::new(Hub::new_from_top(Hub::current()));
        if let Some(trace_id) = crate::telemetry::current_trace_id() {
            hub.configure_scope(|scope| scope.set_tag("trace_id", trace_id));
        }
        let future = Hub::run(hub.clone(), || self.inner.call(request));
        Either::Left(SentryFuture::new(hub, future))
    }
}
