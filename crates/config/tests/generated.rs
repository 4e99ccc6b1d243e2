//! Property tests of configuration loading (issue 12): generated YAML and `LAKESTS_*`
//! variables are loaded or refused with messages, never a panic, in bounded time, and no
//! message ever contains the secret key.

use std::time::{Duration, Instant};

use lakests_config::Config;
use proptest::prelude::*;

const KEY: &str = "generated-config-secret-0123456789abcdef";

fn key_path() -> impl Strategy<Value = String> {
    let known: Vec<String> = lakests_config::known_keys()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    prop_oneof![
        prop::sample::select(known),
        "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}",
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        Just("10s".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[a, b]".to_owned()),
        Just("~".to_owned()),
        Just("\"\"".to_owned()),
        Just("99999999999999999999999".to_owned()),
        "[a-zA-Z0-9:/._ -]{0,20}",
    ]
}

/// A YAML document from dotted keys (nested maps), or arbitrary text.
fn yaml() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec((key_path(), scalar()), 0..8).prop_map(|pairs| {
            let mut out = String::new();
            for (path, value) in pairs {
                let parts: Vec<&str> = path.split('.').collect();
                for (depth, part) in parts.iter().enumerate() {
                    out.push_str(&"  ".repeat(depth));
                    out.push_str(part);
                    out.push(':');
                    if depth + 1 == parts.len() {
                        out.push(' ');
                        out.push_str(&value);
                    }
                    out.push('\n');
                }
            }
            out
        }),
        ".{0,200}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_configurations_load_or_are_refused_with_messages(
        doc in yaml(),
        env in prop::collection::vec((key_path(), scalar()), 0..4),
    ) {
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (lakests_config::env_var_name(&k), v))
            .collect();
        vars.push(("LAKESTS_AUTH_ENCRYPT_SECRET_KEY".into(), KEY.into()));
        let started = Instant::now();
        let result = Config::from_sources(Some(&doc), vars);
        prop_assert!(started.elapsed() < Duration::from_secs(2));
        match result {
            Ok(cfg) => prop_assert!(cfg.validate().is_empty()),
            Err(e) => {
                prop_assert!(!e.0.is_empty());
                prop_assert!(!e.to_string().contains(KEY), "the key is echoed: {e}");
            }
        }
    }
}
