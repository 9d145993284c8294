//! Load shedding at the door of an HTTP server: at most `max_in_flight`
//! requests are handled at once; one more is answered at once (503 with
//! `Retry-After`, by the caller's `overloaded` answer), never queued, so a
//! saturated gateway keeps its latency for the requests it took instead of
//! queueing everyone into timeouts. Probes (`exempt` paths) always pass: an
//! overloaded process is alive, and its readiness verdict must still reach
//! the load balancer.
//!
//! With `adaptive` set the limit is learnt instead, by the bulkheads'
//! AIMD limiter ([`crate::resilience::Limiter`]) fed with each admitted
//! request's time from the door to its answer: a count fixed for the quiet
//! hour lets a 10× spike in, and the admitted then wait for each other
//! (Little's law: 1000 in flight at 2000 answers a second is half a second
//! each), while the door's refusal is the cheapest one the process has.
//! Only latency teaches it, never the answer's status: a dependency that
//! fails fast (content down, a 503 in a millisecond) must not shrink the
//! door of routes that do not need it.
//!
//! Hand-written rather than tower's `LoadShed` + `GlobalConcurrencyLimit`:
//! those decide in `poll_ready`, before the request is seen, so probes could
//! not be exempted, and their rejection is an error, not the API's answer.
//!
//! Each rejection is counted ([`crate::metrics::names::HTTP_SERVER_SHED`])
//! and logged at most once per interval with the number held back.

mod error;
mod future;
mod layer;
mod service;

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;

use crate::metrics::Registry;
use crate::resilience::bulkhead::{AdaptiveSettings, BulkheadSettings};
use crate::resilience::{Limiter, Outcome};

pub use error::{InvalidShed, Overloaded};
pub use future::ResponseFuture;
pub use layer::ShedLayer;
pub use service::Shed;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShedSettings {
    /// Requests handled at once by this instance; 0 turns shedding off.
    pub max_in_flight: usize,
    /// When set, replaces `max_in_flight` with a limit learnt from the
    /// admitted requests' latency (between `adaptive.min` and
    /// `adaptive.max`).
    pub adaptive: Option<AdaptiveSettings>,
    /// What the 503 tells clients to wait before retrying.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for ShedSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            adaptive: None,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl ShedSettings {
    /// Refuses an adaptive door that could not work, before a port is bound.
    pub fn validate(&self) -> Result<(), InvalidShed> {
        match &self.adaptive {
            Some(adaptive) => adaptive.check("http.shed.adaptive").map_err(InvalidShed),
            None => Ok(()),
        }
    }
}

/// The shared state of one server's door: how many are inside, how many
/// were turned away.
#[derive(Debug)]
struct Door {
    limiter: Limiter,
    retry_after: Duration,
    shed: Counter,
    exempt: &'static [&'static str],
    overloaded: fn(Duration) -> Response,
}

impl Door {
    /// Takes a place, or `false` when the house is full.
    fn enter(&self) -> bool {
        self.limiter.admit()
    }

    /// Gives a place back; `answered_in` teaches an adaptive limit (`None`
    /// when the request was dropped unanswered).
    fn leave(&self, answered_in: Option<Duration>) {
        self.limiter
            .release(answered_in.map(|latency| (Outcome::Success, latency)));
    }

    fn adaptive(&self) -> bool {
        self.limiter.is_adaptive()
    }

    fn reject(&self) -> Response {
        self.shed.inc();
        static LOG: crate::telemetry::LogEvery =
            crate::telemetry::LogEvery::new(Duration::from_secs(10));
        if let Some(suppressed) = LOG.check() {
            tracing::warn!(error = %Overloaded { limit: self.limiter.limit() }, suppressed, "shedding load (one line per 10 s; suppressed = since the last line)");
        }
        (self.overloaded)(self.retry_after)
    }
}

