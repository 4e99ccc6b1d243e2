//! Each rule of OpenID Connect Core §3.1.3.7 and RFC 8725, proved against a hostile
//! provider: the login is refused with 401, and no claim leaks.

use jsonwebtoken::Algorithm;
use lakests_config::PkceMode;
use lakests_core::ManualClock;
use serde_json::{Value, json};

use crate::support::*;

struct Case {
    idp: HostileIdp,
    authn: Authn,
}

async fn setup() -> Case {
    let idp = HostileIdp::start().await;
    let p = provider(
        "hostile",
        &idp.issuer,
        &[REDIRECT, LOOPBACK_REDIRECT],
        PkceMode::State,
    );
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    Case { idp, authn }
}

impl Case {
    fn claims(&self) -> Value {
        json!({
            "iss": self.idp.issuer,
            "aud": CLIENT_ID,
            "sub": "alice-sub-7f3a",
            "exp": T0 + 300,
            "iat": T0,
            "email": "alice@example.com",
            "email_verified": true,
            "groups": ["admins", "data-engineers"],
            "age": 42,
            "address": {"country": "NL"},
        })
    }

    fn claims_with(&self, extra: Value) -> Value {
        let mut c = self.claims();
        merge(&mut c, extra);
        c
    }

    async fn login(&self) -> (u16, Value, String) {
        self.authn.login("code-abc", &verifier(1), REDIRECT).await
    }

    /// Issues `token` and asserts the login is refused with 401 and nothing leaks.
    async fn refused(&self, token: String) -> String {
        self.idp.issue(token.clone());
        let got = self.login().await;
        assert_refused(
            &got,
            401,
            &[
                "alice-sub-7f3a",
                "alice@example.com",
                "admins",
                &token,
                "code-abc",
            ],
        );
        got.1["message"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_valid_rs256_id_token_yields_its_claims_flattened_to_strings() {
    let c = setup().await;
    c.idp.issue(keys().rs256.sign(&c.claims(), json!({})));
    let (status, body, text) = c.login().await;
    assert_eq!(status, 200, "{text}");
    let claims = body["claims"].as_object().unwrap();
    assert_eq!(
        claims["sub"], "hostile:alice-sub-7f3a",
        "namespaced by the provider's name"
    );
    assert_eq!(claims["iss"], c.idp.issuer.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], "true");
    assert_eq!(claims["groups"], "admins,data-engineers");
    assert_eq!(claims["age"], "42");
    assert_eq!(claims["exp"], (T0 + 300).to_string().as_str());
    assert_eq!(claims["address"], r#"{"country":"NL"}"#);
    assert!(claims.values().all(Value::is_string));
}

#[tokio::test]
async fn every_advertised_asymmetric_algorithm_is_accepted() {
    let c = setup().await;
    let k = keys();
    for key in [&k.rs256, &k.ps256, &k.es256, &k.es384, &k.ed] {
        c.idp.issue(key.sign(&c.claims(), json!({})));
        let (status, _, text) = c.login().await;
        assert_eq!(status, 200, "{}: {text}", alg_name(key.alg));
    }
}

#[tokio::test]
async fn an_algorithm_the_provider_does_not_advertise_is_refused() {
    let c = setup().await;
    c.idp
        .with(|s| s.discovery["id_token_signing_alg_values_supported"] = json!(["RS256"]));
    let m = c.refused(keys().es256.sign(&c.claims(), json!({}))).await;
    assert!(m.contains("not advertised"), "{m}");
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let c = setup().await;
    let iss = format!("{}/", c.idp.issuer);
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"iss": iss})), json!({})),
        )
        .await;
    assert!(m.contains("iss"), "{m}");
    c.refused(keys().rs256.sign(
        &c.claims_with(json!({"iss": "https://evil.example"})),
        json!({}),
    ))
    .await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"aud": "another-client"})), json!({})),
        )
        .await;
    assert!(m.contains("aud"), "{m}");
}

#[tokio::test]
async fn an_extra_untrusted_audience_is_refused() {
    let c = setup().await;
    let claims = c.claims_with(json!({"aud": [CLIENT_ID, "another-client"], "azp": CLIENT_ID}));
    let m = c.refused(keys().rs256.sign(&claims, json!({}))).await;
    assert!(m.contains("not trusted"), "{m}");
}

