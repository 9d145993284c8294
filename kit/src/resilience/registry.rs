//! Every breaker and bulkhead of a process, for metrics and the admin API.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Serialize;

use super::Policy;
use super::breaker::{Circuit, Counts, Force, State};
use super::bulkhead::Limiter;
use crate::metrics::Registry;

/// A cheap, cloneable handle to the breakers of one process: one breaker
/// and bulkhead per method, shared by every channel that calls it.
#[derive(Debug, Clone, Default)]
pub struct Breakers {
    inner: Arc<Mutex<Vec<Guard>>>,
}

/// The breaker and bulkhead of one method.
type Guard = (&'static Circuit, &'static Limiter);

/// Most breakers one registry makes.
const MAX_GUARDS: usize = 1024;
const OVERFLOW: &str = "overflow";

/// What the admin API and the dashboard show of one breaker.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerSnapshot {
    pub name: String,
    pub state: State,
    pub forced: Force,
    /// Of the rolling window.
    pub error_percentage: u8,
    pub volume: u64,
    pub window: Counts,
    pub retry_after_ms: u64,
    pub bulkhead_limit: Option<usize>,
    pub in_flight: usize,
    pub bulkhead_rejections: u64,
}

impl Breakers {
    /// A registry whose breakers are exported on `registry` as
    /// `breaker_state`, `breaker_calls_total` and `bulkhead_*`.
    pub fn new(registry: &Registry) -> Self {
        let breakers = Self::default();
        registry.register_collector(Box::new(breakers.clone()));
        breakers
    }

    /// The breaker and bulkhead of method `name`, made from `policy` the
    /// first time it is asked for. They live as long as the process, as
    /// Hystrix's do, so that calls carry plain references to them instead
    /// of bumping a shared reference count that every core contends for.
    /// Method names come from generated clients, so there are few; past
    /// [`MAX_GUARDS`] the rest share one `overflow` pair rather than grow
    /// without bound.
    pub(super) fn guard(&self, name: &str, policy: &Policy) -> Guard {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = all.iter().find(|(c, _)| c.name() == name) {
            return *found;
        }
        let name = if all.len() < MAX_GUARDS {
            name
        } else {
            tracing::warn!(
                method = name,
                "too many breakers; sharing the overflow breaker"
            );
            if let Some(found) = all.iter().find(|(c, _)| c.name() == OVERFLOW) {
                return *found;
            }
            OVERFLOW
        };
        let circuit = Circuit::new(name, policy.breaker.clone());
        if !policy.breaker.enabled {
            circuit.set_force(Force::Closed);
        }
        let guard = (
            circuit.into_static(),
            Limiter::new(name, &policy.bulkhead).into_static(),
        );
        all.push(guard);
        guard
    }

    fn all(&self) -> Vec<Guard> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The breaker called `name` (a gRPC method without its leading slash).
    pub fn find(&self, name: &str) -> Option<&'static Circuit> {
        let name = name.trim_start_matches('/');
        self.all()
            .into_iter()
            .find(|(c, _)| c.name() == name)
            .map(|(c, _)| c)
    }

    pub fn snapshot(&self) -> Vec<BreakerSnapshot> {
        let mut all: Vec<BreakerSnapshot> = self
            .all()
            .into_iter()
            .map(|(circuit, limiter)| {
                let window = circuit.counts();
                let (volume, error_percentage) =
                    window.judged(circuit.settings().count_bulkhead_rejections);
                let state = circuit.state();
                BreakerSnapshot {
                    name: circuit.name().to_owned(),
                    state,
                    forced: circuit.force(),
                    error_percentage,
                    volume,
                    window,
                    retry_after_ms: if state == State::Open {
                        circuit.retry_after().as_millis() as u64
                    } else {
                        0
                    },
                    bulkhead_limit: Some(limiter.limit()).filter(|l| *l != usize::MAX),
                    in_flight: limiter.in_flight(),
                    bulkhead_rejections: limiter.rejections(),
                }
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl Collector for Breakers {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.all();
        let gauge = ConstGauge::new(0i64);
        let counter = ConstCounter::new(0u64);

        let mut family = encoder.encode_descriptor(
            crate::metrics::names::BREAKER_STATE,
            "Circuit state: 0 closed, 1 open, 2 half-open",
            None,
            gauge.metric_type(),
        )?;
        for (circuit, _) in &all {
            let labels = [("breaker", circuit.name())];
            ConstGauge::new(circuit.state().gauge()).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            crate::metrics::names::BREAKER_CALLS,
            "Calls through a breaker by outcome",
            None,
            counter.metric_type(),
        )?;
        for (circuit, _) in &all {
            let t = circuit.totals();
            for (outcome, n) in [
                ("success", t.successes),
                ("failure", t.failures),
                ("timeout", t.timeouts),
                ("rejected", t.rejections),
                ("short_circuited", t.short_circuits),
            ] {
                let labels = [("breaker", circuit.name()), ("outcome", outcome)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "bulkhead_in_flight",
            "Calls in flight through a bulkhead",
            None,
            gauge.metric_type(),
        )?;
        for (_, limiter) in &all {
            let labels = [("bulkhead", limiter.name())];
            ConstGauge::new(limiter.in_flight() as i64).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "bulkhead_limit",
            "Current concurrency limit of a bulkhead (-1: unlimited)",
            None,
            gauge.metric_type(),
        )?;
        for (_, limiter) in &all {
            let labels = [("bulkhead", limiter.name())];
            let limit = match limiter.limit() {
                usize::MAX => -1,
                n => n as i64,
            };
            ConstGauge::new(limit).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "bulkhead_rejections",
            "Calls a bulkhead rejected because it was full",
            None,
            counter.metric_type(),
        )?;
        for (_, limiter) in &all {
            let labels = [("bulkhead", limiter.name())];
            ConstCounter::new(limiter.rejections()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_calling_a_method_shares_its_breaker() {
        let breakers = Breakers::default();
        let (a, _) = breakers.guard("svc/M", &Policy::default());
        let (b, _) = breakers.guard("svc/M", &Policy::default());
        assert!(std::ptr::eq(a, b));
        assert_eq!(breakers.snapshot().len(), 1);
    }

    #[test]
    fn past_the_cap_methods_share_the_overflow_breaker() {
        let breakers = Breakers::default();
        for i in 0..MAX_GUARDS + 5 {
            breakers.guard(&format!("svc/M{i}"), &Policy::default());
        }
        assert_eq!(breakers.snapshot().len(), MAX_GUARDS + 1);
        assert!(breakers.find(OVERFLOW).is_some());
    }
}
