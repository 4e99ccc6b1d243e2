//! Counters for the `/metrics` endpoint (Prometheus text format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use lakests_core::AuthenticatorError;

/// How a login or an authorize call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Claims were returned (or a login was started).
    Success,
    /// 400: malformed, or a redirect URI no provider allows.
    InvalidRequest,
    /// 401: the code, the session or the ID token was refused.
    Unauthorized,
    /// 504: the identity provider did not answer in time.
    Timeout,
    /// 502: the identity provider is down or answered something unusable.
    Upstream,
    /// 500: our own side (configuration, store).
    Internal,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Success,
        Outcome::InvalidRequest,
        Outcome::Unauthorized,
        Outcome::Timeout,
        Outcome::Upstream,
        Outcome::Internal,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Timeout => "timeout",
            Outcome::Upstream => "upstream_error",
            Outcome::Internal => "internal_error",
        }
    }

    /// The outcome of a result.
    pub fn of<T>(r: &Result<T, AuthenticatorError>) -> Self {
        match r {
            Ok(_) => Outcome::Success,
            Err(AuthenticatorError::InvalidRequest(_) | AuthenticatorError::NotOffered(_)) => {
                Outcome::InvalidRequest
            }
            Err(AuthenticatorError::Unauthorized(_) | AuthenticatorError::Conflict(_)) => {
                Outcome::Unauthorized
            }
            Err(AuthenticatorError::Timeout(_)) => Outcome::Timeout,
            Err(AuthenticatorError::Upstream(_)) => Outcome::Upstream,
            Err(AuthenticatorError::Internal(_)) => Outcome::Internal,
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// A call to an identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdpCall {
    Discovery,
    Jwks,
    Token,
    Userinfo,
}

impl IdpCall {
    const ALL: [IdpCall; 4] = [
        IdpCall::Discovery,
        IdpCall::Jwks,
        IdpCall::Token,
        IdpCall::Userinfo,
    ];

    fn as_str(self) -> &'static str {
        match self {
            IdpCall::Discovery => "discovery",
            IdpCall::Jwks => "jwks",
            IdpCall::Token => "token",
            IdpCall::Userinfo => "userinfo",
        }
    }
}

/// The authenticator's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    logins: [AtomicU64; 6],
    authorizations: [AtomicU64; 6],
    idp_calls: [AtomicU64; 4],
}

impl Metrics {
    pub fn login(&self, o: Outcome) {
        self.logins[o.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn authorize(&self, o: Outcome) {
        self.authorizations[o.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn idp_call(&self, c: IdpCall) {
        let i = IdpCall::ALL.iter().position(|x| *x == c).unwrap_or(0);
        self.idp_calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Logins that ended with `o`.
    pub fn logins(&self, o: Outcome) -> u64 {
        self.logins[o.index()].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP lakests_authenticator_logins_total STS logins (POST /api/v1/sts/login) by outcome."
        );
        let _ = writeln!(s, "# TYPE lakests_authenticator_logins_total counter");
        for o in Outcome::ALL {
            let _ = writeln!(
                s,
                "lakests_authenticator_logins_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                self.logins(o)
            );
        }
        let _ = writeln!(
            s,
            "# HELP lakests_authenticator_authorize_total Session-mode logins started (POST /api/v1/sts/authorize) by outcome."
        );
        let _ = writeln!(s, "# TYPE lakests_authenticator_authorize_total counter");
        for o in Outcome::ALL {
            let n = self.authorizations[o.index()].load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "lakests_authenticator_authorize_total{{outcome=\"{}\"}} {n}",
                o.as_str()
            );
        }
        let _ = writeln!(
            s,
            "# HELP lakests_authenticator_idp_requests_total Requests sent to identity providers by endpoint."
        );
        let _ = writeln!(s, "# TYPE lakests_authenticator_idp_requests_total counter");
        for (i, c) in IdpCall::ALL.iter().enumerate() {
            let n = self.idp_calls[i].load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "lakests_authenticator_idp_requests_total{{endpoint=\"{}\"}} {n}",
                c.as_str()
            );
        }
        s
    }
}
