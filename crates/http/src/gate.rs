//! A route layer that admits a request or answers it itself: the rate limits of the login
//! routes (`crate::rate_limit_layer`) and the authorization API's service-token check.
//!
//! A tower layer rather than `axum::middleware::from_fn`, which clones the routes it wraps (a
//! boxed service) for every request (see `RequestContextLayer`; bench/NOTES.md).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// Runs `refusal` on each request before the routes it wraps (so before the body is read):
/// `None` admits it, `Some` is the answer the routes never see.
#[derive(Debug, Clone)]
pub struct GateLayer<C> {
    refusal: C,
}

impl<C> GateLayer<C>
where
    C: Fn(&Request) -> Option<Response>,
{
    pub fn new(refusal: C) -> Self {
        Self { refusal }
    }
}

impl<C: Clone, S> tower::Layer<S> for GateLayer<C> {
    type Service = Gate<C, S>;

    fn layer(&self, inner: S) -> Gate<C, S> {
        Gate {
            refusal: self.refusal.clone(),
            inner,
        }
    }
}

/// The service of [`GateLayer`].
#[derive(Debug, Clone)]
pub struct Gate<C, S> {
    refusal: C,
    inner: S,
}

impl<C, S> tower::Service<Request> for Gate<C, S>
where
    C: Fn(&Request) -> Option<Response>,
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.refusal)(&req) {
            None => GateFuture::Admitted {
                inner: self.inner.call(req),
            },
            Some(response) => GateFuture::Refused {
                response: Some(response),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Gate`]: the routes' answer, or the refusal.
    #[project = GateProj]
    pub enum GateFuture<F> {
        Admitted { #[pin] inner: F },
        Refused { response: Option<Response> },
    }
}

impl<F, E> Future for GateFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProj::Admitted { inner } => inner.poll(cx),
            // Polled again after it completed (a caller's bug): an error, never a panic.
            GateProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| ApiError::internal().into_response()))),
        }
    }
}
