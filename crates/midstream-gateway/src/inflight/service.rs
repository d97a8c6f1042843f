//! [`Inflight`]: the service the layer produces.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use tower::Service;

use super::future::ResponseFuture;
use super::layer::InflightConfig;

/// Calls the inner service, then wraps the body of a planned response.
#[derive(Debug, Clone)]
pub struct Inflight<S> {
    inner: S,
    config: Arc<InflightConfig>,
}

impl<S> Inflight<S> {
    pub(super) fn new(inner: S, config: Arc<InflightConfig>) -> Inflight<S> {
        Inflight { inner, config }
    }
}

impl<S, B> Service<Request<B>> for Inflight<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.config.clone())
    }
}
