//! The development IdP over real HTTP on 127.0.0.1: discovery, keys, the code flow for public
//! and confidential clients, every protocol refusal, and every fault switch.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lakests_config::IdpFault;
use lakests_core::ManualClock;
use serde_json::Value;

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_issuer() {
    let idp = TestIdp::start(config()).await;
    let resp = idp
        .http
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["issuer"], idp.issuer.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[key], idp.url(path).as_str(), "{key}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
    let health = idp.http.get(idp.url("/healthcheck")).send().await.unwrap();
    assert_eq!(health.status(), 204);
}

#[tokio::test]
async fn jwks_publishes_one_rs256_and_one_es256_signing_key() {
    let idp = TestIdp::start(config()).await;
    let jwks = idp.jwks().await;
    let json = serde_json::to_value(&jwks).unwrap();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{json}");
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, ["RS256", "ES256"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().is_some_and(|s| s.len() >= 40), "{k}");
        assert!(k.get("d").is_none(), "no private parts in the JWKS: {k}");
    }
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[1]["kty"], "EC");
    assert_eq!(keys[1]["crv"], "P-256");
}

#[tokio::test]
async fn a_public_client_completes_the_code_flow_with_pkce() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    let body = idp.redeem(&code, &pkce).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let id_token = body["id_token"].as_str().unwrap();
    let claims = verify_signature(id_token, &idp.jwks().await).expect("signature verifies");
    let (header, _) = unverified(id_token);
    assert_eq!(header["alg"], "RS256");
    let now = idp.clock_now();
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], PUBLIC_CLIENT);
    assert_eq!(claims["azp"], PUBLIC_CLIENT);
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["auth_time"], now);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], serde_json::json!(["admins", "data"]));
    assert_eq!(claims["department"], "data");
    assert_eq!(claims["level"], 3);
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_client_secret_basic() {
    let idp = TestIdp::start(config()).await;
    let code = confidential_code(&idp).await;
    let resp = idp
        .http
        .post(idp.url("/token"))
        .basic_auth(
            form_encode(CONFIDENTIAL_CLIENT),
            Some(form_encode(CONFIDENTIAL_SECRET)),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let (header, _) = unverified(id_token);
    assert_eq!(
        header["alg"], "ES256",
        "the client's id_token_signed_response_alg wins"
    );
    let claims = verify_signature(id_token, &idp.jwks().await).unwrap();
    assert_eq!(claims["aud"], CONFIDENTIAL_CLIENT);
    assert_eq!(claims["sub"], "alice");
    assert!(
        claims.get("nonce").is_none(),
        "no nonce was sent, none is echoed"
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_client_secret_post() {
    let idp = TestIdp::start(config()).await;
    let code = confidential_code(&idp).await;
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CONFIDENTIAL_REDIRECT),
            ("client_id", CONFIDENTIAL_CLIENT),
            ("client_secret", CONFIDENTIAL_SECRET),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn client_authentication_failures_follow_rfc_6749() {
    let idp = TestIdp::start(config()).await;
    let base = |code: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), CONFIDENTIAL_REDIRECT.to_owned()),
        ]
    };
    // Wrong secret over Basic.
    let code = confidential_code(&idp).await;
    let resp = idp
        .http
        .post(idp.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some("wrong"))
        .form(&base(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_oauth_error(resp, "invalid_client").await;
    // No secret at all for a confidential client.
    let mut form = base(&code);
    form.push(("client_id".into(), CONFIDENTIAL_CLIENT.into()));
    let resp = idp
        .http
        .post(idp.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_oauth_error(resp, "invalid_client").await;
    // Two methods at once.
    let mut form = base(&code);
    form.push(("client_secret".into(), CONFIDENTIAL_SECRET.into()));
    let resp = idp
        .http
        .post(idp.url("/token"))
        .basic_auth(
            form_encode(CONFIDENTIAL_CLIENT),
            Some(form_encode(CONFIDENTIAL_SECRET)),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_oauth_error(resp, "invalid_request").await;
    // An unknown client.
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "nobody"),
        ])
        .await;
    assert_eq!(resp.status(), 401);
    assert_oauth_error(resp, "invalid_client").await;
    // A public client that sends a secret.
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", PUBLIC_CLIENT),
            ("client_secret", "made-up"),
        ])
        .await;
    assert_eq!(resp.status(), 401);
    assert_oauth_error(resp, "invalid_client").await;
}

