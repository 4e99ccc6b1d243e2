//! End to end against panva's `oidc-provider` (OpenID Certified), run from npm: a public
//! PKCE client with RS256 ID tokens and a confidential `client_secret_basic` client with
//! ES256 ID tokens, each in both PKCE modes. A scripted browser completes the login.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakests_config::{ClientAuth, PkceMode, ProviderConfig, Secret};
use lakests_core::{Clock, SystemClock};
use serde_json::{Value, json};
use url::Url;

use crate::support::browser::{complete_login, complete_login_trusting};
use crate::support::node::{CONFIDENTIAL_SECRET, OidcProvider, test_ca};
use crate::support::*;

const PUBLIC_STATE: &str = "http://127.0.0.1:8085/callback";
const PUBLIC_SESSION: &str = "http://127.0.0.1:8085/session-callback";
const CONF_STATE: &str = "https://app.example/callback";
const CONF_SESSION: &str = "https://app.example/session-callback";
const SCOPES: [&str; 4] = ["openid", "email", "profile", "groups"];

fn op_provider(
    name: &str,
    issuer: &str,
    redirect: &str,
    confidential: bool,
    pkce: PkceMode,
) -> ProviderConfig {
    let mut p = provider(name, issuer, &[redirect], pkce);
    p.scopes = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if confidential {
        p.client_id = "lakests-confidential".into();
        p.client_secret = Some(Secret::new(CONFIDENTIAL_SECRET));
        p.client_auth = Some(ClientAuth::ClientSecretBasic);
    } else {
        p.client_id = "lakests-public".into();
        p.client_secret = None;
        p.client_auth = Some(ClientAuth::None);
        p.allow_loopback_any_port = true;
    }
    p
}

struct Env {
    op: OidcProvider,
    authn: Authn,
    authorization_endpoint: String,
}

async fn setup(userinfo_for_confidential_session: bool) -> Env {
    let op = OidcProvider::start().await;
    let mut conf_session = op_provider(
        "conf-session",
        &op.issuer,
        CONF_SESSION,
        true,
        PkceMode::Session,
    );
    conf_session.userinfo = userinfo_for_confidential_session;
    let providers = vec![
        op_provider(
            "public-state",
            &op.issuer,
            PUBLIC_STATE,
            false,
            PkceMode::State,
        ),
        op_provider(
            "public-session",
            &op.issuer,
            PUBLIC_SESSION,
            false,
            PkceMode::Session,
        ),
        op_provider("conf-state", &op.issuer, CONF_STATE, true, PkceMode::State),
        conf_session,
    ];
    // Real time here: oidc-provider stamps its tokens with the wall clock.
    let clock = lakests_core::ManualClock::new(SystemClock.now());
    let authn = Authn::start(base_config(providers), clock).await;
    let authorization_endpoint = format!("{}/auth", op.issuer);
    Env {
        op,
        authn,
        authorization_endpoint,
    }
}

fn keep_clock_in_step(env: &Env) {
    env.authn.clock.set(SystemClock.now());
}

/// lakeFS's documented client (WIRE.md §6): verifier = base64url(32 random bytes),
/// state = verifier, S256 challenge; the client builds the authorization URL itself.
fn lakefs_style_authorization_url(
    env: &Env,
    client_id: &str,
    redirect_uri: &str,
    login_hint: &str,
) -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let mut url = Url::parse(&env.authorization_endpoint).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &SCOPES.join(" "))
        .append_pair("state", &verifier)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", login_hint);
    (url.into(), verifier)
}

fn assert_alice(claims: &Value, issuer: &str, client_id: &str) {
    let c = claims.as_object().unwrap();
    // The sub comes back namespaced by the provider (its name by default).
    let sub = c["sub"].as_str().unwrap();
    assert!(sub.ends_with(":alice"), "{sub}");
    assert_eq!(c["iss"], issuer);
    assert_eq!(c["aud"], client_id);
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["email_verified"], "true");
    assert_eq!(c["name"], "Alice Liddell");
    assert_eq!(c["groups"], "admins,data-engineers");
    assert!(c["exp"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(c.values().all(Value::is_string));
}

/// The JOSE header of the last ID token the provider issued to `client_id`.
async fn last_id_token_header(env: &Env, client_id: &str) -> Value {
    reqwest::get(format!(
        "{}/test/last-id-token-header/{client_id}",
        env.op.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_public_pkce_client_in_state_mode_logs_in_with_rs256() {
    let env = setup(false).await;
    let (url, verifier) =
        lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    assert_eq!(cb.state, verifier);
    assert_eq!(cb.iss.as_deref(), Some(env.op.issuer.as_str()));
    keep_clock_in_step(&env);
    let (status, body, text) = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 200, "{text}");
    assert_alice(&body["claims"], &env.op.issuer, "lakests-public");
    assert!(
        body["claims"].get("userinfo_only").is_none(),
        "userinfo is off for this provider"
    );
    // The code is single use at the provider: a replay is a refused login.
    let got = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_refused(&got, 401, &["alice@example.com", &cb.code]);
    let header = last_id_token_header(&env, "lakests-public").await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "rsa-1");
}

#[tokio::test]
async fn a_confidential_client_secret_basic_client_in_state_mode_logs_in_with_es256() {
    let env = setup(false).await;
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-confidential", CONF_STATE, "bob");
    let cb = complete_login(&url, CONF_STATE).await;
    keep_clock_in_step(&env);
    let (status, body, text) = env.authn.login(&cb.code, &cb.state, CONF_STATE).await;
    assert_eq!(status, 200, "{text}");
    let c = &body["claims"];
    assert_eq!(
        c["sub"], "conf-state:bob",
        "namespaced by the provider's name"
    );
    assert_eq!(c["aud"], "lakests-confidential");
    assert_eq!(c["groups"], "viewers");
    assert_eq!(c["email_verified"], "false");
    let header = last_id_token_header(&env, "lakests-confidential").await;
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], "ec-1");
}

