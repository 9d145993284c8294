use tower::Layer;

use super::RequestSpan;

/// Gives each request a span made by `M` (a [`tower_http::trace::MakeSpan`],
/// such as [`crate::telemetry::propagation::ServerSpan`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestSpanLayer<M> {
    make: M,
}

impl<M> RequestSpanLayer<M> {
    pub fn new(make: M) -> Self {
        Self { make }
    }
}

impl<S, M: Clone> Layer<S> for RequestSpanLayer<M> {
    type Service = RequestSpan<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestSpan::new(inner, self.make.clone())
    }
}
