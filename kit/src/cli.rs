//! The command line every newsroom binary shares. Without arguments a binary
//! loads its configuration and runs; with `--check-config` it loads and
//! validates the same configuration, prints it with secrets redacted, prints
//! its [`Contract`] (the ports it serves, what it dials, its shutdown budget)
//! as one JSON line, and exits without binding anything. `make test` runs
//! every binary so against each rendered Kubernetes overlay
//! (`scripts/check-manifests.py`).
//!
//! Hand-written rather than clap: one flag does not pay for a parser.

use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PlatformSettings;

/// What a binary's settings must say about themselves for `--check-config`.
pub trait Checked: Debug {
    /// Rejects settings that parse but cannot work (the same check the
    /// binary runs before binding a port).
    fn validate(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// What the deployment must provide for these settings.
    fn contract(&self) -> Contract;
}

/// What a configured binary needs from the deployment around it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contract {
    /// Ports the process listens on, by role (`http`, `grpc`, `admin`).
    pub listens: Vec<Listener>,
    /// Everything it connects to.
    pub dials: Vec<Dial>,
    /// The discovery name it registers under, if it registers.
    pub registers_as: Option<String>,
    /// Backends readiness requires an instance of (`readiness.critical`):
    /// a deployment that runs none of one never becomes ready.
    pub critical: Vec<String>,
    /// Longest time from SIGTERM to exit: the propagation delay, the drain
    /// timeout and the telemetry flush together. Kubernetes' grace period
    /// must cover it, plus any preStop hook.
    pub shutdown_budget_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    pub name: String,
    pub port: u16,
}

/// One outgoing connection a binary makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dial {
    /// A `host:port` from a URL (etcd, a database, Redis, a collector).
    Address {
        role: String,
        host: String,
        port: u16,
    },
    /// A service found through discovery (its registered instances' ports).
    Discovered { service: String },
}

impl Dial {
    /// The dial a URL like `mysql://u:p@host:3306/db` stands for, with the
    /// scheme's usual port when it names none; `None` for URLs without a
    /// network host (`sqlite://…`).
    pub fn url(role: &str, url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let default_port = match scheme {
            "mysql" | "mariadb" => 3306,
            "redis" | "rediss" => 6379,
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // `[::1]` has colons but no port; `[::1]:80` and `host:80` have one.
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
            _ => (hostport, default_port),
        };
        Some(Self::Address {
            role: role.into(),
            host: host.trim_matches(['[', ']']).into(),
            port,
        })
    }
}

impl PlatformSettings {
    /// What a gRPC service's start-up would refuse in these settings: a
    /// critical backend it does not call (`calls`: the discovery names it
    /// calls), an impossible resilience policy.
    pub fn check(&self, calls: &[&str]) -> anyhow::Result<()> {
        self.readiness.validate(calls)?;
        self.resilience.validate()?;
        Ok(())
    }

    /// The contract every gRPC service shares: gRPC and admin listeners, etcd,
    /// the services it calls, the tracing collector and the shutdown budget.
    pub fn contract(&self, registers_as: &str, calls: &[&str]) -> Contract {
        let mut contract = Contract {
            listens: vec![
                Listener {
                    name: "grpc".into(),
                    port: self.grpc.port,
                },
                Listener {
                    name: "admin".into(),
                    port: self.admin.port,
                },
            ],
            registers_as: Some(registers_as.into()),
            critical: self.readiness.critical.clone(),
            shutdown_budget_ms: shutdown_budget(&self.shutdown, self.telemetry.flush_timeout),
            ..Contract::default()
        };
        contract.dial_etcd(&self.discovery);
        contract.dial_telemetry(&self.telemetry);
        for service in calls {
            contract.dial_service(service);
        }
        contract
    }
}

/// Something in a binary's settings that makes it dial out (a database, a
/// cache): what [`crate::grpc_service_checked!`] adds to a contract.
pub trait Dials {
    fn dial(&self, contract: &mut Contract);
}

#[cfg(feature = "db")]
impl Dials for crate::db::DatabaseSettings {
    fn dial(&self, contract: &mut Contract) {
        contract.dial_database(self);
    }
}

#[cfg(feature = "cache")]
impl Dials for crate::cache::CacheSettings {
    fn dial(&self, contract: &mut Contract) {
        contract.dial_cache(self);
    }
}

/// [`Checked`] for the settings of a gRPC service built on kit, which is
/// every service of the workspace: validation is `platform.check(calls)`,
/// the contract `platform.contract(name, calls)` plus what the listed fields
/// dial ([`Dials`]). One line per service instead of the same impl copied
/// into each (and into every generated one):
///
/// ```ignore
/// kit::grpc_service_checked!(Settings, crate::SERVICE, CALLS, [database, cache]);
/// ```
///
/// `calls` are the discovery names the service calls (see its startup.rs).
#[macro_export]
macro_rules! grpc_service_checked {
    ($settings:ty, $name:expr, $calls:expr, [$($field:ident),* $(,)?]) => {
        impl $crate::cli::Checked for $settings {
            fn validate(&self) -> $crate::cli::CheckResult {
                self.platform.check($calls)
            }

            fn contract(&self) -> $crate::cli::Contract {
                let mut contract = self.platform.contract($name, $calls);
                $( $crate::cli::Dials::dial(&self.$field, &mut contract); )*
                contract
            }
        }
    };
}

