use tonic::{Code, Status};

/// Everything that can go wrong in the comment service. The conversion into
/// a `tonic::Status` is the only place that decides what a caller may see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("article {0} not found")]
    ArticleNotFound(i64),
    #[error("content service: {0}")]
    Content(Status),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::ArticleNotFound(_) => Status::not_found(error.to_string()),
            // The caller's deadline ran out while we waited on content: say
            // so, rather than blaming a dependency that may be healthy.
            Error::Content(status) if status.code() == Code::DeadlineExceeded => {
                Status::deadline_exceeded("deadline exceeded")
            }
            Error::Content(status) => {
                tracing::error!(code = ?status.code(), message = status.message(), "content service failed");
                Status::unavailable("a dependency is unavailable, retry later")
            }
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
