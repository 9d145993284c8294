use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// `redis://host:6379/0`, or `rediss://` for TLS (the `kit/tls`
    /// build); absent means an in-process cache. Secret: it may carry a
    /// password.
    pub redis_url: Option<SecretString>,
    /// CA and client certificate for a `rediss://` URL.
    pub tls: crate::tls::TlsFiles,
    /// Put before every key, so services (and tests) sharing a Redis never
    /// see each other's keys.
    pub prefix: String,
    /// How long a loaded value is kept (writes invalidate it sooner).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How long "no such row" is kept, so lookups of ids that do not exist
    /// cannot keep the database busy; short, since the row may appear.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Random spread of every TTL, as a fraction (0.1 = ±10%).
    pub jitter: f64,
    /// The last fraction of a value's TTL in which the first read reloads
    /// it while other reads keep getting the cached copy, so that a hot key
    /// never expires under load (0.2 = the last 20 %; 0 = off).
    pub refresh_ahead: f64,
    /// Longest wait for Redis before a call counts as a miss.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most entries the in-process cache keeps.
    pub max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            tls: crate::tls::TlsFiles::default(),
            prefix: "newsroom:".into(),
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            jitter: 0.1,
            refresh_ahead: 0.2,
            timeout: Duration::from_millis(100),
            max_entries: 100_000,
        }
    }
}
