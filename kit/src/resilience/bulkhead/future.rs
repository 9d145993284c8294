use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::BoxError;

use super::{BulkheadFull, Limiter};
use crate::resilience::classify;

pin_project! {
    /// Holds the slot until the call completes or is dropped.
    #[project = Proj]
    pub enum ResponseFuture<F> {
        Called {
            #[pin]
            inner: F,
            slot: Slot,
        },
        Rejected { error: Option<BulkheadFull> },
    }
}

/// A taken slot; given back exactly once, also when the call is abandoned.
#[derive(Debug)]
pub struct Slot {
    limiter: &'static Limiter,
    /// Only an adaptive limit learns from latency; a fixed one skips the
    /// clock read.
    started: Option<Instant>,
    released: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.released {
            self.limiter.release(None);
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(inner: F, limiter: &'static Limiter) -> Self {
        Self::Called {
            inner,
            slot: Slot {
                started: limiter.is_adaptive().then(Instant::now),
                limiter,
                released: false,
            },
        }
    }

    pub(super) fn rejected(error: BulkheadFull) -> Self {
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
                Some(full) => full.into(),
                None => "bulkhead future polled after completion".into(),
            })),
            Proj::Called { inner, slot } => {
                let result = ready!(inner.poll(cx)).map_err(Into::into);
                // A call that was never sent (its caller's deadline was
                // spent) says nothing about the callee's latency.
                let sent = !matches!(&result, Err(e) if e.is::<crate::resilience::DeadlineSpent>());
                let learned = slot
                    .started
                    .filter(|_| sent)
                    .map(|at| (classify(&result), at.elapsed()));
                slot.limiter.release(learned);
                slot.released = true;
                Poll::Ready(result)
            }
        }
    }
}
