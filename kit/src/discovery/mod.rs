//! Service discovery through etcd.
//!
//! A service instance lives at `<prefix>/<service>/<instance-id>` with a JSON
//! [`Instance`] as value, attached to a lease that the [`Registrar`] keeps
//! alive. Callers run one [`Resolver`] that lists and watches the prefix and
//! keeps, per service, the set of live endpoints that [`Balance`] spreads
//! requests over.
//!
//! Both sides connect lazily and retry forever with jittered, capped backoff:
//! a process that starts before etcd, or outlives an etcd restart, repairs
//! itself instead of crash-looping.

mod backoff;
pub mod balance;
mod endpoints;
mod registrar;
mod resolver;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tls::{TlsError, TlsFiles};

pub use balance::{Balance, BalanceError};
pub use endpoints::EndpointSet;
pub use endpoints::{ChannelSettings, Endpoint};
pub use registrar::Registrar;
pub use resolver::Resolver;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379`; `https://` ones
    /// (all or none) need the `kit/tls` build.
    pub endpoints: Vec<String>,
    /// CA and client certificate for `https://` endpoints.
    pub tls: TlsFiles,
    /// Key prefix shared by every service of one deployment; tests use a
    /// fresh prefix each so they never see each other's instances.
    pub prefix: String,
    /// Lease time-to-live: how long a crashed instance stays listed.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// Timeout of each etcd request (grant, put, get, keep-alive answer).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// First retry delay after a failure; doubles up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How often a registrar checks that its key still exists.
    #[serde(with = "humantime_serde")]
    pub key_check_interval: Duration,
    /// How often a resolver re-lists the whole prefix as a safety net
    /// beside the watch.
    #[serde(with = "humantime_serde")]
    pub resync_interval: Duration,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            tls: TlsFiles::default(),
            prefix: "/newsroom/services".into(),
            lease_ttl: Duration::from_secs(10),
            request_timeout: Duration::from_secs(3),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            key_check_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
        }
    }
}

impl DiscoverySettings {
    /// `prefix` without trailing slashes, so keys never contain `//`.
    fn root(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    fn service_key(&self, service: &str, instance_id: &str) -> String {
        format!("{}/{service}/{instance_id}", self.root())
    }

    fn watch_prefix(&self) -> String {
        format!("{}/", self.root())
    }

    /// Splits `<prefix>/<service>/<id>` into `(service, id)`.
    fn parse_key<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key.strip_prefix(self.root())?.strip_prefix('/')?;
        let (service, id) = rest.split_once('/')?;
        (!service.is_empty() && !id.is_empty() && !id.contains('/')).then_some((service, id))
    }

    /// Fails for TLS settings this build or these endpoints cannot honour;
    /// start-up calls it so that they stop the process before it binds.
    pub fn check_tls(&self) -> Result<(), TlsError> {
        self.tls_pem().map(drop)
    }

    /// The certificates for `https://` endpoints, read now (a renewed file
    /// is picked up at the next connection); `None` for `http://` ones.
    fn tls_pem(&self) -> Result<Option<crate::tls::TlsPem>, TlsError> {
        const WHAT: &str = "discovery.tls";
        let https = self
            .endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if https == 0 && self.tls.is_set() {
            return Err(TlsError::NotTls {
                what: WHAT,
                why: "discovery.endpoints are not https://",
            });
        }
        if https == 0 {
            return Ok(None);
        }
        if https < self.endpoints.len() {
            return Err(TlsError::NotTls {
                what: WHAT,
                why: "discovery.endpoints mix https:// and http://",
            });
        }
        self.tls.read(WHAT).map(Some)
    }

    async fn connect(&self) -> Result<etcd_client::Client, CallError> {
        self.connect_with(etcd_client::ConnectOptions::new()).await
    }

    /// [`Self::connect`] with `options` as the starting point.
    async fn connect_with(
        &self,
        options: etcd_client::ConnectOptions,
    ) -> Result<etcd_client::Client, CallError> {
        let tls = self.tls_pem()?;
        let options = options
            .with_connect_timeout(self.request_timeout)
            .with_timeout(self.request_timeout)
            // HTTP/2 pings notice a dead etcd (or a cut network) even on an
            // otherwise silent watch stream.
            .with_keep_alive(Duration::from_secs(5), self.request_timeout)
            .with_keep_alive_while_idle(true);
        #[cfg(feature = "tls")]
        let options = match tls {
            Some(pem) => options.with_tls(etcd_tls(pem)),
            None => options,
        };
        // Without the feature, `tls_pem` fails for https:// endpoints.
        #[cfg(not(feature = "tls"))]
        let _: Option<crate::tls::TlsPem> = tls;
        bounded(
            self.request_timeout,
            etcd_client::Client::connect(&self.endpoints, Some(options)),
        )
        .await
    }
}

#[cfg(feature = "tls")]
fn etcd_tls(pem: crate::tls::TlsPem) -> etcd_client::TlsOptions {
    let tls = etcd_client::TlsOptions::new();
    let tls = match pem.ca {
        Some(ca) => tls.ca_certificate(etcd_client::Certificate::from_pem(ca)),
        None => tls.with_webpki_roots(),
    };
    match pem.identity {
        Some((cert, key)) => tls.identity(etcd_client::Identity::from_pem(cert, key)),
        None => tls,
    }
}

/// Why one etcd call failed.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
}

/// Runs an etcd call with a deadline: a half-open connection must not hang a
/// session forever.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, CallError> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| CallError::Timeout(limit))?
        .map_err(CallError::from)
}

/// What an instance publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Unique per process: survives nothing, so a restarted process is a new
    /// instance and never inherits a stale key.
    pub id: String,
    /// `host:port` that callers dial for gRPC.
    pub addr: String,
    #[serde(default)]
    pub version: String,
    /// Unix milliseconds.
    #[serde(default)]
    pub started_at: u64,
}

impl Instance {
    /// A new instance of this process serving on `addr`.
    pub fn new(service: &str, addr: impl Into<String>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self {
            id: format!(
                "{service}-{host}-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ),
            addr: addr.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefix: &str) -> DiscoverySettings {
        DiscoverySettings {
            prefix: prefix.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_are_built_and_parsed_back() {
        let s = settings("/news/");
        let key = s.service_key("content", "abc");
        assert_eq!(key, "/news/content/abc");
        assert_eq!(s.parse_key(&key), Some(("content", "abc")));
    }

    #[test]
    fn keys_outside_the_layout_are_ignored() {
        let s = settings("/news");
        assert_eq!(s.parse_key("/news/content"), None);
        assert_eq!(s.parse_key("/news/content/a/b"), None);
        assert_eq!(s.parse_key("/newsroom/content/a"), None);
        assert_eq!(s.parse_key("/news//a"), None);
    }

    #[test]
    fn two_instances_of_one_service_get_different_ids() {
        assert_ne!(Instance::new("a", "x").id, Instance::new("a", "x").id);
    }
}
