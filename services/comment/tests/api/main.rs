#![allow(clippy::unwrap_used)]

mod comments;
mod direct;
mod helpers;
mod replicas;
mod repository;