#[tokio::test]
async fn a_code_is_single_use_and_a_replay_revokes_its_access_token() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    let body = idp.redeem(&code, &pkce).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let info = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let again = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("client_id", PUBLIC_CLIENT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .await;
    assert_eq!(again.status(), 400);
    assert_oauth_error(again, "invalid_grant").await;
    let info = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        401,
        "the replay revoked the first access token"
    );
}

#[tokio::test]
async fn a_code_expires_sixty_seconds_after_it_was_issued() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    idp.clock.advance(59);
    idp.redeem(&code, &pkce).await;

    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    idp.clock.advance(60);
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("client_id", PUBLIC_CLIENT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .await;
    assert_eq!(resp.status(), 400);
    let body = assert_oauth_error(resp, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn the_token_request_must_repeat_the_exact_redirect_uri_and_client() {
    let idp = TestIdp::start(config()).await;
    for (redirect_uri, client_id) in [
        ("http://127.0.0.1:9/other", PUBLIC_CLIENT),
        ("http://127.0.0.1:9/callback/", PUBLIC_CLIENT),
    ] {
        let pkce = Pkce::new();
        let code = idp.code_for("alice", &pkce, &[]).await;
        let resp = idp
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("code_verifier", pkce.verifier.as_str()),
            ])
            .await;
        assert_oauth_error(resp, "invalid_grant").await;
    }
    // A code issued to the public client cannot be redeemed by the confidential one.
    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("client_id", CONFIDENTIAL_CLIENT),
            ("client_secret", CONFIDENTIAL_SECRET),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .await;
    assert_oauth_error(resp, "invalid_grant").await;
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    for (client_id, redirect_uri) in [
        (PUBLIC_CLIENT, "http://127.0.0.1:9/callback/"),
        (PUBLIC_CLIENT, "https://evil.example/cb"),
        (PUBLIC_CLIENT, "http://127.0.0.1:9/callback?x=1"),
        ("nobody", PUBLIC_REDIRECT),
    ] {
        let resp = idp
            .authorize_get(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .await;
        assert_eq!(resp.status(), 400, "{client_id} {redirect_uri}");
        assert!(resp.headers().get("location").is_none());
        let html = resp.text().await.unwrap();
        assert!(html.contains("Development only."), "{html}");
        assert!(
            !html.contains("evil.example"),
            "the rejected URI is not echoed"
        );
    }
}

#[tokio::test]
async fn pkce_is_s256_only_and_required_for_public_clients() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let base = [
        ("response_type", "code"),
        ("client_id", PUBLIC_CLIENT),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("scope", "openid"),
        ("state", "keep-me"),
    ];
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("code_challenge", pkce.challenge.as_str())],
        vec![
            ("code_challenge", pkce.verifier.as_str()),
            ("code_challenge_method", "plain"),
        ],
        vec![
            ("code_challenge", "too-short"),
            ("code_challenge_method", "S256"),
        ],
        vec![("code_challenge_method", "S256")],
    ];
    for extra in cases {
        let mut params = base.to_vec();
        params.extend(extra.iter().copied());
        let resp = idp.authorize_get(&params).await;
        assert_eq!(resp.status(), 302, "{extra:?}");
        let q = location_params(&resp);
        assert_eq!(q["error"], "invalid_request", "{extra:?}");
        assert_eq!(q["state"], "keep-me");
        assert!(location(&resp).starts_with(PUBLIC_REDIRECT));
        assert!(!q.contains_key("code"));
    }

    // A wrong verifier, a missing one, and a malformed one are all refused at /token.
    for verifier in [Some(Pkce::new().verifier), None, Some("short".to_owned())] {
        let code = idp.code_for("alice", &pkce, &[]).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("client_id", PUBLIC_CLIENT),
        ];
        if let Some(v) = verifier.as_deref() {
            form.push(("code_verifier", v));
        }
        let resp = idp.token(&form).await;
        assert_eq!(resp.status(), 400);
        assert_oauth_error(resp, "invalid_grant").await;
    }
}