#[tokio::test]
async fn a_public_client_in_session_mode_logs_in_and_the_verifier_never_leaves_the_server() {
    let env = setup(false).await;
    let (status, started, text) = env.authn.authorize(PUBLIC_SESSION).await;
    assert_eq!(status, 200, "{text}");
    let url = started["authorization_url"].as_str().unwrap();
    let state = started["state"].as_str().unwrap();
    let cb = complete_login(url, PUBLIC_SESSION).await;
    assert_eq!(cb.state, state);
    keep_clock_in_step(&env);
    // The redirect alone redeems nothing (issue 12, point 2)...
    assert_refused(
        &env.authn.login(&cb.code, &cb.state, PUBLIC_SESSION).await,
        401,
        &["alice"],
    );
    // ...the client proves its secret and posts the one-time state it gets.
    let fresh = exchange(&env, &cb.state, &started).await;
    let (status, body, text) = env.authn.login(&cb.code, &fresh, PUBLIC_SESSION).await;
    assert_eq!(status, 200, "{text}");
    assert_alice(&body["claims"], &env.op.issuer, "lakests-public");
    assert!(
        body["claims"]["nonce"]
            .as_str()
            .is_some_and(|n| url.contains(n))
    );
    // The session is consumed.
    assert_refused(
        &env.authn.login(&cb.code, &fresh, PUBLIC_SESSION).await,
        401,
        &["alice"],
    );
}

