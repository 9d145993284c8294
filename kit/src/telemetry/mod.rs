//! One call sets up a process's telemetry: logs always; OpenTelemetry traces
//! exported over OTLP when `otlp_endpoint` is set; Sentry error reports when
//! `sentry_dsn` is set. [`init`] runs in the synchronous `main`, before the
//! tokio runtime exists (Sentry wants its hub in place before any worker
//! thread starts), and returns a guard that flushes everything when dropped.
//!
//! What is not configured costs nothing: no exporter thread, no Sentry
//! client, and the propagation and reporting layers pass requests straight
//! through.

pub mod propagation;
pub mod report;
mod sentry_init;
pub mod span;
mod task;
mod throttle;

pub use task::spawn;
pub use throttle::LogEvery;

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use secrecy::SecretString;
use serde::Deserialize;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
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
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`
    /// (`APP_PLATFORM__TELEMETRY__OTLP_ENDPOINT`). Unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0.0–1.0. A caller's decision (the
    /// `traceparent` sampled flag) is always followed, so a trace is never
    /// cut in half between services.
    pub sample_ratio: f64,
    /// How long finished spans wait to be exported in a batch.
    #[serde(with = "humantime_serde")]
    pub export_delay: Duration,
    /// Sentry DSN; unset: no error reports. A Secret in production.
    pub sentry_dsn: Option<SecretString>,
    /// Environment name in error reports; defaults to `APP_ENVIRONMENT`.
    pub environment: Option<String>,
    /// Upper bound for flushing traces and reports at shutdown; it must fit
    /// in Kubernetes' grace period after the drain timeout.
    #[serde(with = "humantime_serde")]
    pub flush_timeout: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info,sqlx=warn,h2=warn,tower=warn,hyper=warn".into(),
            log_format: LogFormat::Pretty,
            otlp_endpoint: None,
            sample_ratio: 1.0,
            export_delay: Duration::from_secs(5),
            sentry_dsn: None,
            environment: None,
            flush_timeout: Duration::from_secs(3),
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
    #[error("telemetry.sample_ratio must be within 0.0..=1.0, not {0}")]
    SampleRatio(f64),
    #[error("invalid telemetry.sentry_dsn: {0}")]
    SentryDsn(String),
    #[error(
        "telemetry.sentry_dsn is https, but this build has no TLS for Sentry: \
         build with `--features kit/sentry-tls` (the Docker image does) or send \
         to a plain-HTTP relay"
    )]
    SentryTls,
    #[error("the global trace-context propagator is a no-op")]
    Propagator,
    #[error("cannot start the OTLP exporter: {0}")]
    Exporter(String),
}

/// Whether spans carry OpenTelemetry contexts (traces exported, or trace ids
/// wanted for error reports). Propagation layers do nothing while false.
static TRACING: AtomicBool = AtomicBool::new(false);
/// Whether a Sentry client is installed.
static REPORTING: AtomicBool = AtomicBool::new(false);
/// The provider [`flush`] flushes.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

pub(crate) fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

pub(crate) fn reporting_enabled() -> bool {
    REPORTING.load(Ordering::Relaxed)
}

/// Flushes telemetry when dropped: exports the spans still queued (bounded
/// by `flush_timeout`) and sends pending error reports.
#[must_use = "telemetry is flushed when the guard is dropped; keep it until main returns"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    exporter_runtime: Option<tokio::runtime::Runtime>,
    sentry: Option<sentry::ClientInitGuard>,
    flush_timeout: Duration,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(self.flush_timeout)
        {
            eprintln!("telemetry: traces not flushed at exit: {e}");
        }
        if let Some(runtime) = self.exporter_runtime.take() {
            runtime.shutdown_background();
        }
        if let Some(sentry) = self.sentry.take() {
            sentry.close(Some(self.flush_timeout));
        }
    }
}

/// Installs the global subscriber, propagator, tracer and Sentry client for
/// `service`. Call it from a synchronous `main`, before building the runtime.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| TelemetryError::Filter(directives, e))?
        }
        _ => EnvFilter::try_new(&settings.log_filter)
            .map_err(|e| TelemetryError::Filter(settings.log_filter.clone(), e))?,
    };
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        return Err(TelemetryError::SampleRatio(settings.sample_ratio));
    }
    let fmt = match settings.log_format {
        // Colours only on a terminal (or with CLICOLOR_FORCE, as `make run`
        // sets for its prefixed terminal output): a log file or a pipe gets
        // plain text, and no escape codes are formatted into every span.
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal() || colour_forced())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };

    install_propagator()?;
    let sentry = settings
        .sentry_dsn
        .as_ref()
        .map(|dsn| sentry_init::init(service, dsn, settings.environment.as_deref()))
        .transpose()?;
    // Error reports want trace ids even when no trace is exported: then the
    // provider has no exporter and spans only get ids.
    let (provider, exporter_runtime) = if settings.otlp_endpoint.is_some() || sentry.is_some() {
        let (provider, runtime) = tracer_provider(service, settings)?;
        (Some(provider), runtime)
    } else {
        (None, None)
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service.to_owned()))
            // Spans follow their own level, not the log filter: logs at
            // `warn` still leave every request traced.
            .with_filter(span_filter())
    });
    let sentry_layer = sentry.as_ref().map(|_| {
        // Only errors become reports, with the warnings before them as
        // breadcrumbs; traces go to OpenTelemetry, not Sentry performance.
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
        use tracing_subscriber::filter::LevelFilter;
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::WARN))
    });
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .with(sentry_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    if let Some(provider) = &provider {
        let _ = PROVIDER.set(provider.clone());
        TRACING.store(true, Ordering::Relaxed);
    }
    REPORTING.store(sentry.is_some(), Ordering::Relaxed);
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        traces = settings.otlp_endpoint.as_deref().unwrap_or("off"),
        error_reports = if sentry.is_some() { "on" } else { "off" },
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        provider,
        exporter_runtime,
        sentry,
        flush_timeout: settings.flush_timeout,
    })
}

/// The CLICOLOR_FORCE convention: set and not "0".
fn colour_forced() -> bool {
    std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Request, call and handler spans; not the per-frame and per-query chatter
/// of the libraries underneath.
fn span_filter() -> Targets {
    Targets::new()
        .with_default(Level::INFO)
        .with_target("sqlx", Level::WARN)
        .with_target("h2", Level::WARN)
        .with_target("hyper", Level::WARN)
        .with_target("tower", Level::WARN)
}

/// W3C trace context on every hop. Set even when tracing is off, so that a
/// process started later with tracing on never silently drops contexts.
fn install_propagator() -> Result<(), TelemetryError> {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    // A no-op propagator would break every trace at the first hop without an
    // error anywhere; check that the global one now writes `traceparent`.
    let w3c = opentelemetry::global::get_text_map_propagator(|p| {
        p.fields().any(|field| field == "traceparent")
    });
    if w3c {
        Ok(())
    } else {
        Err(TelemetryError::Propagator)
    }
}

/// The tracer provider: sampled by ratio (parent-based) and, with an
/// endpoint, a batch exporter over OTLP/gRPC.
///
/// The exporter's tonic channel lives on a one-thread runtime of its own:
/// the batch processor's thread blocks on exports, and if those needed the
/// application's runtime, a flush from a 1-worker runtime could deadlock.
fn tracer_provider(
    service: &str,
    settings: &TelemetrySettings,
) -> Result<(SdkTracerProvider, Option<tokio::runtime::Runtime>), TelemetryError> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource);
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok((builder.build(), None));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let exporter = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?
    };
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(settings.export_delay)
                .build(),
        )
        .build();
    Ok((
        builder.with_span_processor(processor).build(),
        Some(runtime),
    ))
}

/// Exports the spans queued so far and sends pending error reports, within
/// `timeout`. The last step of a graceful shutdown; safe to call more than
/// once (several servers in one test process each call it).
pub async fn flush(timeout: Duration) {
    if !tracing_enabled() && !reporting_enabled() {
        return;
    }
    // Both flushes block their thread until the exporter answers.
    let flushing = tokio::task::spawn_blocking(move || {
        if let Some(provider) = PROVIDER.get()
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "traces not flushed");
        }
        if let Some(client) = sentry::Hub::current().client() {
            client.flush(Some(timeout));
        }
    });
    if tokio::time::timeout(timeout, flushing).await.is_err() {
        tracing::warn!(?timeout, "telemetry flush timed out");
    }
}

/// The OpenTelemetry trace id of the current span, as 32 hex digits.
pub fn current_trace_id() -> Option<String> {
    if !tracing_enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_without_telemetry_keys_still_parse() {
        let settings: TelemetrySettings =
            serde_json::from_str(r#"{"log_filter":"debug"}"#).unwrap();
        assert!(settings.otlp_endpoint.is_none());
        assert!(settings.sentry_dsn.is_none());
        assert!((settings.sample_ratio - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_w3c_propagator_is_not_a_no_op() {
        install_propagator().unwrap();
        let fields = opentelemetry::global::get_text_map_propagator(|p| {
            p.fields().map(str::to_owned).collect::<Vec<_>>()
        });
        assert!(fields.iter().any(|f| f == "traceparent"), "{fields:?}");
    }
}
