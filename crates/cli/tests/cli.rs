//! The `lakests` binary as an operator uses it: configuration checks and the user directory on
//! a real SQLite file.

use std::path::Path;
use std::process::{Command, Output};

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("lakests.yaml"),
        "auth:\n  encrypt:\n    secret_key: cli-test-secret-value\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n",
    )
    .unwrap();
}

#[test]
fn users_add_list_show_remove_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let out = lakests(
        dir.path(),
        &["users", "add", "alice", "--external-id", "alice"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "created user alice (external id alice)"
    );
    assert!(
        dir.path().join("lakests-data/lakests.db").is_file(),
        "SQLite file created on first run"
    );

    let out = lakests(
        dir.path(),
        &[
            "users",
            "add",
            "bob",
            "--email",
            "bob@example.com",
            "--friendly-name",
            "Bob B",
            "--group",
            "b,a",
            "--group",
            "a",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = lakests(dir.path(), &["users", "list", "--output", "json"]);
    let users: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["external_id"], "alice");
    assert_eq!(users[1]["groups"], serde_json::json!(["a", "b"]));

    let out = lakests(dir.path(), &["users", "list"]);
    let table = stdout(&out);
    assert!(table.starts_with("USERNAME"), "{table}");
    assert!(table.contains("bob@example.com"), "{table}");

    let out = lakests(dir.path(), &["users", "show", "bob", "-o", "json"]);
    let bob: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(bob["friendly_name"], "Bob B");

    // Duplicates and bad names are refused with a message and a failing exit code.
    let out = lakests(dir.path(), &["users", "add", "alice"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = lakests(
        dir.path(),
        &["users", "add", "carol", "--external-id", "alice"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = lakests(dir.path(), &["users", "add", " spaced"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("white space"), "{}", stderr(&out));

    let out = lakests(dir.path(), &["users", "remove", "alice"]);
    assert!(out.status.success());
    let out = lakests(dir.path(), &["users", "show", "alice"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no user named"), "{}", stderr(&out));
    let out = lakests(dir.path(), &["users", "remove", "alice"]);
    assert!(!out.status.success());
}

#[test]
fn config_example_is_valid_and_check_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = lakests(dir.path(), &["config", "example"]);
    assert!(out.status.success());
    std::fs::write(dir.path().join("example.yaml"), &out.stdout).unwrap();
    let out = lakests(dir.path(), &["config", "check", "--config", "example.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration is valid"));

    std::fs::write(
        dir.path().join("bad.yaml"),
        "listen_address: nowhere\nauth:\n  encrypt:\n    secret_key: do-not-print-me\n  sts:\n    max_ttl_seconds: -1\n  typo: 1\n",
    )
    .unwrap();
    let out = lakests(dir.path(), &["config", "check", "--config", "bad.yaml"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for needle in [
        "listen_address",
        "auth.typo: unknown key",
        "auth.sts.max_ttl_seconds",
        "auth.authentication_api.endpoint",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    assert!(!err.contains("do-not-print-me"), "secret printed:\n{err}");

    let out = lakests(dir.path(), &["config", "check", "--config", "missing.yaml"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read the configuration file"));
}
