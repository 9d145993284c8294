//! State shared by every gateway instance, in Redis: the same GCRA as the
//! local store, run inside Redis as one script so that the read and the
//! update of a key are atomic across instances, on Redis's clock so that
//! instances with skewed clocks agree. Hand-written: redis-cell (the GCRA
//! module) is not in stock Redis, and the script is twelve lines.

use std::time::Duration;

use kit::metrics::Registry;
use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;

use super::{Class, InvalidLimits, Key, LimitSettings};

/// KEYS[1]: the key. ARGV[1]: the emission interval in ms; ARGV[2]: the
/// burst tolerance in ms (interval × (burst − 1)). Returns 0 when allowed,
/// else the milliseconds until the next request would be. The key holds the
/// theoretical arrival time and expires when it is reached.
const GCRA: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
local next = tat + interval
redis.call('SET', KEYS[1], next, 'PX', next - now)
return 0
";

pub(super) struct Shared {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    /// (interval, tolerance) in ms per class.
    sign_up: (u64, u64),
    login: (u64, u64),
    write: (u64, u64),
    failures: Counter,
}

fn millis(rate: super::Rate) -> (u64, u64) {
    let interval = rate.interval().as_millis().max(1) as u64;
    (interval, interval * u64::from(rate.burst.saturating_sub(1)))
}

impl Shared {
    pub fn new(settings: &LimitSettings, registry: &Registry) -> Result<Self, InvalidLimits> {
        let redis = &settings.redis;
        let url = redis.url.as_ref().ok_or(InvalidLimits::NoRedisUrl)?;
        let connection = kit::cache::redis_connection(url, &redis.tls, redis.timeout)
            .map_err(|e| InvalidLimits::Redis(e.to_string()))?;
        let failures = Counter::default();
        registry.register(
            kit::metrics::names::RATE_LIMIT_STORE_ERRORS,
            "Rate-limit checks Redis did not answer in time (decided by this instance alone)",
            failures.clone(),
        );
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
            prefix: redis.prefix.clone(),
            timeout: redis.timeout,
            sign_up: millis(settings.sign_up),
            login: millis(settings.login),
            write: millis(settings.writes),
            failures,
        })
    }

    /// The shared verdict, or `None` when Redis could not give one.
    pub async fn check(&self, class: Class, key: Key) -> Option<Result<(), Duration>> {
        let (interval, tolerance) = match class {
            Class::SignUp => self.sign_up,
            Class::Login => self.login,
            Class::Write => self.write,
        };
        let mut connection = self.connection.clone();
        let mut invocation = self
            .script
            .key(format!("{}{}:{key}", self.prefix, class.name()));
        invocation.arg(interval).arg(tolerance);
        let call = invocation.invoke_async::<u64>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(0)) => Some(Ok(())),
            Ok(Ok(wait_ms)) => Some(Err(Duration::from_millis(wait_ms))),
            Ok(Err(error)) => self.failed(&error),
            Err(elapsed) => self.failed(&elapsed),
        }
    }

    fn failed(&self, error: &dyn std::fmt::Display) -> Option<Result<(), Duration>> {
        self.failures.inc();
        static LOG: kit::telemetry::LogEvery =
            kit::telemetry::LogEvery::new(Duration::from_secs(10));
        if let Some(suppressed) = LOG.check() {
            tracing::warn!(error = %error, suppressed, "rate limits: Redis did not answer, limiting per instance (one line per 10 s)");
        }
        None
    }
}
