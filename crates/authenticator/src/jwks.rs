//! The provider's signing keys (RFC 7517), reduced to what can verify an ID token: public
//! RSA, EC (P-256, P-384) and Ed25519 keys meant for signatures. Symmetric (`oct`) keys are
//! dropped: an ID token is never verified with HMAC.
//!
//! Each key is parsed into aws-lc-rs public keys once, when the JWKS is fetched: one
//! [`ParsedPublicKey`] per algorithm the key may verify. A verification then only checks the
//! signature; before, every call rebuilt the key from its JWK components (for P-256, a point
//! decoding and validation that cost more than the signature check itself).

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

    /// Every algorithm lakests accepts.
    const ALL: [Alg; 9] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
    ];

    /// The aws-lc-rs RSA parameters of an RSA algorithm: 2048-8192-bit keys (RFC 7518 §3.3),
    /// the same ones jsonwebtoken's aws-lc-rs backend used.
    fn rsa_params(self) -> Option<&'static sig::RsaParameters> {
        Some(match self {
            Alg::Rs256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
            Alg::Es256 | Alg::Es384 | Alg::EdDsa => return None,
        })
    }

    /// The aws-lc-rs verification algorithm of an algorithm whose key is a point or a raw
    /// public key (JWS signatures are fixed-length `r || s` for ECDSA, RFC 7518 §3.4).
    fn point_algorithm(self) -> Option<&'static dyn sig::VerificationAlgorithm> {
        Some(match self {
            Alg::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
            Alg::EdDsa => &sig::ED25519,
            _ => return None,
        })
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
    /// The key, parsed once for each algorithm it [allows](Self::allows). An algorithm
    /// missing here although allowed means aws-lc-rs rejected the key material (for example
    /// a point not on the curve): every signature is then refused, as it was when the key
    /// was parsed at each verification.
    parsed: Vec<(Alg, ParsedPublicKey)>,
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

    /// Whether `signature` (raw bytes) is a valid `alg` signature of `message` by this key.
    /// False when the key does not allow `alg`.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }

    /// Parses the key material once for every algorithm this key allows.
    fn parse_for_allowed(&mut self, material: &Material) {
        self.parsed = Alg::ALL
            .into_iter()
            .filter(|a| self.allows(*a))
            .filter_map(|a| {
                let parsed = match material {
                    Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                        .to_parsed_public_key(a.rsa_params()?)
                        .ok()?,
                    Material::Point(bytes) => {
                        ParsedPublicKey::new(a.point_algorithm()?, bytes).ok()?
                    }
                };
                Some((a, parsed))
            })
            .collect();
    }
}

/// A JWK's public key material, decoded from base64url.
enum Material {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed EC point (`0x04 || x || y`) or a raw Ed25519 public key.
    Point(Vec<u8>),
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
    let (kind, material) = match s("kty")? {
        "RSA" => {
            let n = b64("n")?;
            let e = b64("e")?;
            // 2048 bits at least (RFC 7518 §3.3); leading zero bytes do not count.
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 || e.is_empty() {
                return None;
            }
            (KeyKind::Rsa, Material::Rsa { n, e })
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
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, Material::Point(point))
        }
        "OKP" => {
            let x = b64("x")?;
            if s("crv")? != "Ed25519" || x.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, Material::Point(x))
        }
        // "oct" and anything else: never a verification key for an ID token.
        _ => return None,
    };
    let mut key = VerifyKey {
        kid,
        kind,
        alg,
        parsed: Vec::new(),
    };
    key.parse_for_allowed(&material);
    Some(key)
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

    fn parsed_algs(key: &VerifyKey) -> Vec<Alg> {
        key.parsed.iter().map(|(a, _)| *a).collect()
    }

    #[test]
    fn keys_are_parsed_once_per_fetch_for_each_algorithm_they_allow() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let components: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = rsa.public_key().into();
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = ec.public_key().as_ref();
        let (n, e) = (b64(&components.n), b64(&components.e));
        let doc = json!({"keys": [
            {"kty": "RSA", "n": n, "e": e, "kid": "any-rsa"},
            {"kty": "RSA", "n": n, "e": e, "kid": "rs", "alg": "RS256"},
            {"kty": "RSA", "n": n, "e": e, "kid": "mismatch", "alg": "ES256"},
            {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "kid": "ec"},
            // Right lengths, but not a point on P-256: aws-lc-rs refuses it.
            {"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "kid": "off-curve"}
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        let k = |kid: &'static str| set.by_kid(kid).next().unwrap();
        assert_eq!(
            parsed_algs(k("any-rsa")),
            [
                Alg::Rs256,
                Alg::Rs384,
                Alg::Rs512,
                Alg::Ps256,
                Alg::Ps384,
                Alg::Ps512
            ]
        );
        assert_eq!(parsed_algs(k("rs")), [Alg::Rs256]);
        assert!(parsed_algs(k("mismatch")).is_empty());
        assert_eq!(parsed_algs(k("ec")), [Alg::Es256]);
        // A key aws-lc-rs cannot use stays listed (its kid is known, so the token is refused
        // for its signature, as before), but verifies nothing.
        assert!(k("off-curve").allows(Alg::Es256));
        assert!(parsed_algs(k("off-curve")).is_empty());
        assert!(!k("off-curve").verify(Alg::Es256, b"m", &[0; 64]));
    }

    #[test]
    fn a_parsed_key_verifies_its_own_signatures_and_nothing_else() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = ec.public_key().as_ref();
        let doc = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "kid": "ec"}
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        let key = &set.keys[0];
        let signature = ec.sign(&rng, b"header.payload").unwrap();
        assert!(key.verify(Alg::Es256, b"header.payload", signature.as_ref()));
        assert!(!key.verify(Alg::Es256, b"header.payload2", signature.as_ref()));
        assert!(!key.verify(Alg::Es384, b"header.payload", signature.as_ref()));
        let mut bad = signature.as_ref().to_vec();
        bad[10] ^= 1;
        assert!(!key.verify(Alg::Es256, b"header.payload", &bad));
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
