use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::BoxError;

use super::Door;

pin_project! {
    /// Holds the request's place until it is answered or dropped.
    #[project = Proj]
    pub enum ResponseFuture<F> {
        Admitted {
            #[pin]
            inner: F,
            place: Place,
        },
        Passed {
            #[pin]
            inner: F,
        },
        Shed { response: Option<Response> },
    }
}

/// A taken place, given back on drop: also when the caller hangs up or a
/// timeout above drops the request.
#[derive(Debug)]
pub struct Place(Arc<Door>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn admitted(inner: F, door: Arc<Door>) -> Self {
        Self::Admitted {
            inner,
            place: Place(door),
        }
    }

    pub(super) fn passed(inner: F) -> Self {
        Self::Passed { inner }
    }

    pub(super) fn shed(response: Response) -> Self {
        Self::Shed {
            response: Some(response),
        }
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Admitted { inner, .. } | Proj::Passed { inner } => {
                let Ok(response) = ready!(inner.poll(cx));
                Poll::Ready(Ok(response.map(Body::new)))
            }
            Proj::Shed { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| Response::new(Body::empty())))),
        }
    }
}
