//! Session-mode PKCE: the authenticator starts the login, keeps the verifier and the nonce
//! in the store (single use, expiring), and the ID token's nonce must match.

use std::collections::HashMap;

use lakests_config::{Duration as CfgDuration, PkceMode};
use lakests_core::ManualClock;
use serde_json::{Value, json};
use url::Url;

use crate::support::*;

struct Started {
    /// The one-time state for `sts/login`, from the exchange (never in a URL).
    state: String,
    params: HashMap<String, String>,
    expires_at: i64,
}

/// A started login before its exchange: what the redirect carries, and the client's secret.
struct Pending {
    url_state: String,
    secret: String,
    params: HashMap<String, String>,
    expires_at: i64,
}

async fn setup() -> (HostileIdp, Authn) {
    let idp = HostileIdp::start().await;
    let state_mode = provider("state", &idp.issuer, &[REDIRECT], PkceMode::State);
    let mut session = provider(
        "session",
        &idp.issuer,
        &[SESSION_REDIRECT],
        PkceMode::Session,
    );
    session.scopes = vec!["openid".into(), "email".into(), "groups".into()];
    let authn = Authn::start(base_config(vec![state_mode, session]), ManualClock::new(T0)).await;
    (idp, authn)
}

async fn start(a: &Authn, idp: &HostileIdp) -> Started {
    let p = begin(a, idp).await;
    let (status, body, text) = exchange(a, &p.url_state, &p.secret).await;
    assert_eq!(status, 200, "{text}");
    let state = body["state"].as_str().unwrap().to_owned();
    assert_ne!(state, p.url_state, "a fresh state, never seen in a URL");
    assert!(!p.params.values().any(|v| v == &state));
    assert_eq!(body["expires_at"].as_i64(), Some(p.expires_at));
    Started {
        state,
        params: p.params,
        expires_at: p.expires_at,
    }
}

async fn exchange(a: &Authn, state: &str, secret: &str) -> (u16, Value, String) {
    a.post(
        "/api/v1/sts/authorize/exchange",
        json!({"state": state, "redeem_secret": secret}),
    )
    .await
}

async fn begin(a: &Authn, idp: &HostileIdp) -> Pending {
    let (status, body, text) = a.authorize(SESSION_REDIRECT).await;
    assert_eq!(status, 200, "{text}");
    let url = Url::parse(body["authorization_url"].as_str().unwrap()).unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{}/authorize?", idp.issuer)),
        "{url}"
    );
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let state = body["state"].as_str().unwrap().to_owned();
    assert_eq!(params["state"], state);
    let secret = body["redeem_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    assert!(
        !url.as_str().contains(&secret),
        "the redeem secret is not in the URL"
    );
    Pending {
        url_state: state,
        secret,
        params,
        expires_at: body["expires_at"].as_i64().unwrap(),
    }
}

/// Issue 12, point 2: whoever reads the redirect (code and state) gets no token: the state
/// in the URL is not what `sts/login` accepts, and the exchange needs the secret that never
/// left the client. The honest client, which has it, still logs in through the three fields
/// lakeFS forwards (code, state, redirect_uri); a wrong secret consumed nothing.
#[tokio::test]
async fn a_captured_redirect_yields_no_token_and_the_honest_login_still_works() {
    let (idp, a) = setup().await;
    let p = begin(&a, &idp).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&p.params["nonce"])), json!({})),
    );
    // The attacker replays the redirect at sts/login (what lakeFS would forward).
    let got = a.login("code-1", &p.url_state, SESSION_REDIRECT).await;
    assert_refused(&got, 401, &["code-1", &p.url_state]);
    // ... and tries the exchange without the secret.
    for wrong in ["", "guess", &p.url_state, &"A".repeat(43)] {
        let got = exchange(&a, &p.url_state, wrong).await;
        assert!(got.0 == 400 || got.0 == 401, "{got:?}");
    }
    assert_eq!(idp.token_hits(), 0, "nothing reached the token endpoint");

    // The honest client exchanges and logs in.
    let (status, body, text) = exchange(&a, &p.url_state, &p.secret).await;
    assert_eq!(status, 200, "{text}");
    let fresh = body["state"].as_str().unwrap().to_owned();
    let (status, body, text) = a.login("code-1", &fresh, SESSION_REDIRECT).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        body["claims"]["sub"], "session:alice",
        "namespaced by its provider"
    );
    // Both are single use.
    assert_eq!(exchange(&a, &p.url_state, &p.secret).await.0, 401);
    assert_eq!(a.login("code-1", &fresh, SESSION_REDIRECT).await.0, 401);
}

