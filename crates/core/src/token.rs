//! lakeFS login tokens: HS256 JWTs keyed with `auth.encrypt.secret_key` (WIRE.md §4).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The `iss` lakeFS puts in its login tokens.
pub const ISSUER: &str = "auth";
/// The `aud` lakeFS puts in (and requires of) its login tokens.
pub const AUDIENCE: &str = "login";
/// How far in the future `iat` and `nbf` may be (clocks of replicas and of lakeFS differ a
/// little); further, the token is refused.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// The claims of a lakeFS login token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// A random UUID.
    #[serde(default)]
    pub jti: String,
    /// Always [`ISSUER`] in tokens we mint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The username.
    pub sub: String,
    /// [`AUDIENCE`]. As in lakeFS (`pkg/auth/token.go`, `LoginClaims.Audience string`): one
    /// string, `login` or empty, or absent; an array is not a lakeFS login token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at, Unix seconds (0 when absent).
    #[serde(default)]
    pub iat: i64,
    /// Not before, Unix seconds; we never set it, but honour it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expiry, Unix seconds; required.
    pub exp: i64,
}

/// Why a bearer token was refused. The messages are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, an unsupported algorithm (including `none`), or a bad signature.
    #[error("invalid token")]
    Invalid,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `aud` is a string other than "login" and "".
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `iat` or `nbf` is further in the future than [`CLOCK_SKEW_SECONDS`].
    #[error("token is not valid yet")]
    NotYetValid,
    /// The token could not be created: no random bytes for its id, or the signature failed
    /// (neither happens in practice with a valid key).
    #[error("token could not be signed")]
    Signing,
}

/// Mints and verifies lakeFS tokens with one secret key.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer([redacted])")
    }
}

impl TokenIssuer {
    /// A token issuer keyed with the raw bytes of `secret_key`, as lakeFS keys its tokens.
    pub fn new(secret_key: &SecretString) -> Self {
        let bytes = secret_key.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }

