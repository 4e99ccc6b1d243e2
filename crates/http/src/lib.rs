//! HTTP pieces every lakests role shares: the `{"message"}` error shape, a JSON extractor whose
//! rejections use that shape, request ids on every log line, body limits, JSON 404/405, panic
//! containment, and serving with graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lakests_api::ErrorBody;
use lakests_core::AuthenticatorError;
use lakests_core::sts::StsError;
use serde::de::DeserializeOwned;
use tracing::Instrument;

mod gate;
pub mod html;
pub mod outbound;
mod rate_limit;
mod serve;

pub use gate::{Gate, GateFuture, GateLayer};
pub use rate_limit::{RateLimiter, client_ip, rate_limit_layer};
pub use serve::{ServeLimits, connections_shed_total, raise_fd_limit, serve_with_limits};

/// Largest request body accepted by every role, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request-id header lakeFS propagates.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// An error answered as `{"message": ...}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Client-safe message.
    pub message: String,
    /// A stable reason code (refused logins).
    pub reason: Option<&'static str>,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: None,
        }
    }

    /// The same error with a stable reason code in its body.
    #[must_use]
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 500 with a generic message; log the cause before answering.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

/// The one mapping of a login error (the STS server's and the authenticator's) to its answer:
/// [`StsError::status`], [`StsError::client_message`] and [`StsError::reason`]. The use cases
/// log the cause of a 5xx, which its generic message does not carry.
impl From<StsError> for ApiError {
    fn from(e: StsError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let answer = ApiError::new(status, e.client_message());
        match e.reason() {
            Some(reason) => answer.with_reason(reason.as_str()),
            None => answer,
        }
    }
}

impl From<AuthenticatorError> for ApiError {
    fn from(e: AuthenticatorError) -> Self {
        StsError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.message);
        body.reason = self.reason.map(str::to_owned);
        (self.status, axum::Json(body)).into_response()
    }
}

/// `axum::Json`, but every rejection is an [`ApiError`] that names the problem without echoing
/// the body: 400 for bad JSON, wrong types and missing fields, 413 over [`MAX_BODY_BYTES`], 415
/// without a JSON content type.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::bad_request(format!(
            "invalid request body: {}",
            describe_data_error(&e.body_text())
        )),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("invalid request body: not valid JSON")
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        _ => ApiError::bad_request("invalid request body"),
    }
}

/// Keeps the field name and the expected type of a serde error, drops the offending value (it
/// may be a code or a token).
fn describe_data_error(text: &str) -> String {
    let msg = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    if let Some(i) = msg.find("missing field ") {
        return msg[i..].to_owned();
    }
    for marker in [
        ": invalid type",
        ": invalid value",
        "invalid type",
        "invalid value",
    ] {
        if let Some(i) = msg.find(marker) {
            let field = if marker.starts_with(':') {
                format!("{}: ", &msg[..i])
            } else {
                String::new()
            };
            let expected = msg
                .rsplit_once(", expected ")
                .map(|(_, e)| e)
                .unwrap_or("another type");
            return format!("{field}wrong type, expected {expected}")
                .chars()
                .take(200)
                .collect();
        }
    }
    if let Some(i) = msg
        .find("unknown variant")
        .or_else(|| msg.find("unknown field"))
    {
        return msg[i..]
            .split(", expected")
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
    }
    "the body does not match the expected shape".into()
}

/// The request id of the current request (from `X-Request-ID`, or generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(new_request_id())))
    }
}

/// A new request id, shaped like a UUID (version 8, RFC 9562's layout for custom ids): 64 bits
/// drawn at random once per process, then a counter. Unique without a system call per request
/// (a UUID v4 asked the OS for randomness each time); a request id is a correlation key, not a
/// secret, so it need not be unpredictable.
pub fn new_request_id() -> String {
    static PREFIX: std::sync::LazyLock<u64> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&PREFIX.to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn acceptable_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_owned())
}

/// Takes the caller's `X-Request-ID` (when it is short and plain) or makes one, runs the
/// request inside a span that carries it, logs one line per request, and echoes the id.
///
/// A tower layer rather than `axum::middleware::from_fn`: `from_fn` clones the service it wraps
/// (a boxed route) for every request, and a callgrind profile of `GET /api/v1/user` put the
/// clones and their drops at about a sixth of the request's instructions.
#[derive(Debug, Clone, Copy, Default)]
struct RequestContextLayer;