fn claims(issuer: &str, nonce: Option<&str>) -> Value {
    let mut c =
        json!({"iss": issuer, "aud": CLIENT_ID, "sub": "alice", "exp": T0 + 3600, "iat": T0});
    if let Some(n) = nonce {
        c["nonce"] = json!(n);
    }
    c
}

#[tokio::test]
async fn authorize_builds_an_authorization_url_with_pkce_s256_and_a_nonce() {
    let (idp, a) = setup().await;
    let s = start(&a, &idp).await;
    assert_eq!(s.params["response_type"], "code");
    assert_eq!(s.params["client_id"], CLIENT_ID);
    assert_eq!(s.params["redirect_uri"], SESSION_REDIRECT);
    assert_eq!(s.params["scope"], "openid email groups");
    assert_eq!(s.params["code_challenge_method"], "S256");
    assert_eq!(s.params["code_challenge"].len(), 43);
    assert!(s.params["nonce"].len() >= 43);
    assert!(s.state.len() >= 43);
    assert_eq!(s.expires_at, T0 + 600);
    // Two logins never share a state, nonce or challenge.
    let t = start(&a, &idp).await;
    assert_ne!(s.state, t.state);
    assert_ne!(s.params["nonce"], t.params["nonce"]);
    assert_ne!(s.params["code_challenge"], t.params["code_challenge"]);
}

#[tokio::test]
async fn a_session_login_sends_the_server_side_verifier_and_checks_the_nonce() {
    let (idp, a) = setup().await;
    let s = start(&a, &idp).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&s.params["nonce"])), json!({})),
    );
    let (status, body, text) = a.login("code-1", &s.state, SESSION_REDIRECT).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["claims"]["sub"], "session:alice");
    let req = idp.last_token_request();
    let verifier = &req.form["code_verifier"];
    // The verifier was never in the browser: not the state, not in the URL, and it matches
    // the challenge that was.
    assert_ne!(verifier, &s.state);
    assert!(!s.params.values().any(|v| v == verifier));
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        s.params["code_challenge"]
    );
}

#[tokio::test]
async fn a_session_is_single_use() {
    let (idp, a) = setup().await;
    let s = start(&a, &idp).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&s.params["nonce"])), json!({})),
    );
    assert_eq!(a.login("code-1", &s.state, SESSION_REDIRECT).await.0, 200);
    let got = a.login("code-1", &s.state, SESSION_REDIRECT).await;
    assert_refused(&got, 401, &["alice", "code-1"]);
    assert_eq!(
        idp.token_hits(),
        1,
        "a replayed session never reaches the token endpoint"
    );
}

#[tokio::test]
async fn a_session_expires_after_its_ttl() {
    let (idp, a) = setup().await;
    let s = start(&a, &idp).await;
    a.clock.advance(600);
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&s.params["nonce"])), json!({})),
    );
    assert_refused(
        &a.login("code-1", &s.state, SESSION_REDIRECT).await,
        401,
        &["alice"],
    );
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn the_session_ttl_is_configurable() {
    let idp = HostileIdp::start().await;
    let p = provider(
        "session",
        &idp.issuer,
        &[SESSION_REDIRECT],
        PkceMode::Session,
    );
    let mut cfg = base_config(vec![p]);
    cfg.session_ttl = CfgDuration::from_secs(30);
    let a = Authn::start(cfg, ManualClock::new(T0)).await;
    let s = start(&a, &idp).await;
    assert_eq!(s.expires_at, T0 + 30);
    a.clock.advance(29);
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&s.params["nonce"])), json!({})),
    );
    assert_eq!(a.login("c", &s.state, SESSION_REDIRECT).await.0, 200);
}

