//! Black-box tests of the STS server role (WIRE.md §1, §2, §4, §7): the real server, a real
//! SQLite file, and a stand-in authenticator over real HTTP.

use std::time::{Duration, Instant};

use crate::support::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lakests_core::{Clock, LoginOutcome, Store};
use serde_json::{Value, json};

fn decode_lakefs(token: &str, secret: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["login"]);
    v.set_required_spec_claims(&["exp", "sub", "aud"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .expect("token verifies with lakeFS's rules")
        .claims
}

#[tokio::test]
async fn sts_login_mints_a_lakefs_token_for_the_mapped_user() {
    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;

    let resp = app.login(login_body()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-lakests-granted-ttl-seconds"], "3600");
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let claims = decode_lakefs(token, SECRET);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "auth");
    assert_eq!(
        claims["aud"], "login",
        "aud is a string, as lakeFS writes it"
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 32);
    let now = app.clock_now();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(
        body["token_expiration"], claims["exp"],
        "token_expiration is exactly exp"
    );

    // The authenticator got exactly code, state and redirect_uri.
    assert_eq!(
        app.standin.seen.bodies.lock().unwrap()[0],
        json!({"code": "the-code", "state": "the-state", "redirect_uri": "http://127.0.0.1:8085/callback"})
    );

    let resp = app.current_user(token).await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(
        me,
        json!({"user": {"id": "alice", "creation_date": 1_700_000_000, "friendly_name": "ALICE", "email": "alice@example.com"}})
    );
}

trait ClockNow {
    fn clock_now(&self) -> i64;
}
impl ClockNow for TestApp {
    fn clock_now(&self) -> i64 {
        use lakests_core::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn ttl_is_clamped_to_the_maximum_and_must_be_positive() {
    let app = TestApp::spawn("auth: {sts: {max_ttl_seconds: 7200}}").await;
    app.add_user("alice", "alice-ext").await;
    let now = app.clock_now();

    let mut body = login_body();
    body["ttl_seconds"] = json!(600);
    let resp = app.login(body.clone()).await;
    assert_eq!(resp.headers()["x-lakests-granted-ttl-seconds"], "600");
    let t: Value = resp.json().await.unwrap();
    assert_eq!(t["token_expiration"], now + 600);

    body["ttl_seconds"] = json!(10_000_000);
    let resp = app.login(body.clone()).await;
    assert_eq!(resp.headers()["x-lakests-granted-ttl-seconds"], "7200");
    let t: Value = resp.json().await.unwrap();
    assert_eq!(t["token_expiration"], now + 7200);

    let calls = app.standin.calls();
    for bad in [0, -5] {
        body["ttl_seconds"] = json!(bad);
        let msg = expect_error(app.login(body.clone()).await, 400).await;
        assert!(msg.contains("ttl_seconds"), "{msg}");
    }
    assert_eq!(
        app.standin.calls(),
        calls,
        "a bad TTL is refused before the code is spent"
    );
}

#[tokio::test]
async fn required_claims_must_match_exactly() {
    let app = TestApp::spawn_with(
        Behavior::Claims(json!({"sub": "alice-ext", "department": "data", "tier": "gold "})),
        "auth: {cookie_auth_verification: {validate_id_token_claims: {department: data}}}",
    )
    .await;
    app.add_user("alice", "alice-ext").await;
    assert_eq!(app.login(login_body()).await.status(), 200);

    app.standin.set(Behavior::Claims(
        json!({"sub": "alice-ext", "department": "Data"}),
    ));
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert!(msg.contains("department"), "{msg}");
    assert_eq!(reason.as_deref(), Some("claim_rule"));

    app.standin
        .set(Behavior::Claims(json!({"sub": "alice-ext"})));
    expect_error(app.login(login_body()).await, 401).await;
}

#[tokio::test]
async fn a_login_without_sub_is_refused() {
    let app = TestApp::spawn_with(Behavior::Claims(json!({"email": "a@example.com"})), "").await;
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert!(msg.contains("sub"), "{msg}");
    assert_eq!(reason.as_deref(), Some("subject_missing"));
    app.standin.set(Behavior::Claims(json!({"sub": ""})));
    expect_error(app.login(login_body()).await, 401).await;
}

#[tokio::test]
async fn external_user_id_claim_name_picks_the_claim_users_are_found_by() {
    let app = TestApp::spawn_with(
        Behavior::Claims(json!({"sub": "pairwise-123", "oid": "alice-ext"})),
        "auth: {cookie_auth_verification: {external_user_id_claim_name: oid}}",
    )
    .await;
    app.add_user("alice", "alice-ext").await;
    let resp = app.login(login_body()).await;
    assert_eq!(resp.status(), 200);
    let t: Value = resp.json().await.unwrap();
    let user: Value = app
        .current_user(t["token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["user"]["id"], "alice");
    app.standin
        .set(Behavior::Claims(json!({"sub": "alice-ext"})));
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert_eq!(msg, "the ID token has no oid claim");
    assert_eq!(reason.as_deref(), Some("subject_missing"));
}

#[tokio::test]
async fn an_unknown_identity_is_refused_with_a_clear_message() {
    let app = TestApp::spawn("").await;
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert_eq!(msg, "no user is mapped to this identity");
    assert_eq!(reason.as_deref(), Some("no_user_mapped"));
}

#[tokio::test]
async fn automatic_provisioning_creates_the_user_like_lakefs_oidc() {
    let app = TestApp::spawn_with(
        Behavior::Claims(
            json!({"sub": "u-123", "preferred_username": "carol", "name": "Carol C",
                                "email": "carol@example.com", "groups": "data, admins"}),
        ),
        r#"
auth:
  sts: {auto_create_users: true, username_claim_name: preferred_username}
  cookie_auth_verification:
    friendly_name_claim_name: name
    initial_groups_claim_name: groups
    default_initial_groups: [viewers]
"#,
    )
    .await;
    let resp = app.login(login_body()).await;
    assert_eq!(resp.status(), 200);
    let t: Value = resp.json().await.unwrap();
    assert_eq!(
        decode_lakefs(t["token"].as_str().unwrap(), SECRET)["sub"],
        "carol"
    );
    let carol = app.store.get_user("carol").await.unwrap().unwrap();
    assert_eq!(carol.external_id.as_deref(), Some("u-123"));
    assert_eq!(carol.friendly_name.as_deref(), Some("Carol C"));
    assert_eq!(carol.email.as_deref(), Some("carol@example.com"));
    assert_eq!(carol.groups, vec!["admins", "data"]);

    // Second login maps to the same user; no duplicate.
    assert_eq!(app.login(login_body()).await.status(), 200);
    assert_eq!(app.store.list_users().await.unwrap().len(), 1);

    // Without a groups claim, the default groups apply; with sub as username by default.
    app.standin.set(Behavior::Claims(
        json!({"sub": "u-456", "preferred_username": "dave"}),
    ));
    assert_eq!(app.login(login_body()).await.status(), 200);
    let dave = app.store.get_user("dave").await.unwrap().unwrap();
    assert_eq!(dave.groups, vec!["viewers"]);

    // Issue 15: a removed user whom the authenticator still vouches for is not created again
    // (the audit says why), until an administrator readmits the identity.
    assert!(app.store.delete_user("dave").await.unwrap());
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert_eq!(reason.as_deref(), Some("identity_removed"), "{msg}");
    assert!(!msg.contains("dave") && !msg.contains("u-456"), "{msg}");
    assert!(app.store.get_user("dave").await.unwrap().is_none());
    let audit = app.store.list_audit(1).await.unwrap();
    assert!(audit[0].reason.contains("was removed"), "{audit:?}");
    assert!(app.store.readmit_identity("u-456").await.unwrap());
    assert_eq!(app.login(login_body()).await.status(), 200);
    assert!(app.store.get_user("dave").await.unwrap().is_some());
}

#[tokio::test]
async fn authenticator_refusals_pass_through_with_their_status() {
    let app = TestApp::spawn("").await;
    for (status, expect) in [(400, 400), (401, 401), (409, 409)] {
        app.standin.set(Behavior::Status(
            status,
            r#"{"message":"refused: bad code"}"#.into(),
        ));
        let msg = expect_error(app.login(login_body()).await, expect).await;
        assert_eq!(msg, "refused: bad code");
    }
    // Unexpected statuses and garbage are a 5xx with a plain message, nothing internal.
    app.standin.set(Behavior::Status(
        500,
        r#"{"message":"db password is hunter2"}"#.into(),
    ));
    let msg = expect_error(app.login(login_body()).await, 502).await;
    assert!(!msg.contains("hunter2"));
    app.standin
        .set(Behavior::Status(200, "<html>not json</html>".into()));
    expect_error(app.login(login_body()).await, 502).await;
    app.standin.set(Behavior::Status(401, "plain text".into()));
    let (msg, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
    assert_eq!(msg, "the authenticator refused the login");
    assert_eq!(
        reason.as_deref(),
        Some("refused"),
        "a reason it did not name"
    );
    // A lakests authenticator's reason passes through; an unknown one is "refused".
    for (given, expect) in [("code_rejected", "code_rejected"), ("made_up", "refused")] {
        app.standin.set(Behavior::Status(
            401,
            format!(r#"{{"message":"no","reason":"{given}"}}"#),
        ));
        let (_, reason) = expect_error_reason(app.login(login_body()).await, 401).await;
        assert_eq!(reason.as_deref(), Some(expect));
    }
}

#[tokio::test]
async fn a_hanging_authenticator_is_a_5xx_within_the_timeout() {
    let app = TestApp::spawn_with(Behavior::Hang, "").await;
    let started = Instant::now();
    let msg = expect_error(app.login(login_body()).await, 504).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(msg.contains("did not answer in time"), "{msg}");
}

#[tokio::test]
async fn an_unreachable_authenticator_is_a_5xx() {
    // Port 9 on loopback: nothing listens there.
    let app =
        TestApp::spawn("auth: {authentication_api: {endpoint: 'http://127.0.0.1:9/api/v1'}}").await;
    let msg = expect_error(app.login(login_body()).await, 502).await;
    assert_eq!(
        msg,
        "the authenticator or its identity provider is unavailable"
    );
}

#[tokio::test]
async fn the_request_id_reaches_the_authenticator_and_the_audit_log() {
    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    let resp = app
        .http
        .post(format!("{}/api/v1/sts/login", app.base))
        .header("X-Request-ID", "req-42")
        .json(&login_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    assert_eq!(
        app.standin.seen.request_ids.lock().unwrap().as_slice(),
        ["req-42"]
    );

    app.standin.set(Behavior::Claims(json!({"sub": "nobody"})));
    expect_error(app.login(login_body()).await, 401).await;

    let audit = app.store.list_audit(10).await.unwrap();
    assert_eq!(audit.len(), 2, "one record per attempt");
    let (failure, success) = (&audit[0], &audit[1]);
    assert_eq!(success.outcome, LoginOutcome::Success);
    assert_eq!(success.request_id, "req-42");
    assert_eq!(success.username.as_deref(), Some("alice"));
    assert_eq!(success.external_id.as_deref(), Some("alice-ext"));
    assert_eq!(success.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(failure.outcome, LoginOutcome::Failure);
    assert_eq!(failure.external_id.as_deref(), Some("nobody"));
    assert!(
        failure.reason.contains("no user is mapped"),
        "{}",
        failure.reason
    );
    assert!(!failure.request_id.is_empty());
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_never_reaches_the_authenticator() {
    let app = TestApp::spawn("").await;
    let url = format!("{}/api/v1/sts/login", app.base);
    let send = |body: String, ct: &'static str| {
        app.http
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("".into(), "application/json", 400, "not valid JSON"),
        (
            "{not json".into(),
            "application/json",
            400,
            "not valid JSON",
        ),
        ("[]".into(), "application/json", 400, "invalid request body"),
        (
            r#"{"code":"c","state":"s"}"#.into(),
            "application/json",
            400,
            "missing field `redirect_uri`",
        ),
        (
            r#"{"code":12345,"state":"s","redirect_uri":"r"}"#.into(),
            "application/json",
            400,
            "expected a string",
        ),
        (
            r#"{"code":"c","state":"s","redirect_uri":"r","ttl_seconds":"x"}"#.into(),
            "application/json",
            400,
            "expected i64",
        ),
        (
            r#"{"code":"","state":"s","redirect_uri":"r"}"#.into(),
            "application/json",
            400,
            "code must not be empty",
        ),
        (
            json!({"code": "c".repeat(5000), "state": "s", "redirect_uri": "r"}).to_string(),
            "application/json",
            400,
            "code is longer than",
        ),
        (
            json!({"code": "c".repeat(70_000), "state": "s", "redirect_uri": "r"}).to_string(),
            "application/json",
            413,
            "larger than 65536",
        ),
        (
            login_body().to_string(),
            "text/plain",
            415,
            "application/json",
        ),
    ];
    for (body, ct, status, needle) in cases {
        let msg = expect_error(send(body.clone(), ct).await.unwrap(), status).await;
        assert!(
            msg.contains(needle),
            "{status} {needle:?} not in {msg:?} for {}",
            &body[..body.len().min(60)]
        );
        assert!(
            !msg.contains("12345"),
            "the offending value is not echoed: {msg}"
        );
    }
    assert_eq!(app.standin.calls(), 0);

    // Unknown paths and wrong methods answer in the same error shape.
    let resp = app
        .http
        .get(format!("{}/api/v1/nope", app.base))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404).await;
    let resp = app.http.get(&url).send().await.unwrap();
    expect_error(resp, 405).await;
}

#[tokio::test]
async fn current_user_refuses_every_bad_token() {
    let mut app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let good = t["token"].as_str().unwrap().to_owned();
    let now = app.clock_now();

    let forge = |claims: Value, key: &str, alg: Algorithm| {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let base = json!({"jti": "x", "iss": "auth", "sub": "alice", "aud": "login", "iat": now, "exp": now + 60});
    let mut other_aud = base.clone();
    other_aud["aud"] = json!("other");
    // lakeFS's LoginClaims.Audience is a string: an array is not a lakeFS token.
    let mut aud_array = base.clone();
    aud_array["aud"] = json!(["login"]);
    let mut expired = base.clone();
    expired["exp"] = json!(now - 1);
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let payload = good.split('.').nth(1).unwrap();
    let cases = vec![
        (
            "wrong secret",
            forge(base.clone(), "not-the-secret", Algorithm::HS256),
        ),
        ("aud other", forge(other_aud, SECRET, Algorithm::HS256)),
        ("aud array", forge(aud_array, SECRET, Algorithm::HS256)),
        ("expired", forge(expired, SECRET, Algorithm::HS256)),
        ("no exp", forge(no_exp, SECRET, Algorithm::HS256)),
        ("alg none", format!("{header_none}.{payload}.")),
        ("garbage", "abc.def.ghi".to_owned()),
        ("too long", "a".repeat(10_000)),
    ];
    for (what, token) in cases {
        let resp = app.current_user(&token).await;
        assert_eq!(resp.status(), 401, "{what}");
        expect_error(resp, 401).await;
    }
    // An empty aud is accepted, as lakeFS accepts it.
    let mut empty_aud = base.clone();
    empty_aud["aud"] = json!("");
    let resp = app
        .current_user(&forge(empty_aud, SECRET, Algorithm::HS256))
        .await;
    assert_eq!(resp.status(), 200);
    // HS512 with the right secret is accepted, as lakeFS accepts it.
    let resp = app
        .current_user(&forge(base.clone(), SECRET, Algorithm::HS512))
        .await;
    assert_eq!(resp.status(), 200);

    for (name, value) in [
        ("missing", None),
        ("basic", Some("Basic YWxpY2U6eA==")),
        ("empty", Some("Bearer ")),
    ] {
        let mut req = app.http.get(format!("{}/api/v1/user", app.base));
        if let Some(v) = value {
            req = req.header("authorization", v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{name}");
    }

    // The token expires with the clock.
    assert_eq!(app.current_user(&good).await.status(), 200);
    app.clock.advance(3600);
    let msg = expect_error(app.current_user(&good).await, 401).await;
    assert_eq!(msg, "token expired");
    app.clock.advance(-3600);

    // A removed user's token stops working at once.
    assert!(app.store.delete_user("alice").await.unwrap());
    let msg = expect_error(app.current_user(&good).await, 401).await;
    assert_eq!(msg, "the token's user does not exist");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn current_user_fills_friendly_name_with_the_username_like_lakefs() {
    let mut app = TestApp::spawn("").await;
    app.store
        .create_user(&lakests_core::UserRecord {
            username: "alice".into(),
            external_id: Some("alice-ext".into()),
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: 1_700_000_000,
        })
        .await
        .unwrap();
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let resp = app.current_user(t["token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["user"]["id"], "alice");
    assert_eq!(v["user"]["friendly_name"], "alice");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn healthcheck_and_config_answer_like_lakefs() {
    let app = TestApp::spawn("").await;
    let resp = app
        .http
        .get(format!("{}/api/v1/healthcheck", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // /api/v1/config needs a token, as in lakeFS.
    let resp = app
        .http
        .get(format!("{}/api/v1/config", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    app.add_user("alice", "alice-ext").await;
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    let resp = app
        .http
        .get(format!("{}/api/v1/config", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["version_config"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["version_config"]["version_context"], "lakests");
    assert_eq!(v["storage_config"]["blockstore_type"], "none");
    assert_eq!(v["storage_config"]["pre_sign_support"], false);
    assert!(v["storage_config"]["blockstore_namespace_ValidityRegex"].is_string());
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_login_finish() {
    let mut app = TestApp::spawn_with(
        Behavior::Delayed(Duration::from_millis(500), json!({"sub": "alice-ext"})),
        "",
    )
    .await;
    app.add_user("alice", "alice-ext").await;
    let http = app.http.clone();
    let url = format!("{}/api/v1/sts/login", app.base);
    let in_flight = tokio::spawn(async move { http.post(url).json(&login_body()).send().await });
    // Wait until the request reached the authenticator, then ask the server to stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.standin.calls() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.standin.calls(), 1);
    app.stop().await.unwrap();
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200, "the in-flight login completed");
    // And the server no longer accepts connections.
    let refused = app
        .http
        .get(format!("{}/api/v1/healthcheck", app.base))
        .send()
        .await;
    assert!(refused.is_err());
}

async fn bearer_cache_hits(app: &TestApp) -> u64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
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

/// A token answered until an answer comes from the cache (so that what follows shows the cache
/// being invalidated, not bypassed). Not always the second answer: the first read may open a
/// pooled SQLite connection, whose file events move the generation once (a miss, never a stale
/// hit), so a few tries are allowed.
async fn cached_ok(app: &TestApp, token: &str) {
    assert_eq!(app.current_user(token).await.status(), 200);
    for _ in 0..10 {
        let before = bearer_cache_hits(app).await;
        assert_eq!(app.current_user(token).await.status(), 200);
        if bearer_cache_hits(app).await > before {
            return;
        }
    }
    panic!("the token was never served from the cache");
}

#[tokio::test]
async fn with_the_default_cache_a_removed_user_is_refused_on_the_next_request() {
    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let token = t["token"].as_str().unwrap();
    cached_ok(&app, token).await;
    assert!(app.store.delete_user("alice").await.unwrap());
    // No clock advance: the change itself invalidates.
    let msg = expect_error(app.current_user(token).await, 401).await;
    assert_eq!(msg, "the token's user does not exist");
}

#[tokio::test]
async fn with_the_default_cache_changes_by_another_writer_of_the_sqlite_file_bite_at_once() {
    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    // Another writer of the same file, as the CLI is: not this process's store.
    let other = lakests_store::SqliteStore::open(
        &app.dir.path().join("lakests.db"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let token = t["token"].as_str().unwrap();
    cached_ok(&app, token).await;

    // Revocation of every token of the user.
    other
        .revoke_user_tokens("alice", app.clock.now())
        .await
        .unwrap();
    let msg = expect_error(app.current_user(token).await, 401).await;
    assert_eq!(msg, "the token has been revoked");

    // Removal, then re-creation: the old token belongs to a user that no longer exists.
    app.clock.advance(2);
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    cached_ok(&app, &token).await;
    assert!(other.delete_user("alice").await.unwrap());
    let msg = expect_error(app.current_user(&token).await, 401).await;
    assert_eq!(msg, "the token's user does not exist");
    app.clock.advance(2);
    other
        .create_user(&lakests_core::UserRecord {
            username: "alice".into(),
            external_id: Some("alice-ext".into()),
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: app.clock.now(),
        })
        .await
        .unwrap();
    let msg = expect_error(app.current_user(&token).await, 401).await;
    assert_eq!(msg, "the token was issued before its user was created");
    other.close().await;
}

#[tokio::test]
async fn with_the_cache_off_nothing_is_served_from_memory() {
    let app = TestApp::spawn("auth: {cache: {enabled: false}}").await;
    app.add_user("alice", "alice-ext").await;
    let t: Value = app.login(login_body()).await.json().await.unwrap();
    let token = t["token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(app.current_user(token).await.status(), 200);
    }
    assert_eq!(bearer_cache_hits(&app).await, 0);
    assert!(app.store.delete_user("alice").await.unwrap());
    expect_error(app.current_user(token).await, 401).await;
}

#[tokio::test]
async fn logins_beyond_the_concurrency_limit_get_429_at_once() {
    let app = TestApp::spawn_with(
        Behavior::Delayed(Duration::from_millis(700), json!({"sub": "alice-ext"})),
        "auth: {sts: {max_concurrent_logins: 1}}",
    )
    .await;
    app.add_user("alice", "alice-ext").await;
    let first = {
        let http = app.http.clone();
        let url = format!("{}/api/v1/sts/login", app.base);
        tokio::spawn(async move { http.post(url).json(&login_body()).send().await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.standin.calls() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Refused while the first is still in flight, i.e. at once: a queued login would have
    // waited for the permit and then succeeded. No wall-clock bound needed.
    let msg = expect_error(app.login(login_body()).await, 429).await;
    assert!(
        !first.is_finished(),
        "refused while the first login was in flight"
    );
    assert!(msg.contains("too many logins"), "{msg}");
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    // The permit is released: the next login goes through.
    assert_eq!(app.login(login_body()).await.status(), 200);
}
