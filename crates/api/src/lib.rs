//! Wire types of lakests: the JSON bodies lakeFS clients, lakeFS servers and the lakeFS
//! authentication API exchange (see `shared/reference/WIRE.md`). Nothing here has behaviour;
//! field names and optionality follow lakeFS's `api/swagger.yml` and `api/authentication.yml`.

pub mod authz;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Response header of `POST /api/v1/sts/login` with the TTL the server actually granted, in
/// seconds (lakests extension: a requested TTL may be clamped).
pub const GRANTED_TTL_HEADER: &str = "x-lakests-granted-ttl-seconds";

/// Every error body: `{"message": "..."}`, lakeFS's shape; a refused login also carries a
/// stable `reason` code (lakests extension, see `lakests_core::Reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short, human-readable explanation that never carries a secret.
    pub message: String,
    /// Why a login was refused, as a stable code (e.g. `no_user_mapped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorBody {
    /// An error body with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reason: None,
        }
    }
}

/// `POST /api/v1/sts/login` request of the lakeFS API (`StsAuthRequest`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsAuthRequest {
    /// The authorization code the identity provider returned to the redirect URI.
    pub code: String,
    /// The `state` parameter of the authorization request.
    pub state: String,
    /// The redirect URI the code was issued for.
    pub redirect_uri: String,
    /// Requested lifetime of the lakeFS token; clamped by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

impl std::fmt::Debug for StsAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code and state are credentials until redeemed (state doubles as the PKCE verifier
        // in lakeFS's documented flow), so they never reach logs through Debug.
        f.debug_struct("StsAuthRequest")
            .field("code", &"[redacted]")
            .field("state", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

/// `POST {authentication_api.endpoint}/sts/login` request of the lakeFS authentication API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatorStsRequest {
    /// The authorization code.
    pub code: String,
    /// The `state` parameter of the authorization request.
    pub state: String,
    /// The redirect URI the code was issued for.
    pub redirect_uri: String,
}

impl std::fmt::Debug for AuthenticatorStsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatorStsRequest")
            .field("code", &"[redacted]")
            .field("state", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl From<&StsAuthRequest> for AuthenticatorStsRequest {
    fn from(r: &StsAuthRequest) -> Self {
        Self {
            code: r.code.clone(),
            state: r.state.clone(),
            redirect_uri: r.redirect_uri.clone(),
        }
    }
}

/// The authenticator's 200 answer (`oidc_token_data`): the ID token's claims, every value a
/// string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcTokenData {
    /// Claim name to string value.
    pub claims: BTreeMap<String, String>,
}

/// `AuthenticationToken`: a lakeFS JWT and its expiry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationToken {
    /// The JWT, usable as `Authorization: Bearer <token>`.
    pub token: String,
    /// Unix seconds at which the token expires.
    pub token_expiration: i64,
}

impl std::fmt::Debug for AuthenticationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticationToken")
            .field("token", &"[redacted]")
            .field("token_expiration", &self.token_expiration)
            .finish()
    }
}

/// lakeFS's `User`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The username.
    pub id: String,
    /// Unix seconds of creation.
    pub creation_date: i64,
    /// Display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// E-mail address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `GET /api/v1/user` answer (`CurrentUser`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// The authenticated user.
    pub user: User,
}

/// `version_config` of `GET /api/v1/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionConfig {
    /// The server's version.
    pub version: String,
    /// What the server is (lakeFS says `lakeFS` or its Enterprise name; lakests says `lakests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_context: Option<String>,
}

/// `storage_config` of `GET /api/v1/config` (lakeFS's `StorageConfig`: every field the
/// `lakefs` SDK requires).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// The block store's type, e.g. `s3`.
    pub blockstore_type: String,
    /// An example storage namespace.
    pub blockstore_namespace_example: String,
    /// The regular expression a storage namespace must match.
    #[serde(rename = "blockstore_namespace_ValidityRegex")]
    pub blockstore_namespace_validity_regex: String,
    /// Whether pre-signed URLs are supported.
    pub pre_sign_support: bool,
    /// Whether the UI uses pre-signed URLs.
    pub pre_sign_support_ui: bool,
    /// Whether import is supported.
    pub import_support: bool,
    /// The regular expression an import source must match.
    pub import_validity_regex: String,
    /// A description of the block store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockstore_description: Option<String>,
}

/// `GET /api/v1/config` answer: only the parts lakeFS clients read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Version information.
    pub version_config: VersionConfig,
    /// The block store (lakeFS's; lakests has none and says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_config: Option<StorageConfig>,
}

/// `POST /api/v1/sts/authorize` request of the authenticator (lakests extension, session-mode
/// PKCE): start a login whose PKCE verifier and nonce stay server-side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// The redirect URI the browser will come back to; selects the provider.
    pub redirect_uri: String,
}

/// Answer to [`AuthorizeRequest`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    /// Where to send the browser.
    pub authorization_url: String,
    /// The `state` that will come back on the redirect.
    pub state: String,
    /// Unix seconds after which the login can no longer be completed.
    pub expires_at: i64,
    /// A secret that never travels in a URL: after the redirect, the client proves it with
    /// [`AuthorizeExchangeRequest`] and receives the one-time `state` it posts to `sts/login`.
    /// Whoever only saw the redirect (code and state) cannot redeem the code. Absent from
    /// servers that predate it; the redirect's `state` then goes to `sts/login` directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_secret: Option<String>,
}

impl fmt::Debug for AuthorizeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeResponse")
            .field("authorization_url", &"[redacted]")
            .field("state", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field(
                "redeem_secret",
                &self.redeem_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// `POST /api/v1/sts/authorize/exchange` (lakests extension, session mode): after the
/// redirect, trade the redirect's `state` and the [`AuthorizeResponse::redeem_secret`] for a
/// fresh one-time `state` that has never been in a URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeExchangeRequest {
    /// The `state` of [`AuthorizeResponse`] (and of the redirect).
    pub state: String,
    /// The [`AuthorizeResponse::redeem_secret`].
    pub redeem_secret: String,
}

impl fmt::Debug for AuthorizeExchangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizeExchangeRequest([redacted])")
    }
}

/// Answer to [`AuthorizeExchangeRequest`]: the `state` to post to `sts/login` with the code
/// and the redirect URI (lakeFS forwards exactly those three).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeExchangeResponse {
    /// Single use; valid until `expires_at`.
    pub state: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl fmt::Debug for AuthorizeExchangeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeExchangeResponse")
            .field("state", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GET /.well-known/lakests-login` on the STS server (lakests extension): what `lakests login`
/// needs to start a browser login. A plain lakeFS has no such document; the client then takes
/// the same facts from flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginDiscovery {
    /// The identity provider's issuer; the client fetches its OpenID discovery document.
    pub issuer: String,
    /// The client id registered at the identity provider.
    pub client_id: String,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// `state` (PKCE verifier = state, lakeFS's documented flow) or `session` (start the login
    /// with `POST /api/v1/sts/authorize` on this server; the verifier stays server-side).
    pub pkce: String,
    /// Redirect URIs the authenticator accepts.
    pub redirect_uris: Vec<String>,
    /// Whether a loopback redirect URI may use any port (RFC 8252 §7.3).
    pub allow_loopback_any_port: bool,
    /// TTL granted when none is asked.
    pub default_ttl_seconds: i64,
    /// Largest TTL granted.
    pub max_ttl_seconds: i64,
}
