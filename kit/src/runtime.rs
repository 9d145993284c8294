//! The tokio runtime, sized by configuration.
//!
//! Worker count is a real performance knob on small machines: with gateway and
//! services sharing two cores, one worker per process avoids work-stealing
//! overhead, while a dedicated pod wants one per core.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Worker threads; 0 (the default) means one per CPU core.
    pub worker_threads: usize,
}

pub fn build(settings: &RuntimeSettings) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if settings.worker_threads > 0 {
        builder.worker_threads(settings.worker_threads);
    }
    builder.enable_all().build()
}
