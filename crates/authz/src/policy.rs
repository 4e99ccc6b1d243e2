//! Policy validation on write (AUTHZ.md §6): what lakeFS's public API enforces, plus what its
//! evaluator would otherwise turn into a denied request at run time. Every refusal names the
//! statement and the problem; nothing invalid is stored.

use serde_json::Value;

/// lakeFS's action services (`pkg/permissions`).
pub const SERVICES: &[&str] = &["fs", "auth", "ci", "retention", "branches", "pr", "catalog"];
/// Condition operators lakeFS evaluates.
pub const CONDITION_OPERATORS: &[&str] =
    &["IpAddress", "NotIpAddress", "StringLike", "StringNotLike"];
/// Most statements in one policy.
pub const MAX_STATEMENTS: usize = 256;
/// Longest action or resource, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// Checks a policy name: non-empty, at most 256 bytes, no `/`, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    lakests_core::user::check_name("policy name", name).map_err(|e| e.to_string())?;
    if name.contains('/') {
        return Err("policy name must not contain '/'".into());
    }
    Ok(())
}

/// Checks `statement` (the JSON array of a policy). The error names what is wrong.
pub fn check_statements(statement: &Value) -> Result<(), String> {
    let list = match statement {
        Value::Array(list) => list,
        Value::Null => return Err("statement is required".into()),
        _ => return Err("statement must be an array of statements".into()),
    };
    if list.is_empty() {
        return Err("statement must have at least one statement".into());
    }
    if list.len() > MAX_STATEMENTS {
        return Err(format!(
            "statement has more than {MAX_STATEMENTS} statements"
        ));
    }
    for (i, s) in list.iter().enumerate() {
        check_statement(s).map_err(|e| format!("statement[{i}]: {e}"))?;
    }
    Ok(())
}

fn check_statement(s: &Value) -> Result<(), String> {
    let obj = s.as_object().ok_or("must be an object")?;
    match obj.get("effect") {
        Some(Value::String(e)) if e == "allow" || e == "deny" => {}
        Some(_) => return Err("effect must be \"allow\" or \"deny\"".into()),
        None => return Err("effect is required".into()),
    }
    let actions = match obj.get("action") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err("action must not be empty".into()),
        Some(_) => return Err("action must be an array of strings".into()),
        None => return Err("action is required".into()),
    };
    for (j, a) in actions.iter().enumerate() {
        let a = a
            .as_str()
            .ok_or_else(|| format!("action[{j}] must be a string"))?;
        check_action(a).map_err(|e| format!("action[{j}]: {e}"))?;
    }
    match obj.get("resource") {
        Some(Value::String(r)) => check_resource(r).map_err(|e| format!("resource: {e}"))?,
        Some(_) => return Err("resource must be a string".into()),
        None => return Err("resource is required".into()),
    }
    match obj.get("condition") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ops)) => {
            for (op, fields) in ops {
                check_condition(op, fields).map_err(|e| format!("condition {op}: {e}"))?;
            }
        }
        Some(_) => return Err("condition must be an object".into()),
    }
    Ok(())
}

