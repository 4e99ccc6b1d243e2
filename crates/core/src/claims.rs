//! ID-token claims as lakeFS's authentication API carries them: a map of strings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Claim name to string value (`oidc_token_data.claims`).
pub type Claims = BTreeMap<String, String>;

/// Turns a JSON claims object into [`Claims`]:
///
/// - strings are kept as they are;
/// - numbers and booleans become their JSON text (`1700000000`, `true`);
/// - arrays whose items are all strings are joined with commas, lakeFS's convention for groups
///   (`["a","b"]` -> `a,b`);
/// - anything else (objects, mixed arrays, `null`) becomes its compact JSON text.
pub fn flatten(claims: &Map<String, Value>) -> Claims {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), flatten_value(v)))
        .collect()
}

/// The string form of one claim value; see [`flatten`].
pub fn flatten_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Checks lakeFS's `validate_id_token_claims`: each named claim must exist and equal the
/// required value exactly. Returns the name of the first claim that fails.
pub fn first_mismatch<'a>(
    claims: &Claims,
    required: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    required
        .iter()
        .find(|(name, want)| claims.get(*name) != Some(*want))
        .map(|(name, _)| name.as_str())
}

/// Splits a comma-separated group claim into trimmed, non-empty group names.
pub fn split_groups(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_follows_the_documented_rules() {
        let v = json!({
            "s": "x", "n": 12, "f": 1.5, "b": false, "groups": ["a", "b"],
            "empty": [], "mixed": [1, "a"], "obj": {"k": [1, 2]}, "null": null
        });
        let c = flatten(v.as_object().unwrap());
        assert_eq!(c["s"], "x");
        assert_eq!(c["n"], "12");
        assert_eq!(c["f"], "1.5");
        assert_eq!(c["b"], "false");
        assert_eq!(c["groups"], "a,b");
        assert_eq!(c["empty"], "");
        assert_eq!(c["mixed"], r#"[1,"a"]"#);
        assert_eq!(c["obj"], r#"{"k":[1,2]}"#);
        assert_eq!(c["null"], "null");
    }

    #[test]
    fn required_claims_must_match_exactly() {
        let claims: Claims = [
            ("aud_group".into(), "data".into()),
            ("x".into(), "1".into()),
        ]
        .into();
        let mut req = BTreeMap::new();
        req.insert("aud_group".to_string(), "data".to_string());
        assert_eq!(first_mismatch(&claims, &req), None);
        req.insert("x".to_string(), "1 ".to_string());
        assert_eq!(first_mismatch(&claims, &req), Some("x"));
        req.remove("x");
        req.insert("missing".to_string(), "".to_string());
        assert_eq!(first_mismatch(&claims, &req), Some("missing"));
    }

    #[test]
    fn groups_split_on_commas_and_drop_blanks() {
        assert_eq!(split_groups(" a, b,,c "), vec!["a", "b", "c"]);
        assert!(split_groups("").is_empty());
    }
}
