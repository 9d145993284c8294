//! Error reports per request: each request runs with its own Sentry hub
//! (scopes of concurrent requests never mix), tagged with the request's
//! OpenTelemetry trace id so that a report links to its trace. Place the
//! layer inside the `RequestSpan` layer, where the request span is current.

mod layer;
mod service;

pub use layer::ReportLayer;
pub use service::ReportService;
