//! `kit` is what every newsroom process shares, so that a new service is its
//! proto, its handlers and a few lines of config:
//!
//! - [`config`]: layered YAML + `APP_PLATFORM__…` (shared) and `APP_<BINARY>__…`
//!   (per binary) environment variables;
//! - [`telemetry`]: logs (and, when configured, traces and error reports);
//! - [`metrics`]: a per-process Prometheus registry and the standard families;
//! - [`discovery`]: etcd registration, watching and client-side balancing;
//! - [`server`]: a gRPC server with health, reflection, metrics, registration
//!   and the graceful-shutdown sequence already wired;
//! - [`client`]: a gRPC channel to a discovered service, protected by
//!   [`resilience`] (circuit breakers, bulkheads, deadlines, retries);
//! - [`db`]: a SQLite-or-MySQL pool with migrations applied at start-up, and
//!   query counters;
//! - [`cache`]: cache-aside on Redis or in-process, with request collapsing;
//! - [`tls`]: certificate files for TLS to MySQL, Redis and etcd (the
//!   `kit/tls` build);
//! - [`pagination`], [`time`] and [`validate`]: cursor tokens, timestamps and
//!   input checks for handlers;
//! - [`admin`]: the admin HTTP port (`/metrics`, `/healthz`, `/readyz`);
//! - [`readiness`]: what `/readyz` requires (critical backends only);
//! - [`shutdown`] and [`runtime`]: signals, drain limits and the tokio runtime.

pub mod admin;
#[cfg(feature = "cache")]
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod discovery;
pub mod messages;
pub mod metrics;
pub mod pagination;
pub mod readiness;
pub mod resilience;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;
pub mod tls;
pub mod validate;

pub use server::PlatformSettings;
