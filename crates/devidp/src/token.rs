//! `/token` (authorization code grant, RFC 6749 §4.1.3 with PKCE, RFC 7636) and `/userinfo`,
//! and the ID token itself, fault switches included.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Header;
use lakests_config::{IdpClient, IdpFault};
use serde_json::{Map, Value, json};

use crate::keys::{KeyStatus, jwt_alg};
use crate::params::{MAX_PARAMS_BYTES, Params};
use crate::{AccessGrant, DevIdp, PendingCode, secrets_equal, sha256};

/// Parameters `/token` reads, with their longest accepted values.
const TOKEN_PARAMS: &[(&str, usize)] = &[
    ("grant_type", 64),
    ("code", 256),
    ("redirect_uri", 2048),
    ("code_verifier", 256),
    ("client_id", 256),
    ("client_secret", 1024),
];

/// Longest `Authorization` header read.
const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// How far in the past an `expired` ID token's `exp` is: beyond any usual clock skew.
pub(crate) const EXPIRED_BY_SECONDS: i64 = 300;
/// How far in the future a `future_iat` ID token's `iat` is.
pub(crate) const FUTURE_IAT_SECONDS: i64 = 600;
/// The `aud` of a `wrong_audience` ID token.
pub(crate) const WRONG_AUDIENCE: &str = "lakests-devidp-wrong-audience";

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"lakests-devidp\""),
            );
        }
        resp
    }
}

/// `client_id:client_secret` from HTTP Basic, each form-urlencoded first (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        OAuthError::new(
            "invalid_client",
            "the Authorization header is not valid HTTP Basic credentials",
        )
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(OAuthError::new(
            "invalid_request",
            "the Authorization header is too long",
        ));
    }
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::new(
            "invalid_client",
            "client authentication must use HTTP Basic (client_secret_basic) or the form (client_secret_post)",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let Some((id, secret)) = decoded.split_once(':') else {
        return Err(bad());
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(s: &str) -> String {
    let mut raw = String::with_capacity(s.len() + 2);
    raw.push_str("v=");
    raw.push_str(&s.replace('&', "%26").replace('=', "%3D"));
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Finds and authenticates the client (RFC 6749 §2.3): one method per request; confidential
/// clients prove their secret; public clients send only their id.
fn authenticate<'a>(
    idp: &'a DevIdp,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a IdpClient, OAuthError> {
    let basic = basic_credentials(headers)?;
    let (client_id, secret) = match (basic, p.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method: HTTP Basic or client_secret in the form, not both",
            ));
        }
        (Some((id, secret)), None) => {
            if p.get("client_id").is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::new(
                    "invalid_client",
                    "client_id in the form differs from the one in the Authorization header",
                ));
            }
            (id, (!secret.is_empty()).then_some(secret))
        }
        (None, secret) => match p.get("client_id") {
            Some(id) => (id.to_owned(), secret.map(str::to_owned)),
            None => {
                return Err(OAuthError::new(
                    "invalid_client",
                    "client authentication is missing: send client_id (and a secret for confidential clients)",
                ));
            }
        },
    };
    let Some(client) = idp.client(&client_id) else {
        return Err(OAuthError::new("invalid_client", "unknown client"));
    };
    match (&client.client_secret, secret) {
        (Some(expected), Some(given)) => {
            if secrets_equal(&given, expected.expose()) {
                Ok(client)
            } else {
                Err(OAuthError::new(
                    "invalid_client",
                    "client authentication failed",
                ))
            }
        }
        (Some(_), None) => Err(OAuthError::new(
            "invalid_client",
            "this client is confidential: authenticate with client_secret_basic or client_secret_post",
        )),
        (None, Some(_)) => Err(OAuthError::new(
            "invalid_client",
            "this client is public and has no secret; it authenticates with PKCE alone",
        )),
        (None, None) => Ok(client),
    }
}

