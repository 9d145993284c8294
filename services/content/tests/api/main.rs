#![allow(clippy::unwrap_used)]

mod articles;
mod direct;
mod helpers;
mod repository;
