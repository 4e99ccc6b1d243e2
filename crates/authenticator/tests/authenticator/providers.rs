//! Provider selection by redirect URI, client authentication, PKCE in state mode, required
//! claims and userinfo, against the hostile provider.

use std::collections::BTreeMap;

use base64::Engine;
use lakests_config::{ClaimRequirement, ClientAuth, PkceMode};
use lakests_core::ManualClock;
use serde_json::{Value, json};

use crate::support::*;

fn claims(issuer: &str, client_id: &str) -> Value {
    json!({"iss": issuer, "aud": client_id, "sub": "alice", "exp": T0 + 300, "iat": T0,
           "email": "alice@example.com", "groups": ["admins", "dev"], "department": "data"})
}

#[tokio::test]
async fn state_mode_sends_the_state_as_code_verifier_with_client_secret_basic() {
    let idp = HostileIdp::start().await;
    let p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, CLIENT_ID), json!({})),
    );
    let state = verifier(9);
    let (status, _, text) = authn.login("the-code", &state, REDIRECT).await;
    assert_eq!(status, 200, "{text}");
    let req = idp.last_token_request();
    assert_eq!(req.form["grant_type"], "authorization_code");
    assert_eq!(req.form["code"], "the-code");
    assert_eq!(req.form["redirect_uri"], REDIRECT);
    assert_eq!(req.form["code_verifier"], state);
    assert!(!req.form.contains_key("client_secret"));
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
}

#[tokio::test]
async fn client_secret_basic_form_encodes_the_credentials_first() {
    let idp = HostileIdp::start().await;
    let mut p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    p.client_id = "client:with/odd chars".into();
    p.client_secret = Some(lakests_config::Secret::new("p@ss:word+="));
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, "client:with/odd chars"), json!({})),
    );
    assert_eq!(authn.login("c", &verifier(1), REDIRECT).await.0, 200);
    let basic = base64::engine::general_purpose::STANDARD
        .encode("client%3Awith%2Fodd+chars:p%40ss%3Aword%2B%3D");
    assert_eq!(
        idp.last_token_request().authorization,
        Some(format!("Basic {basic}"))
    );
}

#[tokio::test]
async fn client_secret_post_and_public_clients_send_their_credentials_in_the_form() {
    let idp = HostileIdp::start().await;
    let mut post = provider(
        "post",
        &idp.issuer,
        &["https://post.example/cb"],
        PkceMode::State,
    );
    post.client_auth = Some(ClientAuth::ClientSecretPost);
    let mut public = provider(
        "public",
        &idp.issuer,
        &["https://public.example/cb"],
        PkceMode::State,
    );
    public.client_auth = Some(ClientAuth::None);
    public.client_secret = None;
    let authn = Authn::start(base_config(vec![post, public]), ManualClock::new(T0)).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, CLIENT_ID), json!({})),
    );

    assert_eq!(
        authn
            .login("c1", &verifier(1), "https://post.example/cb")
            .await
            .0,
        200
    );
    let req = idp.last_token_request();
    assert_eq!(req.authorization, None);
    assert_eq!(req.form["client_id"], CLIENT_ID);
    assert_eq!(req.form["client_secret"], CLIENT_SECRET);

    assert_eq!(
        authn
            .login("c2", &verifier(2), "https://public.example/cb")
            .await
            .0,
        200
    );
    let req = idp.last_token_request();
    assert_eq!(req.authorization, None);
    assert_eq!(req.form["client_id"], CLIENT_ID);
    assert!(!req.form.contains_key("client_secret"));
    assert_eq!(req.form["code_verifier"], verifier(2));
}

#[tokio::test]
async fn the_redirect_uri_selects_the_provider() {
    let a = HostileIdp::start().await;
    let b = HostileIdp::start().await;
    let pa = provider("a", &a.issuer, &["https://a.example/cb"], PkceMode::State);
    let mut pb = provider("b", &b.issuer, &["https://b.example/cb"], PkceMode::State);
    pb.client_id = "client-b".into();
    let authn = Authn::start(base_config(vec![pa, pb]), ManualClock::new(T0)).await;
    a.issue(keys().rs256.sign(&claims(&a.issuer, CLIENT_ID), json!({})));
    b.issue(keys().es256.sign(&claims(&b.issuer, "client-b"), json!({})));

    let (s, body, _) = authn.login("c", &verifier(1), "https://b.example/cb").await;
    assert_eq!(s, 200);
    assert_eq!(body["claims"]["iss"], b.issuer.as_str());
    assert_eq!((a.token_hits(), b.token_hits()), (0, 1));
    let (s, body, _) = authn.login("c", &verifier(1), "https://a.example/cb").await;
    assert_eq!(s, 200);
    assert_eq!(body["claims"]["iss"], a.issuer.as_str());
    assert_eq!((a.token_hits(), b.token_hits()), (1, 1));
}

