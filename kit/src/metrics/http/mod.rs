//! Per-route HTTP request counts (by status), latency histograms and the
//! in-flight gauge of an axum server.
//!
//! Routes are labelled by their template (`/api/v1/articles/{id}`), taken
//! from axum's `MatchedPath`, never by the raw path: a scanner requesting a
//! million random paths adds no series, they are all `route="unmatched"`.
//! Apply the layer with `Router::layer`, which runs it after routing.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::recorder::{Answered, MetricsLayer, MetricsService, Recorder};
use super::{Interner, LATENCY_BUCKETS, Registry};

/// Records every request passing through into an [`HttpMetrics`].
pub type HttpMetricsLayer = MetricsLayer<HttpMetrics>;
pub type HttpMetricsService<S> = MetricsService<S, HttpMetrics>;

/// Most distinct route templates labelled; a router has far fewer.
const MAX_ROUTES: usize = 256;

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// The `http_server_*` metric families of one process.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    routes: Interner,
    requests: Family<StatusLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Self {
        let inner = Inner {
            routes: Interner::new(MAX_ROUTES),
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS.iter().copied())
            }),
            in_flight: Gauge::default(),
        };
        registry.register(
            super::names::HTTP_SERVER_REQUESTS,
            "HTTP requests by route template, method and status",
            inner.requests.clone(),
        );
        registry.register(
            super::names::HTTP_SERVER_REQUEST_DURATION,
            "HTTP request latency by route template and method",
            inner.duration.clone(),
        );
        registry.register(
            super::names::HTTP_SERVER_IN_FLIGHT,
            "HTTP requests currently being handled",
            inner.in_flight.clone(),
        );
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl Recorder for HttpMetrics {
    type InFlight = InFlight;

    fn start<B>(&self, request: &http::Request<B>) -> InFlight {
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or(UNMATCHED, |path| self.inner.routes.intern(path.as_str()));
        self.inner.in_flight.inc();
        InFlight {
            metrics: self.clone(),
            route,
            method: method_label(request.method()),
            started: tokio::time::Instant::now(),
        }
    }
}

/// Standard methods by name; anything else (`PROPFIND`, garbage) is `OTHER`.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// One request being counted; undoes the in-flight count even when the
/// request future is dropped unfinished (client gone, timeout).
#[derive(Debug)]
pub struct InFlight {
    metrics: HttpMetrics,
    route: &'static str,
    method: &'static str,
    started: tokio::time::Instant,
}

impl Answered for InFlight {
    fn answered<B, E>(&mut self, result: &Result<http::Response<B>, E>) {
        let status = match result {
            Ok(response) => response.status().as_u16(),
            // The server answers an unhandled service error with a 500.
            Err(_) => 500,
        };
        self.record(status, self.started.elapsed());
    }
}

impl InFlight {
    fn record(&self, status: u16, elapsed: Duration) {
        let inner = &self.metrics.inner;
        inner
            .requests
            .get_or_create(&StatusLabels {
                route: self.route,
                method: self.method,
                status,
            })
            .inc();
        inner
            .duration
            .get_or_create(&RouteLabels {
                route: self.route,
                method: self.method,
            })
            .observe(elapsed.as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.inner.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        let odd = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&odd), "OTHER");
    }
}
