//! Third parties against the development IdP: the `openid-client` library (npm) as an
//! independent relying party, and Debian's headless Chromium driven by `playwright-core`
//! through the interactive sign-in page. Both need `npm ci --prefix tests/devidp-rp`; the
//! browser test also needs `apt-get install -y chromium`. Missing tools fail these tests.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lakests_config::{IdpClient, Secret};
use serde_json::Value;

const RP_SECRET: &str = "rp-secret with spaces & symbols";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rp_dir() -> PathBuf {
    repo_root().join("tests/devidp-rp")
}

/// Fails (never skips) when the fixture's packages are not installed.
fn require_node_modules() {
    let dir = rp_dir();
    for pkg in ["openid-client", "playwright-core"] {
        assert!(
            dir.join("node_modules")
                .join(pkg)
                .join("package.json")
                .is_file(),
            "tests/devidp-rp/node_modules/{pkg} is missing: run `npm ci --prefix tests/devidp-rp` \
             (Node.js 20+ and npm are needed)"
        );
    }
}

/// Runs `node <script> <args>` in the fixture folder with an overall timeout; returns stdout.
async fn node(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    require_node_modules();
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(rp_dir())
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): install Node.js 20+"));
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("node {script} did not finish within 120 s"))
        .expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "node {script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test]
async fn openid_client_discovers_logs_in_with_pkce_and_validates_the_id_token() {
    let mut cfg = config();
    cfg.interactive = false;
    cfg.clients = vec![
        IdpClient {
            client_id: "spa".into(),
            client_secret: None,
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            id_token_signed_response_alg: None,
        },
        IdpClient {
            client_id: "backend".into(),
            client_secret: Some(Secret::new(RP_SECRET)),
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            id_token_signed_response_alg: Some(lakests_config::SigningAlg::ES256),
        },
    ];
    let idp = TestIdp::start(cfg).await;
    let stdout = node(
        "rp-flow.mjs",
        &[idp.issuer.as_str()],
        &[("LAKESTS_TEST_RP_SECRET", RP_SECRET)],
    )
    .await;
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let by_name = |name: &str| -> &Value {
        scenarios
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no scenario {name} in {report}"))
    };

    for (name, alg, aud) in [
        ("public-pkce", "RS256", "spa"),
        ("confidential-basic", "ES256", "backend"),
        ("confidential-post", "ES256", "backend"),
    ] {
        let s = by_name(name);
        assert_eq!(s["ok"], true, "{name}: {s}");
        assert_eq!(s["header"]["alg"], alg, "{name}");
        assert_eq!(s["claims"]["iss"], idp.issuer.as_str(), "{name}");
        assert_eq!(s["claims"]["aud"], aud, "{name}");
        assert_eq!(s["claims"]["sub"], "alice", "{name}");
        assert_eq!(s["claims"]["email"], "alice@example.com", "{name}");
        assert_eq!(
            s["claims"]["groups"],
            serde_json::json!(["admins", "data"]),
            "{name}"
        );
    }
    let userinfo = &by_name("public-pkce")["userinfo"];
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["department"], "data");

    // openid-client does not check that `iat` is not in the future, so it may take the
    // future_iat token; what it saw must still be the promised token (iat ten minutes ahead).
    let s = by_name("fault:future_iat");
    if s["ok"] == true {
        let iat = s["claims"]["iat"].as_i64().unwrap();
        let now = lakests_core::Clock::now(&lakests_core::SystemClock);
        assert!(
            iat >= now + 500,
            "iat {iat} is not ten minutes ahead of {now}"
        );
    } else {
        assert!(s["error"].to_string().contains("iat"), "{s}");
    }

    // Every other fault switch makes a token this independent relying party refuses.
    for (fault, why) in [
        ("expired", "exp"),
        ("wrong_audience", "aud"),
        ("bad_signature", "signature"),
        ("missing_claim:sub", "sub"),
        ("missing_claim:nonce", "nonce"),
        ("missing_claim:iss", "iss"),
        ("missing_claim:exp", "exp"),
        ("unpublished_key", "key"),
    ] {
        let s = by_name(&format!("fault:{fault}"));
        assert_eq!(
            s["ok"], false,
            "openid-client accepted the {fault} token: {s}"
        );
        let message = ["message", "cause", "code"]
            .iter()
            .map(|k| s["error"][k].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        eprintln!("{fault}: refused with {message}");
        assert!(
            message.contains(why),
            "{fault}: openid-client refused it for another reason: {s}"
        );
    }
}

