#![allow(clippy::unwrap_used)]

mod helpers;
mod users;
