//! ID-token validation to the letter of OpenID Connect Core 1.0 §3.1.3.7 and RFC 8725.
//!
//! The JOSE header is parsed here, not by a library, so that nothing in it is trusted by
//! accident: `alg` must be one lakests accepts and the provider advertises (never `none`,
//! never HMAC), `crit` is refused (no extension is understood), and key-carrying headers
//! (`jwk`, `jku`, `x5u`, `x5c`) are ignored: keys come only from the provider's JWKS.
//! aws-lc-rs then checks the signature only, with the keys parsed when the JWKS was fetched
//! (see [`crate::jwks`]); every claim is checked below, each with its own error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::jwks::{Alg, KeySet};

/// Largest ID token accepted, in bytes.
pub(crate) const MAX_ID_TOKEN_BYTES: usize = 64 * 1024;
/// Longest `sub` (OpenID Connect Core §2: at most 255 ASCII characters).
const MAX_SUB_LEN: usize = 255;

/// Why an ID token was refused. The texts are safe to show a client: they name the rule,
/// never a value from the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IdTokenError {
    #[error("the ID token is not a signed JWT in compact form")]
    Malformed,
    #[error("the ID token is larger than {MAX_ID_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the ID token is not signed (alg none)")]
    Unsigned,
    #[error("the ID token is signed with HMAC, which is never accepted")]
    Hmac,
    #[error("the ID token's signing algorithm is not accepted")]
    AlgorithmNotAccepted,
    #[error("the ID token's signing algorithm is not advertised by the provider")]
    AlgorithmNotAdvertised,
    #[error("the ID token's header has a crit parameter, which is not understood")]
    Critical,
    #[error("the ID token's header has an unexpected typ, cty, zip or enc")]
    UnexpectedType,
    #[error("the ID token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the provider's key for this kid does not allow the ID token's algorithm")]
    KeyAlgorithmMismatch,
    #[error("the ID token's signature is invalid")]
    BadSignature,
    #[error("the ID token's iss is not the provider's issuer")]
    Issuer,
    #[error("the ID token's aud does not contain our client_id")]
    AudienceMissing,
    #[error("the ID token's aud names an audience that is not trusted")]
    AudienceUntrusted,
    #[error("the ID token's azp is not our client_id")]
    AuthorizedParty,
    #[error("the ID token has no exp")]
    ExpMissing,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token has no iat")]
    IatMissing,
    #[error("the ID token's iat is in the future")]
    IssuedInFuture,
    #[error("the ID token's nbf is in the future")]
    NotYetValid,
    #[error("the ID token's {0} is not a number")]
    NotANumber(&'static str),
    #[error("the ID token has no sub, or an empty one")]
    SubMissing,
    #[error("the ID token's sub is not a string of at most 255 printable ASCII characters")]
    SubInvalid,
    #[error("the ID token's nonce does not match the login session")]
    Nonce,
}

/// A compact JWS split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    /// The header's `alg`, accepted by lakests (not yet checked against the provider).
    pub alg: Alg,
    /// The header's `kid`, when present.
    pub kid: Option<String>,
    /// `base64url(header) "." base64url(payload)`, the signed bytes.
    signing_input: &'a str,
    /// The signature, still base64url.
    signature: &'a str,
    /// The payload's claims.
    pub claims: Map<String, Value>,
}

/// Splits and decodes `token`, and checks its header against RFC 8725.
pub(crate) fn parse(token: &str) -> Result<ParsedToken<'_>, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_BYTES {
        return Err(IdTokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Five parts would be a JWE: lakests never decrypts ID tokens.
        return Err(IdTokenError::Malformed);
    };
    let signing_input = &token[..h.len() + 1 + p.len()];
    let header = decode_object(h)?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(IdTokenError::Malformed),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(IdTokenError::Unsigned);
    }
    if alg.starts_with("HS") {
        return Err(IdTokenError::Hmac);
    }
    let alg = Alg::from_name(alg).ok_or(IdTokenError::AlgorithmNotAccepted)?;
    if header.contains_key("crit") {
        return Err(IdTokenError::Critical);
    }
    if let Some(typ) = header.get("typ") {
        let ok = typ.as_str().is_some_and(|t| {
            t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt")
        });
        if !ok {
            return Err(IdTokenError::UnexpectedType);
        }
    }
    if ["cty", "zip", "enc"]
        .iter()
        .any(|k| header.contains_key(*k))
    {
        return Err(IdTokenError::UnexpectedType);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(IdTokenError::Malformed),
    };
    if sig.is_empty() {
        return Err(IdTokenError::BadSignature);
    }
    let claims = decode_object(p)?;
    Ok(ParsedToken {
        alg,
        kid,
        signing_input,
        signature: sig,
        claims,
    })
}