/// A callback endpoint standing in for the application: records the query it receives.
async fn start_callback() -> (
    String,
    Arc<Mutex<Vec<String>>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(q.unwrap_or_default());
                axum::response::Html(
                    "<!doctype html><title>Signed in</title><h1>Callback reached</h1>",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (url, seen, tx)
}

fn chromium_path() -> PathBuf {
    let path = std::env::var_os("LAKESTS_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "{} is missing: install Debian's Chromium with `apt-get update && apt-get install -y chromium` \
         (or point LAKESTS_TEST_CHROMIUM at a Chromium binary)",
        path.display()
    );
    path
}

#[tokio::test]
async fn headless_chromium_signs_in_on_the_page_and_reaches_the_redirect_with_a_code() {
    let chromium = chromium_path();
    require_node_modules();
    let (callback, seen, stop_callback) = start_callback().await;
    let mut cfg = config();
    cfg.clients.push(IdpClient {
        client_id: "browser-app".into(),
        client_secret: None,
        redirect_uris: vec![callback.clone()],
        id_token_signed_response_alg: None,
    });
    let idp = TestIdp::start(cfg).await;
    let pkce = Pkce::new();
    let mut authorize = url::Url::parse(&idp.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "browser-app")
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "browser-state")
        .append_pair("nonce", "browser-nonce")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let artifacts = repo_root().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("devidp-signin.png");
    let error_shot = artifacts.join("devidp-signin-wrong-password.png");
    let _ = std::fs::remove_file(&screenshot);
    let _ = std::fs::remove_file(&error_shot);

    let stdout = node(
        "browser-signin.mjs",
        &[],
        &[
            ("LAKESTS_TEST_AUTHORIZE_URL", authorize.as_str()),
            ("LAKESTS_TEST_CALLBACK_URL", &callback),
            ("LAKESTS_TEST_CHROMIUM", &chromium.to_string_lossy()),
            ("LAKESTS_TEST_SCREENSHOT", &screenshot.to_string_lossy()),
            (
                "LAKESTS_TEST_ERROR_SCREENSHOT",
                &error_shot.to_string_lossy(),
            ),
            ("LAKESTS_TEST_USER", "Bob"),
            ("LAKESTS_TEST_PASSWORD", BOB_PASSWORD),
        ],
    )
    .await;
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(
        report["pageText"]
            .as_str()
            .unwrap()
            .contains("Development only."),
        "{report}"
    );
    assert!(
        report["wrongPasswordAlert"]
            .as_str()
            .unwrap()
            .contains("wrong password"),
        "{report}"
    );
    assert_eq!(report["finalTitle"], "Signed in");
    let final_url = url::Url::parse(report["finalUrl"].as_str().unwrap()).unwrap();
    assert!(final_url.as_str().starts_with(&callback), "{final_url}");

    let queries = seen.lock().unwrap().clone();
    assert_eq!(
        queries.len(),
        1,
        "the callback was reached once: {queries:?}"
    );
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(queries[0].as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["state"], "browser-state");
    assert_eq!(params["iss"], idp.issuer);
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", callback.as_str()),
            ("client_id", "browser-app"),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = verify_signature(body["id_token"].as_str().unwrap(), &idp.jwks().await).unwrap();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["nonce"], "browser-nonce");
    assert_eq!(claims["aud"], "browser-app");

    for shot in [&screenshot, &error_shot] {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
            "{}",
            shot.display()
        );
    }
    let _ = stop_callback.send(());
}
