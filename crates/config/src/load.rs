//! Loading: defaults, then the YAML file, then `LAKESTS_*` environment variables; unknown keys
//! and every semantic problem are collected and reported together.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use crate::Config;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "LAKESTS_";

/// `LAKESTS_*` variables that are not configuration keys: `LAKESTS_CONFIG` (the config file
/// path), the settings of `lakests login` (`LAKESTS_PROFILE`, `LAKESTS_LOGIN_CONFIG`,
/// `LAKESTS_NO_LAKECTL_CACHE`), and anything starting with `LAKESTS_TEST_` (the test suite's
/// own knobs).
pub const RESERVED_ENV: &[&str] = &[
    "LAKESTS_CONFIG",
    "LAKESTS_PROFILE",
    "LAKESTS_LOGIN_CONFIG",
    "LAKESTS_NO_LAKECTL_CACHE",
];

/// Every problem found while loading, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The environment variable that overrides `key` (a dotted path): `LAKESTS_` + upper-cased
/// path joined with `_`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_uppercase())
}

/// Every configuration key, as a dotted path, with its default value. Lists and maps are single
/// keys (set them whole, as YAML or JSON, from the environment).
pub fn known_keys() -> Vec<(String, Value)> {
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk(&defaults, String::new(), &mut out);
    out
}

fn walk(v: &Value, prefix: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(child, path, out);
            }
        }
        _ => out.push((prefix, v.clone())),
    }
}

impl Config {
    /// Loads the configuration from an optional YAML file and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let text = read_file(path)?;
        Self::from_sources(text.as_deref(), std::env::vars())
    }

    /// Loads from YAML text (if any) and the given environment, then validates.
    pub fn from_sources(
        yaml: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        Self::parse_sources(yaml, env, true)
    }

    /// Like [`Config::load`], but checks only the shape (unknown keys, types), not the
    /// semantics: for admin commands that need just the database settings.
    pub fn load_unvalidated(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let text = read_file(path)?;
        Self::parse_sources(text.as_deref(), std::env::vars(), false)
    }

    fn parse_sources(
        yaml: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
        validate: bool,
    ) -> Result<Config, ConfigErrors> {
        let mut problems = Vec::new();
        let mut tree = match yaml {
            Some(text) if !text.trim().is_empty() => match serde_norway::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Value::Object(m),
                Ok(Value::Null) => Value::Object(Map::new()),
                Ok(_) => {
                    return Err(ConfigErrors(vec![
                        "the configuration file must be a YAML mapping".into(),
                    ]));
                }
                Err(e) => {
                    return Err(ConfigErrors(vec![format!(
                        "the configuration file is not valid YAML: {e}"
                    )]));
                }
            },
            _ => Value::Object(Map::new()),
        };
        apply_env(&mut tree, env, &mut problems);

        // A value of the wrong type stops serde at the first one; to list every problem at
        // once, each such value is reported, taken out of the tree and the rest parsed again
        // (bounded: each round removes one value).
        let mut removed: Vec<Vec<serde_path_to_error::Segment>> = Vec::new();
        for round in 0.. {
            let mut unknown = Vec::new();
            let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
            let de = serde_ignored::Deserializer::new(tree.clone(), &mut on_unknown);
            let parsed: Result<Config, _> = serde_path_to_error::deserialize(de);
            // Unknown keys past a type error are seen only in a later round: report each once.
            for key in unknown {
                let problem = format!("{key}: unknown key");
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
            match parsed {
                Ok(cfg) => {
                    if validate && removed.is_empty() {
                        problems.extend(cfg.validate());
                    }
                    return if problems.is_empty() {
                        Ok(cfg)
                    } else {
                        Err(ConfigErrors(problems))
                    };
                }
                Err(e) => {
                    let segments: Vec<_> = e.path().iter().cloned().collect();
                    let path = e.path().to_string();
                    let message = e.into_inner().to_string();
                    // A required value taken out in an earlier round is now "missing": that
                    // was already reported as the type error it was.
                    if message.starts_with("missing field") && !removed.is_empty() {
                        return Err(ConfigErrors(problems));
                    }
                    problems.push(format!("{path}: {message}"));
                    if round >= 64 || !remove_at(&mut tree, &segments) {
                        return Err(ConfigErrors(problems));
                    }
                    removed.push(segments);
                }
            }
        }
        Err(ConfigErrors(problems))
    }
}

