//! The default cache (`auth.cache.enabled: true`) against real processes: changes made by
//! the CLI to the SQLite file the server uses are seen by the very next request; changes made
//! by one `lakests serve` to the PostgreSQL database another shares are seen by the other's
//! very next request too. No test sleeps for a TTL: every check follows the change at once.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

mod support;
use support::{Serve, bind_roles, client, pass_sockets, port_of};

const SECRET: &str = "replica-test-secret-key-0123456789abcdef";
const API_TOKEN: &str = "replica-test-api-token";
const REDIRECT: &str = "http://127.0.0.1:8085/callback";

fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKESTS_") {
            cmd.env_remove(k);
        }
    }
}

fn lakests(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args(args).arg("--config").arg(config);
    clean_env(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "lakests {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn serve(
    config: &Path,
    sockets: Vec<(&'static str, TcpListener)>,
    log: &Path,
    health: &str,
) -> Serve {
    // Standard output and standard error (the logs) in `log`.
    let out = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakests"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    clean_env(&mut cmd);
    pass_sockets(&mut cmd, sockets);
    let serve = Serve(cmd.spawn().expect("lakests serve starts"));
    drop(cmd);
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(health).send().await
            && r.status().is_success()
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

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A lakeFS login token for `sub`, issued at `iat`.
fn token(sub: &str, iat: i64) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"jti": uuid_like(sub, iat), "iss": "auth", "sub": sub, "aud": "login",
                "iat": iat, "exp": iat + 3600}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn uuid_like(sub: &str, iat: i64) -> String {
    format!("{sub}-{iat}-{}", std::process::id())
}

async fn user_status(http: &reqwest::Client, sts: &str, token: &str) -> u16 {
    http.get(format!("{sts}/api/v1/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn cache_hits(http: &reqwest::Client, sts: &str) -> u64 {
    let text = http
        .get(format!("{sts}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("lakests_bearer_cache_hits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cache counter in {text}"))
}

/// Answers of 200 for `token` until one comes from the cache (a change notified late, such as
/// the creation of the user by another replica, makes the first cached entry stale: bounded).
async fn cached_ok(http: &reqwest::Client, sts: &str, token: &str) {
    for _ in 0..20 {
        let before = cache_hits(http, sts).await;
        let resp = http
            .get(format!("{sts}/api/v1/user"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        if cache_hits(http, sts).await > before {
            return;
        }
    }
    panic!("the token was never served from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_removal_re_creation_and_revocation_bite_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = bind_roles(["sts"]);
    let port = port_of(&sockets, "sts");
    let config = json!({
        "listen_address": format!("127.0.0.1:{port}"),
        "data_dir": dir.path().join("data"),
        "logging": {"level": "warn"},
        "auth": {
            "encrypt": {"secret_key": SECRET},
            // Never called: the tokens are minted here.
            "authentication_api": {"endpoint": "http://127.0.0.1:9/api/v1"},
        },
    });
    let config_path = dir.path().join("lakests.yaml");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let sts = format!("http://127.0.0.1:{port}");
    let _serve = serve(
        &config_path,
        sockets,
        &dir.path().join("serve.log"),
        &format!("{sts}/api/v1/healthcheck"),
    )
    .await;
    let http = client();
    for user in ["alice", "bob", "carol"] {
        lakests(&config_path, &["users", "add", user]);
    }
    // Issued after the users were created, and not after the revocation below.
    let issued = now();

    // Revocation.
    let t = token("alice", issued);
    cached_ok(&http, &sts, &t).await;
    lakests(&config_path, &["tokens", "revoke", "--user", "alice"]);
    assert_eq!(user_status(&http, &sts, &t).await, 401, "revoked");

    // Removal.
    let t = token("bob", issued);
    cached_ok(&http, &sts, &t).await;
    lakests(&config_path, &["users", "remove", "bob"]);
    assert_eq!(user_status(&http, &sts, &t).await, 401, "removed");

    // Re-creation: the old token was issued before the new user existed. Times are whole
    // seconds, so the user is re-created once the second of the token's iat has passed.
    let iat = now();
    let t = token("carol", iat);
    cached_ok(&http, &sts, &t).await;
    while now() <= iat {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lakests(&config_path, &["users", "remove", "carol"]);
    lakests(&config_path, &["users", "add", "carol"]);
    assert_eq!(user_status(&http, &sts, &t).await, 401, "re-created");
}

async fn create_database(admin_url: &str) -> (String, String) {
    let database = format!(
        "lakests_test_replicas_{}_{}",
        std::process::id(),
        now() % 100_000
    );
    let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{database}"));
    (database, url.into())
}

async fn drop_database(admin_url: &str, database: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(admin_url).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_share_logins_and_see_each_others_removals_at_once() {
    let Ok(admin_url) = std::env::var("LAKESTS_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("LAKESTS_TEST_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "LAKESTS_TEST_POSTGRES_URL is required"
        );
        eprintln!("!!! SKIPPED: set LAKESTS_TEST_POSTGRES_URL !!!");
        return;
    };
    let (database, url) = create_database(&admin_url).await;
    let result = tokio::spawn(two_replicas(url)).await;
    drop_database(&admin_url, &database).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A session-mode login of alice begun on `begin` and finished on `finish`: the answer of
/// `POST /api/v1/sts/login`.
async fn session_login(http: &reqwest::Client, begin: &str, finish: &str) -> reqwest::Response {
    let started: Value = http
        .post(format!("{begin}/api/v1/sts/authorize"))
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut authorize = url::Url::parse(
        started["authorization_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{started}")),
    )
    .unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("login_hint", "alice");
    let resp = http.get(authorize).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {location}"))
        .1
        .into_owned();
    let exchanged: Value = http
        .post(format!("{finish}/api/v1/sts/authorize/exchange"))
        .json(&json!({"state": started["state"], "redeem_secret": started["redeem_secret"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{finish}/api/v1/sts/login"))
        .json(&json!({"code": code, "state": exchanged["state"], "redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap()
}

async fn two_replicas(url: String) {
    let dir = tempfile::tempdir().unwrap();
    let idp_sockets = bind_roles(["idp"]);
    let idp_port = port_of(&idp_sockets, "idp");
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let idp_config = json!({
        "data_dir": dir.path().join("idp"),
        "logging": {"level": "warn"},
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "users": [{"sub": "alice", "email": "alice@example.com"}],
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let idp_path = dir.path().join("idp.yaml");
    std::fs::write(&idp_path, idp_config.to_string()).unwrap();
    let _idp = serve(
        &idp_path,
        idp_sockets,
        &dir.path().join("idp.log"),
        &format!("{issuer}/.well-known/openid-configuration"),
    )
    .await;

    let mut replicas = Vec::new();
    let mut processes = Vec::new();
    for name in ["a", "b"] {
        let sockets = bind_roles(["sts", "authenticator", "authorization"]);
        let (sts_port, authn_port, authz_port) = (
            port_of(&sockets, "sts"),
            port_of(&sockets, "authenticator"),
            port_of(&sockets, "authorization"),
        );
        let config = json!({
            "listen_address": format!("127.0.0.1:{sts_port}"),
            "data_dir": dir.path().join(name),
            "logging": {"level": "warn,lakests_core::sts=debug"},
            "database": {"type": "postgres", "postgres": {"connection_string": url, "max_open_connections": 4}},
            "auth": {
                "encrypt": {"secret_key": SECRET},
                "sts": {"rate_limit_per_second": 0, "auto_create_users": true},
            },
            "authenticator": {
                "listen_address": format!("127.0.0.1:{authn_port}"),
                "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT], "pkce": "session"}],
            },
            "authorization": {
                "enabled": true,
                "listen_address": format!("127.0.0.1:{authz_port}"),
                "api_token": API_TOKEN,
            },
        });
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config.to_string()).unwrap();
        let sts = format!("http://127.0.0.1:{sts_port}");
        processes.push(
            serve(
                &path,
                sockets,
                &dir.path().join(format!("{name}.log")),
                &format!("{sts}/api/v1/healthcheck"),
            )
            .await,
        );
        replicas.push((sts, format!("http://127.0.0.1:{authz_port}/api/v1")));
    }
    let (a_sts, a_authz) = replicas[0].clone();
    let (b_sts, _) = replicas[1].clone();
    let http = client();

    // A session-mode login begun on A finishes on B.
    let resp = session_login(&http, &a_sts, &b_sts).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let login: Value = resp.json().await.unwrap();
    let token_b = login["token"].as_str().unwrap().to_owned();
    assert_eq!(
        user_status(&http, &a_sts, &token_b).await,
        200,
        "B's token works on A"
    );

    // On PostgreSQL a login takes a user it holds in memory without reading the generation
    // first; its audit write checks the generation instead. B now holds alice (a second
    // login); alice is removed through A; B's next login must see it (the audit write refuses
    // the unchecked user, B resolves alice again, and her identity is refused as removed), not
    // mint a token for her from memory.
    let resp = session_login(&http, &b_sts, &b_sts).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let me: Value = http
        .get(format!("{a_sts}/api/v1/user"))
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let username = me["user"]["id"].as_str().unwrap().to_owned();
    let resp = http
        .delete(format!("{a_authz}/auth/users/{username}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = session_login(&http, &b_sts, &b_sts).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(
        status.is_client_error(),
        "B logged in a user removed through A: {status} {body}"
    );
    let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(
        log.contains("the cached user may have changed; resolving it again"),
        "B's lookup was not the unchecked one this test is about:\n{log}"
    );

    // A user removed through A is refused by B on the very next request, 50 times: B reads the
    // database's generation (moved in A's transaction) for every request.
    for i in 0..50 {
        let user = format!("user{i:02}");
        let resp = http
            .post(format!("{a_authz}/auth/users"))
            .bearer_auth(API_TOKEN)
            .json(&json!({"username": user}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
        let t = token(&user, now() + 1);
        cached_ok(&http, &b_sts, &t).await;
        let resp = http
            .delete(format!("{a_authz}/auth/users/{user}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(
            user_status(&http, &b_sts, &t).await,
            401,
            "round {i}: B served a user removed through A"
        );
    }
    drop(processes);
}
