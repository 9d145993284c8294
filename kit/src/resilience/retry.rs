//! Retries of idempotent reads, in one layer only (the gateway), only when
//! the call failed before a service could act on it, with jitter and a
//! retry budget: with a callee failing 100 %, it receives at most
//! `(1 + ratio)` times the caller's calls (plus a small floor), never a
//! retry storm.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tower::retry::budget::{Budget, TpsBudget};

use super::{BreakerOpen, BulkheadFull};
use crate::metrics::Registry;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries allowed as a fraction of calls over `budget_window`.
    pub ratio: f32,
    /// Retries always allowed per second, so that low traffic can retry.
    pub min_per_second: u32,
    #[serde(with = "humantime_serde")]
    pub budget_window: Duration,
    /// Retries of one call at most.
    pub max_retries: u32,
    /// Upper bound of the random pause before a retry.
    #[serde(with = "humantime_serde")]
    pub max_jitter: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 5,
            budget_window: Duration::from_secs(10),
            // Once more: see the gateway's config/base.yaml for why.
            max_retries: 1,
            max_jitter: Duration::from_millis(20),
        }
    }
}

#[derive(Clone)]
pub struct Retry {
    budget: Arc<TpsBudget>,
    settings: RetrySettings,
    retries: Counter,
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Retry {
    pub fn new(settings: &RetrySettings, registry: &Registry) -> Self {
        let retries = Counter::default();
        registry.register(
            "client_retries",
            "Retries of idempotent reads (within the retry budget)",
            retries.clone(),
        );
        Self {
            budget: Arc::new(TpsBudget::new(
                settings.budget_window,
                settings.min_per_second,
                settings.ratio,
            )),
            settings: settings.clone(),
            retries,
        }
    }

    /// Runs the idempotent `call`, retrying it while that is safe and the
    /// budget allows.
    pub async fn read<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.budget.deposit();
        let mut retries = 0;
        loop {
            match call().await {
                Err(status)
                    if retries < self.settings.max_retries
                        && retryable(&status)
                        && self.budget.withdraw() =>
                {
                    retries += 1;
                    self.retries.inc();
                    let pause = self.settings.max_jitter.mul_f64(fastrand::f64());
                    tokio::time::sleep(pause).await;
                }
                result => return result,
            }
        }
    }
}

/// UNAVAILABLE means the call was not acted on (no instance, connection
/// refused, stream refused). Our own rejections are not retried: the same
/// breaker or bulkhead would reject the retry too.
fn retryable(status: &tonic::Status) -> bool {
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<BreakerOpen>() || error.is::<BulkheadFull>() {
            return false;
        }
        source = error.source();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn unavailable_reads_are_retried_and_other_errors_are_not() {
        let retry = Retry::new(&RetrySettings::default(), &Registry::new());
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry
            .read(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(tonic::Status::unavailable("down"))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 2, "one call and one retry");

        calls.store(0, Ordering::Relaxed);
        let _: Result<(), _> = retry
            .read(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(tonic::Status::not_found("no"))
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_is_not_retried() {
        let retry = Retry::new(&RetrySettings::default(), &Registry::new());
        let calls = AtomicU32::new(0);
        let _: Result<(), _> = retry
            .read(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(crate::resilience::status(
                    BreakerOpen {
                        breaker: "b".into(),
                        retry_after: Duration::from_secs(1),
                    }
                    .into(),
                ))
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_caps_retries_of_a_dead_callee() {
        let settings = RetrySettings {
            ratio: 0.2,
            min_per_second: 1,
            ..RetrySettings::default()
        };
        let retry = Retry::new(&settings, &Registry::new());
        let calls = AtomicU32::new(0);
        for _ in 0..1000 {
            let _: Result<(), _> = retry
                .read(|| async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err(tonic::Status::unavailable("down"))
                })
                .await;
        }
        let total = calls.load(Ordering::Relaxed);
        // 1000 calls + 20 % + the per-second floor over the window.
        assert!(
            total <= 1000 + 200 + 10 + 5,
            "{total} calls reached the callee"
        );
    }
}