#[tokio::test]
async fn an_unknown_redirect_uri_is_refused_before_anything_is_sent_to_the_idp() {
    let idp = HostileIdp::start().await;
    let mut p = provider(
        "hostile",
        &idp.issuer,
        &[REDIRECT, LOOPBACK_REDIRECT],
        PkceMode::State,
    );
    p.allow_loopback_any_port = false;
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    for uri in [
        "https://app.example/callback/",
        "https://app.example/callback?x=1",
        "https://APP.example/callback",
        "https://evil.example/callback",
        "http://127.0.0.1:9999/callback",
        "javascript:alert(1)",
    ] {
        let got = authn.login("code-xyz", &verifier(1), uri).await;
        assert_refused(&got, 400, &["code-xyz"]);
        assert!(
            got.1["message"].as_str().unwrap().contains("redirect_uri"),
            "{uri}"
        );
    }
    assert_eq!(
        (idp.discovery_hits(), idp.jwks_hits(), idp.token_hits()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_loopback_redirect_uri_matches_any_port_only_when_allowed() {
    let idp = HostileIdp::start().await;
    let mut p = provider(
        "hostile",
        &idp.issuer,
        &[LOOPBACK_REDIRECT],
        PkceMode::State,
    );
    p.allow_loopback_any_port = true;
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, CLIENT_ID), json!({})),
    );
    let (s, _, text) = authn
        .login("c", &verifier(1), "http://127.0.0.1:51234/callback")
        .await;
    assert_eq!(s, 200, "{text}");
    // The exact URI the client used goes to the token endpoint.
    assert_eq!(
        idp.last_token_request().form["redirect_uri"],
        "http://127.0.0.1:51234/callback"
    );
    for other in [
        "http://127.0.0.1:51234/other",
        "http://localhost:51234/callback",
        "https://127.0.0.1:51234/callback",
        "http://127.0.0.2:51234/callback",
        "http://user@127.0.0.1:51234/callback",
    ] {
        assert_refused(&authn.login("c", &verifier(1), other).await, 400, &[]);
    }
}

#[tokio::test]
async fn a_state_that_is_not_a_pkce_verifier_is_refused_in_state_mode() {
    let idp = HostileIdp::start().await;
    let p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    for state in ["short", &format!("{}!", "a".repeat(50)), &"a".repeat(129)] {
        let got = authn.login("c", state, REDIRECT).await;
        assert_refused(&got, 400, &[]);
        assert!(got.1["message"].as_str().unwrap().contains("verifier"));
    }
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn required_claims_are_checked_exactly_or_among_several_values() {
    let idp = HostileIdp::start().await;
    let mut p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    p.required_claims = BTreeMap::from([
        (
            "department".to_owned(),
            ClaimRequirement::Exact("data".into()),
        ),
        (
            "email".to_owned(),
            ClaimRequirement::OneOf(vec!["alice@example.com".into(), "bob@example.com".into()]),
        ),
    ]);
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    let base = claims(&idp.issuer, CLIENT_ID);
    idp.issue(keys().rs256.sign(&base, json!({})));
    assert_eq!(authn.login("c", &verifier(1), REDIRECT).await.0, 200);
    for (name, value) in [
        ("department", json!("Data")),
        ("department", Value::Null),
        ("email", json!("eve@example.com")),
    ] {
        let mut c = base.clone();
        let mut extra = serde_json::Map::new();
        extra.insert(name.to_owned(), value);
        merge(&mut c, Value::Object(extra));
        idp.issue(keys().rs256.sign(&c, json!({})));
        let got = authn.login("c", &verifier(1), REDIRECT).await;
        assert_refused(&got, 401, &["eve@example.com", "alice"]);
        assert!(got.1["message"].as_str().unwrap().contains(name));
    }
}

#[tokio::test]
async fn userinfo_claims_are_merged_when_the_sub_matches() {
    let idp = HostileIdp::start().await;
    let mut p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    p.userinfo = true;
    let authn = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    idp.issue(
        keys()
            .rs256
            .sign(&claims(&idp.issuer, CLIENT_ID), json!({})),
    );
    idp.with(|s| {
        s.userinfo =
            json!({"sub": "alice", "phone_number": "+31 20 123", "email": "other@example.com"})
    });
    let (s, body, text) = authn.login("c", &verifier(1), REDIRECT).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(body["claims"]["phone_number"], "+31 20 123");
    // The signed ID token wins over userinfo.
    assert_eq!(body["claims"]["email"], "alice@example.com");
    assert_eq!(
        idp.with(|s| s.userinfo_auth.last().cloned().flatten()),
        Some("Bearer hostile-access-token-never-in-logs".to_owned())
    );

    idp.with(|s| s.userinfo = json!({"sub": "mallory", "phone_number": "0"}));
    let got = authn.login("c", &verifier(1), REDIRECT).await;
    assert_refused(&got, 401, &["mallory", "alice"]);
}
