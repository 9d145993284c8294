use tower::Layer;

use super::{Bulkhead, Limiter};

#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    limiter: &'static Limiter,
}

impl BulkheadLayer {
    pub fn new(limiter: &'static Limiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead::new(inner, self.limiter)
    }
}