#[tokio::test]
async fn other_authorize_errors_redirect_back_with_the_state() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let base = [
        ("client_id", PUBLIC_CLIENT),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (extra, error) in [
        (
            vec![("response_type", "token"), ("scope", "openid")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid")], "invalid_request"),
        (
            vec![("response_type", "code"), ("scope", "email")],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", "eyJ"),
            ],
            "request_not_supported",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
            ],
            "login_required",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("lakests_fault", "sometimes"),
            ],
            "invalid_request",
        ),
    ] {
        let mut params = base.to_vec();
        params.extend(extra.iter().copied());
        let resp = idp.authorize_get(&params).await;
        assert_eq!(resp.status(), 302, "{extra:?}");
        let q = location_params(&resp);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], idp.issuer);
    }
}

#[tokio::test]
async fn the_sign_in_page_lists_users_and_says_it_is_for_development() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let resp = idp
        .authorize_get(&[
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid"),
            ("state", "<b>state</b>"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice"),
        ])
        .await;
    assert_eq!(
        resp.status(),
        200,
        "interactive mode shows the page even with a hint"
    );
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("Development only."));
    assert!(html.contains("Sign in as Alice Liddell"));
    assert!(html.contains("Sign in as Bob"));
    assert!(html.contains("Password for Bob"));
    assert!(!html.contains("Password for Alice"));
    assert!(
        html.contains("&lt;b&gt;state&lt;/b&gt;"),
        "the state is carried, escaped"
    );
    assert!(!html.contains("<b>state"));
}

#[tokio::test]
async fn a_password_user_signs_in_only_with_the_right_password() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let params = |pw: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", pkce.challenge.clone().leak() as &str),
            ("code_challenge_method", "S256"),
            ("sub", "bob"),
            ("password", pw),
        ]
    };
    let resp = idp.authorize_post(&params("wrong")).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("wrong password"));
    let resp = idp.authorize_post(&params("")).await;
    assert_eq!(resp.status(), 401);
    let resp = idp.authorize_post(&params(BOB_PASSWORD)).await;
    assert_eq!(resp.status(), 303);
    let code = location_params(&resp)["code"].clone();
    let body = idp.redeem(&code, &pkce).await;
    let (_, claims) = unverified(body["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "bob");
}

#[tokio::test]
async fn cancelling_redirects_back_with_access_denied() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let resp = idp
        .authorize_post(&[
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid"),
            ("state", "s9"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("action", "cancel"),
        ])
        .await;
    assert_eq!(resp.status(), 303);
    let q = location_params(&resp);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "s9");
}

#[tokio::test]
async fn non_interactive_mode_signs_in_the_login_hint_and_otherwise_shows_the_page() {
    let mut cfg = config();
    cfg.interactive = false;
    let idp = TestIdp::start(cfg).await;
    let pkce = Pkce::new();
    let params = |hint: Option<&'static str>| {
        let mut p = vec![
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid"),
            ("state", "ci"),
            ("nonce", "nn"),
            ("code_challenge", pkce.challenge.clone().leak() as &str),
            ("code_challenge_method", "S256"),
        ];
        if let Some(h) = hint {
            p.push(("login_hint", h));
        }
        p
    };
    let resp = idp.authorize_get(&params(Some("bob"))).await;
    assert_eq!(resp.status(), 302);
    let q = location_params(&resp);
    assert_eq!(q["state"], "ci");
    let body = idp.redeem(&q["code"], &pkce).await;
    let (_, claims) = unverified(body["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["nonce"], "nn");

    let resp = idp.authorize_get(&params(None)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Sign in as Alice Liddell")
    );

    let resp = idp.authorize_get(&params(Some("mallory"))).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location_params(&resp)["error"], "login_required");
}

#[tokio::test]
async fn userinfo_answers_a_valid_access_token_and_refuses_the_rest() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice", &pkce, &[]).await;
    let body = idp.redeem(&code, &pkce).await;
    let access = body["access_token"].as_str().unwrap();
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let info: Value = idp
            .http
            .request(method, idp.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["sub"], "alice");
        assert_eq!(info["email"], "alice@example.com");
        assert_eq!(info["groups"], serde_json::json!(["admins", "data"]));
        assert_eq!(info["department"], "data");
    }
    let none = idp.http.get(idp.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    idp.clock.advance(3600);
    let expired = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expired.status(),
        401,
        "access tokens expire with the ID token TTL"
    );
}