#[tokio::test]
async fn an_azp_that_is_not_our_client_is_refused_and_ours_is_accepted() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"azp": "another-client"})), json!({})),
        )
        .await;
    assert!(m.contains("azp"), "{m}");
    c.idp.issue(
        keys()
            .rs256
            .sign(&c.claims_with(json!({"azp": CLIENT_ID})), json!({})),
    );
    assert_eq!(c.login().await.0, 200);
}

#[tokio::test]
async fn an_expired_id_token_is_refused_beyond_the_clock_skew() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"exp": T0 - 60})), json!({})),
        )
        .await;
    assert!(m.contains("expired"), "{m}");
    // Within the 60 s skew it is still accepted.
    c.idp.issue(
        keys()
            .rs256
            .sign(&c.claims_with(json!({"exp": T0 - 59})), json!({})),
    );
    assert_eq!(c.login().await.0, 200);
    // The manual clock decides, not the wall clock.
    c.idp.issue(keys().rs256.sign(&c.claims(), json!({})));
    c.authn.clock.advance(360);
    let got = c.login().await;
    assert_refused(&got, 401, &["alice-sub-7f3a"]);
}

#[tokio::test]
async fn an_id_token_without_exp_is_refused() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"exp": null})), json!({})),
        )
        .await;
    assert!(m.contains("exp"), "{m}");
    c.refused(
        keys()
            .rs256
            .sign(&c.claims_with(json!({"exp": "9999999999"})), json!({})),
    )
    .await;
}

#[tokio::test]
async fn an_iat_in_the_future_is_refused() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"iat": T0 + 61})), json!({})),
        )
        .await;
    assert!(m.contains("iat"), "{m}");
    c.refused(
        keys()
            .rs256
            .sign(&c.claims_with(json!({"iat": null})), json!({})),
    )
    .await;
}

#[tokio::test]
async fn an_nbf_in_the_future_is_refused() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims_with(json!({"nbf": T0 + 61})), json!({})),
        )
        .await;
    assert!(m.contains("nbf"), "{m}");
    c.idp.issue(
        keys()
            .rs256
            .sign(&c.claims_with(json!({"nbf": T0 + 30})), json!({})),
    );
    assert_eq!(c.login().await.0, 200);
}