fn decode_object(part: &str) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(IdTokenError::Malformed),
    }
}

impl ParsedToken<'_> {
    /// Checks the signature with the provider's keys, allowing only the algorithms it
    /// advertises. [`IdTokenError::UnknownKey`] means a JWKS refetch may help.
    pub fn verify_signature(&self, keys: &KeySet, advertised: &[Alg]) -> Result<(), IdTokenError> {
        if !advertised.contains(&self.alg) {
            return Err(IdTokenError::AlgorithmNotAdvertised);
        }
        let candidates: Vec<_> = match &self.kid {
            Some(kid) => {
                let with_kid: Vec<_> = keys.by_kid(kid).collect();
                if with_kid.is_empty() {
                    return Err(IdTokenError::UnknownKey);
                }
                let usable: Vec<_> = with_kid
                    .into_iter()
                    .filter(|k| k.allows(self.alg))
                    .collect();
                if usable.is_empty() {
                    return Err(IdTokenError::KeyAlgorithmMismatch);
                }
                usable
            }
            None => {
                let usable: Vec<_> = keys.keys.iter().filter(|k| k.allows(self.alg)).collect();
                if usable.is_empty() {
                    return Err(IdTokenError::UnknownKey);
                }
                usable
            }
        };
        // A signature that is not base64url cannot verify with any key.
        let Ok(signature) = URL_SAFE_NO_PAD.decode(self.signature) else {
            return Err(IdTokenError::BadSignature);
        };
        let verified = candidates
            .iter()
            .any(|k| k.verify(self.alg, self.signing_input.as_bytes(), &signature));
        if verified {
            Ok(())
        } else {
            Err(IdTokenError::BadSignature)
        }
    }
}

/// What the claims must say (OpenID Connect Core §3.1.3.7).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectations<'a> {
    /// The provider's issuer, compared exactly.
    pub issuer: &'a str,
    /// Our client id: the only audience trusted.
    pub client_id: &'a str,
    /// Unix seconds, from the injected clock.
    pub now: i64,
    /// Tolerance for `exp`, `iat` and `nbf`.
    pub skew: i64,
    /// The nonce of the login session (session mode); `None` in state mode.
    pub nonce: Option<&'a str>,
}

/// Checks every claim rule, in the order of §3.1.3.7, then `sub` and the nonce.
pub(crate) fn validate_claims(
    claims: &Map<String, Value>,
    want: &Expectations<'_>,
) -> Result<(), IdTokenError> {
    // 2. iss: exactly the issuer of the discovery document (itself equal to the configured
    // issuer).
    if claims.get("iss").and_then(Value::as_str) != Some(want.issuer) {
        return Err(IdTokenError::Issuer);
    }
    // 3. aud: must contain our client_id; an audience we do not trust is refused.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => {
            let mut v = Vec::with_capacity(items.len());
            for item in items {
                v.push(item.as_str().ok_or(IdTokenError::AudienceUntrusted)?);
            }
            v
        }
        _ => return Err(IdTokenError::AudienceMissing),
    };
    if !audiences.contains(&want.client_id) {
        return Err(IdTokenError::AudienceMissing);
    }
    if audiences.iter().any(|a| *a != want.client_id) {
        return Err(IdTokenError::AudienceUntrusted);
    }
    // 4-5. azp: when present (required with several audiences), our client_id.
    if let Some(azp) = claims.get("azp")
        && azp.as_str() != Some(want.client_id)
    {
        return Err(IdTokenError::AuthorizedParty);
    }
    // 9. exp: required, and now must be before it (with the skew).
    let exp = numeric(claims, "exp")?.ok_or(IdTokenError::ExpMissing)?;
    if want.now >= exp.saturating_add(want.skew) {
        return Err(IdTokenError::Expired);
    }
    // 10. iat: required, and not in the future.
    let iat = numeric(claims, "iat")?.ok_or(IdTokenError::IatMissing)?;
    if iat > want.now.saturating_add(want.skew) {
        return Err(IdTokenError::IssuedInFuture);
    }
    // RFC 7519 §4.1.5: not before nbf.
    if let Some(nbf) = numeric(claims, "nbf")?
        && nbf > want.now.saturating_add(want.skew)
    {
        return Err(IdTokenError::NotYetValid);
    }
    // §2: sub is required, a locally unique identifier of at most 255 ASCII characters.
    match claims.get("sub") {
        None => return Err(IdTokenError::SubMissing),
        Some(Value::String(s)) if s.is_empty() => return Err(IdTokenError::SubMissing),
        // Control characters would reach logs and the operator's terminal: refused.
        Some(Value::String(s))
            if s.len() <= MAX_SUB_LEN
                && s.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) => {}
        Some(_) => return Err(IdTokenError::SubInvalid),
    }
    // 11. nonce: in session mode it must be the one sent in the authorization request.
    if let Some(nonce) = want.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(IdTokenError::Nonce);
    }
    Ok(())
}

