use std::sync::Arc;

use axum::response::IntoResponse;
use kit::client::Clients;
use kit::discovery::Resolver;
use kit::metrics::Registry;
use kit::resilience::retry::Retry;
use kit::server::{HttpErrors, HttpServer, HttpStack};

use crate::auth::Tokens;
use crate::backends::Backends;
use crate::error::ApiError;
use crate::limits::Limits;
use crate::settings::Settings;
use crate::state::{AppState, Shared};
use crate::{docs, routes};

/// Starts discovery and binds both ports; the returned server is ready to
/// `run_until` a shutdown signal. The settings were validated once, by
/// `kit::cli::settings` in `main` (the same check `--check-config` runs),
/// before anything here binds a port.
pub async fn build(settings: Settings) -> anyhow::Result<HttpServer> {
    settings.platform.discovery.check_tls()?;
    let registry = Registry::new();
    let platform = &settings.platform;
    let resolver = Resolver::spawn(&platform.discovery, &platform.channel, &registry);
    let clients = Clients::new(&resolver, &registry, &platform.resilience)?;
    let server = HttpServer::bind(
        crate::SERVICE,
        platform,
        &registry,
        &settings.http.host,
        settings.http.port,
    )
    .await?;
    let state = AppState::new(Shared {
        backends: Backends::new(
            &clients,
            &settings.services,
            &platform.channel.messages,
            Retry::new(&settings.retry, &registry),
        ),
        tokens: Arc::new(Tokens::new(&settings.auth)),
        limits: Limits::new(&settings.limits, &settings.http.trusted_proxies, &registry)?,
        dependencies: kit::readiness::Dependencies::new(
            &resolver,
            &platform.readiness,
            &settings.services.all(),
        ),
        resolver: resolver.clone(),
        services: settings.services.clone(),
        accepting: server.accepting(),
    });
    let cache = crate::cache::Store::new(&settings.cache, &registry);
    let (api, mut openapi) = routes::api(settings.http.body_limit_bytes, &cache);
    openapi.servers = Some(docs::servers(&settings.http, server.local_addr()));
    let router = api.merge(docs::router(openapi)).with_state(state.clone());
    // Every admin route of the gateway's own needs the credential; the
    // kit's /metrics, /healthz and /readyz, merged in later, stay open for
    // scrapes and probes.
    let admin = crate::admin::require_token(
        crate::dashboard::router(registry.clone(), resolver, server.admin_stop())
            .merge(crate::admin::router(clients.breakers().clone())),
        settings.admin_token.clone(),
    );
    let stack = HttpStack {
        request_timeout: settings.http.request_timeout,
        errors: HttpErrors {
            panic: || ApiError::Internal("handler panicked".into()).into_response(),
            timeout: || ApiError::Timeout("request budget exhausted".into()).into_response(),
            overloaded: |retry_after| ApiError::Overloaded { retry_after }.into_response(),
        },
        cors: crate::cors::layer(&settings.http.cors)?,
        shed: settings.http.shed.clone(),
        exempt: &routes::PROBES,
        reads: settings.http.reads,
    };
    Ok(server
        .serve(router, stack)
        .discovery(&state.resolver)
        .admin(admin, Arc::new(move || routes::readiness(&state))))
}
