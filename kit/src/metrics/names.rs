//! Names of the metric families kit registers, shared by the code that
//! registers them and the code that reads them back (the gateway's
//! dashboard, alert rules in tests): renaming one here renames both, and a
//! test there fails if a name it reads is not in a real exposition.
//!
//! These are family names as registered; the exposition adds `_total` to
//! counters and `_bucket`, `_sum`, `_count` to histograms.

/// Counter: HTTP requests by `route`, `method`, `status`.
pub const HTTP_SERVER_REQUESTS: &str = "http_server_requests";
/// Histogram: HTTP request latency by `route`, `method`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Gauge: HTTP requests being handled.
pub const HTTP_SERVER_IN_FLIGHT: &str = "http_server_in_flight_requests";
/// Gauge: circuit state by `breaker` (0 closed, 1 open, 2 half-open).
pub const BREAKER_STATE: &str = "breaker_state";
/// Counter: calls through a breaker by `breaker`, `outcome`.
pub const BREAKER_CALLS: &str = "breaker_calls";
/// Counter: answers of the gateway's micro-cache by `route` (template) and
/// `outcome`: `hit` (fresh copy), `coalesced` (waited for another request's
/// load), `stale` (served stale while one refresh runs), `stale_if_error`
/// (the backend failed, the last good copy was served), `miss` (this request
/// loaded), `bypass` (carried `Authorization`).
pub const HTTP_CACHE_REQUESTS: &str = "http_cache_requests";
/// Counter: background refreshes of a stale copy, by `route`.
pub const HTTP_CACHE_REFRESHES: &str = "http_cache_refreshes";
/// Counter: copies dropped, by `route` and `cause`: `write` (a write through
/// this gateway changed it), `size` (the memory bound), `expired`.
pub const HTTP_CACHE_EVICTIONS: &str = "http_cache_evictions";
/// Gauge: bytes of answers held, by `route`.
pub const HTTP_CACHE_BYTES: &str = "http_cache_bytes";
/// Gauge: answers held, by `route`.
pub const HTTP_CACHE_ENTRIES: &str = "http_cache_entries";
/// Counter: HTTP requests answered 503 at once by the in-flight limit
/// (`kit::server::shed`).
pub const HTTP_SERVER_SHED: &str = "http_server_shed_requests";
/// Counter: HTTP connections closed because the client was too slow to
/// send its request headers (`http.header_read_timeout`).
pub const HTTP_SERVER_SLOW_CLIENTS: &str = "http_server_slow_clients";
/// Counter: requests answered 429 by the gateway's rate limits, by `class`
/// (`sign_up`, `login`, `write`).
pub const HTTP_SERVER_RATE_LIMITED: &str = "http_server_rate_limited_requests";
/// Counter: rate-limit checks the shared store (Redis) did not answer; the
/// instance decided alone.
pub const RATE_LIMIT_STORE_ERRORS: &str = "rate_limit_store_errors";
