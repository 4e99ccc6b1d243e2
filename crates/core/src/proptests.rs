//! Property tests of the core parsers that take outside input (issue 12): lakeFS bearer tokens,
//! claims flattening, names and terminal escaping. On generated input: no panic, bounded time.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::Value;

use crate::claims::{flatten, split_groups};
use crate::token::TokenIssuer;
use crate::user::{check_name, printable};

const BOUND: Duration = Duration::from_secs(2);

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64url(data: &[u8]) -> String {
    use base64_like::encode;
    encode(data)
}

/// Unpadded base64url without a dependency of the crate under test.
mod base64_like {
    pub fn encode(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bearer_string_is_verified_or_refused_without_panicking(token in ".{0,400}") {
        let issuer = TokenIssuer::new(&SecretString::from("k".repeat(32)));
        let started = Instant::now();
        prop_assert!(issuer.verify(&token, 1_700_000_000).is_err());
        prop_assert!(started.elapsed() < BOUND);
    }

    /// Generated headers and claims under a wrong signature: never accepted, never a panic.
    #[test]
    fn generated_jwts_with_a_bad_signature_are_refused(
        header in json_value(), claims in json_value(), sig in "[A-Za-z0-9_-]{0,64}"
    ) {
        let issuer = TokenIssuer::new(&SecretString::from("k".repeat(32)));
        let token = format!(
            "{}.{}.{sig}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let started = Instant::now();
        prop_assert!(issuer.verify(&token, 1_700_000_000).is_err());
        prop_assert!(started.elapsed() < BOUND);
    }

    /// Correctly signed tokens with generated claims: accepted only when lakeFS's rules and
    /// ours hold.
    #[test]
    fn signed_tokens_with_generated_claims_follow_the_rules(
        sub in prop::option::of(".{0,10}"),
        exp in prop::option::of(-10i64..10),
        iat in prop::option::of(-100i64..100),
        nbf in prop::option::of(-100i64..100),
        aud in prop::option::of(prop_oneof![Just("login"), Just("other")]),
    ) {
        let now = 1_700_000_000;
        let mut c = serde_json::Map::new();
        if let Some(s) = &sub { c.insert("sub".into(), Value::from(s.clone())); }
        if let Some(e) = exp { c.insert("exp".into(), Value::from(now + e * 60)); }
        if let Some(i) = iat { c.insert("iat".into(), Value::from(now + i)); }
        if let Some(n) = nbf { c.insert("nbf".into(), Value::from(now + n)); }
        if let Some(a) = aud { c.insert("aud".into(), Value::from(a)); }
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &c,
            &jsonwebtoken::EncodingKey::from_secret("k".repeat(32).as_bytes()),
        ).unwrap();
        let issuer = TokenIssuer::new(&SecretString::from("k".repeat(32)));
        let ok = issuer.verify(&token, now).is_ok();
        let expected = sub.as_deref().is_some_and(|s| !s.is_empty())
            && exp.is_some_and(|e| e > 0)
            && iat.is_none_or(|i| i <= 60)
            && nbf.is_none_or(|n| n <= 60)
            && aud != Some("other");
        prop_assert_eq!(ok, expected);
    }

    #[test]
    fn claims_of_any_shape_flatten_without_panicking(claims in prop::collection::btree_map(".{0,8}", json_value(), 0..12)) {
        let map: serde_json::Map<String, Value> = claims.into_iter().collect();
        let started = Instant::now();
        let flat = flatten(&map);
        prop_assert!(started.elapsed() < BOUND);
        prop_assert_eq!(flat.len(), map.len());
        for (k, v) in &map {
            if let Value::String(s) = v {
                prop_assert_eq!(&flat[k], s);
            }
        }
        for v in flat.values() {
            let _ = split_groups(v);
        }
    }

    /// Escaping for terminals: no control character survives, and printable text is unchanged.
    #[test]
    fn printable_output_has_no_control_characters(s in "\\PC{0,20}|.{0,40}|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z]{0,40}") {
        let out = printable(&s);
        prop_assert!(!out.chars().any(char::is_control));
        if !s.chars().any(char::is_control) && !s.chars().any(|c| ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)) {
            prop_assert_eq!(out.as_ref(), s.as_str());
        }
        // A name that passes the rules prints unchanged.
        if check_name("username", &s).is_ok() && !s.chars().any(|c| ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)) {
            let again = printable(&s);
            prop_assert_eq!(again.as_ref(), s.as_str());
        }
    }
}
