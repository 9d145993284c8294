//! The request span of a server, entered while the request's future runs.
//!
//! What tower-http's `TraceLayer` did for us, minus what we never used: it
//! also wraps every response body to enter the span for each frame, reads
//! the clock for latencies the metrics layer records anyway, and runs
//! classifiers and callbacks whose lines we had turned down to DEBUG. Per
//! call that was 5–6 k instructions of a service's 88 k on the article list
//! (callgrind, `make bench-instr`). Logs of the handler and of every layer
//! inside this one still carry the span; a response body is streamed after
//! the handler returned, outside it.

mod layer;
mod service;

pub use layer::RequestSpanLayer;
pub use service::RequestSpan;

/// The future of a call through [`RequestSpan`]: the inner future, entered
/// into the request's span at each poll.
pub type ResponseFuture<F> = tracing::instrument::Instrumented<F>;
