//! The gateway's micro-cache for anonymous hot reads (nginx's `proxy_cache`
//! with `proxy_cache_lock` and `proxy_cache_use_stale updating error`,
//! Varnish's grace mode), as tower middleware on the API router, where it
//! sees the matched route template.
//!
//! Per route in `cache.routes` (`MicroCacheSettings`):
//!
//! - a copy is **fresh** for `ttl` (1 s by default): answered from memory;
//! - **one load per key**: concurrent misses of a key wait for the one load
//!   under way (its answer, cached or not, is theirs too), so a spike on a
//!   cold page costs one backend call, not one per request;
//! - **stale-while-revalidate**: for `stale_while_revalidate` after the TTL,
//!   the old copy is answered at once while one background refresh runs;
//! - **stale-if-error**: for `stale_if_error` after the TTL, a load that
//!   failed (5xx or 429: the backend is down, its breaker open, its bulkhead
//!   full) is answered with the last good copy instead, its body marked
//!   `"degraded":["stale"]` and its `Age` header saying how old it is;
//!   while a key's loads fail, one is tried per second and the requests in
//!   between get the copy at once (Varnish's grace with a sick backend);
//! - **bounded memory**: at most `max_entries` copies and `max_bytes` bytes
//!   (moka, least-recently-used eviction by weight);
//! - **keys** are the path plus the route's `query` parameters, sorted and
//!   re-encoded: `?cursor=&limit=20` and `?limit=20&cursor=&utm=x` are one
//!   key, so unknown parameters cannot bust the cache.
//!
//! Requests carrying `Authorization` bypass it (never stored, never
//! answered from it). A write (POST, PUT, PATCH, DELETE) through this
//! gateway that may have happened (2xx, or a 5xx other than 503: committed,
//! answer lost; a 4xx or a 503 was not acted on) evicts
//! its own path and its parent before its answer leaves: a new comment on
//! article 7 evicts `/api/v1/articles/7/comments?…` and
//! `/api/v1/articles/7`; a new article evicts every page of
//! `/api/v1/articles`. Comment counts on the article list are the one
//! exception: they converge within the TTL (evicting the front page on
//! every comment would make it uncacheable during a comment storm). Loads
//! that started before a write do not store their answer. An evicted copy
//! is never answered as current again, but still stands in for a failed
//! load within `stale_if_error` (an outdated page beats a 503). Other gateway
//! instances do not hear of the write: they converge within the TTL plus
//! one refresh.
//!
//! Cached answers carry `ETag` (a hash of the body), `Cache-Control`
//! (`public, max-age, s-maxage, stale-while-revalidate, stale-if-error`,
//! from the route's settings), `Age` and `X-Cache` (`HIT`, `MISS`,
//! `COALESCED`, `STALE`, `STALE-IF-ERROR`); `If-None-Match` with the
//! copy's tag is answered 304 without a body.

mod error;
mod future;
mod http;
mod layer;
mod metrics;
mod service;
mod settings;
mod store;

pub use error::InvalidCache;
pub use future::ResponseFuture;
pub use layer::MicroCacheLayer;
pub use service::MicroCache;
pub use settings::{MicroCacheSettings, RoutePolicy};
pub use store::Store;

/// The header saying how an answer was served.
pub const X_CACHE: &str = "x-cache";

#[cfg(test)]
mod tests;
