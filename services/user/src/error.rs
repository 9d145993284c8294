use tonic::Status;

/// Everything that can go wrong in the user service. The conversion into a
/// `tonic::Status` is the only place that decides what a caller may see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("user {0} not found")]
    NotFound(i64),
    #[error("username {0:?} is already taken")]
    UsernameTaken(String),
    #[error("invalid username or password")]
    BadCredentials,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing: {0}")]
    Hashing(String),
}

impl From<kit::validate::Invalid> for Error {
    fn from(invalid: kit::validate::Invalid) -> Self {
        Error::Invalid(invalid.0)
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(message) => Status::invalid_argument(message),
            Error::NotFound(_) => Status::not_found(error.to_string()),
            Error::UsernameTaken(_) => Status::already_exists(error.to_string()),
            Error::BadCredentials => Status::unauthenticated(error.to_string()),
            Error::Database(sqlx::Error::PoolTimedOut) => {
                tracing::error!("database pool exhausted");
                Status::unavailable("database busy, retry later")
            }
            Error::Database(_) | Error::Hashing(_) => {
                tracing::error!(%error, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
