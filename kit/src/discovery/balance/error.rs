/// Why a balanced call failed before reaching a gRPC handler.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    /// Discovery knows no live instance of the service.
    #[error("no live instance of {service}")]
    NoEndpoints { service: String },
    /// The connection to the chosen instance failed; it is ejected.
    #[error("connection to {addr} failed: {source}")]
    Transport {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The future was polled again after it finished.
    #[error("balanced call polled after completion")]
    Completed,
}