#[tokio::test]
async fn keys_survive_a_restart_with_the_same_kids() {
    let idp = TestIdp::start(config()).await;
    let before = kids(&idp.jwks().await);
    let keys_dir = idp.keys_dir.clone();
    let token = idp.id_token_for("alice", &[]).await;
    let dir = idp.stop().await;
    let again = TestIdp::start_in(
        config(),
        &keys_dir,
        ManualClock::new(lakests_core::Clock::now(&lakests_core::SystemClock)),
    )
    .await;
    let jwks = again.jwks().await;
    assert_eq!(kids(&jwks), before);
    verify_signature(&token, &jwks).expect("a token from before the restart verifies");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    for f in std::fs::read_dir(&keys_dir).unwrap() {
        let f = f.unwrap();
        assert_eq!(
            f.metadata().unwrap().permissions().mode() & 0o777,
            0o600,
            "{:?}",
            f.file_name()
        );
    }
    drop(dir);
}

#[tokio::test]
async fn rotating_keys_keeps_the_previous_keys_published() {
    let idp = TestIdp::start(config()).await;
    let before = kids(&idp.jwks().await);
    let old_token = idp.id_token_for("alice", &[]).await;
    let unpublished = idp
        .id_token_for("alice", &[("lakests_fault", "unpublished_key")])
        .await;

    let new_kids = lakests_devidp::rotate_keys(&idp.keys_dir).unwrap();
    assert_eq!(new_kids.len(), 2);
    let jwks = idp.jwks().await;
    let after = kids(&jwks);
    assert_eq!(
        after.len(),
        4,
        "two current and two previous keys: {after:?}"
    );
    assert_eq!(&after[..2], &new_kids[..], "the new keys come first");
    assert_eq!(&after[2..], &before[..], "the old keys stay published");
    verify_signature(&old_token, &jwks).expect("a token signed before the rotation still verifies");

    let new_token = idp.id_token_for("alice", &[]).await;
    let (header, _) = unverified(&new_token);
    assert_eq!(
        header["kid"],
        new_kids[0].as_str(),
        "the running IdP signs with the new key"
    );
    let (header, _) = unverified(&unpublished);
    assert_eq!(
        header["kid"],
        new_kids[0].as_str(),
        "the key that was not yet published is the one rotation makes current"
    );
    verify_signature(&unpublished, &jwks).expect("it verifies once published");

    lakests_devidp::rotate_keys(&idp.keys_dir).unwrap();
    let jwks = idp.jwks().await;
    assert!(
        verify_signature(&old_token, &jwks).is_err(),
        "two rotations drop the oldest keys"
    );
    assert_eq!(kids(&jwks).len(), 4);
}

// --- fault switches -------------------------------------------------------------------------

async fn faulty_token(idp: &TestIdp, fault: &str) -> (Value, Value, Result<Value, String>) {
    let token = idp.id_token_for("alice", &[("lakests_fault", fault)]).await;
    let (header, claims) = unverified(&token);
    let verified = verify_signature(&token, &idp.jwks().await);
    (header, claims, verified)
}

#[tokio::test]
async fn the_expired_fault_issues_a_token_that_expired_five_minutes_ago() {
    let idp = TestIdp::start(config()).await;
    let now = idp.clock_now();
    let (_, claims, verified) = faulty_token(&idp, "expired").await;
    verified.expect("the signature is good");
    assert_eq!(claims["exp"], now - 300);
    assert_eq!(claims["iat"], now - 300 - 3600);
    assert_eq!(claims["aud"], PUBLIC_CLIENT);
}

#[tokio::test]
async fn the_future_iat_fault_issues_a_token_issued_ten_minutes_ahead() {
    let idp = TestIdp::start(config()).await;
    let now = idp.clock_now();
    let (_, claims, verified) = faulty_token(&idp, "future_iat").await;
    verified.expect("the signature is good");
    assert_eq!(claims["iat"], now + 600);
    assert_eq!(claims["exp"], now + 600 + 3600);
}

#[tokio::test]
async fn the_wrong_audience_fault_issues_a_token_for_another_audience() {
    let idp = TestIdp::start(config()).await;
    let (_, claims, verified) = faulty_token(&idp, "wrong_audience").await;
    verified.expect("the signature is good");
    assert_eq!(claims["aud"], "lakests-devidp-wrong-audience");
    assert_eq!(claims["sub"], "alice");
}

