#![allow(clippy::unwrap_used)]

mod comments;
mod helpers;
mod replicas;
mod repository;
