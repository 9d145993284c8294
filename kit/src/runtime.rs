//! The tokio runtime, sized by configuration.
//!
//! Worker count is a performance knob: a dedicated pod wants one per core,
//! but never fewer than two (see [`MIN_WORKERS`]).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Worker threads; 0 (the default) means one per CPU core. Never fewer
    /// than [`MIN_WORKERS`].
    pub worker_threads: usize,
}

/// With a single worker, one task that blocks its thread (a telemetry flush,
/// a synchronous exporter) stalls every request and every timer, in a 1-CPU
/// pod as anywhere; two keep the process responsive.
pub const MIN_WORKERS: usize = 2;

pub fn build(settings: &RuntimeSettings) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = match settings.worker_threads {
        0 => std::thread::available_parallelism().map_or(MIN_WORKERS, usize::from),
        n => n,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(MIN_WORKERS))
        .enable_all()
        .build()
}