/// Session mode's exchange: the redirect's state and the redeem secret for the state of
/// `sts/login`.
async fn exchange(env: &Env, state: &str, started: &Value) -> String {
    let (status, body, text) = env
        .authn
        .post(
            "/api/v1/sts/authorize/exchange",
            json!({"state": state, "redeem_secret": started["redeem_secret"]}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    body["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_confidential_client_in_session_mode_logs_in_and_merges_userinfo() {
    let env = setup(true).await;
    let (status, started, text) = env.authn.authorize(CONF_SESSION).await;
    assert_eq!(status, 200, "{text}");
    let cb = complete_login(started["authorization_url"].as_str().unwrap(), CONF_SESSION).await;
    keep_clock_in_step(&env);
    let fresh = exchange(&env, &cb.state, &started).await;
    let (status, body, text) = env.authn.login(&cb.code, &fresh, CONF_SESSION).await;
    assert_eq!(status, 200, "{text}");
    assert_alice(&body["claims"], &env.op.issuer, "lakests-confidential");
    assert_eq!(body["claims"]["userinfo_only"], "from-userinfo");
    assert_eq!(
        last_id_token_header(&env, "lakests-confidential").await["alg"],
        "ES256"
    );
}

#[tokio::test]
async fn a_loopback_redirect_on_another_port_works_end_to_end_for_the_native_client() {
    let env = setup(false).await;
    let redirect = "http://127.0.0.1:49152/callback";
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", redirect, "alice");
    let cb = complete_login(&url, redirect).await;
    keep_clock_in_step(&env);
    let (status, body, text) = env.authn.login(&cb.code, &cb.state, redirect).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["claims"]["sub"], "public-state:alice");
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_by_the_provider_as_invalid_grant() {
    let env = setup(false).await;
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    keep_clock_in_step(&env);
    // Another valid-looking verifier: the S256 check at the provider fails.
    let other = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let got = env.authn.login(&cb.code, &other, PUBLIC_STATE).await;
    assert_refused(&got, 401, &[&cb.code, "alice"]);
    assert!(got.1["message"].as_str().unwrap().contains("invalid_grant"));
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_500_that_leaks_nothing() {
    let op = OidcProvider::start().await;
    let mut p = op_provider("conf-state", &op.issuer, CONF_STATE, true, PkceMode::State);
    p.client_secret = Some(Secret::new("not-the-secret"));
    let authn = Authn::start(
        base_config(vec![p]),
        lakests_core::ManualClock::new(SystemClock.now()),
    )
    .await;
    let env = Env {
        authorization_endpoint: format!("{}/auth", op.issuer),
        op,
        authn,
    };
    let (url, _) =
        lakefs_style_authorization_url(&env, "lakests-confidential", CONF_STATE, "alice");
    let cb = complete_login(&url, CONF_STATE).await;
    let got = env.authn.login(&cb.code, &cb.state, CONF_STATE).await;
    assert_refused(&got, 500, &["not-the-secret", &cb.code]);
}

#[tokio::test]
async fn an_https_provider_is_trusted_through_the_extra_ca_bundle_and_refused_without_it() {
    let op = OidcProvider::start_with(true).await;
    assert!(op.issuer.starts_with("https://127.0.0.1:"), "{}", op.issuer);
    let ca = test_ca();
    let p = op_provider(
        "public-state",
        &op.issuer,
        PUBLIC_STATE,
        false,
        PkceMode::State,
    );

    // Without the CA: the provider's certificate is not trusted, nothing is sent.
    let untrusting = Authn::start(
        base_config(vec![p.clone()]),
        lakests_core::ManualClock::new(SystemClock.now()),
    )
    .await;
    let env = Env {
        authorization_endpoint: format!("{}/auth", op.issuer),
        op,
        authn: untrusting,
    };
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login_trusting(&url, PUBLIC_STATE, Some(&ca)).await;
    let got = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_refused(&got, 502, &[&cb.code]);

    // With authenticator.ca_file: the same login goes through.
    let mut cfg = base_config(vec![p]);
    cfg.ca_file = Some(ca.clone());
    let trusting = Authn::start(cfg, lakests_core::ManualClock::new(SystemClock.now())).await;
    let (status, body, text) = trusting.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 200, "{text}");
    assert_alice(&body["claims"], &env.op.issuer, "lakests-public");
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_refused_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let store: std::sync::Arc<dyn lakests_core::Store> = std::sync::Arc::new(
        lakests_store::SqliteStore::open(&dir.path().join("db"), std::time::Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock);
    for file in [bogus, dir.path().join("missing.pem")] {
        let mut cfg = base_config(vec![op_provider(
            "p",
            "https://idp.example",
            CONF_STATE,
            true,
            PkceMode::State,
        )]);
        cfg.ca_file = Some(file.clone());
        let err =
            lakests_authenticator::AuthenticatorService::new(&cfg, store.clone(), clock.clone())
                .unwrap_err();
        assert!(err.to_string().contains("ca_file"), "{err}");
    }
}

/// Provisioning at first login through oidc-provider: the user is created under the namespaced
/// external id the authenticator returns (what lakeFS's `StsLogin` looks up), with e-mail,
/// friendly name and the groups of the `groups` claim; a later login brings memberships back in
/// line with the claim.
#[tokio::test]
async fn a_first_login_through_oidc_provider_provisions_the_user_with_its_groups() {
    let op = OidcProvider::start().await;
    let mut p = op_provider("panva", &op.issuer, PUBLIC_STATE, false, PkceMode::State);
    p.provision_users = true;
    p.groups_claim = Some("groups".into());
    let clock = lakests_core::ManualClock::new(SystemClock.now());
    let authn = Authn::start(base_config(vec![p]), clock).await;
    let authorization_endpoint = format!("{}/auth", op.issuer);
    let env = Env {
        op,
        authn,
        authorization_endpoint,
    };
    assert!(
        env.authn
            .store
            .find_user_by_external_id("panva:alice")
            .await
            .unwrap()
            .is_none(),
        "no admin created alice"
    );
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    keep_clock_in_step(&env);
    let (status, body, text) = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["claims"]["sub"], "panva:alice");
    let user = env
        .authn
        .store
        .find_user_by_external_id("panva:alice")
        .await
        .unwrap()
        .expect("provisioned");
    assert_eq!(user.username, "alice");
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.friendly_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(user.groups, ["admins", "data-engineers"]);

    env.authn
        .store
        .set_user_groups("alice", &["stale".into()])
        .await
        .unwrap();
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    keep_clock_in_step(&env);
    let (status, _, text) = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 200, "{text}");
    let user = env.authn.store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(user.groups, ["admins", "data-engineers"], "synced back");

    // Issue 15: a removed user whom the provider still signs in is not created again.
    assert!(env.authn.store.delete_user("alice").await.unwrap());
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    keep_clock_in_step(&env);
    let (status, body, text) = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(body["reason"], "identity_removed", "{text}");
    assert!(!text.contains("alice"), "the refusal names no user: {text}");
    assert!(
        env.authn.store.get_user("alice").await.unwrap().is_none(),
        "not provisioned again"
    );

    // Readmitted by an administrator: the next login provisions it again.
    assert!(
        env.authn
            .store
            .readmit_identity("panva:alice")
            .await
            .unwrap()
    );
    let (url, _) = lakefs_style_authorization_url(&env, "lakests-public", PUBLIC_STATE, "alice");
    let cb = complete_login(&url, PUBLIC_STATE).await;
    keep_clock_in_step(&env);
    let (status, _, text) = env.authn.login(&cb.code, &cb.state, PUBLIC_STATE).await;
    assert_eq!(status, 200, "{text}");
    assert!(env.authn.store.get_user("alice").await.unwrap().is_some());
}
