use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower::BoxError;

use super::{BreakerOpen, Circuit, Outcome, Permit};
use crate::resilience::classify;

pin_project! {
    /// Records the outcome of the call into the circuit when it completes.
    /// A call dropped before completing (its caller gave up) records nothing,
    /// except that an abandoned trial frees its slot.
    #[project = Proj]
    pub enum ResponseFuture<F> {
        Called {
            #[pin]
            inner: F,
            guard: Guard,
        },
        Rejected { error: Option<BreakerOpen> },
    }
}

/// Holds the permit until the outcome is recorded.
#[derive(Debug)]
pub struct Guard {
    circuit: &'static Circuit,
    permit: Permit,
    recorded: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.recorded {
            self.circuit.record(self.permit, Outcome::Neutral);
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(inner: F, circuit: &'static Circuit, permit: Permit) -> Self {
        Self::Called {
            inner,
            guard: Guard {
                circuit,
                permit,
                recorded: false,
            },
        }
    }

    pub(super) fn rejected(error: BreakerOpen) -> Self {
        Self::Rejected { error: Some(error) }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Rejected { error } => Poll::Ready(Err(match error.take() {
                Some(open) => open.into(),
                None => "breaker future polled after completion".into(),
            })),
            Proj::Called { inner, guard } => {
                let result = ready!(inner.poll(cx)).map_err(Into::into);
                let outcome = classify(&result);
                guard.circuit.record(guard.permit, outcome);
                guard.recorded = true;
                Poll::Ready(result)
            }
        }
    }
}