#[tokio::test]
async fn a_missing_empty_or_non_string_sub_is_refused() {
    let c = setup().await;
    for sub in [Value::Null, json!(""), json!(12345), json!(["alice"])] {
        let m = c
            .refused(
                keys()
                    .rs256
                    .sign(&c.claims_with(json!({"sub": sub})), json!({})),
            )
            .await;
        assert!(m.contains("sub"), "{m}");
    }
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature_check() {
    let c = setup().await;
    let good = keys().rs256.sign(&c.claims(), json!({}));
    let parts: Vec<&str> = good.split('.').collect();
    let evil_claims = c.claims_with(json!({"sub": "admin"}));
    let evil_payload = base64_url(&evil_claims.to_string());
    let m = c
        .refused(format!("{}.{}.{}", parts[0], evil_payload, parts[2]))
        .await;
    assert!(m.contains("signature"), "{m}");
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_the_same_kid_is_refused() {
    let c = setup().await;
    let m = c
        .refused(keys().attacker.sign(&c.claims(), json!({})))
        .await;
    assert!(m.contains("signature"), "{m}");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let c = setup().await;
    let input = signing_input(&json!({"alg": "none", "typ": "JWT"}), &c.claims());
    let m = c.refused(format!("{input}.")).await;
    assert!(m.contains("not signed"), "{m}");
    // Even with some signature bytes, and whatever the case.
    let input = signing_input(&json!({"alg": "None", "kid": "rsa-1"}), &c.claims());
    c.refused(format!("{input}.c2ln")).await;
}

#[tokio::test]
async fn hs256_keyed_with_the_providers_public_key_is_refused() {
    let c = setup().await;
    let k = &keys().rs256;
    for key_bytes in [
        k.public_der.clone(),
        k.jwk.to_string().into_bytes(),
        k.jwk["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let input = signing_input(
            &json!({"alg": "HS256", "typ": "JWT", "kid": k.kid}),
            &c.claims(),
        );
        let sig = hs256(&input, &key_bytes);
        let m = c.refused(format!("{input}.{sig}")).await;
        assert!(m.contains("HMAC"), "{m}");
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_one_jwks_refetch() {
    let c = setup().await;
    let stranger = SigningKey::rsa("stranger", Algorithm::RS256);
    let m = c.refused(stranger.sign(&c.claims(), json!({}))).await;
    assert!(m.contains("key the provider does not publish"), "{m}");
    // The cold start fetched the JWKS once; the unknown kid caused exactly one refetch.
    assert_eq!(c.idp.jwks_hits(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_the_jwks_at_most_once_per_interval() {
    let c = setup().await;
    for i in 0..20 {
        let t = keys()
            .rs256
            .sign(&c.claims(), json!({"kid": format!("bogus-{i}")}));
        c.refused(t).await;
    }
    assert_eq!(c.idp.jwks_hits(), 2, "initial fetch plus one refetch");
    // After the interval (30 s by default) one more refetch is allowed.
    c.authn.clock.advance(31);
    c.refused(keys().rs256.sign(
        &c.claims_with(json!({"exp": T0 + 600})),
        json!({"kid": "bogus-x"}),
    ))
    .await;
    assert_eq!(c.idp.jwks_hits(), 3);
    c.refused(keys().rs256.sign(
        &c.claims_with(json!({"exp": T0 + 600})),
        json!({"kid": "bogus-y"}),
    ))
    .await;
    assert_eq!(c.idp.jwks_hits(), 3);
}

#[tokio::test]
async fn key_rotation_is_picked_up_without_a_restart() {
    let c = setup().await;
    let k = keys();
    c.idp.issue(k.rs256.sign(&c.claims(), json!({})));
    assert_eq!(c.login().await.0, 200);
    // The provider rotates: the old key is gone, a new one signs.
    c.idp.with(|s| s.jwks = vec![k.rs256_rotated.jwk.clone()]);
    c.idp.issue(k.rs256_rotated.sign(&c.claims(), json!({})));
    let (status, body, text) = c.login().await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["claims"]["sub"], "hostile:alice-sub-7f3a");
    assert_eq!(c.idp.jwks_hits(), 2);
    // And the retired key is no longer trusted once the new JWKS is in use.
    c.idp.issue(k.rs256.sign(&c.claims(), json!({})));
    assert_refused(&c.login().await, 401, &["alice-sub-7f3a"]);
}

#[tokio::test]
async fn key_carrying_headers_are_never_trusted_or_fetched() {
    let c = setup().await;
    let attacker = &keys().attacker;
    let evil = format!("{}/evil", c.idp.issuer);
    for header in [
        json!({"kid": "attacker-kid", "jku": evil}),
        json!({"kid": "attacker-kid", "x5u": evil}),
        json!({"kid": "attacker-kid", "jwk": attacker.jwk}),
        json!({"kid": null, "jwk": attacker.jwk}),
    ] {
        c.refused(attacker.sign(&c.claims(), header)).await;
    }
    assert_eq!(c.idp.hits.evil.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_crit_header_is_refused() {
    let c = setup().await;
    let m = c
        .refused(
            keys()
                .rs256
                .sign(&c.claims(), json!({"crit": ["exp"], "exp": 1})),
        )
        .await;
    assert!(m.contains("crit"), "{m}");
}

#[tokio::test]
async fn a_key_declared_for_another_algorithm_is_not_used() {
    let c = setup().await;
    // The RSA key's JWK says RS256; a PS256 signature with the same key is refused.
    let rsa = &keys().rs256;
    let mut as_ps = rsa.clone();
    as_ps.alg = Algorithm::PS256;
    let m = c.refused(as_ps.sign(&c.claims(), json!({}))).await;
    assert!(m.contains("does not allow"), "{m}");
    // An EC P-256 key cannot verify ES384.
    let m = c
        .refused(keys().es384.sign(&c.claims(), json!({"kid": "ec-1"})))
        .await;
    assert!(m.contains("does not allow"), "{m}");
}

#[tokio::test]
async fn a_token_without_kid_is_verified_against_the_keys_of_its_algorithm() {
    let c = setup().await;
    c.idp
        .issue(keys().es256.sign(&c.claims(), json!({"kid": null})));
    assert_eq!(c.login().await.0, 200);
    c.refused(keys().attacker.sign(&c.claims(), json!({"kid": null})))
        .await;
}

#[tokio::test]
async fn an_encrypted_or_malformed_id_token_is_refused() {
    let c = setup().await;
    c.refused("a.b.c.d.e".into()).await;
    c.refused("not-a-jwt".into()).await;
    c.refused(format!("{}.{}.", base64_url("{}"), base64_url("{}")))
        .await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
