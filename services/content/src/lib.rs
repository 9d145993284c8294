//! The content service: articles.

pub mod api;
pub mod error;
pub mod repository;
pub mod settings;
pub mod startup;
pub mod summary;

/// The name this service registers under in discovery.
pub const SERVICE: &str = "content";
