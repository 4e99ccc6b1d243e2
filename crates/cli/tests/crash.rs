//! `kill -9` of a real `lakests serve` process (SQLite, every role in one process,
//! `auto_create_users` on) in the middle of a login load, then a restart on the same data
//! directory: the database opens cleanly (and passes SQLite's integrity check), every login
//! that was answered 200 has its audit record, no user is half-created, and logins work again.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakests_core::LoginOutcome;
use serde_json::{Value, json};

mod support;
use support::{Serve, bind_roles, client, pass_sockets, port_of};

const REDIRECT: &str = "http://127.0.0.1:8085/callback";
const USERS: u64 = 2_000;

async fn serve(
    config: &Path,
    sockets: Vec<(&'static str, TcpListener)>,
    log: &Path,
    sts: &str,
) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKESTS_") {
            cmd.env_remove(k);
        }
    }
    pass_sockets(&mut cmd, sockets);
    let serve = Serve(cmd.spawn().expect("lakests serve starts"));
    // The listeners are the child's alone now: when it is killed, connections are refused.
    drop(cmd);
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{sts}/api/v1/healthcheck")).send().await
            && r.status() == 204
        {
            return serve;
        }
        assert!(
            Instant::now() < deadline,
            "lakests serve did not become healthy within 30 s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A non-interactive code for `sub`, then `sts/login` with our own request id. `None` when
/// either call got no answer (the server is gone).
async fn login(
    http: &reqwest::Client,
    idp: &str,
    sts: &str,
    sub: &str,
    request_id: &str,
) -> Option<(u16, Value)> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let resp = http
        .get(format!("{idp}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "lakests"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", verifier.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", sub),
        ])
        .send()
        .await
        .ok()?;
    let location = resp.headers().get("location")?.to_str().ok()?.to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {location}"))
        .1
        .into_owned();
    let resp = http
        .post(format!("{sts}/api/v1/sts/login"))
        .header("x-request-id", request_id)
        .json(&json!({"code": code, "state": verifier, "redirect_uri": REDIRECT}))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.ok()?;
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_load_loses_no_answered_audit_record_and_no_user_is_half_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let roles = ["sts", "authenticator", "idp"];
    let sockets = bind_roles(roles);
    let (sts_port, authn_port, idp_port) = (
        port_of(&sockets, "sts"),
        port_of(&sockets, "authenticator"),
        port_of(&sockets, "idp"),
    );
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let users: Vec<Value> = (0..USERS)
        .map(|i| {
            json!({"sub": format!("u{i:04}"), "email": format!("u{i:04}@example.com"),
                   "groups": ["readers", "writers"]})
        })
        .collect();
    let config = json!({
        "listen_address": format!("127.0.0.1:{sts_port}"),
        "data_dir": data,
        "logging": {"level": "warn"},
        "auth": {
            "encrypt": {"secret_key": "crash-test-secret-key-0123456789abcdef"},
            "sts": {"rate_limit_per_second": 0, "auto_create_users": true},
            "cookie_auth_verification": {"initial_groups_claim_name": "groups"},
        },
        "authenticator": {
            "listen_address": format!("127.0.0.1:{authn_port}"),
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "users": users, "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let config_path = dir.path().join("lakests.yaml");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let sts = format!("http://127.0.0.1:{sts_port}");
    let mut first = serve(&config_path, sockets, &dir.path().join("serve-1.log"), &sts).await;

    // Load: every login is the first of its user, so each one creates a user.
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (stop, seq, http, issuer, sts) = (
            stop.clone(),
            seq.clone(),
            client(),
            issuer.clone(),
            sts.clone(),
        );
        tasks.spawn(async move {
            let mut answered = Vec::new();
            let mut unanswered = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let n = seq.fetch_add(1, Ordering::SeqCst);
                assert!(n < USERS, "the load outran the configured users");
                let (sub, rid) = (format!("u{n:04}"), format!("crash-{n}"));
                match login(&http, &issuer, &sts, &sub, &rid).await {
                    Some((status, body)) => answered.push((sub, rid, status, body)),
                    None => {
                        unanswered += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (answered, unanswered)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown hook runs, in-flight transactions are cut wherever they are.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let killed_after = seq.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answered = Vec::new();
    let mut unanswered = 0;
    while let Some(r) = tasks.join_next().await {
        let (a, u) = r.unwrap();
        answered.extend(a);
        unanswered += u;
    }
    drop(first);
    let ok: Vec<_> = answered.iter().filter(|a| a.2 == 200).collect();
    assert!(ok.len() >= 10, "load ran before the kill: {}", ok.len());
    for a in &answered {
        assert_eq!(a.2, 200, "before the kill every login succeeds: {a:?}");
    }
    assert!(unanswered > 0, "the kill cut logins in flight or after");

    // The database opens cleanly: the same data directory serves again.
    // The same ports again, bound here (a port taken meanwhile fails loudly, never silently).
    let again = [
        ("sts", sts_port),
        ("authenticator", authn_port),
        ("idp", idp_port),
    ]
    .into_iter()
    .map(|(role, port)| {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("the {role} port {port} again: {e}"));
        (role, listener)
    })
    .collect();
    let second = serve(&config_path, again, &dir.path().join("serve-2.log"), &sts).await;
    let http = client();
    for i in 0..3 {
        let (status, body) = login(
            &http,
            &issuer,
            &sts,
            &format!("u{:04}", USERS - 1 - i),
            &format!("after-{i}"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    drop(second);

    // SQLite's own check, then the store as lakests reads it.
    let db = data.join("lakests.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let check: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(check, vec![("ok".to_owned(),)]);
    pool.close().await;

    let store = lakests_store::SqliteStore::open(&db, Duration::from_secs(5))
        .await
        .unwrap();
    use lakests_core::Store;
    let audit = store.list_audit(1_000_000).await.unwrap();
    for (sub, rid, _, _) in &ok {
        let r = audit
            .iter()
            .find(|r| &r.request_id == rid)
            .unwrap_or_else(|| panic!("the answered login {rid} of {sub} lost its audit record"));
        assert_eq!(r.outcome, LoginOutcome::Success);
        // The username is the sub namespaced by its provider (`dev`).
        assert_eq!(r.username.as_deref(), Some(format!("dev:{sub}").as_str()));
    }
    let users = store.list_users().await.unwrap();
    for u in &users {
        assert_eq!(u.external_id.as_deref(), Some(u.username.as_str()), "{u:?}");
        assert_eq!(
            u.email.as_deref(),
            Some(format!("{}@example.com", u.username.trim_start_matches("dev:")).as_str())
        );
        assert_eq!(u.groups, vec!["readers", "writers"], "half-created: {u:?}");
    }
    for (sub, _, _, _) in &ok {
        assert!(
            users.iter().any(|u| u.username == format!("dev:{sub}")),
            "{sub} answered 200 but missing"
        );
    }
    eprintln!(
        "kill -9 mid-load: {} logins answered 200 before the kill, {unanswered} cut, {} logins started in all, {} users, {} audit records, integrity ok",
        ok.len(),
        killed_after,
        users.len(),
        audit.len()
    );
    store.close().await;
}
