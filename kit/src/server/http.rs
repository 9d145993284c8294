//! The HTTP front end (an axum `Router`) on the shared lifecycle: the
//! gateway's public port. No etcd registration (nobody discovers the
//! gateway through etcd); "leaving" is turning readiness off so the load
//! balancer stops sending traffic before the listener closes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::response::Response;
use futures::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use super::lifecycle::{Lifecycle, Serving};
use super::shed::{ShedLayer, ShedSettings};
use super::{PlatformSettings, ServerError};
use crate::admin;
use crate::metrics::{HttpMetrics, HttpMetricsLayer, Registry};
use crate::telemetry::propagation::ServerSpan;
use crate::telemetry::report::ReportLayer;
use crate::telemetry::span::RequestSpan;

/// The answers the stack itself gives, in the API's own error shape.
#[derive(Clone, Copy)]
pub struct HttpErrors {
    /// A handler panicked (500).
    pub panic: fn() -> Response,
    /// The request budget ran out (504).
    pub timeout: fn() -> Response,
    /// The in-flight limit was reached (503), with the `Retry-After` to send.
    /// Never logs: a shed request is counted, and the shedder logs a summary.
    pub overloaded: fn(Duration) -> Response,
}

/// How long a client may take to send what the server must read, so that
/// slow clients (slowloris) cannot hold connections open.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadTimeouts {
    /// From the first byte of a request (or the end of the previous one on
    /// a kept-alive connection) to the end of its headers; past it the
    /// connection is closed without an answer. Also closes idle kept-alive
    /// connections.
    #[serde(with = "humantime_serde")]
    pub header: Duration,
    /// To read the whole request body; past it the read fails (the API
    /// answers 400) and the connection is closed.
    #[serde(with = "humantime_serde")]
    pub body: Duration,
}

impl Default for ReadTimeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(10),
        }
    }
}

/// The request-independent policy of the HTTP port.
pub struct HttpStack {
    /// The whole-request budget, also the deadline of every backend call.
    pub request_timeout: Duration,
    pub errors: HttpErrors,
    /// Outermost when set: a preflight is answered before metrics and
    /// timeouts.
    pub cors: Option<CorsLayer>,
    /// The in-flight limit of this instance.
    pub shed: ShedSettings,
    /// Paths never shed (the probes).
    pub exempt: &'static [&'static str],
    pub reads: ReadTimeouts,
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
    reads: ReadTimeouts,
    /// Told when shutdown begins, so that its watch losing etcd on the way
    /// out is not reported as an outage.
    resolver: Option<crate::discovery::Resolver>,
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
            reads: ReadTimeouts::default(),
            resolver: None,
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
            shed,
            exempt,
            reads,
        } = stack;
        self.reads = reads;
        let shed = ShedLayer::new(&shed, &self.registry, exempt, errors.overloaded);
        let mut router = router.layer(
            // Outermost first.
            ServiceBuilder::new()
                // Outside the panic guard, so a panic counts as a 500.
                .layer(HttpMetricsLayer::new(HttpMetrics::new(&self.registry)))
                // The door: inside the metrics, so a shed request shows as
                // a 503 on the dashboard and in alerts; before everything
                // else, so it costs no span, no timer and no handler, and
                // is answered at once instead of queueing for the budget.
                .layer(shed)
                // A panicking handler answers 500 to its own request
                // only; the process keeps serving everyone else.
                .layer(CatchPanicLayer::custom(move |_| (errors.panic)()))
                // Request spans wrap everything below, timeouts included.
                // Failures are logged once, by the API's error type, not
                // here.
                .layer(RequestSpan::layer(ServerSpan::http()))
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

    /// The discovery this process follows: its watch ends quietly once
    /// shutdown begins, as a gRPC server's does.
    pub fn discovery(mut self, resolver: &crate::discovery::Resolver) -> Self {
        self.resolver = Some(resolver.clone());
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
            reads,
            resolver,
        } = self;
        let slow = Counter::default();
        registry.register(
            crate::metrics::names::HTTP_SERVER_SLOW_CLIENTS,
            "HTTP connections closed because their request headers did not arrive within http.reads.header",
            slow.clone(),
        );
        let readiness = readiness.unwrap_or_else(|| admin::follow(accepting.subscribe()));
        let admin_router = admin::router(registry, readiness).merge(admin_routes);
        let drain = CancellationToken::new();
        let task = crate::telemetry::spawn(
            "http-server",
            serve(listener, router, reads, slow, drain.clone())
                .map(|result| result.map_err(ServerError::Http)),
        );
        let serving = Serving {
            task,
            drain,
            addr: local_addr,
        };
        let leave = async move {
            if let Some(resolver) = &resolver {
                resolver.closing();
            }
            accepting.send_replace(false);
        };
        lifecycle.run(admin_router, serving, signal, leave).await
    }
}

/// Serves HTTP/1 connections from `listener` until `drain` is cancelled,
/// then waits for the open ones to finish their requests.
///
/// By hand rather than `axum::serve`, which sets no timer on hyper's
/// builder, so hyper's header read timeout never fires there and a client
/// dribbling header bytes holds its connection (and a task) forever.
async fn serve(
    listener: TcpListener,
    router: Router,
    reads: ReadTimeouts,
    slow: Counter,
    drain: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(reads.header);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = drain.cancelled() => break,
        };
        // Nagle off, as tonic does for gRPC: a response written in two
        // pieces must not wait for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let body_timeout = reads.body;
        // What `into_make_service_with_connect_info` would give handlers:
        // the peer address (the client IP of rate limits). The body read
        // timeout wraps the body where it is read from the socket.
        let service =
            router
                .clone()
                .map_request(move |request: http::Request<hyper::body::Incoming>| {
                    // A deadline for the whole body, not per frame: a client
                    // dribbling a byte at a time never leaves a frame late. Bodiless
                    // requests (most reads) skip the timer.
                    let mut request = request.map(|body| {
                        if http_body::Body::is_end_stream(&body) {
                            Body::new(body)
                        } else {
                            Body::new(tower_http::timeout::DeadlineBody::new(body_timeout, body))
                        }
                    });
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = graceful
            .watch(builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service)));
        let slow = slow.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                if e.is_timeout() {
                    slow.inc();
                }
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors (out of file descriptors, a connection reset before it
/// was accepted) must not stop the server; a short pause keeps a persistent
/// one (EMFILE) from spinning, as axum::serve does.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    static LOG: crate::telemetry::LogEvery =
        crate::telemetry::LogEvery::new(Duration::from_secs(10));
    if let Some(suppressed) = LOG.check() {
        tracing::warn!(error = %error, suppressed, "accept failed (one line per 10 s)");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
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
