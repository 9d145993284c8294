//! Client side of propagation: each outgoing request gets a client span,
//! whose context travels in the request headers.

mod layer;
mod service;

pub use layer::InjectContextLayer;
pub use service::InjectContextService;
