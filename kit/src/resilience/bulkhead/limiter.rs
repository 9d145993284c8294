use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::time::Instant;

use super::permits::Permits;
use super::{AdaptiveSettings, BulkheadFull, BulkheadSettings};
use crate::resilience::Outcome;

/// A window needs this many calls to say anything about latency.
const MIN_CALLS: u32 = 5;
/// How far the learnt no-load latency may rise per second: 6 % in a
/// minute, so a spike's overload is not taken for the new normal, while a
/// callee that really got more than `tolerance` times slower (a bigger
/// page, a slower disk) is followed within about ten minutes.
const NOLOAD_DRIFT_PER_SECOND: f64 = 0.001;

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

/// What an adaptive limit learns from: the calls that ended in the current
/// window, and the no-load latency so far.
#[derive(Debug)]
struct Window {
    opened: Instant,
    calls: u32,
    total: Duration,
    /// Calls that failed or timed out.
    congested: u32,
    /// The most calls in flight this window: whether the limit held any back.
    busiest: usize,
    noload: Option<Duration>,
}

impl Window {
    /// An empty window from `opened`, carrying what was learnt so far.
    fn open(opened: Instant, noload: Option<Duration>) -> Self {
        Self {
            opened,
            calls: 0,
            total: Duration::ZERO,
            congested: 0,
            busiest: 0,
            noload,
        }
    }
}

