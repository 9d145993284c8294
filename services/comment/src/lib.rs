//! The comment service: comments on articles.

pub mod api;
pub mod error;
pub mod repository;
pub mod settings;
pub mod startup;

/// The name this service registers under in discovery.
pub const SERVICE: &str = "comment";
/// The service that owns articles, which comments refer to.
pub const CONTENT_SERVICE: &str = "content";
