use std::sync::Arc;

use axum::extract::FromRef;
use kit::discovery::Resolver;
use kit::readiness::Dependencies;
use tokio::sync::watch;

use crate::auth::Tokens;
use crate::backends::Backends;
use crate::limits::Limits;
use crate::settings::ServiceNames;

/// What every handler can reach. axum clones the state for every request
/// that extracts it, so it is one reference count to bump, not one per
/// backend client's layer (2 % of the gateway's instructions per article
/// list when it was the struct itself).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub backends: Backends,
    pub tokens: Arc<Tokens>,
    pub limits: Limits,
    pub resolver: Resolver,
    pub services: ServiceNames,
    /// What `/readyz` requires (critical backends only).
    pub dependencies: Dependencies,
    /// False once shutdown starts, so load balancers stop sending traffic
    /// before the listener closes.
    pub accepting: watch::Receiver<bool>,
}

impl FromRef<AppState> for Arc<Tokens> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for Limits {
    fn from_ref(state: &AppState) -> Self {
        state.limits.clone()
    }
}
