use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::BoxError;

use super::TimedOut;

pin_project! {
    /// The inner call raced against its budget.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        timer: Timer,
        budget: Duration,
    }
}

pin_project! {
    /// The timer is armed only when the call first has to wait: a call that
    /// answers at once (a cache, a rejection below) never touches the timer
    /// wheel, and arming costs nothing next to the network wait it bounds.
    #[project = TimerProj]
    enum Timer {
        Idle,
        Armed { #[pin] sleep: Sleep },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, budget: Duration) -> Self {
        Self {
            inner,
            timer: Timer::Idle,
            budget,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        if let Timer::Idle = *this.timer {
            // The budget counts from the first poll, which follows `call`
            // at once in every tower caller.
            this.timer.set(Timer::Armed {
                sleep: tokio::time::sleep(*this.budget),
            });
        }
        match this.timer.project() {
            TimerProj::Armed { sleep } => match sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(TimedOut {
                    budget: *this.budget,
                }
                .into())),
                Poll::Pending => Poll::Pending,
            },
            TimerProj::Idle => Poll::Pending,
        }
    }
}
