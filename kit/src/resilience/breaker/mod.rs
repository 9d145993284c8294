//! A Hystrix-style circuit breaker as tower middleware.
//!
//! `Breaker::layer(circuit)` wraps one callee (in newsroom: one gRPC method
//! of one service). It counts outcomes in a rolling window, trips Closed →
//! Open when the window holds at least `request_volume_threshold` calls and
//! `error_threshold_percentage` of them failed, rejects with [`BreakerOpen`]
//! for `sleep_window` without touching the network, then lets
//! `half_open_calls` trials through: success closes, failure re-opens.

mod error;
mod future;
mod layer;
mod service;
mod state;

use std::time::Duration;

use serde::Deserialize;

pub use error::BreakerOpen;
pub use future::{ResponseBody, ResponseFuture};
pub use layer::BreakerLayer;
pub use service::Breaker;
pub use state::{Circuit, Counts, Force, Outcome, Permit, State};

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    pub enabled: bool,
    /// Length of the rolling statistical window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Buckets the window is divided into (its resolution).
    pub buckets: u32,
    /// Fewer calls than this in the window never trip the circuit.
    pub request_volume_threshold: u32,
    pub error_threshold_percentage: u8,
    /// How long an open circuit rejects before a trial.
    #[serde(with = "humantime_serde")]
    pub sleep_window: Duration,
    /// Trial calls in HalfOpen; all must succeed to close.
    pub half_open_calls: u32,
    /// Whether calls the bulkhead below rejected count as failures of the
    /// window (as in Hystrix) and can trip the circuit. Off by default: a
    /// full bulkhead is our own limit being reached, usually by a traffic
    /// spike, and already sheds the excess; counting it would turn shedding
    /// some calls of a healthy callee into rejecting all of them for a
    /// sleep window. A callee that is slow fills the bulkhead with calls
    /// that time out, and those timeouts trip the circuit anyway.
    pub count_bulkhead_rejections: bool,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(10),
            buckets: 10,
            request_volume_threshold: 20,
            error_threshold_percentage: 50,
            sleep_window: Duration::from_secs(5),
            half_open_calls: 1,
            count_bulkhead_rejections: false,
        }
    }
}
