use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Method, Request, Response, header};
use futures::FutureExt as _;
use tokio::time::Instant;
use tower::{Service, ServiceExt as _};
use tracing::Instrument as _;

use super::metrics::Served;
use super::store::{Entry, Landed, Load, Lookup, Route};
use super::{MicroCacheLayer, ResponseFuture, Store, http};

/// Answers anonymous GETs of configured routes from [`Store`], and evicts
/// what writes change (see the module documentation).
#[derive(Debug, Clone)]
pub struct MicroCache<S> {
    inner: S,
    store: Store,
}

impl<S> MicroCache<S> {
    pub fn new(inner: S, store: Store) -> Self {
        Self { inner, store }
    }
}

impl MicroCache<()> {
    /// The layer putting a micro-cache on `store` in front of each route.
    pub fn layer(store: &Store) -> MicroCacheLayer {
        MicroCacheLayer::new(store.clone())
    }
}

impl<S> Service<Request<Body>> for MicroCache<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !self.store.enabled() {
            return ResponseFuture::Pass {
                future: self.inner.call(request),
            };
        }
        let method = request.method();
        if matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            let path = request.uri().path().to_owned();
            return ResponseFuture::Write {
                future: self.inner.call(request),
                store: self.store.clone(),
                path,
            };
        }
        let route = (*method == Method::GET)
            .then(|| request.extensions().get::<MatchedPath>())
            .flatten()
            .and_then(|matched| self.store.route(matched.as_str()))
            .cloned();
        let Some(route) = route else {
            return ResponseFuture::Pass {
                future: self.inner.call(request),
            };
        };
        if request.headers().contains_key(header::AUTHORIZATION) {
            self.store.metrics().bypass(route.label);
            return ResponseFuture::Pass {
                future: self.inner.call(request),
            };
        }
        let key: Arc<str> = http::key(
            request.uri().path(),
            request.uri().query(),
            &route.policy.query,
        )
        .into();
        let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
        let now = Instant::now();
        let fallback = match self.store.lookup(&route, &key, now) {
            Lookup::Fresh(entry) => {
                self.store.metrics().served(route.label, Served::Hit);
                let response = entry.respond(Served::Hit, if_none_match.as_ref(), now);
                return ResponseFuture::Ready {
                    response: Some(response),
                };
            }
            Lookup::Stale(entry) => {
                self.store.metrics().served(route.label, Served::Stale);
                let (_, started) = self.start(&route, &key, request);
                if started {
                    self.store.metrics().refresh(route.label);
                }
                let response = entry.respond(Served::Stale, if_none_match.as_ref(), now);
                return ResponseFuture::Ready {
                    response: Some(response),
                };
            }
            Lookup::Failing(entry) => {
                self.store
                    .metrics()
                    .served(route.label, Served::StaleIfError);
                let response = entry.respond(Served::StaleIfError, if_none_match.as_ref(), now);
                return ResponseFuture::Ready {
                    response: Some(response),
                };
            }
            Lookup::Fallback(entry) => Some(entry),
            Lookup::Absent => None,
        };
        let (load, started) = self.start(&route, &key, request);
        let served = if started {
            Served::Miss
        } else {
            Served::Coalesced
        };
        let store = self.store.clone();
        ResponseFuture::Load {
            future: Box::pin(async move {
                let landed = load.await;
                answer(&store, &route, &landed, served, fallback, if_none_match)
            }),
        }
    }
}

impl<S> MicroCache<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    /// Joins the load of `key` under way or starts one with `request`, in a
    /// task of its own: it finishes (and stores) even if every request
    /// waiting for it goes away.
    fn start(
        &mut self,
        route: &Arc<Route>,
        key: &Arc<str>,
        request: Request<Body>,
    ) -> (Load, bool) {
        let inner = self.inner.clone();
        let store = self.store.clone();
        let (route, key_for_task) = (route.clone(), key.clone());
        let (abandon, abandoned) = (self.store.clone(), key.clone());
        self.store.join_or_start(key, move |ticket| {
            let task = async move {
                let response = match inner.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let (parts, body) = response.into_parts();
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(body) => Arc::new(store.land(&route, &key_for_task, ticket, parts, body)),
                    Err(_) => {
                        store.abandon(&key_for_task, ticket.id);
                        Store::failed()
                    }
                }
            };
            let task = kit::telemetry::spawn("cache-load", task.in_current_span());
            async move {
                task.await.unwrap_or_else(|_| {
                    // The load panicked: the next request loads again.
                    abandon.abandon(&abandoned, ticket.id);
                    Store::failed()
                })
            }
            .boxed()
            .shared()
        })
    }
}

/// What a request that waited for a load answers: the load's answer, or the
/// last good copy when the load failed and one is young enough.
fn answer(
    store: &Store,
    route: &Route,
    landed: &Landed,
    served: Served,
    fallback: Option<Arc<Entry>>,
    if_none_match: Option<HeaderValue>,
) -> Response<Body> {
    let now = Instant::now();
    match landed {
        Landed::Copy(entry) => {
            store.metrics().served(route.label, served);
            entry.respond(served, if_none_match.as_ref(), now)
        }
        Landed::Answer(answer) => match fallback {
            Some(entry) if answer.failed_load() => {
                store.metrics().served(route.label, Served::StaleIfError);
                entry.respond(Served::StaleIfError, if_none_match.as_ref(), now)
            }
            _ => {
                store.metrics().served(route.label, served);
                answer.to_response(served)
            }
        },
    }
}
