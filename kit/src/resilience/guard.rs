//! Routes each call to the protection stack of its gRPC method.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use tower::{BoxError, Layer, Service};

use super::breaker::BreakerLayer;
use super::bulkhead::BulkheadLayer;
use super::deadline::DeadlineLayer;
use super::{Breaker, Breakers, Bulkhead, Deadline, ResilienceSettings};

/// One method's protection around the shared inner service.
pub type Stack<S> = Breaker<Bulkhead<Deadline<S>>>;

/// Most methods one channel caches stacks for; generated clients only call
/// the methods of their service, so this is a guard, not a working limit.
const MAX_METHODS: usize = 256;

/// Method paths are short and come from our own generated clients, so a
/// fast non-cryptographic hash is safe here and this lookup runs per call.
type Stacks<S> = HashMap<Box<str>, Stack<S>, foldhash::fast::RandomState>;

/// A per-method [`Stack`] for every gRPC method called through it.
///
/// The inner service must be always ready (like [`crate::discovery::Balance`]):
/// stacks are called without a `poll_ready` of their own, since each holds
/// a clone of the inner service.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    settings: Arc<ResilienceSettings>,
    breakers: Breakers,
    stacks: Arc<ArcSwap<Stacks<S>>>,
}

impl<S: Clone> Guarded<S> {
    pub fn new(inner: S, settings: Arc<ResilienceSettings>, breakers: Breakers) -> Self {
        Self {
            inner,
            settings,
            breakers,
            stacks: Arc::new(ArcSwap::from_pointee(Stacks::default())),
        }
    }

    fn stack(&self, method: &str) -> Stack<S> {
        if let Some(stack) = self.stacks.load().get(method) {
            return stack.clone();
        }
        let name = method.trim_start_matches('/');
        let policy = self.settings.policy(name).unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid resilience override; using the default policy");
            self.settings.default.clone()
        });
        let (circuit, limiter) = self.breakers.guard(name, &policy);
        let stack = BreakerLayer::new(circuit).layer(
            BulkheadLayer::new(limiter).layer(
                DeadlineLayer::new(policy.timeout)
                    .with_min_budget(policy.min_budget)
                    .layer(self.inner.clone()),
            ),
        );
        let key: Box<str> = method.into();
        self.stacks.rcu(|stacks| {
            let mut next = Stacks::clone(stacks);
            if next.len() < MAX_METHODS {
                next.entry(key.clone()).or_insert_with(|| stack.clone());
            }
            next
        });
        stack
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Guarded<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<super::breaker::ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = <Stack<S> as Service<http::Request<ReqBody>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        self.stack(request.uri().path()).call(request)
    }
}
