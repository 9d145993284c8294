//! Timestamps as the services store them (Unix milliseconds) and as the
//! contracts carry them (`google.protobuf.Timestamp`).

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Nanoseconds on tokio's clock (pausable in tests), never 0: a cheap,
/// atomically storable instant for hot-path state such as breaker windows
/// and endpoint ejections. Only differences and order mean anything.
pub fn monotonic_nanos() -> u64 {
    // Counted from the first caller's instant, moved 2^62 ns (146 years)
    // up so that an earlier instant still maps below it instead of
    // saturating: test runtimes with paused clocks each start at their own
    // creation time, and the first caller in the process may be a later one.
    const ORIGIN: u64 = 1 << 62;
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    match now.checked_duration_since(epoch) {
        Some(after) => ORIGIN.saturating_add(after.as_nanos() as u64),
        None => ORIGIN.saturating_sub((epoch - now).as_nanos() as u64),
    }
}

/// A stored millisecond timestamp as a protobuf `Timestamp`.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_split_into_seconds_and_nanos() {
        let t = timestamp(1_700_000_000_123);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_000_000));
        let t = timestamp(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_000_000));
    }
}
