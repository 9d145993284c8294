use tower::Layer;

use super::{GrpcMetrics, GrpcMetricsService};

/// Records every request passing through into a [`GrpcMetrics`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService::new(inner, self.metrics.clone())
    }
}
