//! Routes each call to the protection of its gRPC method.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{BoxError, Service};

use super::{Breaker, Breakers, Bulkhead, Circuit, Deadline, Limiter, ResilienceSettings};

/// One method's protection around an inner service: what a [`Guarded`]
/// call goes through.
pub type Stack<S> = Breaker<Bulkhead<Deadline<S>>>;

/// The future of a call through a [`Stack`] around a service whose calls
/// return `F`.
pub type ResponseFuture<F> = super::breaker::ResponseFuture<
    super::bulkhead::ResponseFuture<super::deadline::ResponseFuture<F>>,
>;

/// Methods one channel resolves without a lock; generated clients only call
/// the methods of their service, so this is a guard, not a working limit.
/// Past it, a call resolves its method under the registry's lock (correct,
/// slower).
const MAX_METHODS: usize = 64;

/// A per-method [`Stack`] for every gRPC method called through it.
///
/// The inner service must be always ready (like [`crate::discovery::Balance`]):
/// each call goes through a stack made for it around `&mut inner`, with no
/// `poll_ready` of its own.
///
/// Per call, the method is found by comparing its path with the paths
/// resolved so far (a handful per channel, written once each and never
/// moved), so a call takes no lock, hashes nothing, bumps no reference count
/// and clones no inner service; the breaker, bulkhead and encoded
/// `grpc-timeout` of the method were resolved on its first call.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    methods: Arc<Methods>,
}

/// What a channel knows of the methods called through it.
struct Methods {
    settings: Arc<ResilienceSettings>,
    breakers: Breakers,
    /// Filled in order, never emptied: a reader stops at the first empty
    /// slot. A `Vec` behind a lock or an `ArcSwap` would cost every call an
    /// atomic read-modify-write on a line all cores share (hand-written:
    /// std's `OnceLock` is all it takes).
    slots: Box<[OnceLock<Method>]>,
    /// Serialises the writers of `slots` (first calls only).
    insert: Mutex<()>,
}

/// The per-method part of a [`Stack`].
struct Method {
    path: Box<str>,
    circuit: &'static Circuit,
    limiter: &'static Limiter,
    timeout: Duration,
    min_budget: Duration,
    /// `timeout` as `grpc-timeout`, encoded once.
    header: http::HeaderValue,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, settings: Arc<ResilienceSettings>, breakers: Breakers) -> Self {
        Self {
            inner,
            methods: Arc::new(Methods {
                settings,
                breakers,
                slots: (0..MAX_METHODS).map(|_| OnceLock::new()).collect(),
                insert: Mutex::new(()),
            }),
        }
    }
}

impl Methods {
    fn find(&self, path: &str) -> Option<&Method> {
        for slot in &self.slots {
            match slot.get() {
                Some(method) if *method.path == *path => return Some(method),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    /// The method of `path`, resolved now if this is its first call.
    #[cold]
    fn resolve(&self, path: &str) -> Method {
        let name = path.trim_start_matches('/');
        let policy = self.settings.policy(name).unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid resilience override; using the default policy");
            self.settings.default.clone()
        });
        let (circuit, limiter) = self.breakers.guard(name, &policy);
        Method {
            path: path.into(),
            circuit,
            limiter,
            timeout: policy.timeout,
            min_budget: policy.min_budget,
            header: super::deadline::encode_static(policy.timeout),
        }
    }

    /// Resolves `path` and keeps it, unless every slot is taken: then the
    /// caller uses the returned method for this call only.
    #[cold]
    fn insert(&self, path: &str) -> Result<&Method, Method> {
        let _writer = self.insert.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(method) = self.find(path) {
            return Ok(method);
        }
        let method = self.resolve(path);
        match self.slots.iter().find(|slot| slot.get().is_none()) {
            Some(slot) => Ok(slot.get_or_init(|| method)),
            None => Err(method),
        }
    }
}

impl Method {
    /// This method's stack around `inner`, for one call.
    fn stack<S>(&self, inner: S) -> Stack<S> {
        Breaker::new(
            Bulkhead::new(
                Deadline::with_header(inner, self.timeout, self.min_budget, self.header.clone()),
                self.limiter,
            ),
            self.circuit,
        )
    }
}

/// `&mut S` as a service: the stack of one call borrows the channel's
/// inner service instead of cloning it (a clone of a balancer bumps shared
/// reference counts).
struct ByRef<'a, S>(&'a mut S);

impl<S, Request> Service<Request> for ByRef<'_, S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.0.call(request)
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Guarded<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<super::breaker::ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let methods = &*self.methods;
        let path = request.uri().path();
        let overflow;
        let method = match methods.find(path) {
            Some(method) => method,
            None => match methods.insert(path) {
                Ok(method) => method,
                Err(method) => {
                    overflow = method;
                    &overflow
                }
            },
        };
        method.stack(ByRef(&mut self.inner)).call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Echo;

    impl Service<http::Request<()>> for Echo {
        type Response = http::Response<()>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<http::Response<()>, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(())))
        }
    }

    fn call(guarded: &mut Guarded<Echo>, path: &str) {
        let mut request = http::Request::new(());
        *request.uri_mut() = path.parse().unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut future = std::pin::pin!(guarded.call(request));
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    }

    fn names(breakers: &Breakers) -> Vec<String> {
        breakers.snapshot().into_iter().map(|b| b.name).collect()
    }

    #[test]
    fn each_method_gets_its_own_breaker_and_a_clone_shares_them() {
        let breakers = Breakers::default();
        let mut guarded = Guarded::new(Echo, Arc::default(), breakers.clone());
        let mut clone = guarded.clone();
        call(&mut guarded, "/svc.v1.Svc/A");
        call(&mut clone, "/svc.v1.Svc/A");
        call(&mut clone, "/svc.v1.Svc/B");
        call(&mut guarded, "/svc.v1.Svc/B");
        assert_eq!(names(&breakers), ["svc.v1.Svc/A", "svc.v1.Svc/B"]);
    }

    #[test]
    fn past_the_slots_a_method_is_still_protected_by_its_own_breaker() {
        let breakers = Breakers::default();
        let mut guarded = Guarded::new(Echo, Arc::default(), breakers.clone());
        for i in 0..MAX_METHODS + 2 {
            call(&mut guarded, &format!("/svc.v1.Svc/M{i}"));
        }
        let last = format!("/svc.v1.Svc/M{}", MAX_METHODS + 1);
        call(&mut guarded, &last);
        assert!(breakers.find(&last).is_some());
        assert_eq!(names(&breakers).len(), MAX_METHODS + 2);
    }
}