/// `service:Name`, service one of [`SERVICES`], Name letters, digits or the wildcards `*` `?`.
fn check_action(a: &str) -> Result<(), String> {
    if a.len() > MAX_VALUE_LEN {
        return Err(format!("longer than {MAX_VALUE_LEN} bytes"));
    }
    let Some((service, name)) = a.split_once(':') else {
        return Err("must be service:Action (e.g. fs:ReadObject or fs:*)".into());
    };
    if !SERVICES.contains(&service) {
        return Err(format!("unknown service (one of {})", SERVICES.join(", ")));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    {
        return Err("the action name must be letters, digits, * or ?".into());
    }
    Ok(())
}

/// `*`, one ARN, or a JSON array (as a string) of ARNs.
fn check_resource(r: &str) -> Result<(), String> {
    if r.len() > 64 * MAX_VALUE_LEN {
        return Err("too long".into());
    }
    if r == "*" {
        return Ok(());
    }
    if r.trim_start().starts_with('[') {
        let list: Vec<String> = serde_json::from_str(r)
            .map_err(|_| "a resource list must be a JSON array of ARN strings".to_string())?;
        if list.is_empty() {
            return Err("a resource list must not be empty".into());
        }
        for arn in &list {
            check_arn(arn)?;
        }
        return Ok(());
    }
    check_arn(r)
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>`, partition, service and resource
/// non-empty (lakeFS writes `arn:lakefs:fs:::repository/...`), or `*`.
fn check_arn(arn: &str) -> Result<(), String> {
    if arn == "*" {
        return Ok(());
    }
    if arn.len() > MAX_VALUE_LEN {
        return Err(format!("an ARN is longer than {MAX_VALUE_LEN} bytes"));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && !parts[2].is_empty()
        && !parts[5].is_empty()
        && !arn.chars().any(char::is_control);
    if !ok {
        return Err(
            "must be *, an ARN like arn:lakefs:fs:::repository/NAME, or a JSON array of ARNs"
                .into(),
        );
    }
    Ok(())
}

/// An operator of [`CONDITION_OPERATORS`] with `{field: [values]}`; IP operators need IP
/// addresses or CIDR blocks.
fn check_condition(op: &str, fields: &Value) -> Result<(), String> {
    if !CONDITION_OPERATORS.contains(&op) {
        return Err(format!(
            "unknown operator (one of {})",
            CONDITION_OPERATORS.join(", ")
        ));
    }
    let fields = fields
        .as_object()
        .ok_or("must be an object of field: [values]")?;
    for (field, values) in fields {
        let values = values
            .as_array()
            .ok_or_else(|| format!("{field} must be an array of strings"))?;
        for v in values {
            let v = v
                .as_str()
                .ok_or_else(|| format!("{field} must be an array of strings"))?;
            if op.ends_with("IpAddress") && !is_ip_or_cidr(v) {
                return Err(format!(
                    "{field}: values must be IP addresses or CIDR blocks"
                ));
            }
        }
    }
    Ok(())
}

fn is_ip_or_cidr(v: &str) -> bool {
    let (addr, bits) = match v.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match bits {
        None => true,
        Some(b) => b.parse::<u8>().is_ok_and(|n| n <= max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(statement: Value) -> String {
        check_statements(&statement).expect_err("refused")
    }

    #[test]
    fn lakefs_default_policies_are_valid() {
        let ok = [
            json!([{"effect": "allow", "action": ["fs:*"], "resource": "*"}]),
            json!([{"effect": "allow", "action": ["fs:Read*", "fs:List*"], "resource": "*"}]),
            json!([{"effect": "allow", "action": ["auth:CreateCredentials", "auth:ReadUser"], "resource": "arn:lakefs:auth:::user/${user}"}]),
            json!([{"effect": "deny", "action": ["fs:WriteObject"], "resource": "[\"arn:lakefs:fs:::repository/a\",\"arn:lakefs:fs:::repository/b/*\"]"}]),
            json!([{"effect": "allow", "action": ["ci:ReadAction", "pr:*", "catalog:*", "retention:*", "branches:*"], "resource": "*",
                    "condition": {"IpAddress": {"SourceIp": ["10.0.0.0/8", "::1"]}, "StringLike": {"x": ["a*"]}}}]),
        ];
        for s in ok {
            assert_eq!(check_statements(&s), Ok(()), "{s}");
        }
    }

    #[test]
    fn malformed_policies_name_the_problem() {
        assert!(problem(json!(null)).contains("required"));
        assert!(problem(json!({})).contains("array"));
        assert!(problem(json!([])).contains("at least one"));
        assert!(problem(json!([1])).contains("statement[0]: must be an object"));
        let p = problem(json!([{"effect": "permit", "action": ["fs:*"], "resource": "*"}]));
        assert!(p.contains("effect"), "{p}");
        let p = problem(json!([{"action": ["fs:*"], "resource": "*"}]));
        assert!(p.contains("effect is required"), "{p}");
        let p = problem(json!([{"effect": "allow", "action": [], "resource": "*"}]));
        assert!(p.contains("action must not be empty"), "{p}");
        let p = problem(json!([{"effect": "allow", "action": "fs:*", "resource": "*"}]));
        assert!(p.contains("action must be an array"), "{p}");
        let p = problem(json!([{"effect": "allow", "action": ["*"], "resource": "*"}]));
        assert!(p.contains("action[0]"), "{p}");
        let p = problem(json!([{"effect": "allow", "action": ["s3:GetObject"], "resource": "*"}]));
        assert!(p.contains("unknown service"), "{p}");
        let p =
            problem(json!([{"effect": "allow", "action": ["fs:Read Object"], "resource": "*"}]));
        assert!(p.contains("action name"), "{p}");
        let p = problem(json!([{"effect": "allow", "action": ["fs:*"]}]));
        assert!(p.contains("resource is required"), "{p}");
        let p =
            problem(json!([{"effect": "allow", "action": ["fs:*"], "resource": "repository/x"}]));
        assert!(p.contains("resource"), "{p}");
        let p = problem(
            json!([{"effect": "allow", "action": ["fs:*"], "resource": "[\"arn:lakefs:fs:::x\", 1]"}]),
        );
        assert!(p.contains("JSON array"), "{p}");
        let p = problem(
            json!([{"effect": "allow", "action": ["fs:*"], "resource": "*", "condition": {"DateLessThan": {}}}]),
        );
        assert!(p.contains("unknown operator"), "{p}");
        let p = problem(
            json!([{"effect": "allow", "action": ["fs:*"], "resource": "*", "condition": {"IpAddress": {"SourceIp": ["10.0.0.0/40"]}}}]),
        );
        assert!(p.contains("CIDR"), "{p}");
        let p = problem(
            json!([{"effect": "allow", "action": ["fs:*"], "resource": "*"}, {"effect": "allow"}]),
        );
        assert!(p.starts_with("statement[1]"), "{p}");
    }

    #[test]
    fn policy_names_follow_lakefs_rules() {
        assert!(check_name("FSFullAccess").is_ok());
        assert!(check_name("ACL(_-_)Admins").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
    }
}
