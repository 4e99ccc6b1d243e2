//! The development OpenID Provider: a small, honest OP for laptops and tests.
//!
//! It serves discovery, a JWKS (RS256 and ES256 keys generated on first start and kept in the
//! data directory), `/authorize` with a sign-in page listing the configured users, `/token`
//! (authorization code; PKCE S256 for public clients; single-use codes that expire after 60 s;
//! client authentication for confidential clients) and `/userinfo`. Fault switches make ID
//! tokens wrong on purpose, so relying parties can be tested against every way a token can be
//! bad. It keeps codes and access tokens in memory: it is single-process by design, and for
//! development only.

mod authorize;
mod html;
mod keys;
mod params;
mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakests_config::{IdpClient, IdpConfig, IdpFault, IdpUser, SigningAlg};
use lakests_core::Clock;

pub use keys::{MANIFEST, rotate_keys};

/// Seconds an authorization code stays redeemable.
pub const CODE_TTL_SECONDS: i64 = 60;
/// Most codes (pending or recently redeemed) kept at once.
const MAX_CODES: usize = 10_000;
/// Most access tokens kept at once.
const MAX_ACCESS_TOKENS: usize = 10_000;
/// Most fault switches one login may ask for.
pub const MAX_FAULTS_PER_LOGIN: usize = 8;

/// Why the development IdP could not start or rotate its keys.
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// aws-lc-rs could not generate a key.
    #[error("cannot generate a signing key")]
    KeyGeneration,
    /// A key file is unusable.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key manifest is unusable.
    #[error("key manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The issuer is not an http(s) URL without query or fragment.
    #[error("the issuer {0:?} is not an http(s) URL without query or fragment")]
    Issuer(String),
}

/// A code handed out by `/authorize`, waiting for `/token`.
#[derive(Debug, Clone)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    sub: String,
    auth_time: i64,
    faults: Vec<IdpFault>,
    expires_at: i64,
    /// Set on the first redemption attempt: the hash of the access token it yields, revoked
    /// if the code is presented again (RFC 6749 §4.1.2).
    redeemed: Option<[u8; 32]>,
}

/// What an access token lets `/userinfo` show.
#[derive(Debug, Clone)]
struct AccessGrant {
    sub: String,
    expires_at: i64,
}

/// The development OpenID Provider.
pub struct DevIdp {
    issuer: String,
    interactive: bool,
    signing_alg: SigningAlg,
    id_token_ttl: i64,
    users: Vec<IdpUser>,
    clients: Vec<IdpClient>,
    faults: Vec<IdpFault>,
    keys: keys::KeyStore,
    clock: Arc<dyn Clock>,
    codes: Mutex<HashMap<[u8; 32], PendingCode>>,
    access_tokens: Mutex<HashMap<[u8; 32], AccessGrant>>,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.issuer)
            .field("interactive", &self.interactive)
            .field("signing_alg", &self.signing_alg)
            .field("users", &self.users.len())
            .field("clients", &self.clients.len())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Loads (or on first start generates and persists, 0600 files in a 0700 dir) the signing
    /// keys in `keys_dir`, and serves as `issuer` (the server passes `idp.issuer` or
    /// http://<bound address>).
    pub fn new(
        config: &IdpConfig,
        issuer: String,
        keys_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DevIdpError> {
        match url::Url::parse(&issuer) {
            Ok(u)
                if (u.scheme() == "http" || u.scheme() == "https")
                    && u.query().is_none()
                    && u.fragment().is_none() => {}
            _ => return Err(DevIdpError::Issuer(issuer)),
        }
        let keys = keys::KeyStore::open(keys_dir)?;
        tracing::warn!(
            issuer = %issuer,
            "the development OpenID Provider is on: it is for development and tests only, never for production"
        );
        let loopback = config
            .listen_address
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or(false);
        if config.enabled && !loopback {
            tracing::warn!(
                listen_address = %config.listen_address,
                "the development IdP listens beyond loopback: anyone who reaches it can sign in as any configured user"
            );
        }
        if !config.faults.is_empty() {
            let list: Vec<String> = config.faults.iter().map(ToString::to_string).collect();
            tracing::warn!(faults = %list.join(","), "development IdP fault switches are on: every ID token is wrong on purpose");
        }
        Ok(Self {
            issuer,
            interactive: config.interactive,
            signing_alg: config.signing_alg,
            id_token_ttl: config.id_token_ttl_seconds.max(1),
            users: config.users.clone(),
            clients: config.clients.clone(),
            faults: config.faults.clone(),
            keys,
            clock,
            codes: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The issuer identifier, exactly as tokens carry it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The URL of an endpoint, relative to the issuer.
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }

    fn client(&self, client_id: &str) -> Option<&IdpClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    fn user(&self, sub: &str) -> Option<&IdpUser> {
        self.users.iter().find(|u| u.sub == sub)
    }

    /// Stores a new code; `None` when too many are outstanding.
    fn store_code(&self, pending: PendingCode) -> Option<String> {
        let now = self.clock.now();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        if codes.len() >= MAX_CODES {
            codes.retain(|_, c| c.expires_at > now);
        }
        if codes.len() >= MAX_CODES {
            return None;
        }
        // The system's random generator does not fail in practice; if it did, no code.
        let code = lakests_core::pkce::random_token().ok()?;
        codes.insert(sha256(code.as_bytes()), pending);
        Some(code)
    }

    fn store_access_token(&self, hash: [u8; 32], grant: AccessGrant) -> bool {
        let now = self.clock.now();
        let mut tokens = self.access_tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= MAX_ACCESS_TOKENS {
            tokens.retain(|_, g| g.expires_at > now);
        }
        if tokens.len() >= MAX_ACCESS_TOKENS {
            return false;
        }
        tokens.insert(hash, grant);
        true
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two secrets in constant time (their SHA-256 digests, so lengths do not leak).
fn secrets_equal(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(a.as_bytes()), &sha256(b.as_bytes()))
        .is_ok()
}

fn json_response(status: StatusCode, value: &serde_json::Value, cache: &'static str) -> Response {
    let mut resp = (status, axum::Json(value)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

async fn discovery(State(idp): State<Arc<DevIdp>>) -> Response {
    let doc = serde_json::json!({
        "issuer": idp.issuer,
        "authorization_endpoint": idp.endpoint("/authorize"),
        "token_endpoint": idp.endpoint("/token"),
        "userinfo_endpoint": idp.endpoint("/userinfo"),
        "jwks_uri": idp.endpoint("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "groups"],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "email", "name", "groups"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login"],
    });
    json_response(StatusCode::OK, &doc, "no-cache")
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    let set = idp.keys.keys().jwks();
    match serde_json::to_value(&set) {
        Ok(v) => json_response(StatusCode::OK, &v, "no-cache"),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise the JWKS");
            lakests_http::ApiError::internal().into_response()
        }
    }
}

async fn healthcheck() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The role's HTTP routes (paths relative to the issuer, e.g. /.well-known/openid-configuration,
/// /jwks, /authorize, /token, /userinfo, /healthcheck), wrapped with
/// lakests_http::with_common_layers.
pub fn router(idp: Arc<DevIdp>) -> Router {
    let routes = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/token", axum::routing::post(token::token))
        .route("/userinfo", get(token::userinfo).post(token::userinfo))
        .route("/healthcheck", get(healthcheck))
        .with_state(idp);
    lakests_http::with_common_layers(routes)
}