#[tokio::test]
async fn the_bad_signature_fault_issues_an_honest_token_whose_signature_fails() {
    let idp = TestIdp::start(config()).await;
    let jwks = idp.jwks().await;
    let (header, claims, verified) = faulty_token(&idp, "bad_signature").await;
    assert_eq!(verified.unwrap_err(), "InvalidSignature");
    assert!(
        jwks.find(header["kid"].as_str().unwrap()).is_some(),
        "it names a published key"
    );
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], PUBLIC_CLIENT);
}

#[tokio::test]
async fn the_missing_claim_fault_leaves_out_exactly_the_named_claim() {
    let idp = TestIdp::start(config()).await;
    let honest = unverified(&idp.id_token_for("alice", &[]).await).1;
    for name in ["email", "sub", "nonce", "exp", "department"] {
        let (_, claims, verified) = faulty_token(&idp, &format!("missing_claim:{name}")).await;
        verified.expect("the signature is good");
        let mut expected = honest.clone();
        expected.as_object_mut().unwrap().remove(name);
        assert!(claims.get(name).is_none(), "{name}");
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&claims), keys(&expected), "{name}");
    }
}

#[tokio::test]
async fn the_unpublished_key_fault_signs_with_a_real_key_the_jwks_does_not_list() {
    let idp = TestIdp::start(config()).await;
    let (header, claims, verified) = faulty_token(&idp, "unpublished_key").await;
    let kid = header["kid"].as_str().unwrap();
    assert!(verified.unwrap_err().contains("is not in the JWKS"));
    assert!(!kids(&idp.jwks().await).iter().any(|k| k == kid));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["sub"], "alice");
}

#[tokio::test]
async fn the_slow_token_fault_delays_the_token_response() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let code = idp
        .code_for("alice", &pkce, &[("lakests_fault", "slow_token:400")])
        .await;
    let started = Instant::now();
    let body = idp.redeem(&code, &pkce).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    verify_signature(body["id_token"].as_str().unwrap(), &idp.jwks().await)
        .expect("an honest token");
}

#[tokio::test]
async fn faults_combine_and_global_faults_apply_to_every_login() {
    let mut cfg = config();
    cfg.faults = vec![IdpFault::WrongAudience];
    let idp = TestIdp::start(cfg).await;
    let now = idp.clock_now();
    let (_, claims, verified) = faulty_token(&idp, "expired,missing_claim:nonce").await;
    verified.expect("the signature is good");
    assert_eq!(claims["aud"], "lakests-devidp-wrong-audience");
    assert_eq!(claims["exp"], now - 300);
    assert!(claims.get("nonce").is_none());
    let honest_login = unverified(&idp.id_token_for("bob", &[("password", BOB_PASSWORD)]).await).1;
    assert_eq!(honest_login["aud"], "lakests-devidp-wrong-audience");
}

#[tokio::test]
async fn a_confidential_client_gets_faulty_es256_tokens_too() {
    let idp = TestIdp::start(config()).await;
    let code = confidential_code_with(&idp, &[("lakests_fault", "unpublished_key")]).await;
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CONFIDENTIAL_REDIRECT),
            ("client_id", CONFIDENTIAL_CLIENT),
            ("client_secret", CONFIDENTIAL_SECRET),
        ])
        .await;
    let body: Value = resp.json().await.unwrap();
    let token = body["id_token"].as_str().unwrap();
    let (header, _) = unverified(token);
    assert_eq!(header["alg"], "ES256");
    assert!(verify_signature(token, &idp.jwks().await).is_err());
    let new_kids = lakests_devidp::rotate_keys(&idp.keys_dir).unwrap();
    assert_eq!(header["kid"], new_kids[1].as_str());
    verify_signature(token, &idp.jwks().await).expect("a real ES256 signature");
}

