use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower::BoxError;

use super::{DeadlineSpent, TimedOut, Timer, Until};

pin_project! {
    /// The inner call raced against its budget, counted from its first poll
    /// (which follows `call` at once in every tower caller); or a call
    /// that was never sent.
    #[project = Proj]
    pub enum ResponseFuture<F> {
        Sent {
            #[pin]
            inner: F,
            #[pin]
            timer: Timer,
            budget: Duration,
        },
        Spent { error: Option<DeadlineSpent> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, budget: Duration) -> Self {
        Self::Sent {
            inner,
            timer: Timer::new(Until::After(budget)),
            budget,
        }
    }

    pub(super) fn spent(error: DeadlineSpent) -> Self {
        Self::Spent { error: Some(error) }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Spent { error } => Poll::Ready(Err(match error.take() {
                Some(spent) => spent.into(),
                None => "deadline future polled after completion".into(),
            })),
            Proj::Sent {
                inner,
                timer,
                budget,
            } => {
                if let Poll::Ready(result) = inner.poll(cx) {
                    return Poll::Ready(result.map_err(|error| {
                        let error = error.into();
                        // A tonic channel enforces the `grpc-timeout` we send
                        // as well; the same deadline must read the same
                        // whichever timer fires first: DEADLINE_EXCEEDED,
                        // a timeout of the callee — never UNAVAILABLE,
                        // which would be retried as "not acted on".
                        if tonic_timed_out(&*error) {
                            TimedOut { budget: *budget }.into()
                        } else {
                            error
                        }
                    }));
                }
                ready!(timer.poll_expired(cx));
                Poll::Ready(Err(TimedOut { budget: *budget }.into()))
            }
        }
    }
}

fn tonic_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        current = error.source();
    }
    false
}
