//! Bad input never reaches the identity provider and never makes a 5xx: empty, invalid,
//! incomplete, mistyped or oversized bodies are 400/413 with a `{"message"}` body.

use lakests_config::PkceMode;
use lakests_core::ManualClock;
use serde_json::{Value, json};

use crate::support::*;

async fn setup() -> (HostileIdp, Authn) {
    let idp = HostileIdp::start().await;
    let p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    let s = provider(
        "session",
        &idp.issuer,
        &[SESSION_REDIRECT],
        PkceMode::Session,
    );
    let authn = Authn::start(base_config(vec![p, s]), ManualClock::new(T0)).await;
    (idp, authn)
}

async fn raw(
    a: &Authn,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value, String) {
    let mut req = a.http.post(format!("{}{path}", a.base)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn malformed_login_bodies_are_400_and_never_reach_the_idp() {
    let (idp, a) = setup().await;
    for path in ["/api/v1/sts/login", "/api/v1/sts/authorize"] {
        for body in [
            &b""[..],
            b"{",
            b"not json",
            b"[]",
            b"null",
            b"{}",
            br#"{"code": "c", "state": "s"}"#,
            br#"{"code": 123456, "state": "s", "redirect_uri": "https://app.example/callback"}"#,
            br#"{"code": "c", "state": ["s"], "redirect_uri": "https://app.example/callback"}"#,
            br#"{"redirect_uri": null}"#,
            br#"{"redirect_uri": 5}"#,
        ] {
            let got = raw(&a, path, JSON, body.to_vec()).await;
            assert_refused(&got, 400, &["123456"]);
        }
    }
    assert_eq!((idp.discovery_hits(), idp.token_hits()), (0, 0));
}

#[tokio::test]
async fn empty_fields_are_400() {
    let (idp, a) = setup().await;
    for body in [
        json!({"code": "", "state": verifier(1), "redirect_uri": REDIRECT}),
        json!({"code": "c", "state": "", "redirect_uri": REDIRECT}),
        json!({"code": "c", "state": verifier(1), "redirect_uri": ""}),
    ] {
        assert_refused(&a.post("/api/v1/sts/login", body).await, 400, &[]);
    }
    assert_refused(
        &a.post("/api/v1/sts/authorize", json!({"redirect_uri": ""}))
            .await,
        400,
        &[],
    );
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn overlong_fields_are_400() {
    let (idp, a) = setup().await;
    let long = "x".repeat(5000);
    for body in [
        json!({"code": long, "state": verifier(1), "redirect_uri": REDIRECT}),
        json!({"code": "c", "state": long, "redirect_uri": REDIRECT}),
        json!({"code": "c", "state": verifier(1), "redirect_uri": format!("{REDIRECT}?{long}")}),
    ] {
        assert_refused(&a.post("/api/v1/sts/login", body).await, 400, &[&long]);
    }
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let (idp, a) = setup().await;
    let body =
        json!({"code": "c".repeat(70 * 1024), "state": verifier(1), "redirect_uri": REDIRECT});
    for path in ["/api/v1/sts/login", "/api/v1/sts/authorize"] {
        let got = raw(&a, path, JSON, body.to_string().into_bytes()).await;
        assert_refused(&got, 413, &["ccccc"]);
    }
    assert_eq!(idp.token_hits(), 0);
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_4xx() {
    let (_idp, a) = setup().await;
    let body = json!({"code": "c", "state": verifier(1), "redirect_uri": REDIRECT}).to_string();
    let got = raw(&a, "/api/v1/sts/login", None, body.clone().into_bytes()).await;
    assert_refused(&got, 415, &[]);
    let got = raw(
        &a,
        "/api/v1/sts/login",
        Some("text/plain"),
        body.into_bytes(),
    )
    .await;
    assert_refused(&got, 415, &[]);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let (_idp, a) = setup().await;
    let resp = a
        .http
        .get(format!("{}/api/v1/sts/login", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let resp = a
        .http
        .get(format!("{}/api/v1/nope", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn error_bodies_never_echo_the_input() {
    let (_idp, a) = setup().await;
    let canary = "canary-secret-code-4711";
    let got = a
        .post("/api/v1/sts/login", json!({"code": canary, "state": canary, "redirect_uri": format!("https://{canary}.example/")}))
        .await;
    assert_refused(&got, 400, &[canary]);
    let got = raw(
        &a,
        "/api/v1/sts/login",
        JSON,
        format!(r#"{{"code": {canary}}}"#).into_bytes(),
    )
    .await;
    assert_refused(&got, 400, &[canary]);
}
