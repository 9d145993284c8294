use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{Response, StatusCode};
use futures::future::BoxFuture;
use pin_project_lite::pin_project;

use super::Store;

pin_project! {
    /// The answer of a [`super::MicroCache`]: ready at once from a copy (no
    /// allocation, the hot path), the handler's own (not cacheable), a
    /// write that evicts when it answers, or a load (boxed: it waits for
    /// backend calls anyway).
    #[project = Projected]
    pub enum ResponseFuture<F> {
        Ready { response: Option<Response<Body>> },
        Pass { #[pin] future: F },
        Write { #[pin] future: F, store: Store, path: String },
        Load { future: BoxFuture<'static, Response<Body>> },
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
            Projected::Pass { future } => future.poll(cx),
            Projected::Write {
                future,
                store,
                path,
            } => {
                let response = ready!(future.poll(cx))?;
                let status = response.status();
                // A 4xx wrote nothing, nor did a 503 (the call was shed or
                // found no instance: not acted on, as gRPC's UNAVAILABLE);
                // another 5xx may have (committed, answer lost), and
                // evicting costs one reload.
                if status.is_success()
                    || (status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE)
                {
                    store.evict_write(path);
                }
                Poll::Ready(Ok(response))
            }
            Projected::Load { future } => future.as_mut().poll(cx).map(Ok),
        }
    }
}
