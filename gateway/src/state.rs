use std::sync::Arc;

use axum::extract::FromRef;
use kit::discovery::Resolver;
use kit::readiness::Dependencies;
use tokio::sync::watch;

use crate::auth::Tokens;
use crate::backends::Backends;
use crate::limits::Limits;
use crate::settings::ServiceNames;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
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
