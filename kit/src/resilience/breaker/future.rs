use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::BoxError;

use super::{BreakerOpen, Circuit, Outcome, Permit};
use crate::resilience::{GRPC_STATUS, classify, classify_code};

pin_project! {
    /// Records the outcome of the call into the circuit when it completes:
    /// at once for an error or a trailers-only answer (how gRPC sends
    /// errors), else when the response body ends ([`ResponseBody`]), since a
    /// status can still come in its trailers. A call dropped before
    /// completing (its caller gave up) records nothing, except that an
    /// abandoned trial frees its slot.
    #[project = Proj]
    pub enum ResponseFuture<F> {
        Called {
            #[pin]
            inner: F,
            guard: Option<Guard>,
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

impl Guard {
    fn finish(mut self, outcome: Outcome) {
        self.circuit.record(self.permit, outcome);
        self.recorded = true;
    }
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
            guard: Some(Guard {
                circuit,
                permit,
                recorded: false,
            }),
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
    type Output = Result<http::Response<ResponseBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Rejected { error } => Poll::Ready(Err(match error.take() {
                Some(open) => open.into(),
                None => "breaker future polled after completion".into(),
            })),
            Proj::Called { inner, guard } => {
                let result = ready!(inner.poll(cx)).map_err(Into::into);
                let Some(guard) = guard.take() else {
                    return Poll::Ready(Err("breaker future polled after completion".into()));
                };
                let trailers_only =
                    matches!(&result, Ok(r) if r.headers().contains_key(&GRPC_STATUS));
                let guard = match &result {
                    Ok(_) if !trailers_only => Some(guard),
                    _ => {
                        guard.finish(classify(&result));
                        None
                    }
                };
                Poll::Ready(result.map(|r| r.map(|inner| ResponseBody { inner, guard })))
            }
        }
    }
}

pin_project! {
    /// The body of an answer whose outcome its trailers decide: OK, or an
    /// error status sent after the headers (tonic's server does that for a
    /// message past its encode limit). A body error is a failure; a body
    /// dropped before its end (the caller gave up) is neutral.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<Guard>,
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let outcome = match &frame {
            Some(Ok(frame)) => frame.trailers_ref().map(|trailers| {
                classify_code(
                    trailers
                        .get(&GRPC_STATUS)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok()),
                )
            }),
            Some(Err(_)) => Some(Outcome::Failure),
            None => Some(Outcome::Success),
        };
        if let Some(outcome) = outcome
            && let Some(guard) = this.guard.take()
        {
            guard.finish(outcome);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
