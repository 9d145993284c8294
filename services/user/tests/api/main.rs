#![allow(clippy::unwrap_used)]

mod cache;
mod helpers;
mod repository;
mod users;