#[tokio::test]
async fn a_nonce_mismatch_or_missing_nonce_is_refused() {
    let (idp, a) = setup().await;
    for nonce in [Some("another-nonce"), None] {
        let s = start(&a, &idp).await;
        let token = keys().rs256.sign(&claims(&idp.issuer, nonce), json!({}));
        idp.issue(token.clone());
        let got = a.login("code-1", &s.state, SESSION_REDIRECT).await;
        assert_refused(&got, 401, &["alice", &token]);
        assert!(got.1["message"].as_str().unwrap().contains("nonce"));
    }
}

#[tokio::test]
async fn an_unknown_state_is_refused_without_contacting_the_idp() {
    let (idp, a) = setup().await;
    assert_refused(
        &a.login("code-1", &verifier(1), SESSION_REDIRECT).await,
        401,
        &[],
    );
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn a_session_is_bound_to_its_redirect_uri() {
    let idp = HostileIdp::start().await;
    let p = provider(
        "session",
        &idp.issuer,
        &[SESSION_REDIRECT, "https://app.example/other"],
        PkceMode::Session,
    );
    let a = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    let s = start(&a, &idp).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&s.params["nonce"])), json!({})),
    );
    let got = a
        .login("code-1", &s.state, "https://app.example/other")
        .await;
    assert_refused(&got, 401, &["alice"]);
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn a_state_mode_provider_cannot_start_a_session_and_state_mode_ignores_sessions() {
    let (idp, a) = setup().await;
    let got = a.authorize(REDIRECT).await;
    assert_refused(&got, 400, &[]);
    assert!(got.1["message"].as_str().unwrap().contains("pkce: state"));
    assert_refused(&a.authorize("https://evil.example/cb").await, 400, &[]);
    assert_eq!(idp.discovery_hits(), 0);
}

#[tokio::test]
async fn sessions_are_shared_through_the_store_by_every_replica() {
    // Two authenticator instances over the same SQLite file: one starts, the other finishes.
    let idp = HostileIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let open = || async {
        let s: std::sync::Arc<dyn lakests_core::Store> = std::sync::Arc::new(
            lakests_store::SqliteStore::open(&path, std::time::Duration::from_secs(5))
                .await
                .unwrap(),
        );
        s
    };
    let cfg = base_config(vec![provider(
        "session",
        &idp.issuer,
        &[SESSION_REDIRECT],
        PkceMode::Session,
    )]);
    let clock = ManualClock::new(T0);
    let one = lakests_authenticator::AuthenticatorService::new(
        &cfg,
        open().await,
        std::sync::Arc::new(clock.clone()),
    )
    .unwrap();
    let two = lakests_authenticator::AuthenticatorService::new(
        &cfg,
        open().await,
        std::sync::Arc::new(clock.clone()),
    )
    .unwrap();
    let ctx = lakests_core::RequestContext::default();
    let started = one
        .authorize(
            &lakests_api::AuthorizeRequest {
                redirect_uri: SESSION_REDIRECT.into(),
            },
            &ctx,
        )
        .await
        .unwrap();
    let url = Url::parse(&started.authorization_url).unwrap();
    let nonce = url
        .query_pairs()
        .find(|(k, _)| k == "nonce")
        .unwrap()
        .1
        .into_owned();
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, Some(&nonce)), json!({})),
    );
    use lakests_core::Authenticator;
    // Started on one replica, exchanged on the second, redeemed on the first... then the
    // second: every step finds what another replica stored.
    let fresh = two
        .exchange(
            &lakests_api::AuthorizeExchangeRequest {
                state: started.state.clone(),
                redeem_secret: started.redeem_secret.clone().unwrap(),
            },
            &ctx,
        )
        .await
        .unwrap();
    let req = lakests_api::AuthenticatorStsRequest {
        code: "c".into(),
        state: fresh.state.clone(),
        redirect_uri: SESSION_REDIRECT.into(),
    };
    let claims = two.sts_login(&req, &ctx).await.unwrap();
    assert_eq!(claims["sub"], "session:alice");
    // And it is gone for the first replica too.
    assert!(matches!(
        one.sts_login(&req, &ctx).await,
        Err(lakests_core::AuthenticatorError::Unauthorized(_))
    ));
}
