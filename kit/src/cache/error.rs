/// Why a cache call failed. Callers never see these: a failed cache call is
/// a miss, logged and counted.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache.redis_url is not a Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cache.{0} must be a fraction between 0 and 1, not {1}")]
    Fraction(&'static str, f64),
}
