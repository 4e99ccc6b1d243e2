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
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
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

    // A token endpoint slower than the authenticator's timeout: a 5xx within the timeout.
    let body = s.code(Some("slow_token:3000")).await;
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
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}
