//! Property tests of the parsers that take outside input (issue 12): the JWT compact form and
//! its JOSE header, ID-token claim rules, PKCE verifiers and redirect URIs. On generated
//! input: no panic, and bounded time.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::id_token::{Expectations, parse, validate_claims};

/// Generous: each call is microseconds; this catches only pathological (super-linear) cases.
const BOUND: Duration = Duration::from_secs(2);

/// JSON values up to a few levels deep, with hostile-looking strings and numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("none"),
            Just("HS256"),
            Just("RS256"),
            Just("ES256"),
            Just("EdDSA"),
            Just("JWT"),
            Just("application/jwt"),
            Just("alice"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(claim_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn claim_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("alg"),
            Just("typ"),
            Just("kid"),
            Just("crit"),
            Just("cty"),
            Just("iss"),
            Just("aud"),
            Just("azp"),
            Just("exp"),
            Just("iat"),
            Just("nbf"),
            Just("sub"),
            Just("nonce"),
        ]
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(claim_name(), json_value(), 0..10)
        .prop_map(|m| m.into_iter().collect())
}

fn b64(v: &impl serde::Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_parses_or_is_refused_without_panicking(token in ".{0,300}") {
        let started = Instant::now();
        let _ = parse(&token);
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn any_dotted_base64_parses_or_is_refused(
        parts in prop::collection::vec("[A-Za-z0-9_=+/-]{0,80}", 0..7)
    ) {
        let token = parts.join(".");
        let started = Instant::now();
        let _ = parse(&token);
        prop_assert!(started.elapsed() < BOUND);
    }

    /// Generated headers and payloads: never a panic; `none`, HMAC and `crit` never pass.
    #[test]
    fn generated_headers_never_let_none_hmac_or_crit_through(
        header in object(), payload in object(), sig in "[A-Za-z0-9_-]{0,20}"
    ) {
        let token = format!("{}.{}.{sig}", b64(&header), b64(&payload));
        let started = Instant::now();
        let result = parse(&token);
        prop_assert!(started.elapsed() < BOUND);
        if result.is_ok() {
            let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
            prop_assert!(!alg.eq_ignore_ascii_case("none"));
            prop_assert!(!alg.starts_with("HS"));
            prop_assert!(!header.contains_key("crit"));
            prop_assert!(!sig.is_empty());
        }
    }

    /// Generated claims: never a panic; whatever passes has the rules' essentials.
    #[test]
    fn generated_claims_are_validated_without_panicking(claims in object(), now in 0i64..4_000_000_000) {
        let want = Expectations { issuer: "alice", client_id: "alice", now, skew: 60, nonce: Some("alice") };
        let started = Instant::now();
        let result = validate_claims(&claims, &want);
        prop_assert!(started.elapsed() < BOUND);
        if result.is_ok() {
            prop_assert_eq!(claims.get("iss").and_then(Value::as_str), Some("alice"));
            let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
            prop_assert!(!sub.is_empty() && !sub.chars().any(char::is_control));
        }
    }

    #[test]
    fn verifier_check_and_loopback_keys_never_panic(s in ".{0,200}") {
        let started = Instant::now();
        let _ = crate::pkce::is_valid_verifier(&s);
        let _ = lakests_config::ProviderConfig::loopback_key(&s);
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn generated_redirect_uris_never_panic(
        scheme in prop_oneof![Just("http"), Just("https"), Just("file"), Just("HTTP")],
        userinfo in prop_oneof![Just(""), Just("user@"), Just("a:b@")],
        host in prop_oneof![Just("127.0.0.1"), Just("[::1]"), Just("localhost"), Just("evil.example"), Just("127.0.0.1.evil"), Just("0x7f.1")],
        port in prop::option::of(any::<u16>()),
        path in "(/[a-zA-Z0-9%._~-]{0,8}){0,4}",
        query in prop::option::of("[a-z=&%0-9]{0,20}"),
        fragment in prop::option::of("[a-z]{0,5}"),
    ) {
        let mut uri = format!("{scheme}://{userinfo}{host}");
        if let Some(p) = port { uri.push_str(&format!(":{p}")); }
        uri.push_str(&path);
        if let Some(q) = query { uri.push('?'); uri.push_str(&q); }
        if let Some(f) = fragment { uri.push('#'); uri.push_str(&f); }
        let key = lakests_config::ProviderConfig::loopback_key(&uri);
        if key.is_some() {
            // Only plain-http loopback URIs without user info or fragment get a key.
            prop_assert!(scheme == "http" || scheme == "HTTP");
            prop_assert!(userinfo.is_empty());
        }
    }
}