/// What [`Checked::validate`] returns.
pub type CheckResult = anyhow::Result<()>;

impl Contract {
    pub fn dial_etcd(&mut self, discovery: &crate::discovery::DiscoverySettings) {
        self.dials.extend(
            discovery
                .endpoints
                .iter()
                .filter_map(|e| Dial::url("etcd", e)),
        );
    }

    pub fn dial_telemetry(&mut self, telemetry: &crate::telemetry::TelemetrySettings) {
        if let Some(endpoint) = &telemetry.otlp_endpoint {
            self.dials.extend(Dial::url("otlp", endpoint));
        }
    }

    #[cfg(feature = "db")]
    pub fn dial_database(&mut self, database: &crate::db::DatabaseSettings) {
        use secrecy::ExposeSecret;
        self.dials
            .extend(Dial::url("database", database.url.expose_secret()));
    }

    #[cfg(feature = "cache")]
    pub fn dial_cache(&mut self, cache: &crate::cache::CacheSettings) {
        use secrecy::ExposeSecret;
        if let Some(url) = &cache.redis_url {
            self.dials.extend(Dial::url("cache", url.expose_secret()));
        }
    }

    pub fn dial_service(&mut self, service: &str) {
        self.dials.push(Dial::Discovered {
            service: service.into(),
        });
    }
}

/// Propagation delay + drain timeout + telemetry flush, in milliseconds.
pub fn shutdown_budget(shutdown: &crate::shutdown::ShutdownSettings, flush: Duration) -> u64 {
    let total = shutdown.propagation_delay + shutdown.drain_timeout + flush;
    u64::try_from(total.as_millis()).unwrap_or(u64::MAX)
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("unknown argument {0:?} (usage: {1} [--check-config])")]
    UnknownArgument(String, String),
}

/// Loads and validates the settings. `Ok(None)` means `--check-config` ran
/// and succeeded: the caller returns without starting anything. Each `main`
/// calls this in one line:
///
/// ```ignore
/// let Some(settings) = kit::cli::settings::<Settings>(SERVICE, CONFIG_DIR)? else { return Ok(()) };
/// ```
///
/// `name` is the binary's name, as for [`crate::config::load`].
pub fn settings<S>(name: &str, default_dir: impl AsRef<Path>) -> anyhow::Result<Option<S>>
where
    S: DeserializeOwned + Checked,
{
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check-config" => check = true,
            _ => return Err(CliError::UnknownArgument(arg, program).into()),
        }
    }
    let settings: S = crate::config::load(name, default_dir)?;
    settings.validate()?;
    if !check {
        return Ok(Some(settings));
    }
    println!("{}", redact(&format!("{settings:#?}")));
    println!("contract: {}", serde_json::to_string(&settings.contract())?);
    println!("configuration OK");
    Ok(None)
}

/// Hides the password of every `scheme://user:password@host` in `text`.
/// Secret fields already print as `[REDACTED]` (secrecy); this catches URLs
/// kept in plain strings (an OTLP endpoint with credentials, say).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '/')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => match authority[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":[REDACTED]");
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mysql_url_dials_its_host_and_port_without_the_password() {
        assert_eq!(
            Dial::url("database", "mysql://u:secret@mysql-user:3307/user"),
            Some(Dial::Address {
                role: "database".into(),
                host: "mysql-user".into(),
                port: 3307,
            })
        );
    }

    #[test]
    fn a_url_without_a_port_dials_the_usual_port_of_its_scheme() {
        assert_eq!(
            Dial::url("cache", "redis://redis-user/0"),
            Some(Dial::Address {
                role: "cache".into(),
                host: "redis-user".into(),
                port: 6379,
            })
        );
    }

    #[test]
    fn a_sqlite_url_dials_nothing() {
        assert_eq!(Dial::url("database", "sqlite://data/user.db"), None);
    }

    #[test]
    fn passwords_in_urls_are_redacted_and_the_rest_is_kept() {
        assert_eq!(
            redact("a: \"mysql://u:hunter2@db:3306/x\", b: http://etcd:2379"),
            "a: \"mysql://u:[REDACTED]@db:3306/x\", b: http://etcd:2379"
        );
    }

    #[test]
    fn the_shutdown_budget_adds_delay_drain_and_flush() {
        let shutdown = crate::shutdown::ShutdownSettings {
            propagation_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(15),
        };
        assert_eq!(shutdown_budget(&shutdown, Duration::from_secs(3)), 20_000);
    }
}
