use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::permits::Permits;
use super::{AdaptiveSettings, BulkheadFull, BulkheadSettings};
use crate::resilience::Outcome;

/// How calls in flight are counted.
#[derive(Debug)]
enum InFlight {
    /// A fixed limit: permits in per-thread reserves, no line shared by
    /// every call.
    Permits(Permits),
    /// Unlimited or adaptive: one counter, alone on its line so that it
    /// does not drag the read-mostly fields between cores. (The adaptive
    /// limit is itself written by every call, so striping would not help.)
    Counter(CachePadded<AtomicUsize>),
}

/// The shared state of one bulkhead.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    in_flight: InFlight,
    /// The current limit as `f64` bits (fractional for AIMD's additive step).
    limit: AtomicU64,
    adaptive: Option<AdaptiveSettings>,
    rejections: AtomicU64,
}

impl Limiter {
    pub fn new(name: impl Into<String>, settings: &BulkheadSettings) -> Self {
        let initial = match &settings.adaptive {
            Some(a) => a.initial.clamp(a.min.max(1), a.max.max(1)) as f64,
            None if settings.max_concurrent == 0 => f64::INFINITY,
            None => settings.max_concurrent as f64,
        };
        let in_flight = match settings.max_concurrent {
            n if n > 0 && settings.adaptive.is_none() => InFlight::Permits(Permits::new(n)),
            _ => InFlight::Counter(CachePadded::new(AtomicUsize::new(0))),
        };
        Self {
            name: name.into(),
            in_flight,
            limit: AtomicU64::new(initial.to_bits()),
            adaptive: settings.adaptive.clone(),
            rejections: AtomicU64::new(0),
        }
    }

    /// Gives the limiter the life of the process (see [`crate::resilience`]).
    pub fn into_static(self) -> &'static Self {
        Box::leak(Box::new(self))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current limit, rounded down (`usize::MAX` when unlimited).
    pub fn limit(&self) -> usize {
        let limit = f64::from_bits(self.limit.load(Ordering::Relaxed));
        if limit.is_finite() {
            limit as usize
        } else {
            usize::MAX
        }
    }

    pub fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    pub fn in_flight(&self) -> usize {
        match &self.in_flight {
            InFlight::Permits(permits) => permits.in_use(),
            InFlight::Counter(counter) => counter.load(Ordering::Relaxed),
        }
    }

    pub fn rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }

    /// Takes a slot, or says why not.
    pub(super) fn try_acquire(&self) -> Result<(), BulkheadFull> {
        let acquired = match &self.in_flight {
            InFlight::Permits(permits) => permits.acquire(),
            InFlight::Counter(counter) => {
                if counter.fetch_add(1, Ordering::AcqRel) < self.limit() {
                    true
                } else {
                    counter.fetch_sub(1, Ordering::AcqRel);
                    false
                }
            }
        };
        if acquired {
            return Ok(());
        }
        self.rejections.fetch_add(1, Ordering::Relaxed);
        Err(BulkheadFull {
            bulkhead: self.name.clone(),
            limit: self.limit(),
        })
    }

    /// Gives a slot back and, when adaptive, learns from how the call went.
    pub(super) fn release(&self, outcome: Option<(Outcome, Duration)>) {
        let counter = match &self.in_flight {
            InFlight::Permits(permits) => return permits.release(),
            InFlight::Counter(counter) => counter,
        };
        counter.fetch_sub(1, Ordering::AcqRel);
        let (Some(adaptive), Some((outcome, latency))) = (&self.adaptive, outcome) else {
            return;
        };
        let congested = match outcome {
            Outcome::Failure | Outcome::Timeout => true,
            Outcome::Success | Outcome::Neutral => latency > adaptive.latency_target,
            Outcome::Rejected => return,
        };
        let (min, max) = (adaptive.min.max(1) as f64, adaptive.max.max(1) as f64);
        let _ = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let limit = f64::from_bits(bits);
                let next = if congested {
                    limit * adaptive.backoff
                } else {
                    limit + 1.0 / limit
                };
                Some(next.clamp(min, max).to_bits())
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive() -> BulkheadSettings {
        BulkheadSettings {
            max_concurrent: 0,
            adaptive: Some(AdaptiveSettings {
                min: 2,
                max: 40,
                initial: 20,
                latency_target: Duration::from_millis(50),
                backoff: 0.9,
            }),
        }
    }

    fn call(l: &Limiter, outcome: Outcome, latency_ms: u64) {
        l.try_acquire().unwrap();
        l.release(Some((outcome, Duration::from_millis(latency_ms))));
    }

    #[test]
    fn a_fixed_limit_rejects_exactly_the_excess() {
        let l = Limiter::new(
            "b",
            &BulkheadSettings {
                max_concurrent: 3,
                adaptive: None,
            },
        );
        for _ in 0..3 {
            l.try_acquire().unwrap();
        }
        assert!(l.try_acquire().is_err());
        assert_eq!(l.rejections(), 1);
        l.release(None);
        assert!(l.try_acquire().is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let l = Limiter::new(
            "b",
            &BulkheadSettings {
                max_concurrent: 0,
                adaptive: None,
            },
        );
        for _ in 0..10_000 {
            l.try_acquire().unwrap();
        }
    }

    #[test]
    fn the_adaptive_limit_falls_when_latency_rises_and_recovers_after() {
        let l = Limiter::new("b", &adaptive());
        assert_eq!(l.limit(), 20);
        for _ in 0..20 {
            call(&l, Outcome::Success, 200);
        }
        let congested = l.limit();
        assert!(congested <= 3, "slow calls shrink the limit: {congested}");
        for _ in 0..400 {
            call(&l, Outcome::Success, 5);
        }
        let recovered = l.limit();
        assert!(recovered >= 20, "fast calls grow it back: {recovered}");
        for _ in 0..10_000 {
            call(&l, Outcome::Success, 5);
        }
        assert_eq!(l.limit(), 40, "capped at max");
    }

    #[test]
    fn failures_shrink_the_adaptive_limit_but_never_below_min() {
        let l = Limiter::new("b", &adaptive());
        for _ in 0..100 {
            call(&l, Outcome::Failure, 1);
        }
        assert_eq!(l.limit(), 2);
    }
}
