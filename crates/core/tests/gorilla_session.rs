//! lakeFS's UI session cookie, proven against its real implementation: gorilla/sessions v1.4.0
//! and gorilla/securecookie v1.1.2 (the versions lakeFS v1.84.0 pins), built from the Go module
//! proxy by `tests/gorilla-session` (a small program of ours, no lakeFS source). What lakests
//! writes, Go reads; what Go writes, lakests reads, byte for byte.
//!
//! Needs `go` on PATH: without it these tests fail loudly, they never skip.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use lakests_core::ui_session::{self, COOKIE_NAME, MAX_AGE_SECS, SessionCookieError};

const SECRET: &str = "lakests-ui-session-test-secret-0123456789";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

fn gorilla() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/gorilla-session");
        let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gorilla-session");
        let out = Command::new("go")
            .args(["build", "-mod=readonly", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "`go` is needed to build tests/gorilla-session (Go 1.22+ from the machine): {e}"
                )
            });
        assert!(
            out.status.success(),
            "building tests/gorilla-session failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// Runs the Go program with secrets in its environment, never on its command line.
fn go(mode: &str, secret: &str, value_var: &str, value: &str) -> Result<String, String> {
    let out = Command::new(gorilla())
        .arg(mode)
        .env("GS_SECRET", secret)
        .env(value_var, value)
        .output()
        .expect("run gorilla-session");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim_end().to_owned())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The value of Go's `Set-Cookie: internal_auth_session=VALUE; Path=/; ...`.
fn go_cookie(secret: &str, token: &str) -> String {
    let header = go("encode", secret, "GS_TOKEN", token).expect("Go encodes");
    let first = header.split(';').next().unwrap();
    let (name, value) = first.split_once('=').unwrap();
    assert_eq!(name, COOKIE_NAME);
    assert!(
        header.contains("Path=/") && header.contains(&format!("Max-Age={MAX_AGE_SECS}")),
        "CookieStore's defaults: {header}"
    );
    value.to_owned()
}

fn timestamp_of(cookie: &str) -> i64 {
    let raw = URL_SAFE.decode(cookie).unwrap();
    let ts = raw.split(|b| *b == b'|').next().unwrap();
    std::str::from_utf8(ts).unwrap().parse().unwrap()
}

#[test]
fn gorilla_reads_the_session_lakests_writes() {
    let cookie = ui_session::encode(SECRET.as_bytes(), TOKEN, now()).unwrap();
    assert_eq!(go("decode", SECRET, "GS_COOKIE", &cookie).unwrap(), TOKEN);
    let long = format!("{TOKEN}{}", "x".repeat(1800));
    let cookie = ui_session::encode(SECRET.as_bytes(), &long, now()).unwrap();
    assert_eq!(go("decode", SECRET, "GS_COOKIE", &cookie).unwrap(), long);
}

#[test]
fn lakests_reads_the_session_gorilla_writes() {
    let cookie = go_cookie(SECRET, TOKEN);
    assert_eq!(
        ui_session::decode(SECRET.as_bytes(), &cookie, now()).unwrap(),
        TOKEN
    );
}

#[test]
fn lakests_writes_the_same_bytes_as_gorilla_for_the_same_second() {
    for token in [TOKEN, "x", &"t".repeat(300)] {
        let theirs = go_cookie(SECRET, token);
        let ours = ui_session::encode(SECRET.as_bytes(), token, timestamp_of(&theirs)).unwrap();
        assert_eq!(ours, theirs, "token of {} bytes", token.len());
    }
}

#[test]
fn gorilla_refuses_another_key_an_altered_cookie_and_an_expired_one() {
    let other =
        ui_session::encode(b"another-secret-that-lakefs-does-not-have", TOKEN, now()).unwrap();
    let err = go("decode", SECRET, "GS_COOKIE", &other).unwrap_err();
    assert!(err.contains("the value is not valid"), "{err}");

    let cookie = ui_session::encode(SECRET.as_bytes(), TOKEN, now()).unwrap();
    let mut raw = URL_SAFE.decode(&cookie).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let err = go("decode", SECRET, "GS_COOKIE", &URL_SAFE.encode(raw)).unwrap_err();
    assert!(err.contains("the value is not valid"), "{err}");

    let old = ui_session::encode(SECRET.as_bytes(), TOKEN, now() - MAX_AGE_SECS - 60).unwrap();
    let err = go("decode", SECRET, "GS_COOKIE", &old).unwrap_err();
    assert!(err.contains("expired timestamp"), "{err}");
}

#[test]
fn lakests_refuses_gorilla_cookies_under_another_key_or_altered() {
    let cookie = go_cookie(SECRET, TOKEN);
    assert_eq!(
        ui_session::decode(b"another-secret-that-lakefs-does-not-have", &cookie, now()),
        Err(SessionCookieError::BadSignature)
    );
    let mut raw = URL_SAFE.decode(&cookie).unwrap();
    raw[0] ^= 1;
    assert_eq!(
        ui_session::decode(SECRET.as_bytes(), &URL_SAFE.encode(raw), now()),
        Err(SessionCookieError::BadSignature)
    );
    assert_eq!(
        ui_session::decode(SECRET.as_bytes(), &cookie, now() + MAX_AGE_SECS + 60),
        Err(SessionCookieError::Expired)
    );
}
