//! The gRPC front end: tonic with health, reflection, metrics and etcd
//! registration, on the shared lifecycle.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use futures::{TryFutureExt, TryStreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;
use tower_http::catch_panic::CatchPanicLayer;

use super::coalesce::Coalesced;
use super::lifecycle::{Lifecycle, Serving};
use super::{PlatformSettings, ServerError, is_wildcard};
use crate::admin;
use crate::discovery::{Instance, Registrar, Resolver};
use crate::metrics::{GrpcMetrics, GrpcMetricsLayer, Registry};
use crate::readiness::Dependencies;
use crate::resilience::deadline::ServerDeadlineLayer;
use crate::telemetry::propagation::ServerSpan;
use crate::telemetry::report::ReportLayer;
use crate::telemetry::span::RequestSpan;

/// A bound, not yet serving, gRPC server.
pub struct GrpcServer {
    name: String,
    settings: PlatformSettings,
    registry: Registry,
    listener: TcpListener,
    local_addr: SocketAddr,
    lifecycle: Lifecycle,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    descriptors: Vec<&'static [u8]>,
    health: HealthReporter,
    dependencies: Option<Dependencies>,
}

impl GrpcServer {
    /// Binds the gRPC and admin ports of service `name` (its discovery name).
    pub async fn bind(
        name: &str,
        settings: &PlatformSettings,
        registry: &Registry,
    ) -> Result<Self, ServerError> {
        let grpc = &settings.grpc;
        grpc.messages.validate("platform.grpc.messages")?;
        settings
            .channel
            .messages
            .validate("platform.channel.messages")?;
        settings.discovery.check_tls()?;
        if grpc.advertise_host.is_none() && is_wildcard(&grpc.host) {
            return Err(ServerError::NoAdvertiseHost(grpc.host.clone()));
        }
        let listener = TcpListener::bind((grpc.host.as_str(), grpc.port))
            .await
            .map_err(|source| ServerError::Bind {
                what: "gRPC",
                host: grpc.host.clone(),
                port: grpc.port,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            what: "gRPC",
            host: grpc.host.clone(),
            port: grpc.port,
            source,
        })?;
        let lifecycle = Lifecycle::bind(name, settings).await?;
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Ok(Self {
            name: name.to_owned(),
            settings: settings.clone(),
            registry: registry.clone(),
            listener,
            local_addr,
            lifecycle,
            routes,
            services: vec!["grpc.health.v1.Health"],
            descriptors: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
            health,
            dependencies: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.lifecycle.admin_addr()
    }

    /// Adds a generated `…Server`; it reports NOT_SERVING until registered.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.services.push(S::NAME);
        self
    }

    /// Publishes `descriptors` (a `FILE_DESCRIPTOR_SET` from `proto`) through
    /// server reflection.
    pub fn reflection(mut self, descriptors: &'static [u8]) -> Self {
        self.descriptors.push(descriptors);
        self
    }

    /// Declares that this service calls `backends` (discovery names) through
    /// `resolver`: it registers only once the resolver has listed etcd, so its
    /// first requests do not fail for want of endpoints, and `/readyz` also
    /// requires an instance of each backend named in
    /// `platform.readiness.critical` (refused here when it names a backend
    /// not in `backends`).
    pub fn calls_through(
        mut self,
        resolver: Resolver,
        backends: &[&str],
    ) -> Result<Self, ServerError> {
        let readiness = &self.settings.readiness;
        readiness.validate(backends)?;
        self.dependencies = Some(Dependencies::new(&resolver, readiness, backends));
        Ok(self)
    }

    /// Serves until `signal` completes, then shuts down in the lifecycle's
    /// order: NOT_SERVING → leave etcd → propagation delay → stop accepting
    /// (GOAWAY) → drain in-flight requests, bounded by the drain timeout.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Self {
            name,
            settings,
            registry,
            listener,
            local_addr,
            lifecycle,
            mut routes,
            services,
            descriptors,
            health,
            dependencies,
        } = self;
        let reflection = || {
            descriptors.iter().fold(
                tonic_reflection::server::Builder::configure(),
                |builder, set| builder.register_encoded_file_descriptor_set(set),
            )
        };
        // grpcurl and most tools still ask v1alpha; newer ones ask v1.
        routes
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        for service in services.iter().chain([&""]) {
            health
                .set_service_status(*service, ServingStatus::NotServing)
                .await;
        }

