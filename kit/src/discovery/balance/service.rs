use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::Service;

use super::{BalanceError, ResponseFuture};
use crate::discovery::{EndpointSet, Resolver};

/// Spreads requests over the endpoints of one service (power of two
/// choices by requests in flight). Cloning is cheap and shares the set.
#[derive(Debug, Clone)]
pub struct Balance {
    endpoints: Arc<EndpointSet>,
    /// Keeps the watch that updates `endpoints` running for as long as a
    /// client may use them.
    _resolver: Resolver,
}

impl Balance {
    pub fn new(resolver: &Resolver, service: &str) -> Self {
        Self {
            endpoints: resolver.endpoints(service),
            _resolver: resolver.clone(),
        }
    }

    pub fn endpoints(&self) -> &Arc<EndpointSet> {
        &self.endpoints
    }
}

impl Service<http::Request<Body>> for Balance {
    type Response = http::Response<Body>;
    type Error = BalanceError;
    type Future = ResponseFuture;

    /// Always ready: the endpoint is chosen per call, and each endpoint's
    /// channel applies its own backpressure inside the response future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.endpoints.pick() {
            Some(endpoint) => ResponseFuture::new(endpoint, request),
            None => ResponseFuture::failed(BalanceError::NoEndpoints {
                service: self.endpoints.service().to_owned(),
            }),
        }
    }
}
