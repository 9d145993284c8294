use tower::Layer;

use super::{MetricsService, Recorder};

/// Records every request passing through into a [`Recorder`]'s families.
#[derive(Clone, Debug)]
pub struct MetricsLayer<R> {
    metrics: R,
}

impl<R: Recorder> MetricsLayer<R> {
    pub fn new(metrics: R) -> Self {
        Self { metrics }
    }
}

impl<S, R: Recorder> Layer<S> for MetricsLayer<R> {
    type Service = MetricsService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService::new(inner, self.metrics.clone())
    }
}
