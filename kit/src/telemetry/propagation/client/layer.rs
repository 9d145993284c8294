use tower::Layer;

use super::InjectContextService;

/// Starts a client span per request and injects its trace context into the
/// request headers (`traceparent`), so the server continues the trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectContextLayer;

impl InjectContextLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for InjectContextLayer {
    type Service = InjectContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectContextService::new(inner)
    }
}
