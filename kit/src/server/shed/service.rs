use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use tower::{BoxError, Service};

use super::{Door, ResponseFuture};

/// Answers requests past the door's limit at once.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    pub(super) door: Option<Arc<Door>>,
}

impl<S> Shed<S> {
    pub(super) fn new(inner: S, door: Option<Arc<Door>>) -> Self {
        Self { inner, door }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Shed<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    // The router boxes every answer into axum's `Body` anyway; doing it
    // here lets a shed answer and a handler's share one type, at no extra
    // cost (axum does not box a `Body` twice).
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Some(door) = &self.door else {
            return ResponseFuture::passed(self.inner.call(request));
        };
        if door.exempt.contains(&request.uri().path()) {
            return ResponseFuture::passed(self.inner.call(request));
        }
        if door.enter() {
            ResponseFuture::admitted(self.inner.call(request), door.clone())
        } else {
            ResponseFuture::shed(door.reject())
        }
    }
}
