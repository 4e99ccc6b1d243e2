//! How lakeFS authenticates to the authorization API (AUTHZ.md §2): the static
//! `auth.api.token`, compared in constant time, or the HS256 JWT lakeFS makes with
//! `auth.encrypt.secret_key` (`aud` containing `auth-client`, `exp` in the future). A lakeFS
//! login token (`aud: "login"`) under the same key is refused: every lakeFS user holds one.

use aws_lc_rs::digest::{SHA256, digest};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The audience of lakeFS's token for its authorization service.
pub const AUDIENCE: &str = "auth-client";

/// Why a caller was refused; safe to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not the configured token, and not a valid lakeFS service token.
    #[error("invalid bearer token")]
    Invalid,
    /// A valid token for another audience (a lakeFS login token, for one).
    #[error("the token is not for the authorization API (audience)")]
    WrongAudience,
    /// Expired.
    #[error("token expired")]
    Expired,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct ServiceClaims {
    #[serde(default)]
    aud: Option<Audience>,
    exp: i64,
}

/// Checks the bearer token of every call.
pub struct CallerAuth {
    static_token: Option<[u8; 32]>,
    jwt_key: DecodingKey,
    /// Service JWTs already verified, by the SHA-256 of their bytes, with their `exp`: lakeFS
    /// sends the same token on every call until it renews it, so its signature is checked once.
    /// A JWT's validity depends only on its bytes, the key and the time, so the digest and
    /// `exp` are all that is needed; lookups compare digests, never token bytes.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], i64>>,
}

/// Verified service JWTs kept at most (lakeFS renews its token rarely; a full map is cleared).
const VERIFIED_CAPACITY: usize = 256;

impl std::fmt::Debug for CallerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerAuth([redacted])")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

