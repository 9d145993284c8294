//! Rate limits of the routes an attacker hammers: sign-up and login per
//! client IP (each login costs the user service 19 MiB and tens of
//! milliseconds of argon2), writes per user. GCRA: a class allows `burst`
//! requests at once, then one per `per / requests`; past that the answer is
//! 429 `rate_limited` with `Retry-After`.
//!
//! State is per instance by default (governor, in memory): with N gateways
//! a client gets up to N times the rate. `store: redis` shares it between
//! instances (the `redis` build feature); if Redis cannot answer, the
//! instance falls back to its own limits rather than refusing logins.

mod client_ip;
mod local;
#[cfg(feature = "redis")]
mod redis;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use kit::metrics::Registry;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::ApiError;

pub use client_ip::{ClientIp, client_ip};

/// A class of routes sharing one limit.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Class {
    /// `POST /api/v1/users`, per client IP.
    SignUp,
    /// `POST /api/v1/sessions`, per client IP.
    Login,
    /// Articles and comments, per user.
    Write,
}

impl EncodeLabelValue for Class {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.name())
    }
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::SignUp => "sign_up",
            Self::Login => "login",
            Self::Write => "write",
        }
    }
}

/// Who a limit counts: a client IP or a user.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Key {
    Ip(IpAddr),
    User(i64),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "ip:{ip}"),
            Self::User(id) => write!(f, "user:{id}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Off: nothing is rate limited.
    pub enabled: bool,
    pub store: Store,
    /// Used when `store: redis`.
    pub redis: RedisLimitSettings,
    pub sign_up: Rate,
    pub login: Rate,
    pub writes: Rate,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            store: Store::Local,
            redis: RedisLimitSettings::default(),
            sign_up: Rate::new(10, Duration::from_secs(3600), 5),
            login: Rate::new(10, Duration::from_secs(60), 10),
            writes: Rate::new(30, Duration::from_secs(60), 10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// In this instance's memory: each instance counts on its own.
    Local,
    /// In Redis, shared by every instance.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisLimitSettings {
    /// `redis://host:6379/0` (`rediss://` with the `kit/tls` build). Secret:
    /// it may carry a password.
    pub url: Option<SecretString>,
    pub tls: kit::tls::TlsFiles,
    /// Put before every key, so gateways of different platforms (and tests)
    /// sharing a Redis never count each other's requests.
    pub prefix: String,
    /// Longest wait for Redis before this instance decides on its own.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisLimitSettings {
    fn default() -> Self {
        Self {
            url: None,
            tls: kit::tls::TlsFiles::default(),
            prefix: "newsroom:limits:".into(),
            timeout: Duration::from_millis(50),
        }
    }
}

/// `requests` per `per` on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    pub const fn new(requests: u32, per: Duration, burst: u32) -> Self {
        Self {
            requests,
            per,
            burst,
        }
    }

    /// The time one request's allowance takes to come back.
    fn interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// A setting of `limits` that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum InvalidLimits {
    #[error("limits.{0}: requests, per and burst must all be positive")]
    Zero(&'static str),
    #[error("limits.store is redis but limits.redis.url is not set")]
    NoRedisUrl,
    #[error(
        "limits.store is redis but this gateway was built without Redis: build with `--features gateway/redis`"
    )]
    NoRedisBuild,
    #[error("limits.redis: {0}")]
    Redis(String),
}

impl LimitSettings {
    pub fn validate(&self) -> Result<(), InvalidLimits> {
        for (name, rate) in [
            ("sign_up", &self.sign_up),
            ("login", &self.login),
            ("writes", &self.writes),
        ] {
            if rate.requests == 0 || rate.burst == 0 || rate.interval().is_zero() {
                return Err(InvalidLimits::Zero(name));
            }
        }
        if self.enabled && self.store == Store::Redis {
            if self.redis.url.is_none() {
                return Err(InvalidLimits::NoRedisUrl);
            }
            if !cfg!(feature = "redis") {
                return Err(InvalidLimits::NoRedisBuild);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: Class,
}

/// The limits of one gateway, cheap to clone into every request.
#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when limits are off.
    local: Option<local::Local>,
    #[cfg(feature = "redis")]
    redis: Option<redis::Shared>,
    trusted_proxies: Vec<IpNet>,
    rejected: Family<ClassLabel, Counter>,
}

impl Limits {
    /// Limits as `settings` say, trusting `X-Forwarded-For` only from
    /// `trusted_proxies`. Needs a Tokio runtime (the local store is swept on
    /// a timer).
    pub fn new(
        settings: &LimitSettings,
        trusted_proxies: &[IpNet],
        registry: &Registry,
    ) -> Result<Self, InvalidLimits> {
        settings.validate()?;
        let rejected = Family::<ClassLabel, Counter>::default();
        registry.register(
            kit::metrics::names::HTTP_SERVER_RATE_LIMITED,
            "Requests answered 429 by the gateway's rate limits, by route class",
            rejected.clone(),
        );
        #[cfg(feature = "redis")]
        let redis = match (settings.enabled, settings.store) {
            (true, Store::Redis) => Some(redis::Shared::new(settings, registry)?),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                local: settings.enabled.then(|| local::Local::new(settings)),
                #[cfg(feature = "redis")]
                redis,
                trusted_proxies: trusted_proxies.to_vec(),
                rejected,
            }),
        })
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.inner.trusted_proxies
    }

    /// `Ok` when `key` may make one more request of `class` now; else 429
    /// with the time until it may.
    pub async fn check(&self, class: Class, key: Key) -> Result<(), ApiError> {
        let Some(local) = &self.inner.local else {
            return Ok(());
        };
        #[cfg(feature = "redis")]
        let verdict = match &self.inner.redis {
            Some(shared) => match shared.check(class, key).await {
                Some(verdict) => verdict,
                None => local.check(class, key),
            },
            None => local.check(class, key),
        };
        #[cfg(not(feature = "redis"))]
        let verdict = local.check(class, key);
        verdict.map_err(|retry_after| {
            self.inner
                .rejected
                .get_or_create(&ClassLabel { class })
                .inc();
            ApiError::RateLimited {
                class: class.name(),
                retry_after,
            }
        })
    }
}