    /// Mints a token for `username`, valid from `now` for `ttl_seconds`.
    pub fn mint(
        &self,
        username: &str,
        now: i64,
        ttl_seconds: i64,
    ) -> Result<(String, TokenClaims), TokenError> {
        // A version-4 UUID from aws-lc's generator, which runs in the process (uuid's
        // `new_v4` asks the kernel for every id: a `getrandom` call per login).
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| TokenError::Signing)?;
        let claims = TokenClaims {
            jti: uuid::Builder::from_random_bytes(random)
                .into_uuid()
                .to_string(),
            iss: Some(ISSUER.to_owned()),
            sub: username.to_owned(),
            aud: Some(AUDIENCE.to_owned()),
            iat: now,
            nbf: None,
            exp: now.saturating_add(ttl_seconds),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Signing)?;
        Ok((token, claims))
    }

    /// Verifies a token the way lakeFS does: HS256/384/512 only, a valid signature, `exp`
    /// required and in the future at `now`, `aud` a string "login" or "" (or absent; an array
    /// does not decode, as in lakeFS), `sub` present; and, stricter than lakeFS, `iat` and
    /// `nbf` not beyond [`CLOCK_SKEW_SECONDS`] in the future.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        // Time and audience are checked below against the injected clock and lakeFS's rule.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims = ["exp".to_owned(), "sub".to_owned()].into();
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        let latest = now.saturating_add(CLOCK_SKEW_SECONDS);
        if claims.iat > latest || claims.nbf.is_some_and(|nbf| nbf > latest) {
            return Err(TokenError::NotYetValid);
        }
        if let Some(aud) = &claims.aud
            && aud != AUDIENCE
            && !aud.is_empty()
        {
            return Err(TokenError::WrongAudience);
        }
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64_helpers::*;

    mod base64_helpers {
        /// Unpadded base64url, enough to forge test tokens without another dependency.
        pub fn b64url(data: &[u8]) -> String {
            const A: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in data.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }

    fn issuer(key: &str) -> TokenIssuer {
        TokenIssuer::new(&SecretString::from(key.to_owned()))
    }

    #[test]
    fn minted_token_has_lakefs_claims_and_verifies() {
        let t = issuer("s3cr3t");
        let (token, claims) = t.mint("alice", 1_000, 3600).unwrap();
        assert_eq!(claims.exp, 4_600);
        assert_eq!(claims.iss.as_deref(), Some("auth"));
        let got = t.verify(&token, 1_001).unwrap();
        assert_eq!(got.sub, "alice");
        assert_eq!(got.aud.as_deref(), Some("login"));
        // The header is exactly lakeFS's.
        let header = token.split('.').next().unwrap();
        assert_eq!(header, b64url(br#"{"typ":"JWT","alg":"HS256"}"#));
        // `jti` is a random (version 4, RFC 9562 variant) UUID, a new one per token.
        let id = uuid::Uuid::parse_str(&got.jti).unwrap();
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(got.jti, claims.jti);
        let (_, again) = t.mint("alice", 1_000, 3600).unwrap();
        assert_ne!(again.jti, claims.jti);
    }

    #[test]
    fn verify_rejects_expiry_wrong_key_and_wrong_audience() {
        let t = issuer("s3cr3t");
        let (token, _) = t.mint("alice", 1_000, 10).unwrap();
        assert_eq!(t.verify(&token, 1_010), Err(TokenError::Expired));
        assert_eq!(
            issuer("other").verify(&token, 1_001),
            Err(TokenError::Invalid)
        );

        let other_aud = TokenClaims {
            jti: "x".into(),
            iss: Some("auth".into()),
            sub: "alice".into(),
            aud: Some("other".into()),
            iat: 1_000,
            nbf: None,
            exp: 2_000,
        };
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &other_aud,
            &EncodingKey::from_secret(b"s3cr3t"),
        )
        .unwrap();
        assert_eq!(t.verify(&forged, 1_001), Err(TokenError::WrongAudience));
    }

    #[test]
    fn aud_follows_lakefs_a_string_login_or_empty_never_an_array() {
        let t = issuer("k");
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap()
        };
        let ok = |aud: serde_json::Value| {
            t.verify(
                &sign(serde_json::json!({"sub": "bob", "exp": 50, "aud": aud})),
                10,
            )
        };
        assert_eq!(ok(serde_json::json!("login")).unwrap().sub, "bob");
        assert_eq!(ok(serde_json::json!("")).unwrap().sub, "bob");
        assert_eq!(ok(serde_json::Value::Null).unwrap().sub, "bob");
        assert_eq!(
            ok(serde_json::json!("Login")),
            Err(TokenError::WrongAudience)
        );
        // jwt allows an array; lakeFS's LoginClaims.Audience is a string, so it does not decode.
        assert_eq!(ok(serde_json::json!(["login"])), Err(TokenError::Invalid));
        assert_eq!(ok(serde_json::json!([])), Err(TokenError::Invalid));
    }

    #[test]
    fn verify_rejects_alg_none_and_garbage() {
        let t = issuer("s3cr3t");
        let body = b64url(br#"{"sub":"alice","aud":"login","exp":99999999999,"jti":"x"}"#);
        let none = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), body);
        assert_eq!(t.verify(&none, 1), Err(TokenError::Invalid));
        assert_eq!(t.verify("not-a-jwt", 1), Err(TokenError::Invalid));
        assert_eq!(t.verify("", 1), Err(TokenError::Invalid));
    }

    #[test]
    fn verify_accepts_a_token_without_audience_like_lakefs() {
        #[derive(Serialize)]
        struct NoAud {
            sub: &'static str,
            exp: i64,
        }
        let t = issuer("k");
        let tok = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &NoAud {
                sub: "bob",
                exp: 50,
            },
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(t.verify(&tok, 10).unwrap().sub, "bob");
    }

    /// Issue 12, point 8: a token "issued" or "valid from" beyond the clock skew in the future
    /// is refused (a forged or mis-clocked token cannot outlive its apparent lifetime).
    #[test]
    fn verify_refuses_iat_and_nbf_in_the_future_beyond_the_skew() {
        #[derive(Serialize)]
        struct Future {
            sub: &'static str,
            iat: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            nbf: Option<i64>,
            exp: i64,
        }
        let t = issuer("k");
        let sign = |iat: i64, nbf: Option<i64>| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &Future {
                    sub: "bob",
                    iat,
                    nbf,
                    exp: 1_000_000,
                },
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap()
        };
        let now = 10_000;
        assert!(t.verify(&sign(now + CLOCK_SKEW_SECONDS, None), now).is_ok());
        assert_eq!(
            t.verify(&sign(now + CLOCK_SKEW_SECONDS + 1, None), now),
            Err(TokenError::NotYetValid)
        );
        assert!(t.verify(&sign(now, Some(now + 30)), now).is_ok());
        assert_eq!(
            t.verify(&sign(now, Some(now + CLOCK_SKEW_SECONDS + 1)), now),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn debug_never_prints_the_key() {
        assert_eq!(
            format!("{:?}", issuer("topsecret")),
            "TokenIssuer([redacted])"
        );
    }
}
