use tower::Layer;

use super::{HttpMetrics, HttpMetricsService};

/// Records every request passing through into an [`HttpMetrics`].
#[derive(Clone, Debug)]
pub struct HttpMetricsLayer {
    metrics: HttpMetrics,
}

impl HttpMetricsLayer {
    pub fn new(metrics: HttpMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService::new(inner, self.metrics.clone())
    }
}
