//! A per-client token bucket, shared by every rate-limited route: `sts/login` and
//! `sts/authorize` (`auth.sts.rate_limit_*`) and the web-UI login (`authenticator.ui_sso.
//! rate_limit_*`). Each route answers over the limit in its own shape (JSON or a page). Kept in
//! memory: each replica counts its own clients.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;

use crate::gate::GateLayer;

/// Buckets kept before idle (full) ones are dropped.
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// The per-client token buckets.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// Requests refused since start (counted by the caller that answers them).
    pub limited_total: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `per_second` tokens are added per second up to `burst`; `per_second == 0` turns the
    /// limit off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            limited_total: AtomicU64::new(0),
        }
    }

    /// Takes one token for `ip`, or says how many seconds until one is available.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        let (tokens, last) = buckets.entry(ip).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil().max(1.0);
            Err(wait as u64)
        }
    }
}

/// The rate limit of a group of routes (`Router::route_layer`): a request from a client over
/// its limit is answered with the response `refuse` makes from the seconds to wait, before the
/// routes see it (so before its body is read), counted in `limited_total` and logged at
/// `debug` with `message`. A request without its connection's address (a server started
/// without connect info; none in lakests) is not limited.
pub fn rate_limit_layer(
    limiter: Arc<RateLimiter>,
    message: &'static str,
    refuse: fn(u64) -> Response,
) -> GateLayer<impl Fn(&Request) -> Option<Response> + Clone + Send + Sync + 'static> {
    GateLayer::new(move |req: &Request| {
        let ConnectInfo(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
        let ip = client_ip(*peer);
        let retry_after = limiter.check(ip, Instant::now()).err()?;
        let total = limiter.limited_total.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(client = %ip, limited_total = total, "{message}");
        Some(refuse(retry_after))
    })
}

/// The address a client is counted under: its IP, an IPv4-mapped IPv6 address as IPv4.
pub fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_unaffected() {
        let l = RateLimiter::new(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        assert_eq!(l.check(a, t0), Err(1));
        assert_eq!(l.check(b, t0), Ok(()));
        // Half a second later one token is back.
        assert_eq!(l.check(a, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.check(a, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn zero_per_second_is_off() {
        let l = RateLimiter::new(0, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..1000 {
            assert_eq!(l.check(a, Instant::now()), Ok(()));
        }
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:1234".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(mapped), v4);
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(client_ip(v6), v6.ip());
    }
}
