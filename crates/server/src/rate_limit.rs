//! Per-client rate limits of `POST /api/v1/sts/login` and `POST /api/v1/sts/authorize`: a token
//! bucket per client address (`auth.sts.rate_limit_per_second`, `auth.sts.rate_limit_burst`).
//! Over the limit a request is answered 429 with `Retry-After`, before its body is read. Kept
//! in memory: each replica counts its own clients. The buckets are `lakests_http::RateLimiter`,
//! which the web-UI login shares.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lakests_http::ApiError;

pub(crate) use lakests_http::RateLimiter;

/// The layer of the limited STS routes: 429 with `Retry-After` and `{"message"}` over the
/// limit.
pub(crate) fn layer(
    limiter: Arc<RateLimiter>,
) -> lakests_http::GateLayer<impl Fn(&Request) -> Option<Response> + Clone + Send + Sync + 'static>
{
    lakests_http::rate_limit_layer(limiter, "rate limited", refuse)
}

fn refuse(retry_after: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many login requests from this address; try again later",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}
