//! Per-method request counts (by gRPC status), latency histograms and
//! in-flight gauges, for both sides of a gRPC call.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::recorder::{Answered, MetricsLayer, MetricsService, Recorder};
use super::{Interner, LATENCY_BUCKETS, Registry};

/// Records every call passing through into a [`GrpcMetrics`].
pub type GrpcMetricsLayer = MetricsLayer<GrpcMetrics>;
pub type GrpcMetricsService<S> = MetricsService<S, GrpcMetrics>;

/// Most distinct method names a process labels before calling the rest `other`.
const MAX_METHODS: usize = 512;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    method: &'static str,
    code: &'static str,
}

/// The metric families of one side (client or server) of gRPC calls.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    interner: Interner,
    /// Service names whose methods get their own label; `None` allows any
    /// (clients only call generated methods, servers face the internet).
    services: Option<Vec<String>>,
    /// Code used when the inner service fails without a gRPC status.
    error_code: &'static str,
    requests: Family<CodeLabels, Counter>,
    duration: Family<MethodLabels, Histogram>,
    in_flight: Family<MethodLabels, Gauge>,
}

impl GrpcMetrics {
    /// `grpc_server_*` families. Methods of services not in `services` are
    /// labelled `unknown`, so probing random paths adds no series.
    pub fn server(registry: &Registry, services: &[&str]) -> Self {
        Self::new(
            registry,
            "grpc_server",
            Some(services.iter().map(|s| (*s).to_owned()).collect()),
            "INTERNAL",
        )
    }

    /// `grpc_client_*` families. A call that fails below gRPC (no
    /// connection, no endpoint) counts as `UNAVAILABLE`.
    pub fn client(registry: &Registry) -> Self {
        Self::new(registry, "grpc_client", None, "UNAVAILABLE")
    }

    fn new(
        registry: &Registry,
        prefix: &str,
        services: Option<Vec<String>>,
        error_code: &'static str,
    ) -> Self {
        let inner = Inner {
            interner: Interner::new(MAX_METHODS),
            services,
            error_code,
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS.iter().copied())
            }),
            in_flight: Family::default(),
        };
        registry.register(
            &format!("{prefix}_requests"),
            "gRPC requests by method and status code",
            inner.requests.clone(),
        );
        registry.register(
            &format!("{prefix}_request_duration_seconds"),
            "gRPC request latency by method",
            inner.duration.clone(),
        );
        registry.register(
            &format!("{prefix}_in_flight_requests"),
            "gRPC requests currently being handled, by method",
            inner.in_flight.clone(),
        );
        Self {
            inner: Arc::new(inner),
        }
    }

    /// How many requests of `method` (e.g. `/user.v1.UserService/GetUser`)
    /// finished, whatever their status.
    pub fn request_count(&self, method: &str) -> u64 {
        let method = self.label(method);
        CODES
            .iter()
            .chain([&self.inner.error_code])
            .filter_map(|code| {
                self.inner
                    .requests
                    .get(&CodeLabels { method, code })
                    .map(|c| c.get())
            })
            .sum()
    }

    fn label(&self, path: &str) -> &'static str {
        match &self.inner.services {
            None => self.inner.interner.intern(path),
            Some(services) => {
                let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
                if services.iter().any(|s| s == service) {
                    self.inner.interner.intern(path)
                } else {
                    "unknown"
                }
            }
        }
    }
}

impl Recorder for GrpcMetrics {
    type InFlight = InFlight;

    fn start<B>(&self, request: &http::Request<B>) -> InFlight {
        let method = self.label(request.uri().path());
        self.inner
            .in_flight
            .get_or_create(&MethodLabels { method })
            .inc();
        InFlight {
            metrics: self.clone(),
            method,
            started: tokio::time::Instant::now(),
            finished: false,
        }
    }
}

/// One request being counted; records its outcome exactly once. A request
/// dropped unfinished (the caller went away, a deadline passed above it)
/// counts as CANCELLED, so abandoned work is visible.
#[derive(Debug)]
pub struct InFlight {
    metrics: GrpcMetrics,
    method: &'static str,
    started: tokio::time::Instant,
    finished: bool,
}

impl Answered for InFlight {
    fn answered<B, E>(&mut self, result: &Result<http::Response<B>, E>) {
        let code = match result {
            Ok(response) => response_code(response.headers()),
            Err(_) => self.metrics.inner.error_code,
        };
        self.finished = true;
        self.record(code, self.started.elapsed());
    }
}

impl InFlight {
    fn record(&self, code: &'static str, elapsed: Duration) {
        let inner = &self.metrics.inner;
        inner
            .requests
            .get_or_create(&CodeLabels {
                method: self.method,
                code,
            })
            .inc();
        inner
            .duration
            .get_or_create(&MethodLabels {
                method: self.method,
            })
            .observe(elapsed.as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            self.record(CODES[1], self.started.elapsed());
        }
        self.metrics
            .inner
            .in_flight
            .get_or_create(&MethodLabels {
                method: self.method,
            })
            .dec();
    }
}

/// gRPC status code names, indexed by their numeric value.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The status of a unary response as far as its headers tell: errors travel
/// as trailers-only responses, so a missing `grpc-status` header means OK.
fn response_code(headers: &http::HeaderMap) -> &'static str {
    match headers.get(&crate::resilience::GRPC_STATUS) {
        None => CODES[0],
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .and_then(|i| CODES.get(i).copied())
            .unwrap_or("UNKNOWN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_unknown_services_share_one_label() {
        let m = GrpcMetrics::server(&Registry::new(), &["user.v1.UserService"]);
        assert_eq!(
            m.label("/user.v1.UserService/GetUser"),
            "/user.v1.UserService/GetUser"
        );
        assert_eq!(m.label("/evil.Scanner/Probe1"), "unknown");
        assert_eq!(m.label("/whatever"), "unknown");
    }

    #[test]
    fn a_status_header_names_the_code() {
        let mut h = http::HeaderMap::new();
        assert_eq!(response_code(&h), "OK");
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(response_code(&h), "NOT_FOUND");
        h.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(response_code(&h), "UNKNOWN");
    }
}