/// Takes the value at `path` out of `tree`; false when there is nothing there to take.
fn remove_at(tree: &mut Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, Value::Object(m)) => match m.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(a)) => match a.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Map { key }, Value::Object(m)) => m.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(a)) if *index < a.len() => {
            a.remove(*index);
            true
        }
        _ => false,
    }
}

fn read_file(path: Option<&Path>) -> Result<Option<String>, ConfigErrors> {
    match path {
        Some(p) => std::fs::read_to_string(p).map(Some).map_err(|e| {
            ConfigErrors(vec![format!(
                "cannot read the configuration file {}: {e}",
                p.display()
            )])
        }),
        None => Ok(None),
    }
}

/// lakeFS's variables that lakests reads too, as aliases of its own: the shared signing key.
pub const LAKEFS_ENV_ALIASES: &[(&str, &str)] = &[(
    "LAKEFS_AUTH_ENCRYPT_SECRET_KEY",
    "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
)];

fn apply_env(
    tree: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
) {
    let keys = known_keys();
    let all: Vec<(String, String)> = env.into_iter().collect();
    let mut vars: Vec<(String, String)> = all
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .filter(|(k, _)| !RESERVED_ENV.contains(&k.as_str()) && !k.starts_with("LAKESTS_TEST_"))
        .cloned()
        .collect();
    // lakeFS's name for the same value; when both are set they must agree (neither value is
    // ever repeated in the message).
    for (lakefs, ours) in LAKEFS_ENV_ALIASES {
        let Some((_, value)) = all.iter().find(|(k, _)| k == lakefs) else {
            continue;
        };
        match vars.iter().find(|(k, _)| k == ours) {
            Some((_, v)) if v != value => problems.push(format!(
                "{lakefs} and {ours} are both set, to different values: set one of them"
            )),
            Some(_) => {}
            None => vars.push(((*ours).to_owned(), value.clone())),
        }
    }
    vars.sort();
    for (name, raw) in vars {
        let Some((key, default)) = keys.iter().find(|(k, _)| env_var_name(k) == name) else {
            problems.push(format!(
                "{name}: environment variable names no configuration key"
            ));
            continue;
        };
        let value = match coerce(&raw, default) {
            Ok(v) => v,
            Err(why) => {
                problems.push(format!("{name} (for {key}): {why}"));
                continue;
            }
        };
        set_path(tree, key, value);
    }
}

/// Environment values are text: read them as the default's type (numbers, booleans, lists and
/// maps as YAML), everything else as a plain string, so a secret like `123` stays a string.
fn coerce(raw: &str, default: &Value) -> Result<Value, String> {
    match default {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err(format!("{raw:?} is not a boolean")),
        },
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(raw.trim())
            .map(Value::Number)
            .map_err(|_| format!("{raw:?} is not a number")),
        Value::Array(_) | Value::Object(_) => {
            serde_norway::from_str::<Value>(raw).map_err(|e| format!("not valid YAML/JSON: {e}"))
        }
        _ => Ok(Value::String(raw.to_owned())),
    }
}

