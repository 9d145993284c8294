use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

use super::BalanceError;
use crate::discovery::endpoints::Endpoint;
use crate::resilience::deadline::{GRPC_TIMEOUT, decode};

pin_project! {
    /// Waits for the chosen endpoint's channel, sends the request and reports
    /// the outcome back to the endpoint.
    pub struct ResponseFuture {
        #[pin]
        state: State,
        endpoint: Option<InFlight>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Ready { channel: Channel, request: Option<http::Request<Body>> },
        Calling { #[pin] future: tonic::transport::channel::ResponseFuture },
        Failed { error: Option<BalanceError> },
    }
}

/// Counts the request against its endpoint for as long as it lives, and
/// tells the endpoint when the call was abandoned at its deadline.
struct InFlight {
    endpoint: Arc<Endpoint>,
    /// When the call's `grpc-timeout` runs out; `None` once it has an
    /// outcome (or never had a deadline).
    deadline: Option<Instant>,
}

impl InFlight {
    /// The call ended with an outcome of its own, reported by the caller.
    fn settle(&mut self) -> &Arc<Endpoint> {
        self.deadline = None;
        &self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.end_request();
        // Dropped unanswered once its deadline has passed: the deadline
        // layer above gave up on the callee, which never learns otherwise (a
        // silently cut-off instance holds every call until then). Dropped
        // earlier, the caller went away (a client disconnect, a sibling call
        // that failed): nothing to blame the callee for.
        if let Some(deadline) = self.deadline
            && Instant::now() >= deadline
        {
            self.endpoint.record_timeout();
        }
    }
}

impl ResponseFuture {
    pub(super) fn new(endpoint: Arc<Endpoint>, request: http::Request<Body>) -> Self {
        endpoint.start_request();
        // The deadline layer above sent its budget as `grpc-timeout` (whole
        // milliseconds, rounded down), so this deadline is never later than
        // its timer.
        let deadline = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(decode)
            .and_then(|budget| Instant::now().checked_add(budget));
        Self {
            state: State::Ready {
                channel: endpoint.channel().clone(),
                request: Some(request),
            },
            endpoint: Some(InFlight { endpoint, deadline }),
        }
    }

    pub(super) fn failed(error: BalanceError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
            endpoint: None,
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<Body>, BalanceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or(BalanceError::Completed)));
                }
                StateProj::Ready { channel, request } => {
                    if let Err(e) = ready!(channel.poll_ready(cx)) {
                        return Poll::Ready(Err(fail(this.endpoint, e)));
                    }
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err(BalanceError::Completed));
                    };
                    let future = channel.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    return Poll::Ready(match ready!(future.poll(cx)) {
                        Ok(response) => {
                            if let Some(in_flight) = this.endpoint {
                                in_flight.settle().record_success();
                            }
                            Ok(response)
                        }
                        Err(e) => Err(fail(this.endpoint, e)),
                    });
                }
            }
        }
    }
}

fn fail(endpoint: &mut Option<InFlight>, source: tonic::transport::Error) -> BalanceError {
    let Some(in_flight) = endpoint else {
        return BalanceError::Completed;
    };
    let endpoint = in_flight.settle();
    let addr = endpoint.instance().addr.clone();
    if is_timeout(&source) {
        // tonic's own timer for the `grpc-timeout` fired before the
        // deadline layer's: the same abandoned call.
        endpoint.record_timeout();
        BalanceError::DeadlineExceeded { addr }
    } else {
        endpoint.record_failure(&source);
        BalanceError::Transport { addr, source }
    }
}

fn is_timeout(error: &tonic::transport::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::discovery::{ChannelSettings, EndpointSet, Instance};

    /// An endpoint on a port that accepts connections and never answers,
    /// as a silently cut-off instance looks to its caller.
    fn silent_endpoint() -> (std::net::TcpListener, Arc<Endpoint>) {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let set = EndpointSet::new("s", ChannelSettings::default());
        set.replace(vec![Instance {
            id: "a".into(),
            addr: silent.local_addr().unwrap().to_string(),
            version: String::new(),
            started_at: 0,
        }]);
        let endpoint = set.pick().unwrap();
        (silent, endpoint)
    }

    fn call(endpoint: &Arc<Endpoint>) -> ResponseFuture {
        let request = http::Request::builder()
            .uri("/s.S/M")
            .header(GRPC_TIMEOUT, "100m")
            .body(Body::empty())
            .unwrap();
        ResponseFuture::new(endpoint.clone(), request)
    }

    #[tokio::test(start_paused = true)]
    async fn calls_abandoned_at_their_deadline_eject_the_endpoint() {
        let (_silent, endpoint) = silent_endpoint();
        for _ in 0..2 {
            // What the deadline layer above does when its timer fires; tonic's
            // own timer for the same `grpc-timeout` may fire first, and
            // counts the same.
            let _ = tokio::time::timeout(Duration::from_millis(100), call(&endpoint)).await;
        }
        assert!(endpoint.is_ejected());
        assert_eq!(endpoint.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_the_caller_drops_before_their_deadline_do_not_count() {
        let (_silent, endpoint) = silent_endpoint();
        for _ in 0..5 {
            // A client that disconnected, a sibling call that failed.
            let dropped = tokio::time::timeout(Duration::from_millis(60), call(&endpoint)).await;
            assert!(dropped.is_err());
        }
        assert!(!endpoint.is_ejected());
        assert_eq!(endpoint.in_flight(), 0);
    }
}
