/// The in-flight limit was reached: the request was answered at once.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{limit} requests in flight: shedding the excess")]
pub struct Overloaded {
    pub limit: usize,
}

/// `http.shed` settings that parse but cannot work.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidShed(pub String);
