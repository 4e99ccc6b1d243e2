//! The HTTP calls of a login: the lakeFS server (discovery, authorize, `sts/login`, current
//! user) and the identity provider's OpenID discovery document. Every call has a timeout
//! bounded by the login's deadline, a response size limit, and follows no redirect.

use std::time::Duration;

use lakests_api::{
    AuthenticationToken, AuthorizeRequest, AuthorizeResponse, CurrentUser, ErrorBody,
    LoginDiscovery, StsAuthRequest, User,
};
use lakests_core::Reason;
use lakests_http::outbound::{FetchError, Outbound, OutboundOptions};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::error::LoginError;
use crate::secret::AccessToken;

/// Largest response body read from any server.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub use lakests_api::GRANTED_TTL_HEADER;

/// The HTTP client of a login.
#[derive(Debug, Clone)]
pub struct ServerClient {
    out: Outbound,
}

/// A response read in full, within the size limit.
struct Answer {
    status: u16,
    content_type: String,
    granted_ttl: Option<i64>,
    body: Vec<u8>,
}

/// Why a call got no answer.
enum CallError {
    /// The deadline has passed (or passes during the call).
    Deadline,
    /// Transport failure, with a readable cause.
    Transport(String),
}

impl ServerClient {
    /// A client whose calls each take at most `request_timeout` (and never outlive the login's
    /// deadline). Unlike the servers' clients it honours `HTTPS_PROXY` and the like, as
    /// command-line HTTP clients do.
    pub fn new(request_timeout: Duration) -> Result<Self, LoginError> {
        let out = Outbound::new(&OutboundOptions {
            connect_timeout: request_timeout.min(Duration::from_secs(10)),
            env_proxy: true,
            ..OutboundOptions::new(request_timeout, MAX_RESPONSE_BYTES)
        })
        .map_err(|e| LoginError::ServerUnreachable {
            endpoint: "(none)".into(),
            cause: e.to_string(),
        })?;
        Ok(Self { out })
    }

    fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.out.client().get(url)
    }

    fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.out.client().post(url)
    }

    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CallError::Deadline);
        }
        let budget = left.min(self.out.timeout());
        match self.out.execute_within(req, budget).await {
            Ok(f) => Ok(Answer {
                status: f.status.as_u16(),
                content_type: f.content_type.unwrap_or_default(),
                granted_ttl: f
                    .headers
                    .get(GRANTED_TTL_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
                body: f.body,
            }),
            Err(FetchError::Timeout) if budget < self.out.timeout() => Err(CallError::Deadline),
            Err(FetchError::Timeout) => Err(CallError::Transport(format!(
                "no answer within {}",
                humantime::format_duration(budget)
            ))),
            Err(e) => Err(CallError::Transport(e.cause())),
        }
    }

    /// `GET /.well-known/lakests-login`. `None` when the server has no such document (a plain
    /// lakeFS answers 404, or its web UI's HTML).
    pub async fn discovery(
        &self,
        endpoint: &Endpoint,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<LoginDiscovery>, LoginError> {
        let a = self
            .call(self.get(endpoint.discovery_url()), deadline)
            .await
            .map_err(|e| server_call_error(e, endpoint, timeout))?;
        match a.status {
            200 if a.content_type.starts_with("application/json") => parse(&a.body)
                .map(Some)
                .map_err(|why| LoginError::ServerRefused {
                    endpoint: endpoint.to_string(),
                    what: "the login discovery request",
                    status: 200,
                    message: format!("the answer is not a login discovery document: {why}"),
                }),
            200 | 401 | 403 | 404 | 405 => Ok(None),
            status => Err(refused(endpoint, "the login discovery request", status, &a)),
        }
    }

    /// The identity provider's `authorization_endpoint`, from its OpenID discovery document.
    pub async fn authorization_endpoint(
        &self,
        issuer: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<url::Url, LoginError> {
        let unreachable = |cause: String| LoginError::IdpUnreachable {
            issuer: issuer.to_owned(),
            cause,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let a = match self.call(self.get(url), deadline).await {
            Ok(a) => a,
            Err(CallError::Deadline) => return Err(LoginError::Timeout { after: timeout }),
            Err(CallError::Transport(cause)) => return Err(unreachable(cause)),
        };
        if a.status != 200 {
            return Err(unreachable(format!(
                "its discovery document answered HTTP {}",
                a.status
            )));
        }
        #[derive(serde::Deserialize)]
        struct Metadata {
            issuer: String,
            authorization_endpoint: String,
        }
        let m: Metadata = parse(&a.body)
            .map_err(|why| unreachable(format!("its discovery document is invalid: {why}")))?;
        if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(unreachable(format!(
                "its discovery document names another issuer, {}",
                m.issuer
            )));
        }
        let endpoint = url::Url::parse(&m.authorization_endpoint)
            .ok()
            .filter(|u| u.scheme() == "https" || u.scheme() == "http")
            .ok_or_else(|| {
                unreachable("its authorization_endpoint is not an http(s) URL".to_owned())
            })?;
        Ok(endpoint)
    }

    /// `POST /api/v1/sts/authorize`: starts a session-mode login on the server.
    pub async fn authorize(
        &self,
        endpoint: &Endpoint,
        issuer: &str,
        redirect_uri: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<AuthorizeResponse, LoginError> {
        let body = AuthorizeRequest {
            redirect_uri: redirect_uri.to_owned(),
        };
        let a = self
            .call(
                self.post(endpoint.api("/sts/authorize")).json(&body),
                deadline,
            )
            .await
            .map_err(|e| server_call_error(e, endpoint, timeout))?;
        match a.status {
            200 => parse(&a.body).map_err(|why| LoginError::ServerRefused {
                endpoint: endpoint.to_string(),
                what: "to start the login",
                status: 200,
                message: format!("the answer is not an authorization response: {why}"),
            }),
            // The server's authenticator could not fetch the provider's metadata.
            502 | 504 => Err(LoginError::IdpUnreachable {
                issuer: issuer.to_owned(),
                cause: format!(
                    "the lakeFS server could not reach it ({})",
                    error_message(&a)
                ),
            }),
            status => Err(refused(endpoint, "to start the login", status, &a)),
        }
    }

    /// `POST /api/v1/sts/authorize/exchange`: trades the redirect's state and the redeem
    /// secret (which never left this process in a URL) for the one-time state of `sts/login`.
    pub async fn exchange(
        &self,
        endpoint: &Endpoint,
        state: &str,
        redeem_secret: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<lakests_api::AuthorizeExchangeResponse, LoginError> {
        let body = lakests_api::AuthorizeExchangeRequest {
            state: state.to_owned(),
            redeem_secret: redeem_secret.to_owned(),
        };
        let a = self
            .call(
                self.post(endpoint.api("/sts/authorize/exchange"))
                    .json(&body),
                deadline,
            )
            .await
            .map_err(|e| server_call_error(e, endpoint, timeout))?;
        match a.status {
            200 => parse(&a.body).map_err(|why| LoginError::ServerRefused {
                endpoint: endpoint.to_string(),
                what: "to complete the login session",
                status: 200,
                message: format!("the answer is not an exchange response: {why}"),
            }),
            status => Err(refused(
                endpoint,
                "to complete the login session",
                status,
                &a,
            )),
        }
    }

    /// `POST /api/v1/sts/login`: redeems the code for a lakeFS token; also returns the TTL the
    /// server says it granted.
    pub async fn sts_login(
        &self,
        endpoint: &Endpoint,
        req: &StsAuthRequest,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(AuthenticationToken, Option<i64>), LoginError> {
        let a = self
            .call(self.post(endpoint.api("/sts/login")).json(req), deadline)
            .await
            .map_err(|e| server_call_error(e, endpoint, timeout))?;
        match a.status {
            200 => {
                let token: AuthenticationToken =
                    parse(&a.body).map_err(|why| LoginError::ServerRefused {
                        endpoint: endpoint.to_string(),
                        what: "the login",
                        status: 200,
                        message: format!("the answer is not a token: {why}"),
                    })?;
                Ok((token, a.granted_ttl))
            }
            status => Err(login_refusal(endpoint, status, &a)),
        }
    }

    /// `GET /api/v1/user` with a token.
    pub async fn current_user(
        &self,
        endpoint: &Endpoint,
        token: &AccessToken,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<User, LoginError> {
        let a = self
            .call(
                self.get(endpoint.api("/user")).bearer_auth(token.expose()),
                deadline,
            )
            .await
            .map_err(|e| server_call_error(e, endpoint, timeout))?;
        match a.status {
            200 => parse::<CurrentUser>(&a.body)
                .map(|c| c.user)
                .map_err(|why| LoginError::ServerRefused {
                    endpoint: endpoint.to_string(),
                    what: "the current-user request",
                    status: 200,
                    message: format!("the answer is not a user: {why}"),
                }),
            401 => Err(LoginError::TokenRefused {
                endpoint: endpoint.to_string(),
                message: error_message(&a),
            }),
            status => Err(refused(endpoint, "the current-user request", status, &a)),
        }
    }
}

/// The error of a refused `sts/login`: from the stable `reason` a lakests server names, else
/// from what a lakeFS server's status means.
fn login_refusal(endpoint: &Endpoint, status: u16, a: &Answer) -> LoginError {
    let message = error_message(a);
    let reason = serde_json::from_slice::<ErrorBody>(&a.body)
        .ok()
        .and_then(|b| b.reason)
        .and_then(|r| Reason::parse(&r));
    let ep = endpoint.to_string();
    match (status, reason) {
        (401, Some(Reason::NoUserMapped)) => LoginError::NoUserMapped { message },
        (401, Some(Reason::CodeRejected)) => LoginError::CodeRejected { message },
        (401, Some(Reason::SessionUnknown)) => LoginError::SessionUnknown { message },
        (401, Some(Reason::IdTokenInvalid)) => LoginError::IdTokenInvalid { message },
        (401, Some(Reason::ClaimRule)) => LoginError::ClaimRule { message },
        (401, Some(Reason::SubjectMissing)) => LoginError::SubjectMissing { message },
        (401, Some(Reason::CannotProvision)) => LoginError::CannotProvision { message },
        (401, Some(Reason::IdentityRemoved)) => LoginError::IdentityRemoved { message },
        (401, _) => LoginError::LoginRefused {
            endpoint: ep,
            message,
        },
        (404, _) => LoginError::LoginNotFound {
            endpoint: ep,
            message,
        },
        (500, _) => LoginError::LoginFailed {
            endpoint: ep,
            message,
        },
        (501, _) => LoginError::LoginNotImplemented {
            endpoint: ep,
            message,
        },
        _ => refused(endpoint, "the login", status, a),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn server_call_error(e: CallError, endpoint: &Endpoint, timeout: Duration) -> LoginError {
    match e {
        CallError::Deadline => LoginError::Timeout { after: timeout },
        CallError::Transport(cause) => LoginError::ServerUnreachable {
            endpoint: endpoint.to_string(),
            cause,
        },
    }
}

fn refused(endpoint: &Endpoint, what: &'static str, status: u16, a: &Answer) -> LoginError {
    LoginError::ServerRefused {
        endpoint: endpoint.to_string(),
        what,
        status,
        message: error_message(a),
    }
}

/// The `message` of a lakeFS error body, or a short printable excerpt of an odd answer.
fn error_message(a: &Answer) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(&a.body) {
        return clip(&e.message);
    }
    let text = String::from_utf8_lossy(&a.body);
    if text.trim().is_empty() {
        "no message".into()
    } else {
        format!("unexpected answer: {}", clip(text.trim()))
    }
}

/// At most 300 printable characters, so a hostile server cannot flood or steer the terminal.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// A transport error's innermost cause, without the URL: e.g. `Connection refused (os error
/// 111)` rather than `client error (Connect): tcp connect error: ...`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_drops_control_characters_and_bounds_the_length() {
        assert_eq!(clip("a\x1b[31mb\nc"), "a[31mbc");
        let long = "x".repeat(1000);
        assert_eq!(clip(&long).chars().count(), 301);
    }

    #[test]
    fn error_messages_come_from_the_lakefs_error_body() {
        let a = Answer {
            status: 401,
            content_type: "application/json".into(),
            granted_ttl: None,
            body: br#"{"message":"no user for this identity"}"#.to_vec(),
        };
        assert_eq!(error_message(&a), "no user for this identity");
        let a = Answer {
            body: b"<html>oops</html>".to_vec(),
            ..a
        };
        assert_eq!(error_message(&a), "unexpected answer: <html>oops</html>");
    }
}
