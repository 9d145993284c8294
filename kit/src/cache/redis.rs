//! The Redis store: one multiplexed connection (redis-rs `ConnectionManager`,
//! which reconnects by itself), every call bounded by `cache.timeout`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use super::{CacheError, CacheSettings, Raw};

/// Stores each key's new value only if the key still holds what the loader
/// saw (`''` for absent; stored values are never empty). Per key i, ARGV
/// holds seen, value and TTL in milliseconds at 3(i-1)+1…3.
const SET_IF_UNCHANGED: &str = r"
local stored = 0
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local current = redis.call('GET', key)
  if (current == false and ARGV[base + 1] == '') or current == ARGV[base + 1] then
    redis.call('SET', key, ARGV[base + 2], 'PX', ARGV[base + 3])
    stored = stored + 1
  end
end
return stored
";

/// A client for `url`: plain for `redis://`, TLS with `tls`'s certificates
/// for `rediss://` (refused by a build without TLS).
fn client(url: &str, tls: &crate::tls::TlsFiles) -> Result<redis::Client, CacheError> {
    const WHAT: &str = "cache.tls";
    if !url.starts_with("rediss://") {
        if tls.is_set() {
            return Err(crate::tls::TlsError::NotTls {
                what: WHAT,
                why: "cache.redis_url is not rediss://",
            }
            .into());
        }
        return redis::Client::open(url).map_err(CacheError::Url);
    }
    let pem = tls.read(WHAT)?;
    #[cfg(feature = "tls")]
    if pem.ca.is_some() || pem.identity.is_some() {
        let certificates = redis::TlsCertificates {
            client_tls: pem
                .identity
                .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                }),
            root_cert: pem.ca,
        };
        return redis::Client::build_with_tls(url, certificates).map_err(CacheError::Url);
    }
    let _ = pem;
    redis::Client::open(url).map_err(CacheError::Url)
}

/// A reconnecting connection to the Redis at `url` (plain, or TLS with
/// `tls`'s certificates for `rediss://`), each call bounded by `timeout`. Does not connect: the first call
/// does. For other Redis users of a process (the gateway's rate limits).
pub fn connection(
    url: &SecretString,
    tls: &crate::tls::TlsFiles,
    timeout: Duration,
) -> Result<ConnectionManager, CacheError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client(url.expose_secret(), tls)?, config)
        .map_err(CacheError::Url)
}

pub(super) struct RedisStore {
    connection: ConnectionManager,
    set_if_unchanged: redis::Script,
}

impl RedisStore {
    /// Does not connect: the first call does, and a Redis that is down then
    /// is a miss, not a failed start.
    pub fn new(url: &SecretString, settings: &CacheSettings) -> Result<Self, CacheError> {
        let connection = connection(url, &settings.tls, settings.timeout)?;
        Ok(Self {
            connection,
            set_if_unchanged: redis::Script::new(SET_IF_UNCHANGED),
        })
    }

    pub async fn get_many(
        &self,
        keys: &[String],
        timeout: Duration,
    ) -> Result<Vec<Raw>, CacheError> {
        let mut conn = self.connection.clone();
        let values: Vec<Option<Vec<u8>>> =
            bounded(timeout, redis::cmd("MGET").arg(keys).query_async(&mut conn)).await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    pub async fn set_many(
        &self,
        items: &[(String, Bytes, Duration)],
        timeout: Duration,
    ) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        for (key, bytes, ttl) in items {
            pipe.cmd("SET")
                .arg(key)
                .arg(&bytes[..])
                .arg("PX")
                .arg(millis(*ttl))
                .ignore();
        }
        let mut conn = self.connection.clone();
        bounded(timeout, pipe.query_async::<()>(&mut conn)).await
    }

    pub async fn set_if_unchanged(
        &self,
        items: &[(String, Raw, Bytes, Duration)],
        timeout: Duration,
    ) -> Result<(), CacheError> {
        let mut invocation = self.set_if_unchanged.prepare_invoke();
        for (key, seen, bytes, ttl) in items {
            invocation
                .key(key)
                .arg(seen.as_deref().unwrap_or_default())
                .arg(&bytes[..])
                .arg(millis(*ttl));
        }
        let mut conn = self.connection.clone();
        bounded(timeout, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(drop)
    }
}

async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CacheError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CacheError::Timeout(timeout)),
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