/// A PKCE verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
/// Takes the code (marking it used, so a second presentation fails and revokes what the first
/// one got) and checks that it belongs to this client, redirect URI and verifier.
fn redeem(
    idp: &DevIdp,
    client: &IdpClient,
    p: &Params,
    token_hash: [u8; 32],
) -> Result<PendingCode, OAuthError> {
    let Some(code) = p.get("code") else {
        return Err(OAuthError::new("invalid_request", "code is missing"));
    };
    let now = idp.clock.now();
    let pending = {
        let mut codes = idp.codes.lock().unwrap_or_else(|e| e.into_inner());
        let key = sha256(code.as_bytes());
        let Some(entry) = codes.get_mut(&key) else {
            return Err(OAuthError::new(
                "invalid_grant",
                "the code is unknown or expired",
            ));
        };
        if now >= entry.expires_at {
            codes.remove(&key);
            return Err(OAuthError::new("invalid_grant", "the code has expired"));
        }
        if let Some(issued) = entry.redeemed {
            let mut tokens = idp.access_tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.remove(&issued);
            tracing::warn!(client_id = %entry.client_id, "an authorization code was presented twice; revoked its access token");
            return Err(OAuthError::new(
                "invalid_grant",
                "the code has already been used",
            ));
        }
        entry.redeemed = Some(token_hash);
        entry.clone()
    };
    if pending.client_id != client.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    match p.get("redirect_uri") {
        None => {
            return Err(OAuthError::new(
                "invalid_request",
                "redirect_uri is missing",
            ));
        }
        Some(uri) if uri != pending.redirect_uri => {
            return Err(OAuthError::new(
                "invalid_grant",
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        Some(_) => {}
    }
    match (&pending.code_challenge, p.get("code_verifier")) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(OAuthError::new(
                "invalid_grant",
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (Some(_), None) => {
            return Err(OAuthError::new("invalid_grant", "code_verifier is missing"));
        }
        (Some(challenge), Some(verifier)) => {
            if !lakests_core::pkce::is_valid_verifier(verifier) {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "code_verifier must be 43 to 128 unreserved characters",
                ));
            }
            let computed = lakests_core::pkce::s256_challenge(verifier);
            if !secrets_equal(&computed, challenge) {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
    }
    Ok(pending)
}

/// The claims of an honest ID token for this login.
fn claims(idp: &DevIdp, code: &PendingCode, now: i64) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(idp.issuer()));
    c.insert("sub".into(), json!(code.sub));
    c.insert("aud".into(), json!(code.client_id));
    c.insert("azp".into(), json!(code.client_id));
    c.insert("exp".into(), json!(now.saturating_add(idp.id_token_ttl)));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(code.auth_time));
    if let Some(nonce) = &code.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    if let Some(user) = idp.user(&code.sub) {
        if let Some(email) = &user.email {
            c.insert("email".into(), json!(email));
        }
        if let Some(name) = &user.name {
            c.insert("name".into(), json!(name));
        }
        c.insert("groups".into(), json!(user.groups));
        for (k, v) in &user.claims {
            c.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    c
}

/// Signs the ID token for `code`, applying `faults`.
fn id_token(
    idp: &DevIdp,
    client: &IdpClient,
    code: &PendingCode,
    faults: &[IdpFault],
    now: i64,
) -> Result<String, OAuthError> {
    let mut c = claims(idp, code, now);
    let ttl = idp.id_token_ttl;
    for f in faults {
        match f {
            IdpFault::Expired => {
                let exp = now - EXPIRED_BY_SECONDS;
                c.insert("exp".into(), json!(exp));
                c.insert("iat".into(), json!(exp - ttl));
            }
            IdpFault::FutureIat => {
                let iat = now + FUTURE_IAT_SECONDS;
                c.insert("iat".into(), json!(iat));
                c.insert("exp".into(), json!(iat + ttl));
            }
            IdpFault::WrongAudience => {
                c.insert("aud".into(), json!(WRONG_AUDIENCE));
            }
            IdpFault::BadSignature
            | IdpFault::UnpublishedKey
            | IdpFault::SlowToken(_)
            | IdpFault::MissingClaim(_) => {}
        }
    }
    for f in faults {
        if let IdpFault::MissingClaim(name) = f {
            c.remove(name);
        }
    }
    let alg = client
        .id_token_signed_response_alg
        .unwrap_or(idp.signing_alg);
    let status = if faults.contains(&IdpFault::UnpublishedKey) {
        KeyStatus::Next
    } else {
        KeyStatus::Current
    };
    let keys = idp.keys.keys();
    let Some(key) = keys.get(alg, status) else {
        tracing::error!(?alg, ?status, "the development IdP has no such signing key");
        return Err(OAuthError::new(
            "server_error",
            "the ID token cannot be signed",
        ));
    };
    let mut header = Header::new(jwt_alg(alg));
    header.kid = Some(key.kid.clone());
    let token = key.sign(&header, &c).map_err(|_| {
        tracing::error!(kid = %key.kid, "cannot sign an ID token");
        OAuthError::new("server_error", "the ID token cannot be signed")
    })?;
    if faults.contains(&IdpFault::BadSignature) {
        return Ok(corrupt_signature(&token));
    }
    Ok(token)
}

/// Flips one bit in the middle of the signature: same length, same header and claims, a
/// signature that no key verifies.
pub(crate) fn corrupt_signature(token: &str) -> String {
    let Some((signed, sig)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(sig) else {
        return token.to_owned();
    };
    let mid = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(mid) {
        *b ^= 0x01;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// `POST /token`.
pub(crate) async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token_inner(&idp, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    idp: &DevIdp,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::new(
            "invalid_request",
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_PARAMS_BYTES {
        return Err(OAuthError::new(
            "invalid_request",
            format!("the token request is larger than {MAX_PARAMS_BYTES} bytes"),
        ));
    }
    let p = Params::parse(body, TOKEN_PARAMS)
        .map_err(|e| OAuthError::new("invalid_request", e.to_string()))?;
    let client = authenticate(idp, headers, &p)?;
    match p.get("grant_type") {
        None => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
        Some("authorization_code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "only grant_type=authorization_code is supported",
            ));
        }
    }
    let access_token = lakests_core::pkce::random_token()
        .map_err(|e| OAuthError::new("server_error", e.to_string()))?;
    let access_hash = sha256(access_token.as_bytes());
    let code = redeem(idp, client, &p, access_hash)?;
    let faults: Vec<IdpFault> = idp
        .faults
        .iter()
        .chain(code.faults.iter())
        .cloned()
        .collect();
    let delay_ms = faults
        .iter()
        .filter_map(|f| match f {
            IdpFault::SlowToken(ms) => Some(*ms),
            _ => None,
        })
        .max();
    if let Some(ms) = delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let now = idp.clock.now();
    let id_token = id_token(idp, client, &code, &faults, now)?;
    let expires_in = idp.id_token_ttl;
    if !idp.store_access_token(
        access_hash,
        AccessGrant {
            sub: code.sub.clone(),
            expires_at: now.saturating_add(expires_in),
        },
    ) {
        return Err(OAuthError::new(
            "temporarily_unavailable",
            "too many access tokens outstanding; try again later",
        ));
    }
    tracing::info!(client_id = %client.client_id, sub = %code.sub, "development IdP issued tokens");
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "id_token": id_token,
        "scope": code.scope,
    });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn bearer_error(error: Option<&'static str>, description: &str) -> Response {
    let challenge = match error {
        Some(e) => format!(
            "Bearer realm=\"lakests-devidp\", error=\"{e}\", error_description=\"{description}\""
        ),
        None => "Bearer realm=\"lakests-devidp\"".to_owned(),
    };
    let status = if error == Some("invalid_request") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNAUTHORIZED
    };
    let body = json!({"error": error.unwrap_or("invalid_token"), "error_description": description});
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `GET` or `POST /userinfo` with `Authorization: Bearer <access token>`.
pub(crate) async fn userinfo(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Response {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return bearer_error(None, "an access token is required");
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return bearer_error(
            Some("invalid_request"),
            "the Authorization header is too long",
        );
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token else {
        return bearer_error(
            Some("invalid_request"),
            "use Authorization: Bearer <access token>",
        );
    };
    let now = idp.clock.now();
    let grant = {
        let tokens = idp.access_tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(&sha256(token.as_bytes())).cloned()
    };
    let Some(grant) = grant.filter(|g| now < g.expires_at) else {
        return bearer_error(
            Some("invalid_token"),
            "the access token is unknown, revoked or expired",
        );
    };
    let Some(user) = idp.user(&grant.sub) else {
        return bearer_error(
            Some("invalid_token"),
            "the user of this access token is no longer configured",
        );
    };
    let mut c = Map::new();
    c.insert("sub".into(), json!(user.sub));
    if let Some(email) = &user.email {
        c.insert("email".into(), json!(email));
    }
    if let Some(name) = &user.name {
        c.insert("name".into(), json!(name));
    }
    c.insert("groups".into(), json!(user.groups));
    for (k, v) in &user.claims {
        c.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut resp = (StatusCode::OK, axum::Json(Value::Object(c))).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupted_signature_keeps_its_length_and_changes() {
        let t = "aGVhZA.Ym9keQ.c2lnbmF0dXJlLWJ5dGVz";
        let c = corrupt_signature(t);
        assert_ne!(c, t);
        assert_eq!(c.len(), t.len());
        assert!(c.starts_with("aGVhZA.Ym9keQ."));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
        assert_eq!(form_decode("x&y=z"), "x&y=z");
    }
}
