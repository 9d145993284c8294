//! The Hystrix circuit-breaker state machine over a rolling window.
//!
//! Hot path: one atomic load to decide, two relaxed atomic adds to record.
//! No lock is taken, and the counters are striped: each thread counts in a
//! stripe of its own (its own cache line), so cores calling the same method
//! do not bounce one line between them. Reads (a failure deciding whether to
//! trip, the admin API) sum the stripes. The rolling window tolerates the
//! benign races of two threads rolling the same bucket (a few counts may land
//! in the bucket being reset, which is within the window's own granularity).

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use serde::{Deserialize, Serialize};

use super::BreakerSettings;
use crate::resilience::stripe;

/// What the breaker does with calls (Hystrix semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls flow; outcomes are counted in the rolling window.
    Closed,
    /// Calls are rejected at once until the sleep window has passed.
    Open,
    /// The sleep window passed: a limited number of trial calls flow; their
    /// success closes the circuit, a failure opens it again.
    HalfOpen,
}

impl State {
    /// The value of the `breaker_state` gauge.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

/// An operator's override, set through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Force {
    /// Normal operation.
    Auto,
    /// Reject every call (e.g. shed a misbehaving dependency during an incident).
    Open,
    /// Let every call through whatever the error rate.
    Closed,
}

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Transport errors and UNAVAILABLE, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED.
    Failure,
    /// A DEADLINE_EXCEEDED or our own timeout: a failure of the callee.
    Timeout,
    /// A bulkhead below rejected the call: neutral, unless the breaker
    /// counts bulkhead rejections (`count_bulkhead_rejections`).
    Rejected,
    /// The caller's own error (INVALID_ARGUMENT, NOT_FOUND…): says nothing
    /// about the callee's health.
    Neutral,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The circuit's state and its trial bookkeeping in one word, so that a
/// trial's outcome is checked against the episode it was let through in and
/// applied in the same atomic step. Every transition (and every operator
/// override) starts a new episode, so the outcome of a trial from an
/// episode that is over — the circuit was reset, reopened, closed, or an
/// operator stepped in — changes nothing: it can neither close nor reopen a
/// later episode nor free a trial slot it does not hold.
///
/// Bits 56..64: state; 32..56: episode; 16..32: trial slots left; 0..16:
/// successful trials still needed to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    state: u8,
    episode: u32,
    trials: u16,
    needed: u16,
}

const EPISODE_BITS: u32 = (1 << 24) - 1;

impl Word {
    fn unpack(bits: u64) -> Self {
        Self {
            state: (bits >> 56) as u8,
            episode: (bits >> 32) as u32 & EPISODE_BITS,
            trials: (bits >> 16) as u16,
            needed: bits as u16,
        }
    }

    fn pack(self) -> u64 {
        u64::from(self.state) << 56
            | u64::from(self.episode & EPISODE_BITS) << 32
            | u64::from(self.trials) << 16
            | u64::from(self.needed)
    }

    /// The next episode, in `state`, with `trials` trial slots (and as many
    /// successes needed).
    fn next(self, state: u8, trials: u16) -> Self {
        Self {
            state,
            episode: self.episode.wrapping_add(1) & EPISODE_BITS,
            trials,
            needed: trials,
        }
    }
}

fn state_of(value: u8) -> State {
    match value {
        OPEN => State::Open,
        HALF_OPEN => State::HalfOpen,
        _ => State::Closed,
    }
}

const FORCE_AUTO: u8 = 0;
const FORCE_OPEN: u8 = 1;
const FORCE_CLOSED: u8 = 2;

/// Indexes of the counters of a bucket, in [`Counts`] order.
const SUCCESS: usize = 0;
const FAILURE: usize = 1;
const TIMEOUT: usize = 2;
const REJECTION: usize = 3;
const SHORT_CIRCUIT: usize = 4;

/// The slice of a bucket that counts nothing.
const EMPTY: i64 = i64::MIN;

/// One thread stripe's share of one bucket of the window, alone on its
/// cache line.
#[derive(Debug, Default)]
struct Cell {
    /// Index of the time slice this bucket currently counts.
    slice: AtomicI64,
    counts: [AtomicU64; 5],
    /// Never rolled: the monotonic totals exported as metrics, kept here so
    /// that a call touches a single line.
    totals: [AtomicU64; 5],
}

