use std::task::{Context, Poll};

use tower::Service;
use tracing::Span;
use tracing::instrument::{Instrument as _, Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[derive(Debug, Clone)]
pub struct InjectContextService<S> {
    inner: S,
}

impl<S> InjectContextService<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<http::Request<B>> for InjectContextService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !crate::telemetry::tracing_enabled() {
            // A disabled span: instrumenting with it is a branch per poll.
            return self.inner.call(request).instrument(Span::none());
        }
        let method = request.uri().path();
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = method,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.method = method,
        );
        super::super::inject(&span.context(), request.headers_mut());
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
}
