use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

use super::BalanceError;
use crate::discovery::endpoints::Endpoint;

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

/// Counts the request against its endpoint for as long as it lives.
struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

impl ResponseFuture {
    pub(super) fn new(endpoint: Arc<Endpoint>, request: http::Request<Body>) -> Self {
        endpoint.start_request();
        Self {
            state: State::Ready {
                channel: endpoint.channel().clone(),
                request: Some(request),
            },
            endpoint: Some(InFlight(endpoint)),
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
                            if let Some(InFlight(endpoint)) = this.endpoint {
                                endpoint.record_success();
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

fn fail(endpoint: &Option<InFlight>, source: tonic::transport::Error) -> BalanceError {
    match endpoint {
        Some(InFlight(endpoint)) if is_timeout(&source) => BalanceError::DeadlineExceeded {
            addr: endpoint.instance().addr.clone(),
        },
        Some(InFlight(endpoint)) => {
            endpoint.record_failure(&source);
            BalanceError::Transport {
                addr: endpoint.instance().addr.clone(),
                source,
            }
        }
        None => BalanceError::Completed,
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
