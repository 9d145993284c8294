//! Readiness means "this process can serve its critical path now", not "every
//! dependency is up".
//!
//! Kubernetes takes an unready pod out of its Service. Every gateway pod sees
//! the same etcd and the same backends, so a readiness rule that includes a
//! low-priority backend (comments) pulls *every* gateway out at once when that
//! backend dies, and the Ingress answers 503 for the whole site: the outage
//! the breakers exist to prevent. So a process names the backends it cannot
//! work without (`platform.readiness.critical`); the others only degrade
//! answers and are reported, not required.
//!
//! The rule, for the gateway and for services alike:
//! - discovery has listed etcd once (or, after that, holds last-known
//!   endpoints while etcd is unreachable: no cliff after N seconds, since
//!   every pod loses etcd at the same moment);
//! - every critical backend has at least one instance.
//!
//! Liveness (`/healthz`) never looks at a dependency.

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::discovery::Resolver;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadinessSettings {
    /// Discovery names of the backends without which this process cannot
    /// serve its critical path; readiness requires an instance of each. Every
    /// other backend is optional: its absence degrades answers but leaves the
    /// process ready.
    pub critical: Vec<String>,
}

/// A readiness setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error(
    "readiness.critical names {0:?}, which this process does not call (it calls: {1}); a typo here would make readiness ignore the backend"
)]
pub struct UnknownBackend(pub String, pub String);

impl ReadinessSettings {
    /// Refuses a critical backend that is not among `calls` (the discovery
    /// names this process calls).
    pub fn validate(&self, calls: &[&str]) -> Result<(), UnknownBackend> {
        match self.critical.iter().find(|c| !calls.contains(&c.as_str())) {
            Some(unknown) => Err(UnknownBackend(unknown.clone(), calls.join(", "))),
            None => Ok(()),
        }
    }
}

/// The answer of a readiness check: the verdict and a report for humans.
#[derive(Debug, Clone)]
pub struct Report {
    pub ready: bool,
    pub body: Value,
}

/// Checks the discovery side of readiness for a process that calls
/// `backends` through `resolver`.
#[derive(Debug, Clone)]
pub struct Dependencies {
    resolver: Resolver,
    critical: Vec<String>,
    optional: Vec<String>,
}

impl Dependencies {
    /// `backends`: every discovery name the process calls; those listed in
    /// `settings.critical` are required, the rest optional.
    pub fn new(resolver: &Resolver, settings: &ReadinessSettings, backends: &[&str]) -> Self {
        let optional = backends
            .iter()
            .filter(|b| !settings.critical.iter().any(|c| c == *b))
            .map(|b| (*b).to_owned())
            .collect();
        Self {
            resolver: resolver.clone(),
            critical: settings.critical.clone(),
            optional,
        }
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// The verdict and a report: etcd's state, instance counts of every
    /// backend, which critical ones are missing and which optional ones are
    /// degraded.
    pub fn check(&self) -> Report {
        let resolver = &self.resolver;
        let synced = resolver.has_synced();
        let count = |name: &str| resolver.endpoints(name).len();
        let mut instances = Map::new();
        let mut missing = Vec::new();
        let mut degraded = Vec::new();
        for name in &self.critical {
            let n = count(name);
            if n == 0 {
                missing.push(name.clone());
            }
            instances.insert(name.clone(), json!(n));
        }
        for name in &self.optional {
            let n = count(name);
            if n == 0 {
                degraded.push(name.clone());
            }
            instances.insert(name.clone(), json!(n));
        }
        let etcd = match (synced, resolver.unreachable_since()) {
            (false, _) => "never listed".to_owned(),
            (true, None) => "connected".to_owned(),
            (true, Some(since)) => format!(
                "unreachable since {} ({}s), serving last-known endpoints",
                humantime::format_rfc3339_seconds(since),
                SystemTime::now()
                    .duration_since(since)
                    .map_or(0, |d| d.as_secs()),
            ),
        };
        let ready = synced && missing.is_empty();
        Report {
            ready,
            body: json!({
                "status": if ready { "ready" } else { "not ready" },
                "etcd": etcd,
                "critical": self.critical,
                "missing": missing,
                "degraded": degraded,
                "instances": instances,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_critical_backend_the_process_does_not_call_is_refused() {
        let settings = ReadinessSettings {
            critical: vec!["contnet".into()],
        };
        let err = settings
            .validate(&["user", "content", "comment"])
            .unwrap_err();
        assert!(err.to_string().contains("contnet"), "{err}");
        assert!(
            ReadinessSettings {
                critical: vec!["content".into()]
            }
            .validate(&["user", "content"])
            .is_ok()
        );
    }
}