impl ShedLayer {
    /// A layer that lets everything through when `settings` turn shedding
    /// off. Rejections are counted in `registry`; `exempt` paths (probes)
    /// are never shed; `overloaded` builds the answer, given the
    /// `Retry-After` to send.
    pub fn new(
        settings: &ShedSettings,
        registry: &Registry,
        exempt: &'static [&'static str],
        overloaded: fn(Duration) -> Response,
    ) -> Self {
        if settings.max_in_flight == 0 && settings.adaptive.is_none() {
            return Self::from_door(None);
        }
        let shed = Counter::default();
        registry.register(
            crate::metrics::names::HTTP_SERVER_SHED,
            "HTTP requests answered 503 at once because the in-flight limit was reached",
            shed.clone(),
        );
        let limits = BulkheadSettings {
            max_concurrent: settings.max_in_flight,
            adaptive: settings.adaptive.clone(),
        };
        Self::from_door(Some(Arc::new(Door {
            limiter: Limiter::new("http", &limits),
            retry_after: settings.retry_after,
            shed,
            exempt,
            overloaded,
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    fn overloaded(after: Duration) -> Response {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("retry-after", after.as_secs().to_string())
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn past_the_limit_requests_are_answered_503_at_once_and_probes_still_pass() {
        let registry = Registry::default();
        let settings = ShedSettings {
            max_in_flight: 2,
            retry_after: Duration::from_secs(3),
            ..ShedSettings::default()
        };
        let layer = ShedLayer::new(&settings, &registry, &["/healthz"], overloaded);
        // A handler that never finishes holds its place.
        let (_hold, held) = tokio::sync::oneshot::channel::<()>();
        let held = futures::FutureExt::shared(async move {
            let _ = held.await;
        });
        let service = layer.layer(tower::service_fn(move |_: Request<Body>| {
            let held = held.clone();
            async move {
                held.await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        }));
        let request = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let mut busy = Vec::new();
        for _ in 0..2 {
            busy.push(tokio::spawn(service.clone().oneshot(request("/api"))));
        }
        tokio::task::yield_now().await;
        let shed = service.clone().oneshot(request("/api")).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()["retry-after"], "3");
        // The probe is not shed: it waits for the (held) handler like the
        // others, so poll it once and see that it got past the door.
        let mut probe = service.clone();
        let mut probe = std::pin::pin!(probe.call(request("/healthz")));
        assert!(futures::poll!(probe.as_mut()).is_pending());
        assert!(
            registry
                .encode()
                .contains("http_server_shed_requests_total 1")
        );
        // A place given back (a request ended, or was dropped) is free again.
        busy.pop().unwrap().abort();
        let _ = busy.pop();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let mut next = service.clone();
        let mut next = std::pin::pin!(next.call(request("/api")));
        assert!(
            futures::poll!(next.as_mut()).is_pending(),
            "a freed place admits the next request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_adaptive_door_narrows_when_the_admitted_answers_slow_down_and_sheds_the_rest() {
        let registry = Registry::default();
        let settings = ShedSettings {
            max_in_flight: 0,
            adaptive: Some(AdaptiveSettings {
                min: 1,
                max: 8,
                initial: 8,
                latency_target: None,
                tolerance: 2.0,
                window: Duration::from_millis(100),
                backoff: 0.5,
            }),
            ..ShedSettings::default()
        };
        let layer = ShedLayer::new(&settings, &registry, &[], overloaded);
        // Each answer takes what `delay` says at the time.
        let delay = Arc::new(std::sync::Mutex::new(Duration::from_millis(1)));
        let service = layer.layer(tower::service_fn({
            let delay = delay.clone();
            move |_: Request<Body>| {
                let pause = *delay.lock().unwrap();
                async move {
                    tokio::time::sleep(pause).await;
                    Ok::<_, Infallible>(Response::new(Body::empty()))
                }
            }
        }));
        let request = || Request::get("/api").body(Body::empty()).unwrap();
        let answer = |service: &Shed<_>| service.clone().oneshot(request());
        // A quiet second teaches the door its no-load latency.
        for _ in 0..1000 {
            assert_eq!(answer(&service).await.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(service.door.as_ref().unwrap().limiter.limit(), 8);
        // Answers ten times slower: queueing, as far as the door can tell.
        *delay.lock().unwrap() = Duration::from_millis(10);
        for _ in 0..100 {
            answer(&service).await.unwrap();
        }
        assert_eq!(service.door.as_ref().unwrap().limiter.limit(), 1);
        let held = tokio::spawn(answer(&service));
        tokio::task::yield_now().await;
        let shed = answer(&service).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn an_adaptive_door_that_could_not_work_is_refused_naming_the_setting() {
        let settings = |adaptive: AdaptiveSettings| ShedSettings {
            adaptive: Some(adaptive),
            ..ShedSettings::default()
        };
        assert!(settings(AdaptiveSettings::default()).validate().is_ok());
        assert!(ShedSettings::default().validate().is_ok());
        for (bad, key) in [
            (
                AdaptiveSettings {
                    backoff: 1.5,
                    ..AdaptiveSettings::default()
                },
                "http.shed.adaptive.backoff",
            ),
            (
                AdaptiveSettings {
                    tolerance: f64::NAN,
                    ..AdaptiveSettings::default()
                },
                "http.shed.adaptive.tolerance",
            ),
            (
                AdaptiveSettings {
                    min: 0,
                    ..AdaptiveSettings::default()
                },
                "http.shed.adaptive.min",
            ),
        ] {
            let error = settings(bad).validate().unwrap_err().to_string();
            assert!(error.starts_with(key), "{error}");
        }
    }
}
