//! Issue 12, point 5: a hostile lakeFS endpoint cannot steer `lakests login` in session mode
//! to open something other than the identity provider's sign-in page. A stand-in server over
//! real HTTP on loopback plays the hostile lakeFS and the provider's discovery document.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use lakests_core::SystemClock;
use lakests_login::callback::CallbackSettings;
use lakests_login::{
    Browser, Endpoint, FileTokenCache, Login, LoginError, LoginOptions, Reporter, ServerClient,
};
use serde_json::{Value, json};

struct Hostile {
    base: String,
    /// What `POST /api/v1/sts/authorize` answers as `authorization_url` ({base} replaced).
    authorization_url: String,
}

type Shared = Arc<Mutex<Hostile>>;

async fn discovery(State(s): State<Shared>) -> Json<Value> {
    let base = s.lock().unwrap().base.clone();
    Json(json!({
        "issuer": base, "client_id": "lakests-cli", "scopes": ["openid"],
        "pkce": "session", "redirect_uris": ["http://127.0.0.1/callback"],
        "allow_loopback_any_port": true,
        "default_ttl_seconds": 3600, "max_ttl_seconds": 43200
    }))
}

async fn openid_configuration(State(s): State<Shared>) -> Json<Value> {
    let base = s.lock().unwrap().base.clone();
    Json(json!({"issuer": base, "authorization_endpoint": format!("{base}/authorize")}))
}

async fn sts_authorize(State(s): State<Shared>) -> Json<Value> {
    let s = s.lock().unwrap();
    let url = s
        .authorization_url
        .replace("{base}", &s.base)
        .replace("{host}", s.base.trim_start_matches("http://"));
    Json(json!({"authorization_url": url, "state": "session-0", "expires_at": 4_000_000_000i64}))
}

/// Records every URL it is asked to open; opens nothing.
#[derive(Default)]
struct RecordingBrowser {
    opened: Mutex<Vec<String>>,
    count: AtomicUsize,
}

impl Browser for RecordingBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.opened.lock().unwrap().push(url.to_owned());
        Ok(())
    }
}

struct Quiet;

impl Reporter for Quiet {
    fn say(&self, _: &str) {}
}

async fn attempt(authorization_url: &str) -> (Result<(), LoginError>, Vec<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared = Arc::new(Mutex::new(Hostile {
        base: base.clone(),
        authorization_url: authorization_url.to_owned(),
    }));
    let app = Router::new()
        .route("/.well-known/lakests-login", get(discovery))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/api/v1/sts/authorize", post(sts_authorize))
        .with_state(shared);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let browser = Arc::new(RecordingBrowser::default());
    let login = Login::new(
        ServerClient::new(Duration::from_secs(5)).unwrap(),
        browser.clone(),
        Arc::new(FileTokenCache::in_dir(dir.path().join("tokens"))),
        Arc::new(SystemClock),
        Arc::new(Quiet),
    );
    let mut opts = LoginOptions::new(Endpoint::parse(&base).unwrap());
    opts.callback = CallbackSettings {
        ports: vec![0],
        ..CallbackSettings::default()
    };
    // Long enough for a wrongly opened page to be waited on; a refusal comes at once.
    opts.timeout = Duration::from_secs(2);
    let result = login.login(&opts).await.map(|_| ());
    server.abort();
    let opened = browser.opened.lock().unwrap().clone();
    (result, opened)
}

#[tokio::test]
async fn a_non_http_or_foreign_authorization_url_is_never_opened() {
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "smb://evil.example/share",
        "https://phishing.example/authorize?client_id=lakests-cli",
        "{base}.evil.example/authorize",
        "http://user:pw@{host}/authorize",
    ] {
        let (result, opened) = attempt(url).await;
        assert!(opened.is_empty(), "{url}: opened {opened:?}");
        match result {
            Err(e @ LoginError::UnsafeAuthorizationUrl { .. }) => {
                let text = e.to_string();
                assert!(text.contains("refusing to open it"), "{text}");
                assert!(!text.contains("passwd"), "the URL is not echoed: {text}");
            }
            other => panic!("{url}: expected UnsafeAuthorizationUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_providers_own_authorization_endpoint_is_opened() {
    let (result, opened) = attempt("{base}/authorize?client_id=lakests-cli&state=session-0").await;
    // Nobody signs in, so the login times out, but the sign-in page was opened.
    assert!(
        matches!(result, Err(LoginError::Timeout { .. })),
        "{result:?}"
    );
    assert_eq!(opened.len(), 1);
    assert!(opened[0].ends_with("/authorize?client_id=lakests-cli&state=session-0"));
}