/// The shared state of one bulkhead.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    in_flight: InFlight,
    /// The current limit as `f64` bits, read by every call without a lock.
    limit: AtomicU64,
    adaptive: Option<(AdaptiveSettings, Mutex<Window>)>,
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
        let adaptive = settings
            .adaptive
            .clone()
            .map(|a| (a, Mutex::new(Window::open(Instant::now(), None))));
        Self {
            name: name.into(),
            in_flight,
            limit: AtomicU64::new(initial.to_bits()),
            adaptive,
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
        if self.admit() {
            return Ok(());
        }
        Err(BulkheadFull {
            bulkhead: self.name.clone(),
            limit: self.limit(),
        })
    }

    /// Takes a slot, or counts a rejection: [`Self::try_acquire`] without
    /// building its error, for callers that answer a refusal themselves
    /// (a server's door, where refusals are the overload path).
    pub(crate) fn admit(&self) -> bool {
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
        if !acquired {
            self.rejections.fetch_add(1, Ordering::Relaxed);
        }
        acquired
    }

    /// Gives a slot back and, when adaptive, learns from how the call went.
    pub(crate) fn release(&self, outcome: Option<(Outcome, Duration)>) {
        let counter = match &self.in_flight {
            InFlight::Permits(permits) => return permits.release(),
            InFlight::Counter(counter) => counter,
        };
        let in_flight = counter.fetch_sub(1, Ordering::AcqRel);
        if let Some((outcome, latency)) = outcome {
            self.learn(Instant::now(), outcome, latency, in_flight);
        }
    }

    /// Counts a call that ended at `now` with `in_flight` calls (itself
    /// included) in flight, and revises the limit when its window is over.
    /// One short lock per call, on adaptive bulkheads only.
    fn learn(&self, now: Instant, outcome: Outcome, latency: Duration, in_flight: usize) {
        let Some((adaptive, window)) = &self.adaptive else {
            return;
        };
        let congested = match outcome {
            Outcome::Failure | Outcome::Timeout => true,
            Outcome::Success | Outcome::Neutral => false,
            Outcome::Rejected => return,
        };
        let mut w = window.lock().unwrap_or_else(PoisonError::into_inner);
        w.calls += 1;
        w.total += latency;
        w.congested += u32::from(congested);
        w.busiest = w.busiest.max(in_flight);
        let elapsed = now.saturating_duration_since(w.opened);
        if elapsed < adaptive.window || w.calls < MIN_CALLS {
            return;
        }
        let mean = w.total / w.calls;
        let drifted =
            |n: Duration| n.mul_f64(1.0 + NOLOAD_DRIFT_PER_SECOND * elapsed.as_secs_f64());
        let noload = w.noload.map_or(mean, |n| drifted(n).min(mean));
        let target = adaptive
            .latency_target
            .unwrap_or_else(|| noload.mul_f64(adaptive.tolerance));
        let limit = f64::from_bits(self.limit.load(Ordering::Acquire));
        let next = if w.congested > 0 || mean > target {
            limit * adaptive.backoff
        } else if w.busiest + 1 >= limit as usize {
            // Latency is fine and the limit was what held calls back: try
            // one more. An idle callee's limit stays where it is, so a quiet
            // night does not leave it at `max` for the morning's spike.
            limit + 1.0
        } else {
            limit
        };
        let (min, max) = (adaptive.min.max(1) as f64, adaptive.max.max(1) as f64);
        self.limit
            .store(next.clamp(min, max).to_bits(), Ordering::Release);
        *w = Window::open(now, Some(noload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive(latency_target: Option<Duration>) -> BulkheadSettings {
        BulkheadSettings {
            max_concurrent: 0,
            adaptive: Some(AdaptiveSettings {
                min: 2,
                max: 40,
                initial: 20,
                latency_target,
                tolerance: 2.0,
                window: Duration::from_millis(100),
                backoff: 0.9,
            }),
        }
    }

    /// One window of calls taking `latency_ms` each, `in_flight` at a time.
    fn window(l: &Limiter, at: &mut Instant, outcome: Outcome, latency_ms: u64, in_flight: usize) {
        *at += Duration::from_millis(100);
        for _ in 0..MIN_CALLS {
            l.learn(*at, outcome, Duration::from_millis(latency_ms), in_flight);
        }
    }

    /// A window in which the limit held calls back.
    fn busy(l: &Limiter, at: &mut Instant, latency_ms: u64) {
        window(l, at, Outcome::Success, latency_ms, l.limit());
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
    fn a_limit_that_holds_calls_back_grows_by_one_a_window_while_latency_stays_low() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now();
        for _ in 0..5 {
            busy(&l, &mut at, 5);
        }
        assert_eq!(l.limit(), 25);
        for _ in 0..100 {
            busy(&l, &mut at, 5);
        }
        assert_eq!(l.limit(), 40, "capped at max");
    }

    #[test]
    fn queueing_past_tolerance_times_the_no_load_latency_shrinks_the_limit_until_it_clears() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now();
        busy(&l, &mut at, 5);
        let before = l.limit();
        // Twice the no-load latency is allowed; more is queueing.
        busy(&l, &mut at, 10);
        assert_eq!(l.limit(), before + 1);
        for _ in 0..3 {
            busy(&l, &mut at, 25);
        }
        let shrunk = l.limit();
        assert!(shrunk < before, "{shrunk} < {before}");
        busy(&l, &mut at, 6);
        assert_eq!(l.limit(), shrunk + 1, "grows again once the queue is gone");
    }

    #[test]
    fn an_idle_callee_keeps_its_limit() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now();
        for _ in 0..50 {
            window(&l, &mut at, Outcome::Success, 5, 3);
        }
        assert_eq!(l.limit(), 20);
    }

    #[test]
    fn failures_shrink_the_adaptive_limit_but_never_below_min() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now();
        for _ in 0..100 {
            window(&l, &mut at, Outcome::Failure, 1, 1);
        }
        assert_eq!(l.limit(), 2);
    }

    #[test]
    fn a_configured_latency_target_replaces_the_learnt_one() {
        let l = Limiter::new("b", &adaptive(Some(Duration::from_millis(50))));
        let mut at = Instant::now();
        busy(&l, &mut at, 5);
        // 8× the no-load latency, but within the target.
        busy(&l, &mut at, 40);
        assert_eq!(l.limit(), 22);
        busy(&l, &mut at, 60);
        assert_eq!(l.limit(), 19);
    }

    #[test]
    fn a_minute_of_overload_is_not_learnt_as_the_new_no_load_latency() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now();
        busy(&l, &mut at, 5);
        // 12 ms is 2.4× the no-load latency: every window of a minute
        // backs off (the allowed 10 ms drifts to 10.6 ms at most).
        for _ in 0..600 {
            busy(&l, &mut at, 12);
        }
        assert_eq!(l.limit(), 2);
    }

    #[test]
    fn a_window_waits_for_enough_calls_to_judge_latency() {
        let l = Limiter::new("b", &adaptive(None));
        let mut at = Instant::now() + Duration::from_secs(1);
        for _ in 0..MIN_CALLS - 1 {
            l.learn(at, Outcome::Success, Duration::from_millis(500), 20);
            at += Duration::from_secs(1);
        }
        assert_eq!(l.limit(), 20);
        l.learn(at, Outcome::Success, Duration::from_millis(500), 20);
        assert_eq!(
            l.limit(),
            21,
            "the first full window sets the no-load latency"
        );
    }
}
