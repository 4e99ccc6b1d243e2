//! The authenticator port: whatever redeems `{code, state, redirect_uri}` for ID-token claims.
//! In-process it is the OpenID Connect relying party of `lakests-authenticator`; across the network it is
//! a client of lakeFS's authentication API (`POST {endpoint}/sts/login`).

use async_trait::async_trait;
use lakests_api::{
    AuthenticatorStsRequest, AuthorizeExchangeRequest, AuthorizeExchangeResponse, AuthorizeRequest,
    AuthorizeResponse,
};

use crate::Claims;

/// Per-request facts that travel with a call: for logs, audit and `X-Request-ID` propagation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id, propagated as `X-Request-ID`.
    pub request_id: String,
    /// The client's address as the server saw it.
    pub client_addr: Option<String>,
}

/// Why the authenticator did not return claims. 4xx variants carry a message that is safe to
/// show the client; the others are logged and answered with a generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticatorError {
    /// The request is malformed or names something not allowed (HTTP 400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The login is refused: bad or replayed code, invalid ID token, claim rules (HTTP 401).
    #[error("{0}")]
    Unauthorized(crate::Refusal),
    /// The authenticator answered 409.
    #[error("{0}")]
    Conflict(String),
    /// This authenticator does not offer what was asked (HTTP 404), e.g. session-mode login.
    #[error("{0}")]
    NotOffered(String),
    /// The authenticator or the identity provider did not answer in time (HTTP 504).
    #[error("{0}")]
    Timeout(String),
    /// The authenticator or the identity provider is unreachable or answered something
    /// unusable (HTTP 502).
    #[error("{0}")]
    Upstream(String),
    /// Our own side is misconfigured or broken (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// What an authenticator without session mode answers to its steps.
pub const NO_SESSION_MODE: &str =
    "session-mode login is not available on this server: its authenticator does not offer it";

/// Redeems an authorization code for the ID token's claims, and, when it offers session mode,
/// starts and completes the sessions of such logins (the PKCE verifier and nonce kept by the
/// authenticator, not the client).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `POST /sts/login` of lakeFS's authentication API.
    async fn sts_login(
        &self,
        request: &AuthenticatorStsRequest,
        ctx: &RequestContext,
    ) -> Result<Claims, AuthenticatorError>;

    /// `POST /sts/authorize`: starts a session-mode login. Without session mode,
    /// [`AuthenticatorError::NotOffered`].
    async fn authorize(
        &self,
        _request: &AuthorizeRequest,
        _ctx: &RequestContext,
    ) -> Result<AuthorizeResponse, AuthenticatorError> {
        Err(AuthenticatorError::NotOffered(NO_SESSION_MODE.into()))
    }

    /// `POST /sts/authorize/exchange`: trades a session-mode redirect's state and the
    /// client's redeem secret for the one-time state of `sts/login`. Without session mode,
    /// [`AuthenticatorError::NotOffered`].
    async fn exchange(
        &self,
        _request: &AuthorizeExchangeRequest,
        _ctx: &RequestContext,
    ) -> Result<AuthorizeExchangeResponse, AuthenticatorError> {
        Err(AuthenticatorError::NotOffered(NO_SESSION_MODE.into()))
    }
}