        let grpc = &settings.grpc;
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(grpc.keepalive_interval))
            .http2_keepalive_timeout(Some(grpc.keepalive_timeout))
            .max_connection_age(grpc.max_connection_age)
            .max_connection_age_grace(grpc.max_connection_age_grace)
            // Metrics outermost: they see every request, including ones the
            // inner layers reject or time out.
            .layer(GrpcMetricsLayer::new(GrpcMetrics::server(
                &registry, &services,
            )))
            // The request span continues the caller's trace; the error
            // report hub inside it sees that span's trace id. Failed calls
            // are logged once, by the service's error type, so a NOT_FOUND
            // is not an ERROR log (nor an error report).
            .layer(RequestSpan::layer(ServerSpan::grpc()))
            .layer(ReportLayer::new())
            // A panicking handler fails its own call with INTERNAL; the
            // connection and every other call on it carry on.
            .layer(CatchPanicLayer::custom(|_| {
                tonic::Status::internal("internal error").into_http::<Body>()
            }))
            // The caller's deadline bounds the handler and every call it makes.
            .layer(ServerDeadlineLayer::new(grpc.max_request_time))
            .add_routes(routes.routes());
        let drain = CancellationToken::new();
        // One write per flush: a unary answer under 1 KiB leaves in one
        // system call instead of two (server/coalesce.rs).
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .map_ok(Coalesced::new);
        let serving = crate::telemetry::spawn(
            "grpc-server",
            server
                .serve_with_incoming_shutdown(incoming, drain.clone().cancelled_owned())
                .map_err(ServerError::from),
        );

        // The listener is accepting: only now may callers learn about us.
        let advertise_host = grpc
            .advertise_host
            .clone()
            .unwrap_or_else(|| grpc.host.clone());
        let instance = Instance::new(&name, format!("{advertise_host}:{}", local_addr.port()));
        let gate = dependencies.as_ref().map(|d| d.resolver().clone());
        let resolver = gate.clone();
        let synced = async move {
            if let Some(resolver) = gate {
                resolver.wait_synced().await;
            }
        };
        let registrar =
            Registrar::spawn_after(synced, &settings.discovery, &name, instance, &registry);
        let registered = registrar.registered();
        let (ready_tx, ready_rx) = watch::channel(false);
        let follow = crate::telemetry::spawn(
            "follow-registration",
            follow_registration(registered, health.clone(), services.clone(), ready_tx),
        );
        let admin_router = admin::router(registry, readiness(ready_rx, dependencies));
        let serving = Serving {
            task: serving,
            drain,
            addr: local_addr,
        };
        // Not serving, then out of etcd: callers stop picking us first.
        let leave = async move {
            if let Some(resolver) = &resolver {
                resolver.closing();
            }
            follow.abort();
            for service in services.iter().chain([&""]) {
                health
                    .set_service_status(*service, ServingStatus::NotServing)
                    .await;
            }
            registrar.deregister().await;
        };
        lifecycle.run(admin_router, serving, signal, leave).await
    }
}

/// Readiness (gRPC health and `/readyz`) follows registration: an instance
/// that etcd does not list gets no traffic from the gateway, so it must not
/// look ready to Kubernetes either, and a silent registration loss shows.
async fn follow_registration(
    mut registered: watch::Receiver<bool>,
    health: HealthReporter,
    services: Vec<&'static str>,
    ready: watch::Sender<bool>,
) {
    loop {
        let now = *registered.borrow_and_update();
        let status = if now {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in services.iter().chain([&""]) {
            health.set_service_status(*service, status).await;
        }
        ready.send_replace(now);
        if registered.changed().await.is_err() {
            return;
        }
    }
}

/// `/readyz`: registered in etcd (callers can find us) and, for a service
/// that calls others, every critical backend has an instance. gRPC health
/// follows registration alone: it is what callers that dial us see.
fn readiness(
    registered: watch::Receiver<bool>,
    dependencies: Option<Dependencies>,
) -> admin::Readiness {
    let Some(dependencies) = dependencies else {
        return admin::follow(registered);
    };
    std::sync::Arc::new(move || {
        let registered = *registered.borrow();
        let mut report = dependencies.check();
        report.ready &= registered;
        report.body["registered"] = registered.into();
        if !report.ready {
            report.body["status"] = "not ready".into();
        }
        report
    })
}
