#![allow(clippy::unwrap_used)]

mod cache;
mod direct;
mod helpers;
mod repository;
mod users;