fn set_path(tree: &mut Value, key: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return;
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    const STRONG: &str = "a-strong-test-key-0123456789abcdefghij";
    const MINIMAL: &str = "auth:\n  encrypt:\n    secret_key: a-strong-test-key-0123456789abcdefghij\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n";

    #[test]
    fn environment_overrides_the_file_with_lakefs_style_names() {
        let cfg = Config::from_sources(
            Some(MINIMAL),
            env(&[
                (
                    "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                    "0123456789abcdef0123456789abcdef",
                ),
                ("LAKESTS_AUTH_STS_MAX_TTL_SECONDS", "7200"),
                ("LAKESTS_AUTH_STS_AUTO_CREATE_USERS", "true"),
                (
                    "LAKESTS_AUTH_COOKIE_AUTH_VERIFICATION_DEFAULT_INITIAL_GROUPS",
                    "[a, b]",
                ),
                ("LAKESTS_CONFIG", "ignored.yaml"),
                ("LAKESTS_PROFILE", "prod"),
                ("LAKESTS_LOGIN_CONFIG", "/home/u/.config/lakests/login.yaml"),
                ("LAKESTS_NO_LAKECTL_CACHE", "true"),
                ("LAKESTS_TEST_ANYTHING", "ignored"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(
            cfg.auth.encrypt.secret_key.unwrap().expose(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(cfg.auth.sts.max_ttl_seconds, 7200);
        assert!(cfg.auth.sts.auto_create_users);
        assert_eq!(
            cfg.auth.cookie_auth_verification.default_initial_groups,
            vec!["a", "b"]
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let yaml = "listen_addres: x\nauth:\n  sts:\n    default_ttl_seconds: 0\n  bogus: 1\n";
        let err =
            Config::from_sources(Some(yaml), env(&[("LAKESTS_NO_SUCH_KEY", "1")])).unwrap_err();
        let text = err.to_string();
        for needle in [
            "listen_addres: unknown key",
            "auth.bogus: unknown key",
            "LAKESTS_NO_SUCH_KEY",
            "auth.encrypt.secret_key: required",
            "auth.sts.default_ttl_seconds: must be positive",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let sts_only = format!("auth:\n  encrypt:\n    secret_key: {STRONG}\n");
        let text = Config::from_sources(Some(&sts_only), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("auth.authentication_api.endpoint: required"),
            "{text}"
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let yaml = format!("{MINIMAL}  sts:\n    max_ttl_seconds: lots\n");
        let err = Config::from_sources(Some(&yaml), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.sts.max_ttl_seconds"), "{err}");
        let err = Config::from_sources(
            Some(MINIMAL),
            env(&[("LAKESTS_AUTH_STS_MAX_TTL_SECONDS", "x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not a number"), "{err}");
    }

    #[test]
    fn every_type_error_is_listed_not_only_the_first() {
        let yaml = format!(
            "{MINIMAL}  sts:\n    max_ttl_seconds: lots\n    default_ttl_seconds: [1]\n  cache:\n    enabled: maybe\nlisten_address: 7\nbogus: 1\n"
        );
        let err = Config::from_sources(Some(&yaml), env(&[]))
            .unwrap_err()
            .to_string();
        for needle in [
            "auth.sts.max_ttl_seconds",
            "auth.sts.default_ttl_seconds",
            "auth.cache.enabled",
            "bogus: unknown key",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(!err.contains("missing field"), "{err}");
    }

    #[test]
    fn login_concurrency_and_cache_ttl_have_floors() {
        let yaml = format!(
            "{MINIMAL}  sts:\n    max_concurrent_logins: 0\n  cache:\n    enabled: true\n    ttl: 500ms\n"
        );
        let err = Config::from_sources(Some(&yaml), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.sts.max_concurrent_logins: must be at least 1"),
            "{err}"
        );
        assert!(err.contains("auth.cache.ttl: must be at least 1s"), "{err}");
        let ok = format!("{MINIMAL}  cache:\n    enabled: true\n    ttl: 1s\n");
        Config::from_sources(Some(&ok), env(&[])).expect("1s is a valid cache TTL");
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let cfg = Config::from_sources(
            Some(MINIMAL),
            env(&[(
                "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                "very-secret-value-0123456789abcdefgh",
            )]),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("very-secret-value"));
    }

    #[test]
    fn the_example_parses_and_asks_for_a_generated_key() {
        // As shipped, the only problem is the empty key, and the message says how to make one.
        let err = Config::from_sources(Some(crate::EXAMPLE), env(&[])).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(err.0[0].starts_with("auth.encrypt.secret_key: must not be empty"));
        assert!(err.0[0].contains("openssl rand"), "{err}");
        // With a generated key from the environment it is valid.
        let cfg = Config::from_sources(
            Some(crate::EXAMPLE),
            env(&[("LAKESTS_AUTH_ENCRYPT_SECRET_KEY", STRONG)]),
        )
        .unwrap();
        assert!(cfg.authenticator_enabled());
    }

    /// Issue 12, point 4: weak and published keys are refused, and the key is never echoed.
    #[test]
    fn weak_and_published_secret_keys_are_refused() {
        let with_key = |key: &str| {
            let yaml = format!(
                "auth:\n  encrypt:\n    secret_key: {}\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n",
                serde_json::to_string(key).unwrap()
            );
            Config::from_sources(Some(&yaml), env(&[]))
        };
        for (key, why) in [
            ("a", "shorter than 32 bytes"),
            (" ", "only white space"),
            ("\t\n  \t", "only white space"),
            ("", "must not be empty"),
            (
                "change-me-to-a-long-random-value",
                "published example value",
            ),
            (
                "THIS_MUST_BE_CHANGED_IN_PRODUCTION",
                "published example value",
            ),
            (&"x".repeat(31), "shorter than 32 bytes"),
        ] {
            let err = with_key(key).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(why), "{key:?}: {text}");
            assert!(text.contains("auth.encrypt.secret_key"), "{text}");
            if key.trim().len() > 1 {
                assert!(!text.contains(key), "the key is echoed: {text}");
            }
        }
        assert!(with_key(&"x".repeat(32)).is_ok());
        assert!(with_key(STRONG).is_ok());
    }

    /// An STS role whose authenticator is remote: valid once it has a secret key.
    const REMOTE: &str = "auth:\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n";

    #[test]
    fn lakefs_secret_key_variable_is_an_alias_and_must_agree() {
        use secrecy::ExposeSecret as _;
        let cfg = Config::from_sources(
            Some(REMOTE),
            env(&[(
                "LAKEFS_AUTH_ENCRYPT_SECRET_KEY",
                "shared-with-lakefs-0123456789abcdef",
            )]),
        )
        .unwrap();
        assert_eq!(
            cfg.auth
                .encrypt
                .secret_key
                .unwrap()
                .secret_string()
                .expose_secret(),
            "shared-with-lakefs-0123456789abcdef"
        );
        let same = env(&[
            (
                "LAKEFS_AUTH_ENCRYPT_SECRET_KEY",
                "same-value-0123456789abcdefghijkl",
            ),
            (
                "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                "same-value-0123456789abcdefghijkl",
            ),
        ]);
        assert!(Config::from_sources(Some(REMOTE), same).is_ok());
        let err = Config::from_sources(
            Some(REMOTE),
            env(&[
                (
                    "LAKEFS_AUTH_ENCRYPT_SECRET_KEY",
                    "value-one-0123456789abcdefghijkl",
                ),
                (
                    "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                    "value-two-0123456789abcdefghijkl",
                ),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("are both set, to different values"), "{err}");
        assert!(
            !err.contains("value-one") && !err.contains("value-two"),
            "{err}"
        );
        // Other LAKEFS_* variables are lakeFS's business, not configuration errors here.
        let other = env(&[
            ("LAKEFS_BLOCKSTORE_TYPE", "s3"),
            (
                "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                "same-value-0123456789abcdefghijkl",
            ),
        ]);
        assert!(Config::from_sources(Some(REMOTE), other).is_ok());
    }

    #[test]
    fn lakefs_key_names_load() {
        let cfg = Config::from_sources(
            Some(
                "auth:\n  encrypt:\n    secret_key: same-value-0123456789abcdefghijkl\n  \
                 authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n  \
                 cookie_auth_verification:\n    external_user_id_claim_name: oid\n  \
                 cache:\n    jitter: 5s\n",
            ),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            cfg.auth
                .cookie_auth_verification
                .external_user_id_claim_name,
            "oid"
        );
        assert_eq!(cfg.auth.cache.jitter.get().as_secs(), 5);
        let d = Config::from_sources(
            Some(REMOTE),
            env(&[(
                "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
                "same-value-0123456789abcdefghijkl",
            )]),
        )
        .unwrap();
        assert_eq!(
            d.auth.cookie_auth_verification.external_user_id_claim_name,
            "sub"
        );
        assert_eq!(d.auth.cache.jitter.get().as_secs(), 3);
    }

    #[test]
    fn env_names_follow_lakefs_convention() {
        assert_eq!(
            env_var_name("auth.encrypt.secret_key"),
            "LAKESTS_AUTH_ENCRYPT_SECRET_KEY"
        );
        let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
        for k in [
            "listen_address",
            "database.type",
            "database.sqlite.path",
            "database.postgres.connection_string",
            "auth.encrypt.secret_key",
            "auth.authentication_api.endpoint",
            "auth.cookie_auth_verification.validate_id_token_claims",
            "auth.sts.default_ttl_seconds",
            "auth.sts.max_ttl_seconds",
            "auth.sts.auto_create_users",
            "authenticator.listen_address",
            "authenticator.providers",
            "idp.enabled",
            "idp.listen_address",
        ] {
            assert!(keys.iter().any(|x| x == k), "missing key {k}");
        }
    }
}
