//! The public HTTP/JSON API of newsroom: authenticates callers, calls the
//! gRPC services it finds through etcd and assembles their answers.

pub mod admin;
pub mod auth;
pub mod backends;
pub mod cache;
mod contract;
pub mod cors;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod extract;
pub mod limits;
pub mod models;
pub mod routes;
mod schema;
pub mod settings;
pub mod startup;
pub mod state;

/// The name the gateway uses in logs and telemetry.
pub const SERVICE: &str = "gateway";
