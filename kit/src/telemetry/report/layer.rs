use tower::Layer;

use super::ReportService;

/// Binds a fresh Sentry hub to every request; a no-op without Sentry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportLayer;

impl ReportLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for ReportLayer {
    type Service = ReportService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReportService::new(inner)
    }
}