impl CallerAuth {
    /// Accepts `static_token` (lakeFS's `auth.api.token`) when set, and JWTs signed with
    /// `secret_key` (lakeFS's `auth.encrypt.secret_key`).
    pub fn new(secret_key: &[u8], static_token: Option<&str>) -> Self {
        Self {
            // Digests of equal length make the comparison independent of the token's length.
            static_token: static_token.map(|t| sha256(t.as_bytes())),
            jwt_key: DecodingKey::from_secret(secret_key),
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Checks an `Authorization` header value at `now` (Unix seconds).
    pub fn check(&self, authorization: Option<&str>, now: i64) -> Result<(), CallerError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CallerError::Missing)?;
        let digest = sha256(token.as_bytes());
        if let Some(expected) = &self.static_token
            && aws_lc_rs::constant_time::verify_slices_are_equal(&digest, expected).is_ok()
        {
            return Ok(());
        }
        {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(&exp) = verified.get(&digest) {
                return if exp > now {
                    Ok(())
                } else {
                    Err(CallerError::Expired)
                };
            }
        }
        let exp = self.check_jwt(token, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, exp| *exp > now);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, exp);
        Ok(())
    }

    /// The `exp` of a valid service JWT.
    fn check_jwt(&self, token: &str, now: i64) -> Result<i64, CallerError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time and audience are checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<ServiceClaims>(token, &self.jwt_key, &validation)
            .map_err(|_| CallerError::Invalid)?;
        let claims = data.claims;
        let audience_ok = match &claims.aud {
            Some(Audience::One(a)) => a == AUDIENCE,
            Some(Audience::Many(v)) => v.iter().any(|a| a == AUDIENCE),
            None => false,
        };
        if !audience_ok {
            return Err(CallerError::WrongAudience);
        }
        if claims.exp <= now {
            return Err(CallerError::Expired);
        }
        Ok(claims.exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const KEY: &[u8] = b"shared-secret-key-of-lakefs-and-lakests";

    fn jwt(alg: Algorithm, key: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key))
            .expect("encode")
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn the_static_token_and_lakefs_service_jwt_are_accepted() {
        let auth = CallerAuth::new(KEY, Some("static-token"));
        assert_eq!(auth.check(Some("Bearer static-token"), 100), Ok(()));
        let t = jwt(
            Algorithm::HS256,
            KEY,
            json!({"sub": "_lakefs-internal", "aud": ["auth-client"], "iat": 1, "exp": 200, "jti": "x"}),
        );
        assert_eq!(auth.check(Some(&bearer(&t)), 100), Ok(()));
        let t = jwt(
            Algorithm::HS256,
            KEY,
            json!({"aud": "auth-client", "exp": 200}),
        );
        assert_eq!(auth.check(Some(&bearer(&t)), 100), Ok(()));
    }

    #[test]
    fn a_verified_token_is_remembered_until_its_expiry_only() {
        let auth = CallerAuth::new(KEY, None);
        let t = jwt(
            Algorithm::HS256,
            KEY,
            json!({"aud": ["auth-client"], "exp": 200}),
        );
        assert_eq!(auth.check(Some(&bearer(&t)), 100), Ok(()));
        assert_eq!(auth.check(Some(&bearer(&t)), 199), Ok(()), "remembered");
        assert_eq!(
            auth.check(Some(&bearer(&t)), 200),
            Err(CallerError::Expired),
            "remembered with its expiry"
        );
        // A token that differs in one byte of its signature is checked, and refused.
        let mut forged = t.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            auth.check(Some(&bearer(&forged)), 100),
            Err(CallerError::Invalid)
        );
    }

    #[test]
    fn everything_else_is_refused() {
        let auth = CallerAuth::new(KEY, Some("static-token"));
        assert_eq!(auth.check(None, 100), Err(CallerError::Missing));
        assert_eq!(auth.check(Some("Bearer "), 100), Err(CallerError::Missing));
        assert_eq!(
            auth.check(Some("Basic static-token"), 100),
            Err(CallerError::Missing)
        );
        assert_eq!(
            auth.check(Some("Bearer static-token2"), 100),
            Err(CallerError::Invalid)
        );
        assert_eq!(
            auth.check(Some("Bearer static-toke"), 100),
            Err(CallerError::Invalid)
        );
        // A lakeFS login token under the same key.
        let login = jwt(
            Algorithm::HS256,
            KEY,
            json!({"iss": "auth", "aud": "login", "sub": "alice", "exp": 200}),
        );
        assert_eq!(
            auth.check(Some(&bearer(&login)), 100),
            Err(CallerError::WrongAudience)
        );
        let no_aud = jwt(Algorithm::HS256, KEY, json!({"exp": 200}));
        assert_eq!(
            auth.check(Some(&bearer(&no_aud)), 100),
            Err(CallerError::WrongAudience)
        );
        let expired = jwt(
            Algorithm::HS256,
            KEY,
            json!({"aud": ["auth-client"], "exp": 100}),
        );
        assert_eq!(
            auth.check(Some(&bearer(&expired)), 100),
            Err(CallerError::Expired)
        );
        let no_exp = jwt(Algorithm::HS256, KEY, json!({"aud": ["auth-client"]}));
        assert_eq!(
            auth.check(Some(&bearer(&no_exp)), 100),
            Err(CallerError::Invalid)
        );
        let other_key = jwt(
            Algorithm::HS256,
            b"another-key",
            json!({"aud": ["auth-client"], "exp": 200}),
        );
        assert_eq!(
            auth.check(Some(&bearer(&other_key)), 100),
            Err(CallerError::Invalid)
        );
        let hs512 = jwt(
            Algorithm::HS512,
            KEY,
            json!({"aud": ["auth-client"], "exp": 200}),
        );
        assert_eq!(
            auth.check(Some(&bearer(&hs512)), 100),
            Err(CallerError::Invalid),
            "lakeFS signs with HS256 only"
        );
        // Without a static token configured, nothing static is accepted.
        let auth = CallerAuth::new(KEY, None);
        assert_eq!(auth.check(Some("Bearer "), 100), Err(CallerError::Missing));
        assert_eq!(
            auth.check(Some("Bearer static-token"), 100),
            Err(CallerError::Invalid)
        );
    }
}