// --- bad input ------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_repeated_and_malformed_input_gets_a_clear_4xx() {
    let idp = TestIdp::start(config()).await;
    let pkce = Pkce::new();
    let good = [
        ("response_type", "code"),
        ("client_id", PUBLIC_CLIENT),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let long_state = "s".repeat(1025);
    let mut p = good.to_vec();
    p.push(("state", long_state.as_str()));
    let resp = idp.authorize_get(&p).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("parameter state is longer than 1024 bytes")
    );

    let huge = "x".repeat(17 * 1024);
    let mut p = good.to_vec();
    p.push(("junk", huge.as_str()));
    let resp = idp.authorize_get(&p).await;
    assert!(
        resp.status() == 414 || resp.status() == 431 || resp.status() == 400,
        "{}",
        resp.status()
    );

    let mut p = good.to_vec();
    p.push(("client_id", PUBLIC_CLIENT));
    let resp = idp.authorize_get(&p).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("client_id is given more than once")
    );

    let resp = idp.authorize_get(&[]).await;
    assert_eq!(resp.status(), 400);

    let resp = idp
        .http
        .post(idp.url("/authorize"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // /token
    let resp = idp
        .http
        .post(idp.url("/token"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"authorization_code\"}")
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, "invalid_request").await;
    let big_code = "c".repeat(300);
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", big_code.as_str()),
            ("client_id", PUBLIC_CLIENT),
        ])
        .await;
    let body = assert_oauth_error(resp, "invalid_request").await;
    assert!(
        !body.to_string().contains(&big_code),
        "the value is not echoed"
    );
    let huge_body = format!("grant_type=authorization_code&x={}", "y".repeat(20 * 1024));
    let resp = idp
        .http
        .post(idp.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = idp
        .http
        .post(idp.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413, "the shared body limit");
    let resp = idp
        .token(&[("grant_type", "password"), ("client_id", PUBLIC_CLIENT)])
        .await;
    assert_oauth_error(resp, "unsupported_grant_type").await;
    let resp = idp.token(&[("client_id", PUBLIC_CLIENT)]).await;
    assert_oauth_error(resp, "invalid_request").await;
    let resp = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_CLIENT),
            ("code", "never-issued"),
        ])
        .await;
    assert_oauth_error(resp, "invalid_grant").await;
    let resp = idp
        .http
        .post(idp.url("/token"))
        .header("authorization", "Basic %%%not-base64")
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = idp
        .http
        .get(idp.url("/userinfo"))
        .header("authorization", format!("Bearer {}", "t".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

// --- helpers --------------------------------------------------------------------------------

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for TestIdp {
    fn clock_now(&self) -> i64 {
        lakests_core::Clock::now(&self.clock)
    }
}

fn kids(jwks: &jsonwebtoken::jwk::JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn assert_oauth_error(resp: reqwest::Response, error: &str) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("an error JSON body");
    assert_eq!(body["error"], error, "{status} {body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(status.is_client_error(), "{status}");
    body
}

async fn confidential_code(idp: &TestIdp) -> String {
    confidential_code_with(idp, &[]).await
}

async fn confidential_code_with(idp: &TestIdp, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", CONFIDENTIAL_CLIENT),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("scope", "openid"),
        ("state", "c-state"),
        ("sub", "alice"),
    ];
    params.extend_from_slice(extra);
    let resp = idp.authorize_post(&params).await;
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(
        loc.starts_with("http://localhost:9/oidc/callback?tenant=a&code="),
        "{loc}"
    );
    location_params(&resp)["code"].clone()
}

#[tokio::test]
async fn debug_output_never_shows_secrets_or_passwords() {
    let idp = TestIdp::start(config()).await;
    let text = format!("{:?}", idp.idp);
    assert!(!text.contains(CONFIDENTIAL_SECRET), "{text}");
    assert!(!text.contains(BOB_PASSWORD), "{text}");
    assert!(text.contains(&idp.issuer));
}

#[test]
fn the_idp_refuses_a_bad_issuer_and_a_corrupt_key_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(0));
    for issuer in ["ftp://127.0.0.1", "http://127.0.0.1:1/?q=1", "not a url"] {
        let err = lakests_devidp::DevIdp::new(&config(), issuer.into(), dir.path(), clock.clone())
            .unwrap_err();
        assert!(err.to_string().contains("issuer"), "{err}");
    }
    std::fs::write(dir.path().join(lakests_devidp::MANIFEST), "{not json").unwrap();
    let err =
        lakests_devidp::DevIdp::new(&config(), "http://127.0.0.1:1".into(), dir.path(), clock)
            .unwrap_err();
    assert!(err.to_string().contains("keys.json"), "{err}");
}
