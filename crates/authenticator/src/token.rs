//! The authorization_code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5), and
//! the userinfo request.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lakests_config::ClientAuth;
use lakests_core::{AuthenticatorError, Reason, Refusal};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;
use url::form_urlencoded::byte_serialize;

use crate::metrics::{IdpCall, Metrics};
use crate::provider::{Provider, fetch_error};
use lakests_http::outbound::Outbound;

/// What the token endpoint returned that lakests uses. `Debug` shows no token.
pub(crate) struct Tokens {
    /// The ID token, still to be validated.
    pub id_token: String,
    /// The access token, for userinfo.
    pub access_token: Option<SecretString>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// One code redemption.
pub(crate) struct Redemption<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
}

/// Redeems the code. `invalid_grant` (a replayed or expired code, a wrong verifier or
/// redirect URI) is a refused login (401); `invalid_client` and `unauthorized_client` mean
/// our own client is misconfigured (500, explained in the log); anything else unusable is
/// the provider's fault (502, or 504 on timeout).
pub(crate) async fn redeem(
    out: &Outbound,
    metrics: &Metrics,
    provider: &Provider,
    token_endpoint: &Url,
    r: &Redemption<'_>,
) -> Result<Tokens, AuthenticatorError> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", r.code),
        ("redirect_uri", r.redirect_uri),
        ("code_verifier", r.code_verifier),
    ];
    let auth = provider.client.auth;
    let secret = provider
        .client
        .secret
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or("");
    let mut req = out
        .client()
        .post(token_endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match auth {
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
            let user: String = byte_serialize(provider.client.id.as_str().as_bytes()).collect();
            let pass: String = byte_serialize(secret.as_bytes()).collect();
            let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")));
            let mut value = reqwest::header::HeaderValue::from_str(&basic).map_err(|_| {
                AuthenticatorError::Internal("the client credentials cannot form a header".into())
            })?;
            value.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        ClientAuth::ClientSecretPost => {
            form.push(("client_id", provider.client.id.as_str()));
            form.push(("client_secret", secret));
        }
        ClientAuth::None => form.push(("client_id", provider.client.id.as_str())),
    }
    metrics.idp_call(IdpCall::Token);
    let got = out
        .execute(req.form(&form))
        .await
        .map_err(|e| fetch_error("token endpoint", e))?;
    if got.status.is_success() {
        let parsed: TokenResponse = serde_json::from_slice(&got.body).map_err(|_| {
            AuthenticatorError::Upstream(format!(
                "provider {}: the token endpoint answered HTTP {} with a body that is not a token response",
                provider.name,
                got.status.as_u16()
            ))
        })?;
        let id_token = parsed.id_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            AuthenticatorError::Upstream(format!(
                "provider {}: the token response has no id_token (is the openid scope granted?)",
                provider.name
            ))
        })?;
        return Ok(Tokens {
            id_token,
            access_token: parsed.access_token.map(SecretString::from),
        });
    }
    let error = serde_json::from_slice::<ErrorResponse>(&got.body)
        .ok()
        .map(|e| e.error);
    match error.as_deref() {
        Some("invalid_grant") => Err(AuthenticatorError::Unauthorized(Refusal::new(
            Reason::CodeRejected,
            "the identity provider refused the code (invalid_grant: expired, already used, or issued for another redirect_uri or verifier)",
        ))),
        Some(e @ ("invalid_client" | "unauthorized_client")) => {
            tracing::error!(
                provider = %provider.name,
                error = e,
                client_auth = ?auth,
                "the identity provider refused our client: check client_id, client_secret and client_auth of this provider, and that the client may use the authorization_code grant"
            );
            Err(AuthenticatorError::Internal(format!(
                "provider {}: the token endpoint refused our client ({e})",
                provider.name
            )))
        }
        Some(other) => Err(AuthenticatorError::Upstream(format!(
            "provider {}: the token endpoint answered HTTP {} with error {:?}",
            provider.name,
            got.status.as_u16(),
            sanitize(other)
        ))),
        None => Err(AuthenticatorError::Upstream(format!(
            "provider {}: the token endpoint answered HTTP {}",
            provider.name,
            got.status.as_u16()
        ))),
    }
}

/// An OAuth error code is `[\x20-\x7e]` (RFC 6749 §5.2); keep it short and printable.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

/// Reads the userinfo endpoint with the access token (OpenID Connect Core §5.3). Only a
/// JSON answer is accepted.
pub(crate) async fn userinfo(
    out: &Outbound,
    metrics: &Metrics,
    provider: &str,
    endpoint: &Url,
    access_token: &SecretString,
) -> Result<Map<String, Value>, AuthenticatorError> {
    let mut bearer =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", access_token.expose_secret()))
            .map_err(|_| {
                AuthenticatorError::Upstream(format!(
                    "provider {provider}: the access token cannot be sent in a header"
                ))
            })?;
    bearer.set_sensitive(true);
    metrics.idp_call(IdpCall::Userinfo);
    let req = out
        .client()
        .get(endpoint.clone())
        .header(reqwest::header::AUTHORIZATION, bearer)
        .header(reqwest::header::ACCEPT, "application/json");
    let got = out
        .execute(req)
        .await
        .map_err(|e| fetch_error("userinfo endpoint", e))?;
    if got.status != reqwest::StatusCode::OK {
        return Err(AuthenticatorError::Upstream(format!(
            "provider {provider}: the userinfo endpoint answered HTTP {}",
            got.status.as_u16()
        )));
    }
    if got.content_type.as_deref() == Some("application/jwt") {
        return Err(AuthenticatorError::Upstream(format!(
            "provider {provider}: signed userinfo answers are not supported; configure the client for JSON userinfo"
        )));
    }
    match serde_json::from_slice(&got.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AuthenticatorError::Upstream(format!(
            "provider {provider}: the userinfo answer is not a JSON object"
        ))),
    }
}
