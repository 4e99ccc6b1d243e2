//! A client of lakeFS's authentication API (`POST {endpoint}/sts/login`), used when
//! `auth.authentication_api.endpoint` is set: the STS server then talks to a remote
//! authenticator exactly as lakeFS does.

use std::time::Duration;

use async_trait::async_trait;
use lakests_api::{
    AuthenticatorStsRequest, AuthorizeExchangeRequest, AuthorizeExchangeResponse, AuthorizeRequest,
    AuthorizeResponse, ErrorBody, OidcTokenData,
};
use lakests_core::{
    Authenticator, AuthenticatorError, Claims, NO_SESSION_MODE, Reason, Refusal, RequestContext,
};
use lakests_http::outbound::{
    FetchError, Outbound, OutboundBuildError, OutboundOptions, StatusCode, Url,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest authenticator answer read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest message passed on from the authenticator to the client.
const MAX_MESSAGE_CHARS: usize = 256;

/// Calls a remote authenticator over HTTP: `sts/login`, and the session-mode steps
/// `sts/authorize` and `sts/authorize/exchange` that a lakests authenticator offers (another
/// authenticator answers them 404: session mode is then not offered).
#[derive(Debug, Clone)]
pub struct RemoteAuthenticator {
    out: Outbound,
    base: String,
    /// The URLs of [`PATHS`], parsed once: a request built from a string parses it again every
    /// time (about 20,000 instructions of the STS server's login; callgrind, bench/NOTES.md).
    urls: Vec<(&'static str, Url)>,
}

/// The paths this client posts to, under the endpoint.
const PATHS: [&str; 3] = ["/sts/login", "/sts/authorize", "/sts/authorize/exchange"];

impl RemoteAuthenticator {
    /// A client for the authentication API at `endpoint` (a base URL normally ending in
    /// `/api/v1`), with an overall `timeout` per call.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, OutboundBuildError> {
        let out = Outbound::new(&OutboundOptions {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            ..OutboundOptions::new(timeout, MAX_RESPONSE_BYTES)
        })?;
        let base = endpoint.trim_end_matches('/').to_owned();
        // An endpoint that does not parse keeps failing at each call, as it did before.
        let urls = PATHS
            .iter()
            .filter_map(|path| Some((*path, Url::parse(&format!("{base}{path}")).ok()?)))
            .collect();
        Ok(Self { out, base, urls })
    }
}

impl RemoteAuthenticator {
    /// `POST {endpoint}{path}` with `request`; the answer's JSON on 200. A 404 is
    /// `not_found` when given (a step the remote may not offer), else an unusable answer.
    async fn post<Req: Serialize + Sync, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
        ctx: &RequestContext,
        not_found: Option<&str>,
    ) -> Result<Resp, AuthenticatorError> {
        let client = self.out.client();
        let builder = match self.urls.iter().find(|(p, _)| *p == path) {
            Some((_, url)) => client.post(url.clone()),
            None => client.post(format!("{}{path}", self.base)),
        };
        let answer = self
            .out
            .execute(
                builder
                    .header("X-Request-ID", &ctx.request_id)
                    .json(request),
            )
            .await
            .map_err(transport_error)?;
        let body = answer.body;
        match answer.status {
            StatusCode::OK => serde_json::from_slice(&body).map_err(|_| {
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
            StatusCode::NOT_FOUND if not_found.is_some() => Err(AuthenticatorError::NotOffered(
                not_found.unwrap_or_default().to_owned(),
            )),
            StatusCode::CONFLICT => Err(AuthenticatorError::Conflict(message(&body, "conflict"))),
            other => Err(AuthenticatorError::Upstream(format!(
                "the authenticator answered HTTP {}",
                other.as_u16()
            ))),
        }
    }
}

#[async_trait]
impl Authenticator for RemoteAuthenticator {
    async fn sts_login(
        &self,
        request: &AuthenticatorStsRequest,
        ctx: &RequestContext,
    ) -> Result<Claims, AuthenticatorError> {
        self.post::<_, OidcTokenData>("/sts/login", request, ctx, None)
            .await
            .map(|d| d.claims)
    }

    async fn authorize(
        &self,
        request: &AuthorizeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeResponse, AuthenticatorError> {
        self.post("/sts/authorize", request, ctx, Some(NO_SESSION_MODE))
            .await
    }

    async fn exchange(
        &self,
        request: &AuthorizeExchangeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeExchangeResponse, AuthenticatorError> {
        self.post(
            "/sts/authorize/exchange",
            request,
            ctx,
            Some(NO_SESSION_MODE),
        )
        .await
    }
}

fn transport_error(e: FetchError) -> AuthenticatorError {
    match e {
        FetchError::Timeout => {
            AuthenticatorError::Timeout("the authenticator did not answer in time".into())
        }
        FetchError::Connect(_) => {
            AuthenticatorError::Upstream("the authenticator is unreachable".into())
        }
        FetchError::TooLarge(n) => AuthenticatorError::Upstream(format!(
            "the authenticator's answer is larger than {n} bytes"
        )),
        FetchError::Transport(_) => {
            AuthenticatorError::Upstream("the call to the authenticator failed".into())
        }
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
