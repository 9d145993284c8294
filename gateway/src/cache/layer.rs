use tower::Layer;

use super::{MicroCache, Store};

/// Puts a [`MicroCache`] in front of each route (axum's `Router::layer`
/// wraps every route on its own, after matching, so the route template is
/// known).
#[derive(Debug, Clone)]
pub struct MicroCacheLayer {
    store: Store,
}

impl MicroCacheLayer {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl<S> Layer<S> for MicroCacheLayer {
    type Service = MicroCache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MicroCache::new(inner, self.store.clone())
    }
}