/// Counts of the rolling window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub rejections: u64,
    pub short_circuits: u64,
}

impl Counts {
    fn add(&mut self, counters: &[AtomicU64; 5]) {
        let c = |i: usize| counters[i].load(Ordering::Relaxed);
        self.successes += c(SUCCESS);
        self.failures += c(FAILURE);
        self.timeouts += c(TIMEOUT);
        self.rejections += c(REJECTION);
        self.short_circuits += c(SHORT_CIRCUIT);
    }

    /// Calls that reached the callee and count for its health.
    pub fn volume(&self) -> u64 {
        self.successes + self.failures + self.timeouts
    }

    pub fn error_percentage(&self) -> u8 {
        match self.volume() {
            0 => 0,
            v => ((self.failures + self.timeouts) * 100 / v) as u8,
        }
    }

    /// Volume and error percentage as a breaker judges them: bulkhead
    /// rejections count as failed calls when it counts them.
    pub fn judged(&self, count_rejections: bool) -> (u64, u8) {
        if !count_rejections {
            return (self.volume(), self.error_percentage());
        }
        let volume = self.volume() + self.rejections;
        let errors = self.failures + self.timeouts + self.rejections;
        match volume {
            0 => (0, 0),
            v => (v, (errors * 100 / v) as u8),
        }
    }
}

/// The shared state of one breaker. Read on every call and written almost
/// never, it starts a cache line of its own so no neighbour's writes evict it.
#[derive(Debug)]
#[repr(align(128))]
pub struct Circuit {
    name: String,
    settings: BreakerSettings,
    /// A packed [`Word`].
    word: AtomicU64,
    force: AtomicU8,
    /// When the circuit last opened, in nanoseconds on [`crate::time::monotonic_nanos`].
    opened_at: AtomicU64,
    /// `stripe::count() × buckets` cells, stripe-major.
    cells: Box<[CachePadded<Cell>]>,
    buckets: usize,
    slice_nanos: u64,
}

/// Whether a call may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// A normal call.
    Call,
    /// One of the HalfOpen trial calls of half-open `episode`.
    Trial { episode: u32 },
}

impl Circuit {
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> Self {
        let buckets = settings.buckets.max(1);
        let slice_nanos = (settings.window.as_nanos() as u64 / u64::from(buckets)).max(1);
        let stripes = stripe::count();
        Self {
            name: name.into(),
            word: AtomicU64::new(
                Word {
                    state: CLOSED,
                    episode: 0,
                    trials: 0,
                    needed: 0,
                }
                .pack(),
            ),
            force: AtomicU8::new(FORCE_AUTO),
            opened_at: AtomicU64::new(0),
            cells: (0..stripes * buckets as usize)
                .map(|_| {
                    CachePadded::new(Cell {
                        slice: AtomicI64::new(EMPTY),
                        ..Cell::default()
                    })
                })
                .collect(),
            buckets: buckets as usize,
            slice_nanos,
            settings,
        }
    }

    /// Gives the circuit the life of the process (see [`crate::resilience`]).
    pub fn into_static(self) -> &'static Self {
        Box::leak(Box::new(self))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    pub fn state(&self) -> State {
        state_of(Word::unpack(self.word.load(Ordering::Acquire)).state)
    }

    pub fn force(&self) -> Force {
        match self.force.load(Ordering::Relaxed) {
            FORCE_OPEN => Force::Open,
            FORCE_CLOSED => Force::Closed,
            _ => Force::Auto,
        }
    }

