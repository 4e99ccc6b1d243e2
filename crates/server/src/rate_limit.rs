//! Per-client rate limits of `POST /api/v1/sts/login` and `POST /api/v1/sts/authorize`: a token
//! bucket per client address (`auth.sts.rate_limit_per_second`, `auth.sts.rate_limit_burst`).
//! Over the limit a request is answered 429 with `Retry-After`, before its body is read. Kept
//! in memory: each replica counts its own clients. The buckets are `lakests_http::RateLimiter`,
//! which the web-UI login shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lakests_http::ApiError;

pub(crate) use lakests_http::RateLimiter;

/// The middleware: 429 with `Retry-After` and `{"message"}` over the limit.
pub(crate) async fn limit(
    State(limiter): State<Arc<RateLimiter>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let ip = lakests_http::client_ip(peer);
    match limiter.check(ip, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_after) => {
            let total = limiter.limited_total.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(client = %ip, limited_total = total, "rate limited");
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many login requests from this address; try again later",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            resp
        }
    }
}
