//! A gRPC channel to a discovered service: what generated clients are built
//! on (`UserServiceClient::new(kit::client::channel(..))`).
//!
//! The stack, outermost first:
//! 1. metrics: counts every call the caller made, whatever happened below;
//! 2. status mapping: failures below gRPC become proper `tonic::Status`es
//!    (`UNAVAILABLE` for "no instance" or "connection failed"), with the typed
//!    error kept as the source for callers that want details;
//! 3. balance: power of two choices over the live endpoints from etcd.

use std::sync::Arc;

use tonic::Status;
use tower::ServiceBuilder;
use tower::util::MapErr;

use crate::discovery::{Balance, BalanceError, Resolver};
use crate::metrics::{GrpcMetrics, GrpcMetricsLayer};
use crate::telemetry::propagation::{InjectContextLayer, InjectContextService};

/// The channel type generated clients are instantiated with.
pub type Channel = crate::metrics::grpc::GrpcMetricsService<
    InjectContextService<MapErr<Balance, fn(BalanceError) -> Status>>,
>;

/// A channel to every live instance of `service`.
pub fn channel(resolver: &Resolver, service: &str, metrics: &GrpcMetrics) -> Channel {
    ServiceBuilder::new()
        .layer(GrpcMetricsLayer::new(metrics.clone()))
        .layer(InjectContextLayer::new())
        .map_err(balance_status as fn(BalanceError) -> Status)
        .service(Balance::new(resolver, service))
}

fn balance_status(error: BalanceError) -> Status {
    let mut status = Status::unavailable(error.to_string());
    status.set_source(Arc::new(error));
    status
}
