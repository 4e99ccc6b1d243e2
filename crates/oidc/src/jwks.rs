//! The provider's signing keys (RFC 7517), reduced to what can verify an ID token: public
//! RSA, EC (P-256, P-384) and Ed25519 keys meant for signatures. Symmetric (`oct`) keys are
//! dropped: an ID token is never verified with HMAC.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// Most keys kept from one JWKS; more is not a key set but an attack on our CPU.
pub(crate) const MAX_KEYS: usize = 64;

/// The ID-token signing algorithms lakests accepts (RFC 8725 §3.1: an explicit list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    /// The algorithm named `name` (the JOSE `alg` value), if lakests accepts it.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The jsonwebtoken algorithm that verifies it.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::Rs256 => A::RS256,
            Alg::Rs384 => A::RS384,
            Alg::Rs512 => A::RS512,
            Alg::Ps256 => A::PS256,
            Alg::Ps384 => A::PS384,
            Alg::Ps512 => A::PS512,
            Alg::Es256 => A::ES256,
            Alg::Es384 => A::ES384,
            Alg::EdDsa => A::EdDSA,
        }
    }

    /// The only key type this algorithm may be verified with.
    fn key_kind(self) -> KeyKind {
        match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                KeyKind::Rsa
            }
            Alg::Es256 => KeyKind::EcP256,
            Alg::Es384 => KeyKind::EcP384,
            Alg::EdDsa => KeyKind::Ed25519,
        }
    }
}

/// Key type and curve of a verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

/// One public key that can verify ID-token signatures.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    /// `kid`, when the JWK has one.
    pub kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it names one: the key is then usable with that algorithm only.
    alg: Option<String>,
    /// The key itself.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// Whether this key may verify a signature made with `alg`: the key type and curve must
    /// be the algorithm's, and a JWK that names its `alg` is bound to it.
    pub fn allows(&self, alg: Alg) -> bool {
        self.kind == alg.key_kind() && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }
}

/// A provider's usable signing keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    /// The keys, in the JWKS's order.
    pub keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify signatures (wrong `use` or `key_ops`,
    /// symmetric, unknown type or curve, malformed) are skipped; a document that is not a
    /// JWKS is an error.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON".to_owned())?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "the JWKS has no \"keys\" array".to_owned())?;
        let keys = keys.iter().filter_map(parse_key).take(MAX_KEYS).collect();
        Ok(Self { keys })
    }

    /// Keys with this `kid`.
    pub fn by_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a VerifyKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }
}

fn parse_key(jwk: &Value) -> Option<VerifyKey> {
    let obj = jwk.as_object()?;
    let s = |name: &str| obj.get(name).and_then(Value::as_str);
    if let Some(u) = obj.get("use")
        && u.as_str() != Some("sig")
    {
        return None;
    }
    if let Some(ops) = obj.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return None;
        }
    }
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return None,
    };
    let alg = match obj.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return None,
    };
    let b64 = |name: &str| s(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let (kind, key) = match s("kty")? {
        "RSA" => {
            let n = b64("n")?;
            let e = b64("e")?;
            // 2048 bits at least (RFC 7518 §3.3); leading zero bytes do not count.
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 || e.is_empty() {
                return None;
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (kind, len) = match s("crv")? {
                "P-256" => (KeyKind::EcP256, 32),
                "P-384" => (KeyKind::EcP384, 48),
                _ => return None,
            };
            let (x, y) = (b64("x")?, b64("y")?);
            if x.len() != len || y.len() != len {
                return None;
            }
            (
                kind,
                DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
            )
        }
        "OKP" => {
            if s("crv")? != "Ed25519" || b64("x")?.len() != 32 {
                return None;
            }
            (
                KeyKind::Ed25519,
                DecodingKey::from_ed_components(s("x")?).ok()?,
            )
        }
        // "oct" and anything else: never a verification key for an ID token.
        _ => return None,
    };
    Some(VerifyKey {
        kid,
        kind,
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn symmetric_encryption_and_weak_keys_are_dropped() {
        let n = b64(&[0xab; 256]);
        let short_n = b64(&[0xab; 128]);
        let x = b64(&[1; 32]);
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "ops", "key_ops": ["encrypt"]},
            {"kty": "RSA", "n": short_n, "e": "AQAB", "kid": "short"},
            {"kty": "EC", "crv": "P-521", "x": x, "y": x, "kid": "p521"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": b64(&[1; 31]), "kid": "badlen"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "good", "use": "sig", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed"},
            "not an object"
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = set.keys.iter().filter_map(|k| k.kid.clone()).collect();
        assert_eq!(kids, vec!["good", "ed"]);
    }

    #[test]
    fn a_key_is_bound_to_its_type_curve_and_declared_alg() {
        let n = b64(&[0xab; 256]);
        let doc = json!({"keys": [
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "rs", "alg": "RS256"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "any-rsa"},
            {"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "kid": "ec"}
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        let k = |kid: &str| set.by_kid(kid).next().unwrap().clone();
        assert!(k("rs").allows(Alg::Rs256));
        assert!(!k("rs").allows(Alg::Ps256));
        assert!(k("any-rsa").allows(Alg::Ps512));
        assert!(!k("any-rsa").allows(Alg::Es256));
        assert!(k("ec").allows(Alg::Es256));
        assert!(!k("ec").allows(Alg::Es384));
    }

    #[test]
    fn a_document_without_keys_is_an_error() {
        assert!(KeySet::parse(b"{}").is_err());
        assert!(KeySet::parse(b"<html>").is_err());
        assert!(KeySet::parse(br#"{"keys": []}"#).unwrap().keys.is_empty());
    }

    #[test]
    fn only_listed_algorithms_exist() {
        for bad in [
            "none", "HS256", "HS384", "HS512", "RS1", "ES512", "rs256", "",
        ] {
            assert!(Alg::from_name(bad).is_none(), "{bad}");
        }
        for good in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            assert_eq!(Alg::from_name(good).unwrap().name(), good);
        }
    }
}
