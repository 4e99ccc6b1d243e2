//! A client of lakeFS's authentication API (`POST {endpoint}/sts/login`), used when
//! `auth.authentication_api.endpoint` is set: the STS server then talks to a remote
//! authenticator exactly as lakeFS does.

use std::time::Duration;

use async_trait::async_trait;
use lakests_api::{AuthenticatorStsRequest, ErrorBody, OidcTokenData};
use lakests_core::{Authenticator, AuthenticatorError, Claims, Reason, Refusal, RequestContext};
use reqwest::StatusCode;

/// Largest authenticator answer read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest message passed on from the authenticator to the client.
const MAX_MESSAGE_CHARS: usize = 256;

/// Calls a remote authenticator over HTTP.
#[derive(Debug, Clone)]
pub struct RemoteAuthenticator {
    client: reqwest::Client,
    login_url: String,
}

impl RemoteAuthenticator {
    /// A client for the authentication API at `endpoint` (a base URL normally ending in
    /// `/api/v1`), with an overall `timeout` per call.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Self {
            client,
            login_url: format!("{}/sts/login", endpoint.trim_end_matches('/')),
        })
    }
}

#[async_trait]
impl Authenticator for RemoteAuthenticator {
    async fn sts_login(
        &self,
        request: &AuthenticatorStsRequest,
        ctx: &RequestContext,
    ) -> Result<Claims, AuthenticatorError> {
        let mut resp = self
            .client
            .post(&self.login_url)
            .header("X-Request-ID", &ctx.request_id)
            .json(request)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(AuthenticatorError::Upstream(format!(
                    "the authenticator's answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        match status {
            StatusCode::OK => serde_json::from_slice::<OidcTokenData>(&body)
                .map(|d| d.claims)
                .map_err(|_| {
                    AuthenticatorError::Upstream(
                        "the authenticator answered 200 with an unreadable body".into(),
                    )
                }),
            StatusCode::BAD_REQUEST => Err(AuthenticatorError::InvalidRequest(message(
                &body,
                "invalid request",
            ))),
            // A lakests authenticator names its reason; another one is "refused".
            StatusCode::UNAUTHORIZED => Err(AuthenticatorError::Unauthorized(Refusal::new(
                reason(&body).unwrap_or(Reason::Refused),
                message(&body, "the authenticator refused the login"),
            ))),
            StatusCode::CONFLICT => Err(AuthenticatorError::Conflict(message(&body, "conflict"))),
            other => Err(AuthenticatorError::Upstream(format!(
                "the authenticator answered HTTP {}",
                other.as_u16()
            ))),
        }
    }
}

fn transport_error(e: reqwest::Error) -> AuthenticatorError {
    if e.is_timeout() {
        AuthenticatorError::Timeout("the authenticator did not answer in time".into())
    } else if e.is_connect() {
        AuthenticatorError::Upstream("the authenticator is unreachable".into())
    } else {
        AuthenticatorError::Upstream("the call to the authenticator failed".into())
    }
}

/// The stable `reason` of a lakests authenticator's error body, when it names a known one.
fn reason(body: &[u8]) -> Option<Reason> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()?
        .reason
        .as_deref()
        .and_then(Reason::parse)
}

/// The authenticator's `{"message"}`, shortened and stripped of control characters, or
/// `fallback`.
fn message(body: &[u8], fallback: &str) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| {
            b.message
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_MESSAGE_CHARS)
                .collect::<String>()
        })
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cleaned_and_bounded() {
        let long = format!(r#"{{"message":"bad\u0007 {}"}}"#, "x".repeat(1000));
        let m = message(long.as_bytes(), "fb");
        assert!(m.starts_with("bad x"));
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(message(b"not json", "fb"), "fb");
        assert_eq!(message(br#"{"message":"  "}"#, "fb"), "fb");
    }
}
