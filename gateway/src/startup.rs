use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use kit::client::Clients;
use kit::discovery::Resolver;
use kit::metrics::{HttpMetrics, HttpMetricsLayer, Registry};
use kit::resilience::retry::Retry;
use kit::telemetry::propagation::ServerSpan;
use kit::telemetry::report::ReportLayer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::auth::Tokens;
use crate::backends::Backends;
use crate::docs;
use crate::error::ApiError;
use crate::routes;
use crate::settings::Settings;
use crate::state::AppState;

/// A built gateway with its ports bound, ready to `run_until` a signal.
pub struct Gateway {
    settings: Settings,
    http: TcpListener,
    admin: TcpListener,
    router: Router,
    admin_router: Router,
    accepting: watch::Sender<bool>,
    registry: Registry,
    dashboard_stop: CancellationToken,
}

impl Gateway {
    /// Validates the settings, starts discovery and binds both ports.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        settings.platform.discovery.check_tls()?;
        let registry = Registry::new();
        let resolver = Resolver::spawn(
            &settings.platform.discovery,
            &settings.platform.channel,
            &registry,
        );
        let clients = Clients::new(&resolver, &registry, &settings.platform.resilience)?;
        let retry = Retry::new(&settings.retry, &registry);
        let (accepting, accepting_rx) = watch::channel(true);
        let state = AppState {
            backends: Backends::new(
                &clients,
                &settings.services,
                &settings.platform.channel.messages,
                retry,
            ),
            tokens: Arc::new(Tokens::new(&settings.auth)),
            dependencies: kit::readiness::Dependencies::new(
                &resolver,
                &settings.platform.readiness,
                &settings.services.all(),
            ),
            resolver,
            services: settings.services.clone(),
            accepting: accepting_rx,
        };
        let http = TcpListener::bind((settings.http.host.as_str(), settings.http.port)).await?;
        let (api, mut openapi) = routes::api(settings.http.body_limit_bytes);
        openapi.servers = Some(vec![docs::server(&settings.http, http.local_addr()?)]);
        let mut router = api
            .merge(docs::router(openapi))
            .with_state(state.clone())
            .layer(
                // Outermost first.
                ServiceBuilder::new()
                    // Outside the panic guard, so a panic counts as a 500.
                    .layer(HttpMetricsLayer::new(HttpMetrics::new(&registry)))
                    // A panicking handler answers 500 to its own request
                    // only; the process keeps serving everyone else.
                    .layer(CatchPanicLayer::custom(|_| {
                        ApiError::Internal("handler panicked".into()).into_response()
                    }))
                    // Request spans wrap everything below, timeouts included.
                    // Failures are logged once, by ApiError, not again here.
                    .layer(
                        TraceLayer::new_for_http()
                            .make_span_with(ServerSpan::http())
                            .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                    )
                    // Error reports of this request carry its trace id.
                    .layer(ReportLayer::new())
                    // The whole-request budget; HandleErrorLayer turns the
                    // timeout error into a 504 JSON answer.
                    .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                        ApiError::Timeout("request budget exhausted".into())
                    }))
                    .timeout(settings.http.request_timeout)
                    // The same budget, visible to every backend call the
                    // handler makes, which sends what is left as grpc-timeout.
                    .layer(axum::middleware::from_fn_with_state(
                        settings.http.request_timeout,
                        request_deadline,
                    )),
            );
        // Outermost: a preflight is answered before metrics and timeouts.
        if let Some(cors) = crate::cors::layer(&settings.http.cors)? {
            router = router.layer(cors);
        }
        let dashboard_stop = CancellationToken::new();
        let dashboard = crate::dashboard::router(
            registry.clone(),
            state.resolver.clone(),
            dashboard_stop.clone(),
        );
        let admin_router = kit::admin::router(
            registry.clone(),
            Arc::new(move || routes::readiness(&state)),
        )
        .merge(dashboard)
        .merge(crate::admin::router(
            clients.breakers().clone(),
            settings.admin_token.clone(),
        ));
        let admin = settings.platform.admin.bind().await?;
        Ok(Self {
            settings,
            http,
            admin,
            router,
            admin_router,
            accepting,
            registry,
            dashboard_stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into())
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into())
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves until `signal`, then: unready → propagation delay → stop
    /// accepting → drain in-flight requests within the drain timeout.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            settings,
            http,
            admin,
            router,
            admin_router,
            accepting,
            registry: _,
            dashboard_stop,
        } = self;
        let local = http.local_addr()?;
        let drain = CancellationToken::new();
        let mut serving = kit::telemetry::spawn(
            "http-server",
            // Nagle off, as tonic does for gRPC: a response written in two
            // pieces must not wait for the client's delayed ACK.
            axum::serve(
                http.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                }),
                router,
            )
            .with_graceful_shutdown(drain.clone().cancelled_owned())
            .into_future(),
        );
        let admin_stop = CancellationToken::new();
        let admin_task = kit::telemetry::spawn(
            "admin-server",
            kit::admin::serve(admin, admin_router, admin_stop.clone().cancelled_owned()),
        );
        tracing::info!(http = %local, admin = %settings.platform.admin.port, "gateway serving");
        tokio::select! {
            () = signal => {}
            result = &mut serving => {
                dashboard_stop.cancel();
                admin_stop.cancel();
                result??;
                return Ok(());
            }
        }
        tracing::info!("shutting down: readiness off");
        accepting.send_replace(false);
        tokio::time::sleep(settings.platform.shutdown.propagation_delay).await;
        tracing::info!("closing the listener and draining requests");
        drain.cancel();
        match tokio::time::timeout(settings.platform.shutdown.drain_timeout, &mut serving).await {
            Ok(result) => {
                result??;
                tracing::info!("drained");
            }
            Err(_) => {
                tracing::warn!(timeout = ?settings.platform.shutdown.drain_timeout, "drain timed out; dropping open requests");
                serving.abort();
            }
        }
        // Dashboard streams never end by themselves; the admin server
        // waits for open connections.
        dashboard_stop.cancel();
        admin_stop.cancel();
        let _ = admin_task.await;
        // Last: the spans and reports of the drained requests.
        kit::telemetry::flush(settings.platform.telemetry.flush_timeout).await;
        Ok(())
    }
}

/// Scopes the request with its deadline (see `kit::resilience::deadline`).
async fn request_deadline(
    axum::extract::State(budget): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let deadline = tokio::time::Instant::now() + budget;
    kit::resilience::deadline::scope(deadline, next.run(request)).await
}
