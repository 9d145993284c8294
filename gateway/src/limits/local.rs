//! Per-instance state: one keyed governor limiter per class.

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{Class, Key, LimitSettings, Rate};

type Keyed = RateLimiter<Key, DefaultKeyedStateStore<Key>, DefaultClock>;

/// How often keys whose allowance has fully come back are forgotten, so a
/// scan from a million addresses does not keep a million entries.
const SWEEP: Duration = Duration::from_secs(60);

pub(super) struct Local {
    sign_up: Arc<Keyed>,
    login: Arc<Keyed>,
    write: Arc<Keyed>,
    clock: DefaultClock,
}

fn limiter(rate: Rate) -> Arc<Keyed> {
    // Validated positive; `max(1)` only keeps the types honest.
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    let limiter = Arc::new(RateLimiter::keyed(quota));
    let weak = Arc::downgrade(&limiter);
    tokio::spawn(sweep(weak));
    limiter
}

async fn sweep(limiter: Weak<Keyed>) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

impl Local {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            sign_up: limiter(settings.sign_up),
            login: limiter(settings.login),
            write: limiter(settings.writes),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `key` is over `class`'s rate.
    pub fn check(&self, class: Class, key: Key) -> Result<(), Duration> {
        let limiter = match class {
            Class::SignUp => &self.sign_up,
            Class::Login => &self.login,
            Class::Write => &self.write,
        };
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
