//! Issue 12: each finding of the security review reproduced against the real STS server (real
//! HTTP, real SQLite, a stand-in authenticator over HTTP), now without harm.

use std::time::Duration;

use crate::support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lakests_core::{LoginAudit, LoginOutcome, UserRecord};
use serde_json::{Value, json};

async fn add_user_now(app: &TestApp, username: &str, external_id: &str) {
    app.store
        .create_user(&UserRecord {
            username: username.into(),
            external_id: Some(external_id.into()),
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: lakests_core::Clock::now(&app.clock),
        })
        .await
        .unwrap();
}

async fn token(app: &TestApp) -> (String, Value) {
    let resp = app.login(login_body()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    (token, claims)
}

/// Point 8: remove bob, add a new bob: bob's old token no longer works; the new bob's does.
#[tokio::test]
async fn an_old_token_does_not_come_back_with_a_re_created_user() {
    let app = TestApp::spawn_with(Behavior::Claims(json!({"sub": "bob-ext"})), "").await;
    add_user_now(&app, "bob", "bob-ext").await;
    let (old, _) = token(&app).await;
    assert_eq!(app.current_user(&old).await.status(), 200);

    assert!(app.store.delete_user("bob").await.unwrap());
    app.clock.advance(10);
    add_user_now(&app, "bob", "bob-ext").await;
    let msg = expect_error(app.current_user(&old).await, 401).await;
    assert_eq!(msg, "the token was issued before its user was created");

    let (new, _) = token(&app).await;
    assert_eq!(app.current_user(&new).await.status(), 200);
}

/// Point 8, with the user cache on: the cached user does not let the old token through.
#[tokio::test]
async fn with_the_user_cache_a_re_created_users_old_token_is_refused_once_the_entry_expires() {
    let app = TestApp::spawn_with(
        Behavior::Claims(json!({"sub": "bob-ext"})),
        "auth: {cache: {enabled: true, ttl: 5s}}",
    )
    .await;
    add_user_now(&app, "bob", "bob-ext").await;
    let (old, _) = token(&app).await;
    assert!(app.store.delete_user("bob").await.unwrap());
    app.clock.advance(10);
    add_user_now(&app, "bob", "bob-ext").await;
    expect_error(app.current_user(&old).await, 401).await;
}

fn forge(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Point 8: `iat` or `nbf` in the future beyond the skew is refused, even with the right key.
#[tokio::test]
async fn a_token_issued_or_valid_from_the_future_is_refused() {
    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    let now = lakests_core::Clock::now(&app.clock);
    let ok =
        forge(json!({"sub": "alice", "aud": "login", "jti": "a", "iat": now, "exp": now + 600}));
    assert_eq!(app.current_user(&ok).await.status(), 200);
    for claims in [
        json!({"sub": "alice", "aud": "login", "jti": "b", "iat": now + 3600, "exp": now + 7200}),
        json!({"sub": "alice", "aud": "login", "jti": "c", "iat": now, "nbf": now + 3600, "exp": now + 7200}),
    ] {
        let msg = expect_error(app.current_user(&forge(claims)).await, 401).await;
        assert_eq!(msg, "token is not valid yet");
    }
}

/// Revocation by user: every token issued until now is refused at once by every replica
/// sharing the store; a login afterwards works.
#[tokio::test]
async fn revoking_a_users_tokens_takes_effect_at_once_on_every_replica() {
    let first = TestApp::spawn("").await;
    let db = first.dir.path().join("lakests.db");
    let second = TestApp::spawn(&format!(
        "database: {{sqlite: {{path: \"{}\"}}}}",
        db.display()
    ))
    .await;
    add_user_now(&first, "alice", "alice-ext").await;
    let (t1, _) = token(&first).await;
    let (t2, _) = token(&second).await;
    for app in [&first, &second] {
        for t in [&t1, &t2] {
            assert_eq!(app.current_user(t).await.status(), 200);
        }
    }

    // What `lakests tokens revoke --user alice` does (the two test clocks may be a second
    // apart: "now" is the later one).
    let now = lakests_core::Clock::now(&first.clock).max(lakests_core::Clock::now(&second.clock));
    first.store.revoke_user_tokens("alice", now).await.unwrap();
    for app in [&first, &second] {
        for t in [&t1, &t2] {
            let msg = expect_error(app.current_user(t).await, 401).await;
            assert_eq!(msg, "the token has been revoked");
        }
    }

    // A later login gets a working token.
    first.clock.set(now + 1);
    let (t3, _) = token(&first).await;
    assert_eq!(second.current_user(&t3).await.status(), 200);
}

/// Revocation by jti: only that token is refused, also when the user cache is on.
#[tokio::test]
async fn revoking_one_token_by_jti_leaves_the_others_working() {
    let app = TestApp::spawn("auth: {cache: {enabled: true, ttl: 60s}}").await;
    app.add_user("alice", "alice-ext").await;
    let (t1, c1) = token(&app).await;
    let (t2, _) = token(&app).await;
    assert_eq!(app.current_user(&t1).await.status(), 200);
    let now = lakests_core::Clock::now(&app.clock);
    assert!(
        app.store
            .revoke_token(c1["jti"].as_str().unwrap(), now)
            .await
            .unwrap()
    );
    let msg = expect_error(app.current_user(&t1).await, 401).await;
    assert_eq!(msg, "the token has been revoked");
    assert_eq!(app.current_user(&t2).await.status(), 200);
}

/// Point 7: a sub with terminal control sequences from the authenticator is refused, and
/// what reaches the audit log is escaped.
#[tokio::test]
async fn a_sub_with_control_characters_is_refused_and_stored_escaped() {
    let evil = "alice\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let app = TestApp::spawn_with(Behavior::Claims(json!({"sub": evil})), "").await;
    app.add_user("alice", "alice").await;
    let msg = expect_error(app.login(login_body()).await, 401).await;
    assert!(msg.contains("control characters"), "{msg}");
    let audit = app.store.list_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    let stored = audit[0].external_id.as_deref().unwrap();
    assert!(!stored.chars().any(char::is_control), "{stored:?}");
    assert!(stored.starts_with("alice\\u{1b}]0;pwned"), "{stored:?}");
}

/// Point 6: malformed requests are counted, not stored one by one.
#[tokio::test]
async fn malformed_logins_are_counted_and_not_stored() {
    let app = TestApp::spawn("auth: {sts: {rate_limit_per_second: 0}}").await;
    app.add_user("alice", "alice-ext").await;
    for _ in 0..200 {
        let body = json!({"code": "", "state": "s", "redirect_uri": "r"});
        expect_error(app.login(body).await, 400).await;
    }
    assert!(app.store.list_audit(1000).await.unwrap().is_empty());
    assert_eq!(app.standin.calls(), 0);
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nlakests_sts_malformed_requests_total 200\n"),
        "{metrics}"
    );
    // A real attempt is still audited.
    assert_eq!(app.login(login_body()).await.status(), 200);
    assert_eq!(app.store.list_audit(10).await.unwrap().len(), 1);
}

/// Point 6: per-client rate limits on sts/login and sts/authorize: 429 with Retry-After,
/// before the body is read; another client address is not affected.
#[tokio::test]
async fn logins_over_the_per_client_rate_get_429_with_retry_after() {
    let app = TestApp::spawn("auth: {sts: {rate_limit_per_second: 1, rate_limit_burst: 3}}").await;
    app.add_user("alice", "alice-ext").await;
    for _ in 0..3 {
        assert_eq!(app.login(login_body()).await.status(), 200);
    }
    let resp = app.login(login_body()).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let msg = expect_error(resp, 429).await;
    assert!(msg.contains("too many login requests"), "{msg}");
    // sts/authorize shares the bucket and is refused before its body is even parsed.
    let resp = app
        .http
        .post(format!("{}/api/v1/sts/authorize", app.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(app.standin.calls(), 3);

    // Another address has its own bucket.
    let other = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let resp = other
        .post(format!("{}/api/v1/sts/login", app.base))
        .json(&login_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // After a second, one more is allowed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login(login_body()).await.status(), 200);
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nlakests_sts_rate_limited_total 2\n"),
        "{metrics}"
    );
}

/// Point 6: audit records older than the retention are purged periodically.
#[tokio::test]
async fn audit_records_past_their_retention_are_purged() {
    let app = TestApp::spawn("auth: {audit: {retention: 1h, purge_interval: 1s}}").await;
    let now = lakests_core::Clock::now(&app.clock);
    let record = |at: i64, id: &str| LoginAudit {
        at,
        outcome: LoginOutcome::Failure,
        reason: "test".into(),
        external_id: None,
        username: None,
        client_addr: None,
        request_id: id.into(),
    };
    app.store
        .append_audit(&record(now - 7200, "old"))
        .await
        .unwrap();
    app.store
        .append_audit(&record(now - 600, "recent"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ids: Vec<String> = app
            .store
            .list_audit(10)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.request_id)
            .collect();
        if ids == ["recent"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not purged within 5 s: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
