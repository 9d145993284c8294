//! One call sets up logging for a process: [`init`] returns a guard that
//! flushes whatever needs flushing when it is dropped at the end of `main`.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directives, e.g. `info,sqlx=warn`. `RUST_LOG` wins
    /// when set, so an operator can turn up one module without a redeploy.
    pub log_filter: String,
    pub log_format: LogFormat,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info,sqlx=warn,h2=warn,tower=warn,hyper=warn".into(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {0:?}: {1}")]
    Filter(String, tracing_subscriber::filter::ParseError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes telemetry when dropped.
#[must_use = "telemetry is flushed when the guard is dropped; keep it until main returns"]
pub struct TelemetryGuard {
    _private: (),
}

/// Installs the global subscriber for `service`.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| TelemetryError::Filter(directives, e))?
        }
        _ => EnvFilter::try_new(&settings.log_filter)
            .map_err(|e| TelemetryError::Filter(settings.log_filter.clone(), e))?,
    };
    let fmt = match settings.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        "telemetry initialised"
    );
    Ok(TelemetryGuard { _private: () })
}

use tracing_subscriber::Layer as _;