    pub fn set_force(&self, force: Force) {
        let value = match force {
            Force::Auto => FORCE_AUTO,
            Force::Open => FORCE_OPEN,
            Force::Closed => FORCE_CLOSED,
        };
        self.force.store(value, Ordering::Relaxed);
        // Trials in flight were let through before the operator stepped
        // in: what they prove is about a circuit that has been steered
        // since, so a new episode starts (with fresh trial slots when
        // half-open) and their outcomes are ignored. Without it, a trial
        // that ended while forced (unrecorded) kept its slot for ever: back
        // on auto, a half-open circuit short-circuited every call until a
        // reset.
        let slots = self.trial_slots();
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let word = Word::unpack(bits);
                let trials = if word.state == HALF_OPEN { slots } else { 0 };
                Some(word.next(word.state, trials).pack())
            });
        tracing::warn!(breaker = %self.name, ?force, "breaker override set by an operator");
    }

    /// Back to Closed with an empty window; trials in flight are ignored.
    pub fn reset(&self) {
        self.clear_window();
        let before = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some(Word::unpack(bits).next(CLOSED, 0).pack())
            });
        if let Ok(before) = before
            && Word::unpack(before).state != CLOSED
        {
            self.notify(State::Closed);
        }
    }

    /// Trial calls of a half-open episode (at least one; the word holds 16 bits).
    fn trial_slots(&self) -> u16 {
        self.settings.half_open_calls.clamp(1, u32::from(u16::MAX)) as u16
    }

    /// How long until an open circuit lets a trial through.
    pub fn retry_after(&self) -> Duration {
        let opened = self.opened_at.load(Ordering::Relaxed);
        let until = opened.saturating_add(self.settings.sleep_window.as_nanos() as u64);
        Duration::from_nanos(until.saturating_sub(crate::time::monotonic_nanos()))
    }

    /// Decides whether a call may proceed; `None` means short-circuit.
    pub fn acquire(&self) -> Option<Permit> {
        match self.force.load(Ordering::Relaxed) {
            FORCE_OPEN => {
                self.count(SHORT_CIRCUIT);
                return None;
            }
            FORCE_CLOSED => return Some(Permit::Call),
            _ => {}
        }
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            let next = match word.state {
                CLOSED => return Some(Permit::Call),
                OPEN if self.retry_after().is_zero() => {
                    let slots = self.trial_slots();
                    // This call is the episode's first trial.
                    Word {
                        trials: slots - 1,
                        ..word.next(HALF_OPEN, slots)
                    }
                }
                HALF_OPEN if word.trials > 0 => Word {
                    trials: word.trials - 1,
                    ..word
                },
                _ => {
                    self.count(SHORT_CIRCUIT);
                    return None;
                }
            };
            match self.word.compare_exchange_weak(
                bits,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if word.state == OPEN {
                        self.notify(State::HalfOpen);
                    }
                    return Some(Permit::Trial {
                        episode: next.episode,
                    });
                }
                Err(actual) => bits = actual,
            }
        }
    }

    /// Records how a call that got `permit` ended.
    pub fn record(&self, permit: Permit, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.count(SUCCESS),
            Outcome::Failure => self.count(FAILURE),
            Outcome::Timeout => self.count(TIMEOUT),
            Outcome::Rejected => self.count(REJECTION),
            Outcome::Neutral => {}
        }
        if self.force.load(Ordering::Relaxed) != FORCE_AUTO {
            return;
        }
        let outcome = match outcome {
            Outcome::Rejected if self.settings.count_bulkhead_rejections => Outcome::Failure,
            other => other,
        };
        match (permit, outcome) {
            (Permit::Trial { episode }, outcome) => self.settle(episode, outcome),
            (Permit::Call, Outcome::Failure | Outcome::Timeout) => {
                let bits = self.word.load(Ordering::Acquire);
                if Word::unpack(bits).state == CLOSED && self.should_trip() {
                    self.trip(bits);
                }
            }
            (Permit::Call, _) => {}
        }
    }

    /// Applies the outcome of a trial of `episode`, if that episode is
    /// still the current one: success counts towards closing, failure
    /// reopens, and a neutral or rejected trial proves nothing, so it gives
    /// its slot back for another call to be the trial.
    fn settle(&self, episode: u32, outcome: Outcome) {
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            if word.state != HALF_OPEN || word.episode != episode {
                return;
            }
            let next = match outcome {
                Outcome::Success if word.needed <= 1 => {
                    self.clear_window();
                    word.next(CLOSED, 0)
                }
                Outcome::Success => Word {
                    needed: word.needed - 1,
                    ..word
                },
                Outcome::Failure | Outcome::Timeout => {
                    self.opened_at
                        .store(crate::time::monotonic_nanos(), Ordering::Relaxed);
                    word.next(OPEN, 0)
                }
                Outcome::Neutral | Outcome::Rejected => Word {
                    trials: (word.trials + 1).min(self.trial_slots()),
                    ..word
                },
            };
            match self.word.compare_exchange_weak(
                bits,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if next.state != word.state {
                        self.notify(state_of(next.state));
                    }
                    return;
                }
                Err(actual) => bits = actual,
            }
        }
    }

    /// Every call counted since start (for metrics; never rolls).
    pub fn totals(&self) -> Counts {
        let mut totals = Counts::default();
        for cell in self.cells.iter() {
            totals.add(&cell.totals);
        }
        totals
    }

    /// The counts of the current window.
    pub fn counts(&self) -> Counts {
        let now = self.slice_now();
        let oldest = now - self.buckets as i64 + 1;
        let mut counts = Counts::default();
        for cell in self.cells.iter() {
            let slice = cell.slice.load(Ordering::Acquire);
            if (oldest..=now).contains(&slice) {
                counts.add(&cell.counts);
            }
        }
        counts
    }

    /// Volume and error percentage of the current window, as this breaker
    /// judges them (see [`Counts::judged`]).
    pub fn health(&self) -> (u64, u8) {
        self.counts()
            .judged(self.settings.count_bulkhead_rejections)
    }

    fn should_trip(&self) -> bool {
        let (volume, error_percentage) = self.health();
        volume >= u64::from(self.settings.request_volume_threshold)
            && error_percentage >= self.settings.error_threshold_percentage
    }

    /// Closed → Open, unless the circuit left `seen` meanwhile.
    fn trip(&self, seen: u64) {
        // Stored first: a caller that sees Open must see when it opened.
        self.opened_at
            .store(crate::time::monotonic_nanos(), Ordering::Relaxed);
        let next = Word::unpack(seen).next(OPEN, 0);
        if self
            .word
            .compare_exchange(seen, next.pack(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify(State::Open);
        }
    }

    fn notify(&self, to: State) {
        let (volume, error_percentage) = self.health();
        match to {
            State::Open => tracing::warn!(
                breaker = %self.name,
                volume,
                error_percentage,
                sleep_window = ?self.settings.sleep_window,
                "circuit breaker opened"
            ),
            State::HalfOpen => {
                tracing::info!(breaker = %self.name, "circuit breaker half-open: trying a call")
            }
            State::Closed => tracing::info!(breaker = %self.name, "circuit breaker closed"),
        }
    }

    fn clear_window(&self) {
        for cell in self.cells.iter() {
            cell.slice.store(EMPTY, Ordering::Release);
        }
    }

    fn slice_now(&self) -> i64 {
        (crate::time::monotonic_nanos() / self.slice_nanos) as i64
    }

    /// Adds one to counter `index` of the calling thread's cell of the
    /// current bucket, rolling the cell first when it still holds an older
    /// slice.
    fn count(&self, index: usize) {
        let now = self.slice_now();
        let at = stripe::of_thread() * self.buckets + now as usize % self.buckets;
        let cell = &self.cells[at];
        let slice = cell.slice.load(Ordering::Acquire);
        if slice != now
            && cell
                .slice
                .compare_exchange(slice, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for counter in &cell.counts {
                counter.store(0, Ordering::Relaxed);
            }
        }
        cell.counts[index].fetch_add(1, Ordering::Relaxed);
        cell.totals[index].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            enabled: true,
            window: Duration::from_secs(10),
            buckets: 10,
            request_volume_threshold: 20,
            error_threshold_percentage: 50,
            sleep_window: Duration::from_secs(5),
            half_open_calls: 1,
            count_bulkhead_rejections: false,
        }
    }

    fn run(c: &Circuit, outcome: Outcome, n: usize) {
        for _ in 0..n {
            let permit = c.acquire().expect("closed");
            c.record(permit, outcome);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_trips_when_volume_and_error_rate_reach_their_thresholds() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Success, 10);
        run(&c, Outcome::Failure, 9);
        assert_eq!(
            c.state(),
            State::Closed,
            "19 calls: under the volume threshold"
        );
        run(&c, Outcome::Failure, 1);
        assert_eq!(c.state(), State::Open, "20 calls, 50% errors");
        assert!(c.acquire().is_none(), "open rejects at once");
        assert_eq!(c.counts().short_circuits, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn it_stays_closed_under_the_volume_threshold_even_at_full_error_rate() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Failure, 19);
        assert_eq!(c.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn caller_errors_and_rejections_do_not_count_against_the_callee() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Neutral, 50);
        run(&c, Outcome::Rejected, 50);
        run(&c, Outcome::Failure, 19);
        assert_eq!(c.state(), State::Closed, "only 19 calls count");
        assert_eq!(c.counts().volume(), 19);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_count_as_failures() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Success, 10);
        run(&c, Outcome::Timeout, 10);
        assert_eq!(c.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_sleep_window_exactly_one_trial_goes_through_and_success_closes() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Failure, 20);
        tokio::time::advance(Duration::from_millis(4_900)).await;
        assert!(c.acquire().is_none(), "still sleeping");
        tokio::time::advance(Duration::from_millis(200)).await;
        let trial = c.acquire().expect("a trial");
        assert!(matches!(trial, Permit::Trial { .. }));
        assert_eq!(c.state(), State::HalfOpen);
        assert!(c.acquire().is_none(), "only one trial at a time");
        c.record(trial, Outcome::Success);
        assert_eq!(c.state(), State::Closed);
        assert_eq!(c.counts().volume(), 0, "closing resets the window");
        run(&c, Outcome::Success, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_the_circuit_for_another_sleep_window() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Failure, 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        let trial = c.acquire().unwrap();
        c.record(trial, Outcome::Failure);
        assert_eq!(c.state(), State::Open);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(c.acquire().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(c.acquire(), Some(Permit::Trial { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_neutral_trial_neither_closes_nor_opens_and_frees_the_trial_slot() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Failure, 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        let trial = c.acquire().unwrap();
        c.record(trial, Outcome::Neutral);
        assert_eq!(c.state(), State::HalfOpen);
        let again = c.acquire().expect("the slot is free again");
        c.record(again, Outcome::Success);
        assert_eq!(c.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn several_trials_must_all_succeed_when_configured() {
        let c = Circuit::new(
            "t",
            BreakerSettings {
                half_open_calls: 3,
                ..settings()
            },
        );
        run(&c, Outcome::Failure, 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        let trials: Vec<_> = (0..3).map(|_| c.acquire().unwrap()).collect();
        assert!(c.acquire().is_none());
        c.record(trials[0], Outcome::Success);
        c.record(trials[1], Outcome::Success);
        assert_eq!(c.state(), State::HalfOpen);
        c.record(trials[2], Outcome::Success);
        assert_eq!(c.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_rolls_old_failures_out() {
        let c = Circuit::new("t", settings());
        run(&c, Outcome::Failure, 15);
        tokio::time::advance(Duration::from_secs(11)).await;
        run(&c, Outcome::Failure, 10);
        assert_eq!(
            c.state(),
            State::Closed,
            "only 10 failures in the last 10 s"
        );
        assert_eq!(c.counts().failures, 10);
    }

    #[test]
    fn calls_counted_on_many_threads_all_land_in_the_window() {
        let c = Circuit::new(
            "t",
            BreakerSettings {
                request_volume_threshold: u32::MAX,
                ..settings()
            },
        );
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| run(&c, Outcome::Success, 1_000));
            }
        });
        assert_eq!(c.counts().successes, 8_000);
        assert_eq!(c.totals().successes, 8_000);
    }

    /// Trips the circuit and waits out its sleep window: the next call is
    /// the half-open trial.
    async fn trip_and_sleep(c: &Circuit) {
        run(c, Outcome::Failure, 20);
        tokio::time::advance(c.settings().sleep_window).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_override_set_while_a_trial_is_in_flight_does_not_strand_the_circuit() {
        for force in [Force::Open, Force::Closed] {
            for outcome in [Outcome::Success, Outcome::Failure, Outcome::Neutral] {
                let c = Circuit::new("t", settings());
                trip_and_sleep(&c).await;
                let trial = c.acquire().expect("the trial");
                c.set_force(force);
                c.record(trial, outcome);
                c.set_force(Force::Auto);
                let next = c.acquire();
                assert!(
                    next.is_some(),
                    "{force:?} during a trial that ended {outcome:?}: back on auto, a call must be let through (state {:?})",
                    c.state()
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_that_outlives_an_override_proves_nothing_after_it() {
        let c = Circuit::new("t", settings());
        trip_and_sleep(&c).await;
        let trial = c.acquire().expect("the trial");
        c.set_force(Force::Open);
        c.set_force(Force::Auto);
        let fresh = c.acquire().expect("a fresh trial once back on auto");
        c.record(trial, Outcome::Success);
        assert_eq!(
            c.state(),
            State::HalfOpen,
            "the old trial's success is ignored"
        );
        c.record(fresh, Outcome::Success);
        assert_eq!(c.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_from_before_a_reset_cannot_close_a_later_half_open_episode() {
        let c = Circuit::new("t", settings());
        trip_and_sleep(&c).await;
        let stale = c.acquire().expect("the first episode's trial");
        c.reset();
        trip_and_sleep(&c).await;
        let trial = c.acquire().expect("the second episode's trial");
        c.record(stale, Outcome::Success);
        assert_eq!(c.state(), State::HalfOpen, "the stale success is ignored");
        c.record(trial, Outcome::Failure);
        assert_eq!(c.state(), State::Open, "the episode's own trial decides");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_from_before_a_reset_cannot_open_a_later_half_open_episode() {
        let c = Circuit::new("t", settings());
        trip_and_sleep(&c).await;
        let stale = c.acquire().expect("the first episode's trial");
        c.reset();
        trip_and_sleep(&c).await;
        let trial = c.acquire().expect("the second episode's trial");
        c.record(stale, Outcome::Failure);
        assert_eq!(c.state(), State::HalfOpen, "the stale failure is ignored");
        c.record(trial, Outcome::Success);
        assert_eq!(c.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_from_before_a_reset_cannot_add_a_second_trial_slot() {
        let c = Circuit::new("t", settings());
        trip_and_sleep(&c).await;
        let stale = c.acquire().expect("the first episode's trial");
        c.reset();
        trip_and_sleep(&c).await;
        let _trial = c.acquire().expect("the second episode's trial");
        // An abandoned call records Neutral, which gives a trial slot back.
        c.record(stale, Outcome::Neutral);
        assert!(
            c.acquire().is_none(),
            "one trial at a time: the stale trial must not free a slot it does not hold"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_of_an_episode_that_failed_cannot_close_the_next_one() {
        let c = Circuit::new(
            "t",
            BreakerSettings {
                half_open_calls: 2,
                ..settings()
            },
        );
        trip_and_sleep(&c).await;
        let first = c.acquire().expect("trial 1");
        let second = c.acquire().expect("trial 2");
        c.record(first, Outcome::Failure);
        assert_eq!(c.state(), State::Open);
        tokio::time::advance(c.settings().sleep_window).await;
        let a = c.acquire().expect("next episode, trial 1");
        let b = c.acquire().expect("next episode, trial 2");
        c.record(second, Outcome::Success);
        c.record(a, Outcome::Success);
        assert_eq!(
            c.state(),
            State::HalfOpen,
            "two successes are needed from this episode's own trials"
        );
        c.record(b, Outcome::Success);
        assert_eq!(c.state(), State::Closed);
    }

    #[test]
    fn threads_racing_for_the_trials_get_exactly_the_configured_slots() {
        let c = Circuit::new(
            "t",
            BreakerSettings {
                half_open_calls: 3,
                sleep_window: Duration::from_millis(1),
                ..settings()
            },
        );
        run(&c, Outcome::Failure, 20);
        std::thread::sleep(Duration::from_millis(5));
        let trials = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        if let Some(permit) = c.acquire() {
                            assert!(matches!(permit, Permit::Trial { .. }));
                            trials.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(trials.load(Ordering::Relaxed), 3);
        assert_eq!(c.state(), State::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn operators_can_force_the_circuit_open_or_closed() {
        let c = Circuit::new("t", settings());
        c.set_force(Force::Open);
        assert!(c.acquire().is_none());
        c.set_force(Force::Closed);
        run(&c, Outcome::Failure, 100);
        assert!(c.acquire().is_some(), "forced closed ignores errors");
        c.set_force(Force::Auto);
        c.reset();
        assert_eq!(c.state(), State::Closed);
        assert_eq!(c.counts().volume(), 0);
    }
}
