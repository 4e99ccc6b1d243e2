//! Every fault switch of the development IdP makes a token the authenticator must refuse, and
//! it does: the whole system in one process (IdP, authenticator, STS server), real HTTP.

use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakests_config::Config;
use lakests_core::{Clock, SystemClock, UserRecord};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:8085/callback";

struct System {
    http: reqwest::Client,
    idp: String,
    authn: String,
    sts: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn system() -> System {
    system_with_pkce("state").await
}

async fn system_with_pkce(pkce: &str) -> System {
    let dir = tempfile::tempdir().unwrap();
    // Bound here and handed to the application: the issuer must name its port.
    let idp_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let idp_port = idp_listener.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path(),
        "auth": {"encrypt": {"secret_key": "faults-test-secret-key-0123456789"}},
        "authenticator": {
            "listen_address": "127.0.0.1:0",
            "request_timeout": "1s",
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT], "pkce": pkce}],
        },
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "users": [{"sub": "alice", "email": "alice@example.com", "groups": ["admins"]}],
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let app = lakests_server::Application::build_with_listeners(
        config,
        std::sync::Arc::new(SystemClock),
        lakests_server::Listeners {
            idp: Some(idp_listener),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.store()
        .create_user(&UserRecord {
            username: "alice".into(),
            external_id: Some("dev:alice".into()),
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
    let (sts, authn) = (app.sts_addr().unwrap(), app.authenticator_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    System {
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        idp: issuer,
        authn: format!("http://{authn}"),
        sts: format!("http://{sts}"),
        _dir: dir,
        _stop: tx,
    }
}

impl System {
    /// A code for alice with the given fault switches; returns the body for `sts/login`.
    async fn code(&self, fault: Option<&str>) -> Value {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).unwrap();
        let verifier = URL_SAFE_NO_PAD.encode(raw);
        let challenge =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", "lakests"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", verifier.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice"),
        ];
        if let Some(f) = fault {
            query.push(("lakests_fault", f));
        }
        let resp = self
            .http
            .get(format!("{}/authorize", self.idp))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "authorize with fault {fault:?}");
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code for fault {fault:?}: {location}"))
            .1
            .into_owned();
        json!({"code": code, "state": verifier, "redirect_uri": REDIRECT})
    }
}

#[tokio::test]
async fn the_authenticator_refuses_every_faulty_id_token() {
    let s = system().await;
    // Control: without a fault both the authenticator and the STS server accept the login.
    let ok = s
        .http
        .post(format!("{}/api/v1/sts/login", s.authn))
        .json(&s.code(None).await)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let claims: Value = ok.json().await.unwrap();
    assert_eq!(
        claims["claims"]["sub"], "dev:alice",
        "namespaced by its provider"
    );
    let ok = s
        .http
        .post(format!("{}/api/v1/sts/login", s.sts))
        .json(&s.code(None).await)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    for fault in [
        "expired",
        "future_iat",
        "wrong_audience",
        "bad_signature",
        "missing_claim:sub",
        "unpublished_key",
    ] {
        for target in [&s.authn, &s.sts] {
            let body = s.code(Some(fault)).await;
            let resp = s
                .http
                .post(format!("{target}/api/v1/sts/login"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "fault {fault} at {target}");
            let text = resp.text().await.unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(
                v.get("claims").is_none() && !text.contains("alice@example.com"),
                "no claims leak: {text}"
            );
            assert!(
                !text.contains(body["code"].as_str().unwrap()),
                "the code is not echoed: {text}"
            );
        }
    }

    // A token endpoint far slower than the authenticator's timeout (1 s): a 5xx long before
    // the token would have come (the bound only tells a timeout from waiting it out).
    let body = s.code(Some("slow_token:30000")).await;
    let started = Instant::now();
    let resp = s
        .http
        .post(format!("{}/api/v1/sts/login", s.authn))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// Issue 10 point 2: session mode is on the authenticator port, so an STS server whose
/// authenticator is remote (a lakests authenticator in another process, here another
/// application) offers it too: the whole session-mode login goes through the STS server, which
/// forwards `sts/authorize` and `sts/authorize/exchange` with the request id. An authenticator
/// without session mode answers 404, which the STS server passes on as "not offered".
#[tokio::test]
async fn an_sts_server_with_a_remote_lakests_authenticator_offers_session_mode() {
    let s = system_with_pkce("session").await;
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path(),
        "auth": {
            "encrypt": {"secret_key": "faults-test-secret-key-0123456789"},
            "sts": {"auto_create_users": true},
            "authentication_api": {"endpoint": format!("{}/api/v1", s.authn)},
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let remote =
        lakests_server::Application::build_with_clock(config, std::sync::Arc::new(SystemClock))
            .await
            .unwrap();
    let sts = format!("http://{}", remote.sts_addr().unwrap());
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(remote.run_until(async move {
        let _ = rx.await;
    }));

    let started = s
        .http
        .post(format!("{sts}/api/v1/sts/authorize"))
        .header("x-request-id", "remote-session-1")
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{:?}", started.text().await);
    let started: Value = started.json().await.unwrap();
    let mut authorize = url::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    assert!(authorize.as_str().starts_with(&s.idp), "{authorize}");
    authorize
        .query_pairs_mut()
        .append_pair("login_hint", "alice");
    let resp = s.http.get(authorize).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    // A wrong redeem secret is refused by the remote authenticator, with its reason.
    let wrong = s
        .http
        .post(format!("{sts}/api/v1/sts/authorize/exchange"))
        .json(&json!({"state": started["state"], "redeem_secret": "not-the-secret-0123456789"}))
        .send()
        .await
        .unwrap();
    let status = wrong.status().as_u16();
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("session_unknown")),
        "{body}"
    );
    let exchanged: Value = s
        .http
        .post(format!("{sts}/api/v1/sts/authorize/exchange"))
        .json(&json!({"state": started["state"], "redeem_secret": started["redeem_secret"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login = s
        .http
        .post(format!("{sts}/api/v1/sts/login"))
        .json(&json!({"code": code, "state": exchanged["state"], "redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "{:?}", login.text().await);

    // The same STS server over an authenticator without session mode: 404, not offered.
    let standin = axum::Router::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, standin).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path(),
        "auth": {
            "encrypt": {"secret_key": "faults-test-secret-key-0123456789"},
            "authentication_api": {"endpoint": format!("http://{bare}/api/v1")},
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let other =
        lakests_server::Application::build_with_clock(config, std::sync::Arc::new(SystemClock))
            .await
            .unwrap();
    let other_sts = format!("http://{}", other.sts_addr().unwrap());
    let (_stop_other, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(other.run_until(async move {
        let _ = rx.await;
    }));
    let resp = s
        .http
        .post(format!("{other_sts}/api/v1/sts/authorize"))
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("session-mode login is not available"),
        "{body}"
    );
}
