#![allow(clippy::unwrap_used)]

mod comments;
mod helpers;
mod repository;
