//! The user service: accounts and credentials. Password hashes never leave it.

pub mod api;
pub mod domain;
pub mod error;
pub mod password;
pub mod repository;
pub mod settings;
pub mod startup;

/// The name this service registers under in discovery.
pub const SERVICE: &str = "user";
