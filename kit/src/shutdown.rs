//! Shutdown signals and the limits of a graceful drain.

use std::time::Duration;

use serde::Deserialize;

/// How a process stops. The numbers must fit inside Kubernetes'
/// `terminationGracePeriodSeconds` (see `k8s/`): propagation delay + drain
/// timeout + telemetry flush < grace period.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Time between leaving discovery and closing the listener, so that every
    /// watcher has seen the key disappear before connections are refused.
    #[serde(with = "humantime_serde")]
    pub propagation_delay: Duration,
    /// Hard limit for in-flight requests to finish after the listener closed.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            propagation_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(15),
        }
    }
}

/// Completes on SIGTERM (Kubernetes, `kill`) or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; relying on SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; relying on Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
