//! The process lifecycle every newsroom binary shares, with two front ends:
//! [`GrpcServer`] for the services and [`HttpServer`] for the gateway. Both
//! run on one core (`server/lifecycle.rs`): the admin port
//! (`/metrics`, `/healthz`, `/readyz`), signals and the one ordered shutdown
//! (not ready → leave etcd → propagation delay → drain, bounded by the drain
//! timeout → admin port stop → telemetry flush).
//!
//! ```text
//! GrpcServer::bind("user", &settings.platform, &registry)
//!     .await?
//!     .reflection(proto::user::v1::FILE_DESCRIPTOR_SET)
//!     .add_service(UserServiceServer::new(api))
//!     .run_until(kit::shutdown::signal())
//!     .await?;
//! ```

mod coalesce;
mod grpc;
mod http;
mod lifecycle;
pub mod shed;

use std::time::Duration;

use serde::Deserialize;

use crate::admin::AdminSettings;
use crate::discovery::{ChannelSettings, DiscoverySettings};
use crate::readiness::{ReadinessSettings, UnknownBackend};
use crate::resilience::ResilienceSettings;
use crate::runtime::RuntimeSettings;
use crate::shutdown::ShutdownSettings;
use crate::telemetry::TelemetrySettings;

pub use grpc::GrpcServer;
pub use http::{HttpErrors, HttpServer, HttpStack, ReadTimeouts};

/// The settings every service shares, under `platform:` in its config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformSettings {
    pub grpc: GrpcSettings,
    pub admin: AdminSettings,
    pub discovery: DiscoverySettings,
    /// Connections this service opens to the services it calls.
    pub channel: ChannelSettings,
    /// Protection of the calls this service makes to others.
    pub resilience: ResilienceSettings,
    pub telemetry: TelemetrySettings,
    pub shutdown: ShutdownSettings,
    pub runtime: RuntimeSettings,
    /// Which backends `/readyz` requires (see [`crate::readiness`]).
    pub readiness: ReadinessSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcSettings {
    pub host: String,
    /// 0 picks a free port (tests, several instances on one machine).
    pub port: u16,
    /// Host published in etcd for callers to dial. Defaults to `host`;
    /// required when `host` is a wildcard (in Kubernetes: the pod IP).
    pub advertise_host: Option<String>,
    /// Connections are closed (GOAWAY) after this age, so that long-lived
    /// HTTP/2 connections rebalance onto instances that joined later.
    #[serde(with = "humantime_serde")]
    pub max_connection_age: Duration,
    /// Time in-flight requests get after a max-age GOAWAY.
    #[serde(with = "humantime_serde")]
    pub max_connection_age_grace: Duration,
    /// HTTP/2 pings that detect dead callers.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Longest a handler may run, also when the caller sent no deadline.
    #[serde(with = "humantime_serde::option")]
    pub max_request_time: Option<Duration>,
    /// Message size limits of the services served here; apply them with
    /// [`crate::with_message_limits!`] to each generated `…Server`.
    pub messages: crate::messages::MessageLimits,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            advertise_host: None,
            max_connection_age: Duration::from_secs(300),
            max_connection_age_grace: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            max_request_time: Some(Duration::from_secs(30)),
            messages: crate::messages::MessageLimits::default(),
        }
    }
}

/// Why a server could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {what} on {host}:{port}: {source}")]
    Bind {
        what: &'static str,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "grpc.host is {0}, a wildcard address callers cannot dial: set platform.grpc.advertise_host (APP_PLATFORM__GRPC__ADVERTISE_HOST)"
    )]
    NoAdvertiseHost(String),
    #[error("invalid reflection descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("admin server failed: {0}")]
    Admin(std::io::Error),
    #[error("platform.{0}")]
    Readiness(#[from] UnknownBackend),
    #[error(transparent)]
    Limits(#[from] crate::messages::InvalidLimits),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

fn is_wildcard(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}
