#![allow(clippy::unwrap_used)]

mod __names__;
mod helpers;
