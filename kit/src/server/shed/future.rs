use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use pin_project_lite::pin_project;
use tokio::time::Instant;
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
pub struct Place {
    door: Arc<Door>,
    /// When the request came in, on adaptive doors only (a fixed door reads
    /// no clock).
    entered: Option<Instant>,
    answered_in: Option<Duration>,
}

impl Place {
    fn answered(&mut self) {
        self.answered_in = self.entered.map(|entered| entered.elapsed());
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.door.leave(self.answered_in);
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn admitted(inner: F, door: Arc<Door>) -> Self {
        let entered = door.adaptive().then(Instant::now);
        Self::Admitted {
            inner,
            place: Place {
                door,
                entered,
                answered_in: None,
            },
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
            Proj::Admitted { inner, place } => {
                let Ok(response) = ready!(inner.poll(cx));
                place.answered();
                Poll::Ready(Ok(response.map(Body::new)))
            }
            Proj::Passed { inner } => {
                let Ok(response) = ready!(inner.poll(cx));
                Poll::Ready(Ok(response.map(Body::new)))
            }
            Proj::Shed { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| Response::new(Body::empty())))),
        }
    }
}
