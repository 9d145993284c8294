//! Client-side load balancing over the live endpoints of one service.
//!
//! Hand-written rather than `tower::balance::p2c` or tonic's
//! `balance_channel`, because of their known failure modes for a discovery
//! fed from etcd: discovery changes are only applied while requests flow
//! (an idle gateway keeps stale endpoints, tonic #643), a failed endpoint is
//! dropped for good (influxdb_iox #6508, tonic #1147) and a cached ready
//! index can go stale after a removal (tower #856). Here the endpoint list is
//! an `ArcSwap` the resolver replaces as soon as etcd reports a change, each
//! endpoint is a lazily connecting tonic `Channel` that reconnects by itself,
//! and an endpoint whose connection fails, or whose calls are abandoned at
//! their deadline twice in a row (a silent partition: no error ever comes),
//! is ejected instead of removed, and returns once a health check after a
//! backoff period answers.

mod error;
mod future;
mod service;

pub use error::BalanceError;
pub use future::ResponseFuture;
pub use service::Balance;
