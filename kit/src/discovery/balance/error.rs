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
    /// The call's `grpc-timeout` passed (tonic enforces it client-side too).
    /// Counted against the endpoint: a second in a row ejects it.
    #[error("no answer from {addr} within the call's deadline")]
    DeadlineExceeded { addr: String },
    /// The future was polled again after it finished.
    #[error("balanced call polled after completion")]
    Completed,
}
