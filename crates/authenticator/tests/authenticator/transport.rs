//! What the provider's endpoints can do wrong (errors, garbage, silence, redirects, size),
//! and what caching saves: steady-state logins cost one token call, a cold cache one fetch.

use std::time::{Duration, Instant};

use lakests_config::PkceMode;
use lakests_core::ManualClock;
use serde_json::{Value, json};

use crate::support::*;

async fn setup() -> (HostileIdp, Authn) {
    let idp = HostileIdp::start().await;
    let p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    (idp, authn)
}

fn good_claims(issuer: &str) -> Value {
    json!({"iss": issuer, "aud": CLIENT_ID, "sub": "alice", "exp": T0 + 3600, "iat": T0})
}

const SECRETS: [&str; 4] = [
    CLIENT_SECRET,
    "code-123",
    "hostile-access-token-never-in-logs",
    "alice",
];

async fn login(a: &Authn) -> (u16, Value, String) {
    a.login("code-123", &verifier(3), REDIRECT).await
}

#[tokio::test]
async fn invalid_grant_is_a_refused_login() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Json(
        400,
        json!({"error": "invalid_grant", "error_description": "code code-123 was already used"}),
    ));
    let got = login(&a).await;
    assert_refused(&got, 401, &SECRETS);
    assert!(got.1["message"].as_str().unwrap().contains("invalid_grant"));
}

#[tokio::test]
async fn invalid_client_is_our_misconfiguration_and_a_500() {
    let (idp, a) = setup().await;
    for error in ["invalid_client", "unauthorized_client"] {
        idp.reply(TokenReply::Json(401, json!({"error": error})));
        let got = login(&a).await;
        assert_refused(&got, 500, &SECRETS);
        assert_eq!(got.1["message"], "internal error");
    }
}

#[tokio::test]
async fn other_oauth_errors_are_a_502() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Json(400, json!({"error": "invalid_request"})));
    assert_refused(&login(&a).await, 502, &SECRETS);
}

#[tokio::test]
async fn a_token_endpoint_500_is_a_502_with_a_plain_message() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Raw(
        500,
        "text/html",
        b"<html>stack trace with code-123</html>".to_vec(),
    ));
    let got = login(&a).await;
    assert_refused(&got, 502, &SECRETS);
    assert!(!got.2.contains("stack trace"));
}

#[tokio::test]
async fn a_non_json_token_response_is_a_502() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Raw(
        200,
        "application/json",
        b"{not json".to_vec(),
    ));
    assert_refused(&login(&a).await, 502, &SECRETS);
    idp.reply(TokenReply::Json(
        200,
        json!({"access_token": "x", "token_type": "Bearer"}),
    ));
    assert_refused(&login(&a).await, 502, &SECRETS);
}

#[tokio::test]
async fn a_hanging_token_endpoint_is_a_504_within_the_timeout() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Hang);
    let started = Instant::now();
    let got = login(&a).await;
    let took = started.elapsed();
    assert_refused(&got, 504, &SECRETS);
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the 2 s timeout took {took:?}"
    );
}

