use tower::Layer;

use super::{Breaker, Circuit};

/// Applies one [`Circuit`] to the wrapped service.
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    circuit: &'static Circuit,
}

impl BreakerLayer {
    pub fn new(circuit: &'static Circuit) -> Self {
        Self { circuit }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Breaker::new(inner, self.circuit)
    }
}
