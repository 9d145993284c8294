//! Per-thread stripes: counters that every call writes are split into one
//! cache line per thread stripe, so cores calling the same method do not
//! pass a line back and forth; readers sum the stripes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The stripe of the calling thread, in `0..count()`: threads take stripes
/// round-robin the first time they ask. Worked out once per thread, so a
/// call pays a thread-local read and no division (a 64-bit `%` costs tens
/// of cycles on some CPUs, and every guarded call asked twice).
pub(crate) fn of_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % count();
    }
    STRIPE.with(|s| *s)
}

/// Enough stripes that the runtime's worker threads rarely share one.
/// Worked out once: `available_parallelism` reads cgroup files, and every
/// breaker and bulkhead asks when its method is first called.
pub(crate) fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(4, usize::from)
            .saturating_mul(2)
            .clamp(2, 32)
            .next_power_of_two()
    })
}
