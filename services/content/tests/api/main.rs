#![allow(clippy::unwrap_used)]

mod articles;
mod helpers;
mod repository;
