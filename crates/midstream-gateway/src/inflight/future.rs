//! [`ResponseFuture`]: waits for the handler's response, then wraps its body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use futures_util::future::BoxFuture;
use http::Response;

use super::body::InflightBody;
use super::complete;
use super::layer::InflightConfig;
use super::plan::PlanSlot;

pin_project_lite::pin_project! {
    /// The response future of [`Inflight`](super::Inflight).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        config: Arc<InflightConfig>,
        completing: Option<BoxFuture<'static, Response<Body>>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, config: Arc<InflightConfig>) -> ResponseFuture<F> {
        ResponseFuture {
            inner,
            config,
            completing: None,
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(completing) = this.completing.as_mut() {
                return completing.as_mut().poll(cx).map(Ok);
            }
            let response = ready!(this.inner.as_mut().poll(cx))?;
            let Some(plan) = response
                .extensions()
                .get::<PlanSlot>()
                .and_then(PlanSlot::take)
            else {
                return Poll::Ready(Ok(response));
            };
            let (parts, body) = response.into_parts();
            if plan.streaming {
                let body = InflightBody::new(body, *plan, this.config);
                return Poll::Ready(Ok(Response::from_parts(parts, Body::new(body))));
            }
            *this.completing = Some(Box::pin(complete::complete(
                parts,
                body,
                plan,
                this.config.clone(),
            )));
        }
    }
}
