#![allow(clippy::unwrap_used)]

mod abuse;
mod articles;
mod balancing;
mod browser;
mod cache;
mod comments;
mod docs;
mod errors;
mod health;
mod helpers;
mod observability;
mod resilience;
mod users;

// new-service: modules