#[tokio::test]
async fn an_oversized_token_response_is_a_502() {
    let (idp, a) = setup().await;
    let big = format!(r#"{{"id_token":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    idp.reply(TokenReply::Raw(200, "application/json", big.into_bytes()));
    assert_refused(&login(&a).await, 502, &SECRETS);
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let (idp, a) = setup().await;
    idp.reply(TokenReply::Redirect(format!("{}/redirected", idp.issuer)));
    assert_refused(&login(&a).await, 502, &SECRETS);
    assert_eq!(
        idp.hits
            .redirected
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = provider(
        "down",
        &format!("http://127.0.0.1:{port}"),
        &[REDIRECT],
        PkceMode::State,
    );
    let a = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    assert_refused(&login(&a).await, 502, &SECRETS);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let (idp, a) = setup().await;
    idp.with(|s| s.discovery["issuer"] = json!("https://evil.example"));
    assert_refused(&login(&a).await, 502, &SECRETS);
    assert_eq!(
        idp.token_hits(),
        0,
        "no code is sent to a provider that fails discovery"
    );
}

#[tokio::test]
async fn a_garbage_jwks_is_a_502() {
    let (idp, a) = setup().await;
    idp.with(|s| {
        s.discovery["jwks_uri"] = json!(format!(
            "{}/.well-known/openid-configuration",
            s.discovery["issuer"].as_str().unwrap()
        ))
    });
    assert_refused(&login(&a).await, 502, &SECRETS);
}

#[tokio::test]
async fn steady_state_logins_cost_one_token_call_and_no_discovery_or_jwks_call() {
    let (idp, a) = setup().await;
    idp.issue(keys().rs256.sign(&good_claims(&idp.issuer), json!({})));
    for _ in 0..5 {
        assert_eq!(login(&a).await.0, 200);
    }
    assert_eq!(idp.discovery_hits(), 1);
    assert_eq!(idp.jwks_hits(), 1);
    assert_eq!(idp.token_hits(), 5);
}

#[tokio::test]
async fn metadata_is_refreshed_after_its_ttl_and_a_failed_refresh_keeps_the_cached_copy() {
    let (idp, a) = setup().await;
    idp.issue(keys().rs256.sign(&good_claims(&idp.issuer), json!({})));
    assert_eq!(login(&a).await.0, 200);
    a.clock.advance(3601);
    idp.issue(keys().rs256.sign(&json!({"iss": idp.issuer, "aud": CLIENT_ID, "sub": "alice", "exp": T0 + 7200, "iat": T0 + 3601}), json!({})));
    assert_eq!(login(&a).await.0, 200);
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (2, 2));
    // The provider's discovery breaks; logins go on with the cached metadata.
    a.clock.advance(3601);
    idp.with(|s| s.discovery = json!({"garbage": true}));
    idp.issue(keys().rs256.sign(&json!({"iss": idp.issuer, "aud": CLIENT_ID, "sub": "alice", "exp": T0 + 9000, "iat": T0 + 7202}), json!({})));
    assert_eq!(login(&a).await.0, 200);
    assert_eq!(login(&a).await.0, 200);
    assert_eq!(
        idp.discovery_hits(),
        3,
        "a failed refresh is not retried on every login"
    );
}

#[tokio::test]
async fn concurrent_logins_on_a_cold_cache_fetch_discovery_and_jwks_once() {
    let (idp, a) = setup().await;
    idp.issue(keys().rs256.sign(&good_claims(&idp.issuer), json!({})));
    let a = std::sync::Arc::new(a);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move { login(&a).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(idp.discovery_hits(), 1);
    assert_eq!(idp.jwks_hits(), 1);
    assert_eq!(idp.token_hits(), 20);
}

#[tokio::test]
async fn a_provider_that_is_down_does_not_queue_one_timeout_per_waiting_login() {
    // A provider that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let p = provider(
        "silent",
        &format!("http://127.0.0.1:{port}"),
        &[REDIRECT],
        PkceMode::State,
    );
    let a = std::sync::Arc::new(Authn::start(base_config(vec![p]), ManualClock::new(T0)).await);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move { login(&a).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 504);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "six waiting logins took {took:?}; they must share one 2 s timeout"
    );
}

#[tokio::test]
async fn metrics_count_logins_by_outcome_and_idp_requests_by_endpoint() {
    let (idp, a) = setup().await;
    idp.issue(keys().rs256.sign(&good_claims(&idp.issuer), json!({})));
    assert_eq!(login(&a).await.0, 200);
    assert_eq!(login(&a).await.0, 200);
    idp.reply(TokenReply::Json(400, json!({"error": "invalid_grant"})));
    assert_eq!(login(&a).await.0, 401);
    assert_eq!(a.login("c", "bad", REDIRECT).await.0, 400);
    idp.reply(TokenReply::Raw(500, "text/plain", b"down".to_vec()));
    assert_eq!(login(&a).await.0, 502);
    let m = a.metrics().await;
    for line in [
        r#"lakests_authenticator_logins_total{outcome="success"} 2"#,
        r#"lakests_authenticator_logins_total{outcome="unauthorized"} 1"#,
        r#"lakests_authenticator_logins_total{outcome="invalid_request"} 1"#,
        r#"lakests_authenticator_logins_total{outcome="upstream_error"} 1"#,
        r#"lakests_authenticator_logins_total{outcome="timeout"} 0"#,
        r#"lakests_authenticator_idp_requests_total{endpoint="discovery"} 1"#,
        r#"lakests_authenticator_idp_requests_total{endpoint="token"} 4"#,
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
}

#[tokio::test]
async fn the_healthcheck_answers_204_without_contacting_the_idp() {
    let (idp, a) = setup().await;
    let resp = a
        .http
        .get(format!("{}/api/v1/healthcheck", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(idp.discovery_hits(), 0);
}
