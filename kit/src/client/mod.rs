//! gRPC channels to discovered services: what generated clients are built
//! on (`ContentServiceClient::new(clients.channel("content"))`).
//!
//! The stack of a channel, outermost first:
//! 1. metrics: counts every call the caller made, whatever happened below,
//!    so rejected and timed-out calls show too;
//! 2. trace context: injects the current span's W3C `traceparent`;
//! 3. status mapping: failures below gRPC become proper `tonic::Status`es
//!    (UNAVAILABLE for "no instance", "connection failed", "breaker open" and
//!    "bulkhead full"; DEADLINE_EXCEEDED for a spent budget), with the typed
//!    error kept as the source for callers that want details;
//! 4. per-method protection ([`crate::resilience`]): breaker → bulkhead →
//!    deadline, one stack per gRPC method;
//! 5. balance: power of two choices over the live endpoints from etcd.

mod status;

use std::sync::Arc;

use tower::ServiceBuilder;

use crate::discovery::{Balance, Resolver};
use crate::metrics::{GrpcMetrics, GrpcMetricsLayer, Registry};
use crate::resilience::{Breakers, Guarded, InvalidPolicy, ResilienceSettings};
use crate::telemetry::propagation::{InjectContextLayer, InjectContextService};

pub use status::{StatusFuture, ToStatus};

/// The channel type generated clients are instantiated with.
pub type Channel =
    crate::metrics::grpc::GrpcMetricsService<InjectContextService<ToStatus<Guarded<Balance>>>>;

/// Builds channels that share one process's discovery, metrics and
/// breakers.
#[derive(Clone)]
pub struct Clients {
    resolver: Resolver,
    metrics: GrpcMetrics,
    settings: Arc<ResilienceSettings>,
    breakers: Breakers,
}

impl Clients {
    /// Fails on an invalid resilience override, before anything serves.
    pub fn new(
        resolver: &Resolver,
        registry: &Registry,
        settings: &ResilienceSettings,
    ) -> Result<Self, InvalidPolicy> {
        settings.validate()?;
        Ok(Self {
            resolver: resolver.clone(),
            metrics: GrpcMetrics::client(registry),
            settings: Arc::new(settings.clone()),
            breakers: Breakers::new(registry),
        })
    }

    /// A channel to every live instance of `service` (its discovery name).
    pub fn channel(&self, service: &str) -> Channel {
        ServiceBuilder::new()
            .layer(GrpcMetricsLayer::new(self.metrics.clone()))
            // The caller's trace context rides along in the gRPC metadata.
            .layer(InjectContextLayer::new())
            .layer_fn(ToStatus::new)
            .service(Guarded::new(
                Balance::new(&self.resolver, service),
                self.settings.clone(),
                self.breakers.clone(),
            ))
    }

    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    pub fn metrics(&self) -> &GrpcMetrics {
        &self.metrics
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}
