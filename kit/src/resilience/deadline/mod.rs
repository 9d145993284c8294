//! Deadlines, end to end.
//!
//! Client side, [`Deadline`] gives each call a budget — the route's timeout,
//! or what is left of the caller's own deadline if that is sooner — sends it
//! as `grpc-timeout` so the callee can stop in time, and fails the call with
//! [`TimedOut`] when the budget runs out (dropping it, which resets the
//! HTTP/2 stream and cancels the callee's work). A call left with less than
//! the policy's `min_budget` of its caller's deadline is not sent at all: it
//! fails at once with [`DeadlineSpent`] (DEADLINE_EXCEEDED to the caller,
//! neutral for the breaker), so a slow caller cannot trip a healthy
//! callee's breaker with timeouts that were never the callee's.
//!
//! Server side, [`ServerDeadline`] reads `grpc-timeout`, answers
//! DEADLINE_EXCEEDED when it passes (dropping the handler: work stops), and
//! makes the deadline visible to calls the handler makes ([`remaining`]),
//! so a chain gateway → comment → content shares one budget.

mod error;
mod future;
mod layer;
mod server;
mod service;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::{Instant, Sleep};

pub use error::{DeadlineSpent, TimedOut};
pub use future::ResponseFuture;
pub use layer::DeadlineLayer;
pub use server::{ServerDeadline, ServerDeadlineLayer};
pub use service::Deadline;

/// The default floor under which a call is not sent: about a round trip
/// inside a cluster plus the callee's smallest useful work.
pub const DEFAULT_MIN_BUDGET: Duration = Duration::from_millis(5);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `future` with `deadline` as the budget of every call it makes.
pub fn scope<F: Future>(deadline: Instant, future: F) -> TaskLocalFuture<Instant, F> {
    let deadline = match current() {
        Some(outer) if outer < deadline => outer,
        _ => deadline,
    };
    DEADLINE.scope(deadline, future)
}

/// When a [`Timer`] fires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    Deadline(Instant),
    /// A budget counted from the moment the timer is armed.
    After(Duration),
}

pin_project! {
    /// A timer armed only when the call first has to wait: a call that
    /// answers on its first poll (a cache hit, a rejection) never touches
    /// the timer wheel or clones the runtime handle, and arming costs
    /// nothing next to the wait it bounds.
    #[project = TimerProj]
    pub(crate) enum Timer {
        Idle { until: Until },
        Armed { #[pin] sleep: Sleep },
    }
}

impl Timer {
    pub(crate) fn new(until: Until) -> Self {
        Self::Idle { until }
    }

    /// Arms the timer if it is idle, then polls it.
    pub(crate) fn poll_expired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let TimerProj::Idle { until } = self.as_mut().project() {
            let sleep = match *until {
                Until::Deadline(at) => tokio::time::sleep_until(at),
                Until::After(budget) => tokio::time::sleep(budget),
            };
            self.set(Self::Armed { sleep });
        }
        match self.project() {
            TimerProj::Armed { sleep } => sleep.poll(cx),
            TimerProj::Idle { .. } => Poll::Pending,
        }
    }
}

/// The deadline of the current task, if one was set.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Time left before the current task's deadline.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

pub(crate) const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// [`encode`] for a configured timeout, as a static value: cloning it per
/// call is a copy, where a shared value would bump a reference count that
/// every core contends for. The few distinct timeouts of a process are
/// interned once and live as long as it (hand-written: no interning crate
/// gives `&'static str` for this handful of values).
pub(crate) fn encode_static(timeout: Duration) -> http::HeaderValue {
    static INTERNED: std::sync::Mutex<Vec<(Duration, &'static str)>> =
        std::sync::Mutex::new(Vec::new());
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let text = match interned.iter().find(|(d, _)| *d == timeout) {
        Some((_, text)) => *text,
        // A guard against a caller minting timeouts at run time.
        None if interned.len() >= 64 => return encode(timeout),
        None => {
            let encoded = encode(timeout);
            let text: &'static str = match encoded.to_str() {
                Ok(text) => Box::leak(text.to_owned().into_boxed_str()),
                Err(_) => "1m",
            };
            interned.push((timeout, text));
            text
        }
    };
    http::HeaderValue::from_static(text)
}

/// `grpc-timeout` wire format: at most 8 digits and a unit. Formatted on
/// the stack: this runs on every call.
pub(crate) fn encode(budget: Duration) -> http::HeaderValue {
    let millis = budget.as_millis().max(1);
    let (mut n, unit) = if millis < 100_000_000 {
        (millis as u64, b'm')
    } else {
        (budget.as_secs().min(99_999_999), b'S')
    };
    let mut buf = [0u8; 9];
    let mut at = buf.len() - 1;
    buf[at] = unit;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    http::HeaderValue::from_bytes(&buf[at..])
        .unwrap_or_else(|_| http::HeaderValue::from_static("1m"))
}

pub(crate) fn decode(value: &http::HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_round_trip() {
        for ms in [1, 250, 30_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(decode(&encode(d)), Some(d));
        }
        assert_eq!(
            decode(&http::HeaderValue::from_static("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(decode(&http::HeaderValue::from_static("5x")), None);
        assert_eq!(decode(&http::HeaderValue::from_static("123456789m")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_inner_scope_cannot_extend_the_outer_deadline() {
        let outer = Instant::now() + Duration::from_secs(1);
        scope(outer, async {
            scope(Instant::now() + Duration::from_secs(5), async {
                assert_eq!(current(), Some(outer));
            })
            .await;
        })
        .await;
        assert_eq!(current(), None);
    }
}
