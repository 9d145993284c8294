//! The HTTP front end (an axum `Router`) on the shared lifecycle: the
//! gateway's public port. No etcd registration (nobody discovers the
//! gateway through etcd); "leaving" is turning readiness off so the load
//! balancer stops sending traffic before the listener closes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::response::Response;
use axum::serve::ListenerExt;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use super::lifecycle::{Lifecycle, Serving};
use super::{PlatformSettings, ServerError};
use crate::admin;
use crate::metrics::{HttpMetrics, HttpMetricsLayer, Registry};
use crate::telemetry::propagation::ServerSpan;
use crate::telemetry::report::ReportLayer;

/// The answers the stack itself gives, in the API's own error shape.
#[derive(Clone, Copy)]
pub struct HttpErrors {
    /// A handler panicked (500).
    pub panic: fn() -> Response,
    /// The request budget ran out (504).
    pub timeout: fn() -> Response,
}

/// The request-independent policy of the HTTP port.
pub struct HttpStack {
    /// The whole-request budget, also the deadline of every backend call.
    pub request_timeout: Duration,
    pub errors: HttpErrors,
    /// Outermost when set: a preflight is answered before metrics and
    /// timeouts.
    pub cors: Option<CorsLayer>,
}

/// A bound, not yet serving, HTTP server.
pub struct HttpServer {
    registry: Registry,
    listener: TcpListener,
    local_addr: SocketAddr,
    lifecycle: Lifecycle,
    accepting: watch::Sender<bool>,
    router: Router,
    admin_routes: Router,
    readiness: Option<admin::Readiness>,
}

impl HttpServer {
    /// Binds the HTTP port (`host:port`) and the admin port of process `name`.
    pub async fn bind(
        name: &str,
        settings: &PlatformSettings,
        registry: &Registry,
        host: &str,
        port: u16,
    ) -> Result<Self, ServerError> {
        let bind_error = |source| ServerError::Bind {
            what: "HTTP",
            host: host.to_owned(),
            port,
            source,
        };
        let listener = TcpListener::bind((host, port)).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let lifecycle = Lifecycle::bind(name, settings).await?;
        Ok(Self {
            registry: registry.clone(),
            listener,
            local_addr,
            lifecycle,
            accepting: watch::channel(true).0,
            router: Router::new(),
            admin_routes: Router::new(),
            readiness: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.lifecycle.admin_addr()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// True until shutdown begins: readiness checks include it, so load
    /// balancers stop sending traffic before the listener closes.
    pub fn accepting(&self) -> watch::Receiver<bool> {
        self.accepting.subscribe()
    }

    /// Cancelled when the admin port stops (see [`Self::admin`]).
    pub fn admin_stop(&self) -> CancellationToken {
        self.lifecycle.admin_stop()
    }

    /// Serves `router` under the platform's tower stack.
    pub fn serve(mut self, router: Router, stack: HttpStack) -> Self {
        let HttpStack {
            request_timeout,
            errors,
            cors,
        } = stack;
        let mut router = router.layer(
            // Outermost first.
            ServiceBuilder::new()
                // Outside the panic guard, so a panic counts as a 500.
                .layer(HttpMetricsLayer::new(HttpMetrics::new(&self.registry)))
                // A panicking handler answers 500 to its own request
                // only; the process keeps serving everyone else.
                .layer(CatchPanicLayer::custom(move |_| (errors.panic)()))
                // Request spans wrap everything below, timeouts included.
                // Failures are logged once, by the API's error type, not
                // again here.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(ServerSpan::http())
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                // Error reports of this request carry its trace id.
                .layer(ReportLayer::new())
                // The whole-request budget; HandleErrorLayer turns the
                // timeout error into the API's 504 answer.
                .layer(HandleErrorLayer::new(
                    move |_: tower::BoxError| async move { (errors.timeout)() },
                ))
                .timeout(request_timeout)
                // The same budget, visible to every backend call the
                // handler makes, which sends what is left as grpc-timeout.
                .layer(axum::middleware::from_fn_with_state(
                    request_timeout,
                    request_deadline,
                )),
        );
        if let Some(cors) = cors {
            router = router.layer(cors);
        }
        self.router = router;
        self
    }

    /// Adds `routes` to the admin port and replaces its `/readyz` verdict
    /// (by default: ready until shutdown begins). Long-lived admin streams
    /// end on [`Self::admin_stop`].
    pub fn admin(mut self, routes: Router, readiness: admin::Readiness) -> Self {
        self.admin_routes = self.admin_routes.merge(routes);
        self.readiness = Some(readiness);
        self
    }

    /// Serves until `signal` completes, then shuts down in the lifecycle's
    /// order: not ready → propagation delay → stop accepting → drain
    /// in-flight requests, bounded by the drain timeout.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Self {
            registry,
            listener,
            local_addr,
            lifecycle,
            accepting,
            router,
            admin_routes,
            readiness,
        } = self;
        let readiness = readiness.unwrap_or_else(|| admin::follow(accepting.subscribe()));
        let admin_router = admin::router(registry, readiness).merge(admin_routes);
        let drain = CancellationToken::new();
        let task = crate::telemetry::spawn(
            "http-server",
            // Nagle off, as tonic does for gRPC: a response written in two
            // pieces must not wait for the client's delayed ACK.
            axum::serve(
                listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                }),
                router,
            )
            .with_graceful_shutdown(drain.clone().cancelled_owned())
            .into_future()
            .map(|result| result.map_err(ServerError::Http)),
        );
        let serving = Serving {
            task,
            drain,
            addr: local_addr,
        };
        let leave = async move {
            accepting.send_replace(false);
        };
        lifecycle.run(admin_router, serving, signal, leave).await
    }
}

/// Scopes the request with its deadline (see `crate::resilience::deadline`).
async fn request_deadline(
    axum::extract::State(budget): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + budget;
    crate::resilience::deadline::scope(deadline, next.run(request)).await
}
