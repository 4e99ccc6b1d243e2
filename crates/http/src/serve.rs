//! Serving a role's router on its listener, with the limits that keep one client from taking a
//! role (or every role of the process) down: a header-read timeout, an idle timeout, a request
//! timeout, a connection cap per listener and per client address, and shedding (an over-limit
//! connection is answered 503 and closed at once; the accept loop never stops on an error).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::ApiError;
use crate::rate_limit::client_ip;

/// The limits every role's server applies (`http.*` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request head must be complete within this time after the connection opens, or after
    /// the previous response on a kept-alive connection; else the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight on which no byte moved for this long is closed.
    pub idle_timeout: Duration,
    /// A request (reading its body included) that takes longer is answered 503.
    pub request_timeout: Duration,
    /// Connections open at once on one listener; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections open at once from one client address on one listener; more are answered
    /// 503 and closed.
    pub max_connections_per_client: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 2048,
            max_connections_per_client: 256,
        }
    }
}

/// What a shed connection receives before it is closed.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 54\r\n\
\r\n\
{\"message\":\"too many connections; try again shortly\"}\n";

/// How long the accept loop pauses after an error that is not about one connection (such as
/// running out of file descriptors) before it accepts again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One warning per this interval for each kind of repeated event (shedding, accept errors).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Connections shed by every listener of this process since start.
static SHED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Connections shed (answered 503 and closed over a cap) by every listener of this process
/// since start, for `/metrics`.
pub fn connections_shed_total() -> u64 {
    SHED_TOTAL.load(Ordering::Relaxed)
}

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit and returns the new soft
/// limit (`None` when it cannot be read, or is unlimited). Safe to call more than once.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            // An unlimited hard limit cannot be the soft one (the kernel caps open files):
            // then try large finite values.
            let candidates: Vec<u64> = match limit.maximum {
                Some(max) => vec![max],
                None => vec![1 << 20, 10_240],
            };
            let mut last_error = None;
            for current in candidates.into_iter().filter(|c| Some(*c) > limit.current) {
                let wanted = rustix::process::Rlimit {
                    current: Some(current),
                    maximum: limit.maximum,
                };
                match setrlimit(Resource::Nofile, wanted) {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            if let Some(e) = last_error {
                tracing::warn!(error = %e, "cannot raise the open-file limit to its hard limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A warning that is logged at most once per [`WARN_INTERVAL`].
struct RateLimitedWarning {
    started: Instant,
    last_ms: AtomicU64,
}

impl RateLimitedWarning {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Whether to log now (and remember that we did).
    fn due(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = now.saturating_add(WARN_INTERVAL.as_millis() as u64);
        let last = self.last_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= WARN_INTERVAL.as_millis() as u64
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Counts of open connections, per listener and per client address.
struct Admission {
    limits: ServeLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    shed_total: AtomicU64,
}

/// Why a connection was shed.
#[derive(Debug, Clone, Copy)]
enum Shed {
    Listener,
    Client,
}

/// One open connection; dropping it releases its slot.
struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Shed> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.limits.max_connections {
            return Err(Shed::Listener);
        }
        let per_client = open.1.entry(ip).or_insert(0);
        if *per_client >= self.limits.max_connections_per_client {
            return Err(Shed::Client);
        }
        *per_client += 1;
        open.0 += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }
}

/// Time of the last byte read or written on a connection, and its requests in flight.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// How long since a byte last moved.
    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A request in flight on a connection.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The 503 with `{"message"}` of a request that took longer than `request_timeout`.
fn timed_out(limit: Duration) -> Response {
    tracing::warn!(
        timeout_ms = limit.as_millis() as u64,
        "request took longer than http.request_timeout"
    );
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the request took too long and was abandoned",
    )
    .into_response()
}

/// Whether an accept error concerns only the connection being accepted (the next accept may
/// well succeed at once).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes, then stops
/// accepting and lets in-flight requests finish (each for at most the request timeout).
/// Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let admission = Arc::new(Admission {
        limits,
        open: Mutex::new((0, HashMap::new())),
        shed_total: AtomicU64::new(0),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let shed_warning = RateLimitedWarning::new();
    let accept_warning = RateLimitedWarning::new();
    // Connections hold a receiver; `closed()` on the sender completes when all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Typically EMFILE/ENFILE: pause, keep the loop alive, try again.
                if accept_warning.due() {
                    tracing::error!(error = %e, "accept failed; pausing briefly and continuing");
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let ip = client_ip(peer);
        let slot = match admission.admit(ip) {
            Ok(slot) => slot,
            Err(why) => {
                SHED_TOTAL.fetch_add(1, Ordering::Relaxed);
                let total = admission.shed_total.fetch_add(1, Ordering::Relaxed) + 1;
                if shed_warning.due() {
                    let limit = match why {
                        Shed::Listener => "http.max_connections",
                        Shed::Client => "http.max_connections_per_client",
                    };
                    tracing::warn!(client = %ip, limit, shed_total = total, "shedding connections");
                }
                // Best effort, never waits: the socket buffer of a fresh connection is empty.
                let _ = stream.try_write(SHED_RESPONSE);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let router = router.clone();
        let conn_activity = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = InFlight::enter(&conn_activity);
            // The request timeout wraps the router here, not as a router layer: axum clones
            // the boxed service of every layer for every request.
            let call = tokio::time::timeout(limits.request_timeout, router.clone().oneshot(req));
            async move {
                let resp = match call.await {
                    Ok(resp) => resp,
                    Err(_) => Ok(timed_out(limits.request_timeout)),
                };
                drop(in_flight);
                resp
            }
        });
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = builder.serve_connection(io, service);
            let mut conn = std::pin::pin!(conn);
            let idle = limits.idle_timeout;
            loop {
                let check_in = idle.saturating_sub(activity.quiet_for());
                tokio::select! {
                    _ = conn.as_mut() => return,
                    _ = stop.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(check_in.max(Duration::from_millis(10))) => {
                        if activity.in_flight.load(Ordering::Relaxed) == 0
                            && activity.quiet_for() >= idle
                        {
                            tracing::debug!(client = %peer, "closing an idle connection");
                            return;
                        }
                    }
                }
            }
            // Shutting down: finish the request in flight, if any, then close.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.request_timeout, conn).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_caps_per_client_and_per_listener_and_releases_on_drop() {
        let admission = Arc::new(Admission {
            limits: ServeLimits {
                max_connections: 3,
                max_connections_per_client: 2,
                ..ServeLimits::default()
            },
            open: Mutex::new((0, HashMap::new())),
            shed_total: AtomicU64::new(0),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert!(matches!(admission.admit(a), Err(Shed::Client)));
        let _b1 = admission.admit(b).unwrap();
        assert!(matches!(admission.admit(b), Err(Shed::Listener)));
        drop(a1);
        let _b2 = admission.admit(b).unwrap();
        assert_eq!(admission.open.lock().unwrap().0, 3);
    }

    #[test]
    fn the_shed_response_declares_its_body_length() {
        let text = std::str::from_utf8(SHED_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
