//! `lakests quickstart` as a new user runs it: a fresh directory, a non-interactive login
//! through its IdP, the token accepted by `GET /api/v1/user`, and a restart that keeps users,
//! keys and the secret.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:8085/callback";

struct Quickstart {
    child: Child,
    stdout: String,
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base port whose next two ports are free too.
fn free_base_port() -> u16 {
    for attempt in 0..50u16 {
        let base = 20_000 + (std::process::id() as u16 % 20_000) + attempt * 97;
        let ok = (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no three consecutive free ports found");
}

fn start(data: &Path, port: u16) -> Quickstart {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args([
        "quickstart",
        "--non-interactive",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(data)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKESTS_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("lakests quickstart starts");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") {
                let _ = tx.send(text.clone());
            }
        }
    });
    let stdout = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("quickstart prints its next steps within 30 s");
    Quickstart { child, stdout }
}

fn stop(mut q: Quickstart) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &q.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = q.child.try_wait().unwrap() {
            assert!(
                code.success(),
                "quickstart exits cleanly on SIGTERM: {code}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quickstart did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(q.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

async fn login(http: &reqwest::Client, port: u16, who: &str) -> String {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let resp = http
        .get(format!("http://127.0.0.1:{}/authorize", port + 2))
        .query(&[
            ("response_type", "code"),
            ("client_id", "lakests"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile email"),
            ("state", &verifier),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", who),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let resp = http
        .post(format!("http://127.0.0.1:{port}/api/v1/sts/login"))
        .json(&json!({"code": code, "state": verifier, "redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn whoami(http: &reqwest::Client, port: u16, token: &str) -> (u16, Value) {
    let resp = http
        .get(format!("http://127.0.0.1:{port}/api/v1/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn jwks(http: &reqwest::Client, port: u16) -> Value {
    let resp = http
        .get(format!("http://127.0.0.1:{}/jwks", port + 2))
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn quickstart_logs_in_demo_users_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_base_port();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        // The server restarts mid-test: never reuse a connection to the stopped one.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    let q = start(&data, port);
    assert!(
        q.stdout
            .contains(&format!("login --endpoint http://127.0.0.1:{port}")),
        "{}",
        q.stdout
    );
    assert!(q.stdout.contains("lakefs.Client()"), "{}", q.stdout);
    // The banner shows the lakeFS configuration: both endpoints on the authenticator's port,
    // external RBAC, the secret by reference only.
    let endpoint = format!("endpoint: http://127.0.0.1:{}/api/v1", port + 1);
    assert!(q.stdout.contains("api:\n      endpoint:"), "{}", q.stdout);
    assert_eq!(q.stdout.matches(&endpoint).count(), 2, "{}", q.stdout);
    assert!(q.stdout.contains("rbac: external"), "{}", q.stdout);
    assert!(
        q.stdout.contains("LAKEFS_AUTH_ENCRYPT_SECRET_KEY"),
        "{}",
        q.stdout
    );
    // The authorization API runs there, behind lakeFS's service JWT, with the demo users.
    let secret = std::fs::read_to_string(data.join("secret_key")).unwrap();
    let service_jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "_lakefs-internal", "aud": ["auth-client"], "exp": 4_000_000_000i64}),
        &jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes()),
    )
    .unwrap();
    let found: Value = http
        .get(format!("http://127.0.0.1:{}/api/v1/auth/users", port + 1))
        .query(&[("amount", "2"), ("external_id", "quickstart:alice")])
        .bearer_auth(&service_jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["results"][0]["username"], "alice", "{found}");
    let alice = login(&http, port, "alice").await;
    let (status, me) = whoami(&http, port, &alice).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["id"], "alice");
    let bob = login(&http, port, "bob").await;
    assert_eq!(whoami(&http, port, &bob).await.1["user"]["id"], "bob");
    let jwks_before = jwks(&http, port).await;
    let stdout = q.stdout.clone();
    let stderr = stop(q);

    // The secret key is persisted privately and never printed.
    let secret_path = data.join("secret_key");
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    assert!(secret.len() >= 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!stdout.contains(secret.trim()) && !stderr.contains(secret.trim()));

    // After a restart the old token still verifies (same secret), the same keys are published,
    // and the users were not duplicated.
    let q = start(&data, port);
    let (status, me) = whoami(&http, port, &alice).await;
    assert_eq!(
        status, 200,
        "a token minted before the restart is still accepted"
    );
    assert_eq!(me["user"]["id"], "alice");
    let jwks_after = jwks(&http, port).await;
    assert_eq!(jwks_before, jwks_after, "the IdP keys survive a restart");
    let again = login(&http, port, "alice").await;
    assert_eq!(whoami(&http, port, &again).await.1["user"]["id"], "alice");
    stop(q);

    let out = Command::new(env!("CARGO_BIN_EXE_lakests"))
        .args(["users", "list", "--output", "json"])
        .env("LAKESTS_DATABASE_SQLITE_PATH", data.join("lakests.db"))
        .output()
        .unwrap();
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users[0]["groups"], json!(["admins"]));
    assert_eq!(users[1]["groups"], json!(["developers"]));
}