impl<S> tower::Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext { inner }
    }
}

#[derive(Debug, Clone)]
struct RequestContext<S> {
    inner: S,
}

impl<S, B> tower::Service<Request> for RequestContext<S>
where
    S: tower::Service<Request, Response = axum::http::Response<B>>,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(acceptable_request_id)
            .unwrap_or_else(new_request_id);
        // The span carries the request id alone: the subscriber formats a span's fields when
        // it is made, for every request, so the method and the path go on the line of a failed
        // request instead, formatted only when it is written.
        let span = tracing::info_span!("request", request_id = %id);
        let echo = HeaderValue::from_str(&id).ok();
        let method = req.method().clone();
        let uri = req.uri().clone();
        req.extensions_mut().insert(RequestId(id));
        // Handlers run (and log) when the future is polled, inside the span; `call` itself only
        // routes.
        RequestContextFuture {
            inner: self.inner.call(req).instrument(span),
            echo,
            method,
            uri,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    struct RequestContextFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        echo: Option<HeaderValue>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        started: Instant,
    }
}

impl<F, B, E> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, E>>,
{
    type Output = Result<axum::http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut resp = match ready!(this.inner.as_mut().poll(cx)) {
            Ok(resp) => resp,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let status = resp.status().as_u16();
        // Failures at `info` and above; a line per successful request only at `debug`: on the
        // hot path (`GET /api/v1/user`, lakeFS's authorization calls) writing it cost a quarter
        // of the throughput, and what matters for security (logins, refusals) has lines of its
        // own. The span is entered only when a line may be written.
        if status >= 400 || tracing::enabled!(tracing::Level::DEBUG) {
            let elapsed_ms = this.started.elapsed().as_secs_f64() * 1000.0;
            let (method, path) = (&*this.method, this.uri.path());
            this.inner.span().in_scope(|| {
                if status >= 500 {
                    tracing::warn!(%method, path, status, elapsed_ms, "request finished");
                } else if status >= 400 {
                    tracing::info!(%method, path, status, elapsed_ms, "request finished");
                } else {
                    tracing::debug!(%method, path, status, elapsed_ms, "request finished");
                }
            });
        }
        if let Some(v) = this.echo.take() {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        Poll::Ready(Ok(resp))
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}

/// Adds what every role needs: JSON 404/405, the body limit, request ids and logging, and
/// panic containment (a panic answers 500, never a dropped connection).
pub fn with_common_layers(router: Router) -> Router {
    // One `layer` call: axum boxes the service each call returns and clones every box for
    // every request.
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            tower::ServiceBuilder::new()
                .layer(RequestContextLayer)
                .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                    panic_response,
                ))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
}

/// Serves `router` on `listener` with the default [`ServeLimits`] until `shutdown` completes,
/// then lets in-flight requests finish. Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, ServeLimits::default(), shutdown).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_keep_the_field_and_drop_the_value() {
        let t = "Failed to deserialize the JSON body into the target type: code: invalid type: integer `123456`, expected a string at line 1 column 12";
        let d = describe_data_error(t);
        assert!(!d.contains("123456"), "{d}");
        assert_eq!(d, "code: wrong type, expected a string");
        let t = "Failed to deserialize the JSON body into the target type: missing field `state` at line 1 column 20";
        assert_eq!(describe_data_error(t), "missing field `state`");
    }

    #[test]
    fn generated_request_ids_are_distinct_uuids() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 8, "{id}");
            assert!(acceptable_request_id(&HeaderValue::from_str(id).unwrap()).is_some());
        }
        // Same process, same prefix.
        assert_eq!(a[..18], b[..18]);
    }

    #[test]
    fn hostile_request_ids_are_replaced() {
        assert!(acceptable_request_id(&HeaderValue::from_static("abc-123")).is_some());
        assert!(acceptable_request_id(&HeaderValue::from_static("a b")).is_none());
        let long = HeaderValue::from_str(&"a".repeat(200)).unwrap();
        assert!(acceptable_request_id(&long).is_none());
    }
}
