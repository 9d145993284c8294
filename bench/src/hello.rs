//! The HTTP ceiling: axum answering a constant to every path.

use axum::Router;

pub fn router() -> Router {
    Router::new().fallback(|| async { "Hello, World!" })
}
