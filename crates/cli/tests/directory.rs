//! `lakests groups|policies|credentials ...` and `lakests lakefs-config` as an operator uses
//! them on a real SQLite file: human output, `--output json`, and refusals with exit code 1.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const SECRET: &str = "cli-directory-test-secret-value-of-at-least-32-bytes";

fn lakests(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKESTS_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("lakests runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = lakests(dir, args);
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&ok(dir, &all)).expect("JSON output")
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let o = lakests(dir, args);
    assert_eq!(o.status.code(), Some(1), "{args:?} must fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lakests.yaml"),
        format!(
            "auth:\n  encrypt:\n    secret_key: {SECRET}\n  sts:\n    enabled: false\n\
             authorization:\n  enabled: true\n  listen_address: 127.0.0.1:8003\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn groups_policies_and_credentials_are_administered_with_the_api_rules() {
    let dir = setup();
    let d = dir.path();
    ok(d, &["users", "add", "admin"]);
    assert!(
        ok(
            d,
            &["groups", "add", "Admins", "--description", "all of it"]
        )
        .contains("created group Admins")
    );
    let stmt = r#"[{"effect":"allow","action":["fs:*","auth:*"],"resource":"*"}]"#;
    let p = json(d, &["policies", "add", "AllAccess", "--statement", stmt]);
    assert_eq!(p["name"], "AllAccess");
    ok(d, &["groups", "attach-policy", "Admins", "AllAccess"]);
    ok(d, &["groups", "add-member", "Admins", "admin"]);
    let shown = json(d, &["groups", "show", "Admins"]);
    assert_eq!(shown["members"], serde_json::json!(["admin"]));
    assert_eq!(shown["policies"], serde_json::json!(["AllAccess"]));
    let human = ok(d, &["groups", "show", "Admins"]);
    assert!(human.contains("members:     admin"), "{human}");

    // A malformed policy is refused and names the problem; nothing is stored.
    let err = refused(
        d,
        &[
            "policies",
            "add",
            "Bad",
            "--statement",
            r#"[{"effect":"allow","action":["s3:*"],"resource":"*"}]"#,
        ],
    );
    assert!(err.contains("statement[0]: action[0]"), "{err}");
    let err = refused(d, &["policies", "add", "Bad", "--statement", "{not json"]);
    assert!(err.contains("not valid JSON"), "{err}");
    let names: Vec<String> = json(d, &["policies", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["AllAccess"]);
    // Duplicates and unknown names are errors with exit code 1.
    assert!(refused(d, &["groups", "add", "Admins"]).contains("already exists"));
    assert!(refused(d, &["groups", "add-member", "Admins", "nobody"]).contains("not found"));
    assert!(refused(d, &["policies", "attach", "Nope", "admin"]).contains("not found"));

    // Credentials: the secret shown once, sealed at rest, listed without it.
    let c = json(d, &["credentials", "create", "admin"]);
    let ak = c["access_key_id"].as_str().unwrap().to_owned();
    assert!(ak.starts_with("AKIAJ"));
    assert_eq!(c["secret_access_key"].as_str().unwrap().len(), 40);
    let listed = json(d, &["credentials", "list", "admin"]);
    assert_eq!(listed[0]["access_key_id"], ak.as_str());
    assert!(listed[0].get("secret_access_key").is_none());
    // The database file and its write-ahead log, where fresh rows live.
    let mut db = std::fs::read(d.join("lakests-data/lakests.db")).unwrap();
    db.extend(std::fs::read(d.join("lakests-data/lakests.db-wal")).unwrap_or_default());
    assert!(
        db.windows(ak.len()).any(|w| w == ak.as_bytes()),
        "the key id is stored in clear (the check reads the right files)"
    );
    let secret = c["secret_access_key"].as_str().unwrap().as_bytes();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret),
        "sealed at rest"
    );
    let given = json(
        d,
        &[
            "credentials",
            "create",
            "admin",
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
            "--secret-access-key",
            "s3cr3t",
        ],
    );
    assert_eq!(given["access_key_id"], "AKIAIOSFODNN7EXAMPLE");
    assert!(ok(d, &["credentials", "remove", "admin", &ak]).contains("removed access key"));
    assert!(refused(d, &["credentials", "remove", "admin", &ak]).contains("not found"));

    // Removing the group takes its memberships and attachments with it.
    ok(d, &["groups", "remove", "Admins"]);
    let user = json(d, &["users", "show", "admin"]);
    assert_eq!(user["groups"], serde_json::json!([]));
}

#[test]
fn lakefs_config_points_lakefs_at_this_lakests_without_printing_the_secret() {
    let dir = setup();
    let out = ok(dir.path(), &["lakefs-config"]);
    assert!(
        out.contains("  api:\n    endpoint: http://127.0.0.1:8003/api/v1\n"),
        "{out}"
    );
    assert!(out.contains("rbac: external"), "{out}");
    assert!(out.contains("LAKEFS_AUTH_ENCRYPT_SECRET_KEY"), "{out}");
    assert!(
        !out.contains(SECRET),
        "the secret is referenced, not printed: {out}"
    );
    let shown = ok(dir.path(), &["lakefs-config", "--show-secret"]);
    assert!(
        shown.contains(&format!("secret_key: \"{SECRET}\"")),
        "{shown}"
    );
    let based = ok(
        dir.path(),
        &[
            "lakefs-config",
            "--base-url",
            "https://lakests.example/api/v1/",
        ],
    );
    assert!(
        based.contains("endpoint: https://lakests.example/api/v1\n"),
        "{based}"
    );
}

#[test]
fn lakefs_config_prints_the_ui_config_keys_of_the_web_ui_login() {
    let dir = setup();
    let off = ok(dir.path(), &["lakefs-config"]);
    assert!(off.contains("authenticator.ui_sso"), "a hint: {off}");
    std::fs::write(
        dir.path().join("lakests.yaml"),
        format!(
            "auth:\n  encrypt:\n    secret_key: {SECRET}\n  sts:\n    enabled: false\n\
             authenticator:\n  listen_address: 127.0.0.1:8001\n  providers:\n\
             \x20   - name: corp\n      issuer: https://idp.example\n      client_id: lakefs\n\
             \x20     redirect_uris: [\"http://127.0.0.1:8085/callback\"]\n\
             \x20 ui_sso:\n    enabled: true\n    lakefs_url: https://lakefs.example\n\
             \x20   public_url: https://lakefs.example/\n\
             authorization:\n  enabled: true\n"
        ),
    )
    .unwrap();
    let out = ok(dir.path(), &["lakefs-config"]);
    let doc: serde_norway::Value = serde_norway::from_str(&out).expect("YAML");
    let ui = &doc["auth"]["ui_config"];
    assert_eq!(ui["rbac"].as_str(), Some("external"));
    for key in ["fallback_login_url", "login_url"] {
        assert_eq!(
            ui[key].as_str(),
            Some("https://lakefs.example/lakests/ui/login"),
            "{key}: {out}"
        );
    }
    assert_eq!(
        ui["logout_url"].as_str(),
        Some("https://lakefs.example/lakests/ui/logout")
    );
    assert!(ui["fallback_login_label"].as_str().is_some());
    assert_eq!(
        ui["login_cookie_names"][0].as_str(),
        Some("internal_auth_session")
    );
    assert!(out.contains("ignores login_url"), "{out}");
}
