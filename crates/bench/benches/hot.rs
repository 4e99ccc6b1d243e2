//! Criterion benches of the hot functions: lakeFS token mint and verify, claims flattening,
//! ID-token validation with the keys parsed once per JWKS fetch (and, beside it, the signature
//! check alone through jsonwebtoken, which re-parses the key at every call).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lakests_core::claims;
use lakests_core::token::TokenIssuer;
use secrecy::SecretString;
use serde_json::json;

fn tokens(c: &mut Criterion) {
    let issuer = TokenIssuer::new(&SecretString::from(
        "bench-secret-key-of-a-reasonable-length".to_owned(),
    ));
    c.bench_function("token_mint_hs256", |b| {
        b.iter(|| issuer.mint(black_box("alice"), 1_700_000_000, 3600))
    });
    let (token, _) = issuer.mint("alice", 1_700_000_000, 3600).expect("mint");
    c.bench_function("token_verify_hs256", |b| {
        b.iter(|| issuer.verify(black_box(&token), 1_700_000_100))
    });
}

fn flatten(c: &mut Criterion) {
    let v = json!({
        "iss": "https://idp.example.com", "sub": "248289761001", "aud": ["lakests"], "exp": 1_700_003_600,
        "iat": 1_700_000_000, "email": "alice@example.com", "email_verified": true, "name": "Alice",
        "groups": ["admins", "data", "developers"], "address": {"country": "NL"},
    });
    let map = v.as_object().expect("object").clone();
    c.bench_function("claims_flatten", |b| {
        b.iter(|| claims::flatten(black_box(&map)))
    });
}

/// A PKCS#8 PEM key pair of `alg`, generated with aws-lc-rs as the development IdP does.
fn key_pem(alg: jsonwebtoken::Algorithm) -> String {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use base64::Engine;
    let der: Vec<u8> = match alg {
        jsonwebtoken::Algorithm::RS256 => {
            let kp =
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
            AsDer::<Pkcs8V1Der>::as_der(&kp)
                .expect("der")
                .as_ref()
                .to_vec()
        }
        _ => {
            let kp = aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            )
            .expect("ec");
            kp.to_pkcs8v1().expect("der").as_ref().to_vec()
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

fn id_token_validation(c: &mut Criterion) {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    let issuer = "https://idp.example.com";
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let pem = key_pem(alg);
        let enc = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .expect("key");
        let mut jwk = Jwk::from_encoding_key(&enc, alg).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        let jwks = serde_json::to_vec(&json!({"keys": [jwk]})).expect("jwks");
        let validator = lakests_authenticator::bench_support::CachedValidator::new(
            &jwks,
            &["RS256", "ES256"],
            issuer,
            "lakests",
        )
        .expect("validator");
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        let claims = json!({"iss": issuer, "sub": "alice", "aud": "lakests", "exp": 1_700_003_600,
                            "iat": 1_700_000_000, "email": "alice@example.com", "groups": ["admins"]});
        let token = jsonwebtoken::encode(&header, &claims, &enc).expect("token");
        assert!(
            validator.validate(&token, 1_700_000_100),
            "the bench token validates"
        );
        c.bench_function(&format!("id_token_validate_cached_keys_{alg:?}"), |b| {
            b.iter(|| validator.validate(black_box(&token), 1_700_000_100))
        });
        // The path lakests used before keeping parsed aws-lc-rs keys per JWKS fetch:
        // jsonwebtoken rebuilds the public key from the JWK's components at every call. This
        // is the signature check alone (no header or claims parsing), so the comparison with
        // the line above is conservative.
        let dec = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
        let (input, sig) = token.rsplit_once('.').expect("compact JWS");
        assert!(
            jsonwebtoken::crypto::verify(sig, input.as_bytes(), &dec, alg).expect("verify"),
            "the bench token verifies"
        );
        c.bench_function(
            &format!("id_token_signature_reparsed_per_call_{alg:?}"),
            |b| {
                b.iter(|| jsonwebtoken::crypto::verify(black_box(sig), input.as_bytes(), &dec, alg))
            },
        );
    }
}

criterion_group!(benches, tokens, flatten, id_token_validation);
criterion_main!(benches);
