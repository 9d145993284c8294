//! The one metrics layer of both protocols: it starts a [`Recorder`]'s
//! measurement when a request comes in and hands it the answer; what is
//! counted, and under which labels, is the protocol's business
//! ([`super::GrpcMetrics`], [`super::HttpMetrics`]).

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::MetricsLayer;
pub use service::MetricsService;

/// The metric families of one protocol.
pub trait Recorder: Clone {
    /// One request being measured. Dropping it unanswered (the caller went
    /// away, a timeout above) must still undo its in-flight count.
    type InFlight: Answered;

    fn start<B>(&self, request: &http::Request<B>) -> Self::InFlight;
}

/// The end of one measured request.
pub trait Answered {
    /// Records the answer (`Err`: the inner service failed without one).
    fn answered<B, E>(&mut self, result: &Result<http::Response<B>, E>);
}
