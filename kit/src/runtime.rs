//! The tokio runtime, sized by configuration.
//!
//! Worker count is a performance knob: by default one per core, but never
//! fewer than two (see [`MIN_DEFAULT_WORKERS`]); an explicit count is taken
//! as given.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Worker threads; 0 (the default) means one per CPU core, and at least
    /// [`MIN_DEFAULT_WORKERS`]. Any other number is used as it is.
    pub worker_threads: usize,
}

/// The default's floor. With a single worker, one task that blocks its
/// thread (a slow synchronous call someone adds later) stalls every request
/// and every timer, so a 1-CPU pod still gets two. An operator who sets
/// `worker_threads: 1` chooses fewer context switches over that margin: on
/// a 2-core machine running several processes, one worker each measured
/// the most throughput (docs/benchmarks.md). The trace exporter has a
/// runtime of its own, so no worker count can deadlock its flush.
pub const MIN_DEFAULT_WORKERS: usize = 2;

pub fn build(settings: &RuntimeSettings) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(settings, std::thread::available_parallelism().ok()))
        .enable_all()
        .build()
}

fn workers(settings: &RuntimeSettings, cores: Option<std::num::NonZeroUsize>) -> usize {
    match settings.worker_threads {
        0 => cores
            .map_or(MIN_DEFAULT_WORKERS, usize::from)
            .max(MIN_DEFAULT_WORKERS),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    fn cores(n: usize) -> Option<NonZeroUsize> {
        NonZeroUsize::new(n)
    }

    #[test]
    fn the_default_is_one_worker_per_core() {
        assert_eq!(workers(&RuntimeSettings::default(), cores(8)), 8);
    }

    #[test]
    fn the_default_never_drops_below_two_workers_on_one_core() {
        assert_eq!(workers(&RuntimeSettings::default(), cores(1)), 2);
        assert_eq!(workers(&RuntimeSettings::default(), None), 2);
    }

    #[test]
    fn an_explicit_worker_count_is_taken_as_given() {
        let one = RuntimeSettings { worker_threads: 1 };
        assert_eq!(workers(&one, cores(8)), 1);
        let six = RuntimeSettings { worker_threads: 6 };
        assert_eq!(workers(&six, cores(1)), 6);
    }
}
