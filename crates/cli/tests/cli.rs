//! The `lakests` binary as an operator uses it: configuration checks and the user directory on
//! a real SQLite file.

use std::path::Path;
use std::process::{Command, Output};

fn lakests(dir: &Path, args: &[&str]) -> Output {
    lakests_with_env(dir, args, &[])
}

fn lakests_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKESTS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
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
        "auth:\n  encrypt:\n    secret_key: cli-test-secret-value-0123456789abcdef\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n",
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
fn config_example_asks_for_a_key_and_check_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = lakests(dir.path(), &["config", "example"]);
    assert!(out.status.success());
    std::fs::write(dir.path().join("example.yaml"), &out.stdout).unwrap();
    // As shipped, the example has no key and says how to make one.
    let out = lakests(dir.path(), &["config", "check", "--config", "example.yaml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("auth.encrypt.secret_key: must not be empty; generate one with `openssl rand -base64 32`"),
        "{}",
        stderr(&out)
    );
    let out = lakests_with_env(
        dir.path(),
        &["config", "check", "--config", "example.yaml"],
        &[(
            "LAKESTS_AUTH_ENCRYPT_SECRET_KEY",
            "bW9yZS10aGFuLTMyLWJ5dGVzLW9mLXJhbmRvbW5lc3MK",
        )],
    );
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

/// Issue 12, point 4: `config check` refuses weak and published keys, without printing them.
#[test]
fn config_check_reports_weak_secret_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (key, why) in [
        ("a", "shorter than 32 bytes"),
        (" ", "only white space"),
        (
            "change-me-to-a-long-random-value",
            "published example value",
        ),
    ] {
        std::fs::write(
            dir.path().join("weak.yaml"),
            format!(
                "auth:\n  encrypt:\n    secret_key: {}\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n",
                serde_json::to_string(key).unwrap()
            ),
        )
        .unwrap();
        let out = lakests(dir.path(), &["config", "check", "--config", "weak.yaml"]);
        assert!(!out.status.success(), "{key:?} accepted");
        let err = stderr(&out);
        assert!(err.contains("auth.encrypt.secret_key"), "{err}");
        assert!(err.contains(why), "{key:?}: {err}");
        if key.len() > 1 {
            assert!(!err.contains(key), "key printed: {err}");
        }
    }
}

/// Issue 12, point 7: values from outside never reach the operator's terminal raw.
#[test]
fn users_and_audit_listings_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let evil = "Eve\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    let out = lakests(
        dir.path(),
        &[
            "users",
            "add",
            "eve",
            "--external-id",
            "eve",
            "--friendly-name",
            evil,
            "--email",
            evil,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Names themselves refuse control characters.
    let out = lakests(dir.path(), &["users", "add", "eve\u{1b}[2J"]);
    assert!(!out.status.success());
    let out = lakests(
        dir.path(),
        &["users", "add", "mallory", "--external-id", "m\u{7}"],
    );
    assert!(!out.status.success());

    for args in [&["users", "list"][..], &["users", "show", "eve"][..]] {
        let out = lakests(dir.path(), args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?} printed a control character: {text:?}"
        );
        assert!(text.contains("Eve\\u{1b}]0;pwned\\u{7}"), "{text}");
    }
}

/// Revocation from the command line: `lakests tokens revoke --user` and `--jti`.
#[test]
fn tokens_revoke_by_user_and_by_jti() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let out = lakests(
        dir.path(),
        &["users", "add", "alice", "--external-id", "alice"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lakests(dir.path(), &["tokens", "revoke", "--user", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "revoked every token of alice issued until now"
    );
    let out = lakests(dir.path(), &["tokens", "revoke", "--jti", "0b5e-jti"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "revoked token 0b5e-jti");
    let out = lakests(dir.path(), &["tokens", "revoke", "--jti", "0b5e-jti"]);
    assert_eq!(stdout(&out).trim(), "token 0b5e-jti was already revoked");
    // Exactly one of --user and --jti.
    let out = lakests(dir.path(), &["tokens", "revoke"]);
    assert!(!out.status.success());
    let out = lakests(
        dir.path(),
        &["tokens", "revoke", "--user", "a", "--jti", "b"],
    );
    assert!(!out.status.success());
    let out = lakests(dir.path(), &["tokens", "revoke", "--jti", "has space"]);
    assert!(!out.status.success());
}

/// `lakests serve` with sockets passed as systemd does, each misuse refused at start with a
/// message naming it (the happy path runs in crash.rs and replicas.rs).
#[test]
fn serve_refuses_passed_sockets_it_cannot_place() {
    use command_fds::{CommandFdExt, FdMapping};
    let dir = tempfile::tempdir().unwrap();
    // The STS role only; "listen_address" must not be bound (the passed socket is used).
    std::fs::write(
        dir.path().join("lakests.yaml"),
        "listen_address: 127.0.0.1:9\nauth:\n  encrypt:\n    secret_key: cli-test-secret-value-0123456789abcdef\n  authentication_api:\n    endpoint: http://127.0.0.1:9/api/v1\n",
    )
    .unwrap();
    let cases: [(usize, Option<&str>, &str); 4] = [
        (2, None, "without LISTEN_FDNAMES"),
        (2, Some("sts"), "names 1"),
        (
            1,
            Some("web"),
            "the roles are sts, authenticator, idp and authorization",
        ),
        (2, Some("sts:idp"), "a listener was given for the idp role"),
    ];
    for (count, names, expected) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
        cmd.args(["serve", "--config", "lakests.yaml"])
            .current_dir(dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("LAKESTS_") {
                cmd.env_remove(k);
            }
        }
        let mappings = (0..count)
            .map(|i| FdMapping {
                parent_fd: std::net::TcpListener::bind("127.0.0.1:0").unwrap().into(),
                child_fd: i32::try_from(3 + i).unwrap(),
            })
            .collect();
        cmd.fd_mappings(mappings).unwrap();
        cmd.env("LISTEN_FDS", count.to_string())
            .env_remove("LISTEN_PID");
        match names {
            Some(n) => cmd.env("LISTEN_FDNAMES", n),
            None => cmd.env_remove("LISTEN_FDNAMES"),
        };
        let out = cmd.output().expect("lakests runs");
        assert!(!out.status.success(), "{names:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{names:?}: expected {expected:?} in {}",
            stderr(&out)
        );
    }
}