/// A NumericDate claim as whole seconds; `None` when absent.
fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                // Fractional seconds are allowed (RFC 7519 §2); `as` saturates.
                Ok(Some(f.floor() as i64))
            } else {
                Err(IdTokenError::NotANumber(name))
            }
        }
        Some(_) => Err(IdTokenError::NotANumber(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn want() -> Expectations<'static> {
        Expectations {
            issuer: "https://idp.example",
            client_id: "client",
            now: NOW,
            skew: 60,
            nonce: None,
        }
    }

    fn good() -> Map<String, Value> {
        json!({"iss": "https://idp.example", "aud": "client", "sub": "alice",
               "exp": NOW + 300, "iat": NOW})
        .as_object()
        .unwrap()
        .clone()
    }

    fn with(k: &str, v: Value) -> Map<String, Value> {
        let mut c = good();
        c.insert(k.into(), v);
        c
    }

    fn without(k: &str) -> Map<String, Value> {
        let mut c = good();
        c.remove(k);
        c
    }

    #[test]
    fn a_correct_token_passes() {
        assert_eq!(validate_claims(&good(), &want()), Ok(()));
    }

    #[test]
    fn issuer_must_match_exactly() {
        for iss in [
            json!("https://idp.example/"),
            json!("https://IDP.example"),
            json!(1),
        ] {
            assert_eq!(
                validate_claims(&with("iss", iss), &want()),
                Err(IdTokenError::Issuer)
            );
        }
        assert_eq!(
            validate_claims(&without("iss"), &want()),
            Err(IdTokenError::Issuer)
        );
    }

    #[test]
    fn audience_must_be_ours_alone() {
        assert_eq!(
            validate_claims(&with("aud", json!(["client"])), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("aud", json!("other")), &want()),
            Err(IdTokenError::AudienceMissing)
        );
        assert_eq!(
            validate_claims(&with("aud", json!(["client", "other"])), &want()),
            Err(IdTokenError::AudienceUntrusted)
        );
        assert_eq!(
            validate_claims(&with("aud", json!(["client", 3])), &want()),
            Err(IdTokenError::AudienceUntrusted)
        );
        assert_eq!(
            validate_claims(&with("aud", json!([])), &want()),
            Err(IdTokenError::AudienceMissing)
        );
        assert_eq!(
            validate_claims(&without("aud"), &want()),
            Err(IdTokenError::AudienceMissing)
        );
    }

    #[test]
    fn azp_when_present_must_be_our_client() {
        assert_eq!(
            validate_claims(&with("azp", json!("client")), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("azp", json!("other")), &want()),
            Err(IdTokenError::AuthorizedParty)
        );
    }

    #[test]
    fn times_are_checked_with_the_skew() {
        assert_eq!(
            validate_claims(&with("exp", json!(NOW - 59)), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("exp", json!(NOW - 60)), &want()),
            Err(IdTokenError::Expired)
        );
        assert_eq!(
            validate_claims(&without("exp"), &want()),
            Err(IdTokenError::ExpMissing)
        );
        assert_eq!(
            validate_claims(&with("exp", json!("9999999999")), &want()),
            Err(IdTokenError::NotANumber("exp"))
        );
        assert_eq!(
            validate_claims(&with("exp", json!(NOW as f64 + 10.5)), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("iat", json!(NOW + 60)), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("iat", json!(NOW + 61)), &want()),
            Err(IdTokenError::IssuedInFuture)
        );
        assert_eq!(
            validate_claims(&without("iat"), &want()),
            Err(IdTokenError::IatMissing)
        );
        assert_eq!(
            validate_claims(&with("nbf", json!(NOW + 60)), &want()),
            Ok(())
        );
        assert_eq!(
            validate_claims(&with("nbf", json!(NOW + 61)), &want()),
            Err(IdTokenError::NotYetValid)
        );
    }

    #[test]
    fn sub_must_be_a_short_non_empty_string() {
        assert_eq!(
            validate_claims(&without("sub"), &want()),
            Err(IdTokenError::SubMissing)
        );
        assert_eq!(
            validate_claims(&with("sub", json!("")), &want()),
            Err(IdTokenError::SubMissing)
        );
        assert_eq!(
            validate_claims(&with("sub", json!(42)), &want()),
            Err(IdTokenError::SubInvalid)
        );
        assert_eq!(
            validate_claims(&with("sub", json!("a".repeat(256))), &want()),
            Err(IdTokenError::SubInvalid)
        );
    }

    /// Issue 12, point 7: a sub carrying terminal escape sequences or other control
    /// characters never gets past the authenticator.
    #[test]
    fn sub_with_control_characters_is_refused() {
        for sub in [
            "alice\u{1b}[2J",
            "alice\n",
            "\u{7}bell",
            "a\u{7f}",
            "tab\there",
            "\u{1b}]0;pwned\u{7}",
        ] {
            assert_eq!(
                validate_claims(&with("sub", json!(sub)), &want()),
                Err(IdTokenError::SubInvalid),
                "{sub:?}"
            );
        }
        assert_eq!(
            validate_claims(&with("sub", json!("alice@example.com|42 x")), &want()),
            Ok(())
        );
    }

    #[test]
    fn the_nonce_is_required_in_session_mode() {
        let w = Expectations {
            nonce: Some("n-1"),
            ..want()
        };
        assert_eq!(validate_claims(&with("nonce", json!("n-1")), &w), Ok(()));
        assert_eq!(
            validate_claims(&with("nonce", json!("n-2")), &w),
            Err(IdTokenError::Nonce)
        );
        assert_eq!(validate_claims(&good(), &w), Err(IdTokenError::Nonce));
    }

    fn token(header: Value) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(json!({"sub": "x"}).to_string())
        )
    }

    #[test]
    fn dangerous_headers_are_refused_before_any_key_is_looked_at() {
        let e = |h: Value| parse(&token(h)).map(|_| ()).unwrap_err();
        assert_eq!(e(json!({"alg": "none"})), IdTokenError::Unsigned);
        assert_eq!(e(json!({"alg": "NONE"})), IdTokenError::Unsigned);
        assert_eq!(e(json!({"alg": "HS256"})), IdTokenError::Hmac);
        assert_eq!(e(json!({"alg": "RS1"})), IdTokenError::AlgorithmNotAccepted);
        assert_eq!(
            e(json!({"alg": "RS256", "crit": ["exp"]})),
            IdTokenError::Critical
        );
        assert_eq!(
            e(json!({"alg": "RS256", "typ": "at+jwt"})),
            IdTokenError::UnexpectedType
        );
        assert_eq!(
            e(json!({"alg": "RS256", "cty": "JWT"})),
            IdTokenError::UnexpectedType
        );
        assert_eq!(
            e(json!({"alg": "RS256", "kid": 7})),
            IdTokenError::Malformed
        );
        assert_eq!(e(json!({"typ": "JWT"})), IdTokenError::Malformed);
        let t = token(json!({"alg": "ES256", "typ": "JWT", "kid": "k",
                             "jku": "https://evil.example/jwks"}));
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, Alg::Es256);
        assert_eq!(p.kid.as_deref(), Some("k"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for t in ["", "a", "a.b", "a.b.c.d.e", "!!.e30.c2ln", "e30.e30.c2ln"] {
            assert!(parse(t).is_err(), "{t}");
        }
        let big = "a".repeat(MAX_ID_TOKEN_BYTES + 1);
        assert_eq!(parse(&big).map(|_| ()), Err(IdTokenError::TooLarge));
        // An empty signature is never valid.
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        assert_eq!(
            parse(&format!("{h}.e30.")).map(|_| ()),
            Err(IdTokenError::BadSignature)
        );
    }
}
