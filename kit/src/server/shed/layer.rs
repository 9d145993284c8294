use std::sync::Arc;

use tower::Layer;

use super::{Door, Shed};

/// Shares one door among every route of a server (axum applies router
/// layers per route, so the count must live behind an `Arc`). Without a
/// door (shedding off) requests pass untouched.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    door: Option<Arc<Door>>,
}

impl ShedLayer {
    pub(super) fn from_door(door: Option<Arc<Door>>) -> Self {
        Self { door }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed::new(inner, self.door.clone())
    }
}
