use tonic::Status;

/// Everything that can go wrong in the __name__ service. The conversion into
/// a `tonic::Status` is the only place that decides what a caller may see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("__name__ {0} not found")]
    NotFound(i64),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound(_) => Status::not_found(error.to_string()),
            Error::Database(sqlx::Error::PoolTimedOut) => {
                tracing::error!("database pool exhausted");
                Status::unavailable("database busy, retry later")
            }
            Error::Database(_) => {
                tracing::error!(%error, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
