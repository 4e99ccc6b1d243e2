//! Test harness: the real server on a random loopback port with a real SQLite file, and a
//! stand-in authenticator HTTP server whose answers each test chooses.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lakests_config::Config;
use lakests_core::{Clock, ManualClock, Store, SystemClock, UserRecord};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-secret-key-for-lakests-0123456789";

/// What the stand-in authenticator answers.
#[derive(Clone)]
pub enum Behavior {
    /// 200 with these claims.
    Claims(Value),
    /// This status and raw body.
    Status(u16, String),
    /// 200 after a delay.
    Delayed(Duration, Value),
    /// Never answers (until the test ends).
    Hang,
}

#[derive(Default)]
pub struct Seen {
    pub calls: AtomicUsize,
    pub request_ids: Mutex<Vec<String>>,
    pub bodies: Mutex<Vec<Value>>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub behavior: Arc<Mutex<Behavior>>,
    pub seen: Arc<Seen>,
}

impl StandIn {
    pub async fn start(initial: Behavior) -> StandIn {
        let behavior = Arc::new(Mutex::new(initial));
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/api/v1/sts/login", post(standin_login))
            .with_state((behavior.clone(), seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn {
            addr,
            behavior,
            seen,
        }
    }

    pub fn set(&self, b: Behavior) {
        *self.behavior.lock().unwrap() = b;
    }

    pub fn calls(&self) -> usize {
        self.seen.calls.load(Ordering::SeqCst)
    }
}

async fn standin_login(
    State((behavior, seen)): State<(Arc<Mutex<Behavior>>, Arc<Seen>)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        seen.request_ids.lock().unwrap().push(id.to_owned());
    }
    seen.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
    let b = behavior.lock().unwrap().clone();
    match b {
        Behavior::Claims(c) => axum::Json(json!({ "claims": c })).into_response(),
        Behavior::Status(code, body) => (
            StatusCode::from_u16(code).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Behavior::Delayed(d, c) => {
            tokio::time::sleep(d).await;
            axum::Json(json!({ "claims": c })).into_response()
        }
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub standin: StandIn,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// The server with the default test configuration plus `extra_yaml` merged at the top
    /// level (later keys win).
    pub async fn spawn(extra_yaml: &str) -> TestApp {
        Self::spawn_with(Behavior::Claims(json!({"sub": "alice-ext"})), extra_yaml).await
    }

    pub async fn spawn_with(initial: Behavior, extra_yaml: &str) -> TestApp {
        let standin = StandIn::start(initial).await;
        let dir = tempfile::tempdir().unwrap();
        let mut base: Value = serde_norway::from_str(&format!(
            r#"
listen_address: "127.0.0.1:0"
data_dir: "{dir}"
auth:
  encrypt:
    secret_key: "{SECRET}"
  authentication_api:
    endpoint: "http://{addr}/api/v1"
    request_timeout: 1s
"#,
            dir = dir.path().display(),
            addr = standin.addr
        ))
        .unwrap();
        if !extra_yaml.trim().is_empty() {
            let extra: Value = serde_norway::from_str(extra_yaml).unwrap();
            merge(&mut base, extra);
        }
        let yaml = serde_norway::to_string(&base).unwrap();
        let config = Config::from_sources(Some(&yaml), Vec::new()).unwrap();
        let clock = ManualClock::new(SystemClock.now());
        let app = lakests_server::Application::build_with_clock(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        let addr = app.sts_addr().unwrap();
        let store = app.store();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        TestApp {
            addr,
            base: format!("http://{addr}"),
            http,
            store,
            clock,
            standin,
            shutdown: Some(tx),
            handle: Some(handle),
            dir,
        }
    }

    pub async fn add_user(&self, username: &str, external_id: &str) {
        self.store
            .create_user(&UserRecord {
                username: username.into(),
                external_id: Some(external_id.into()),
                email: Some(format!("{username}@example.com")),
                friendly_name: Some(username.to_uppercase()),
                groups: vec!["developers".into()],
                created_at: 1_700_000_000,
            })
            .await
            .unwrap();
    }

    pub async fn login(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/sts/login", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn current_user(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/user", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.unwrap(),
            None => Ok(()),
        }
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

pub fn login_body() -> Value {
    json!({"code": "the-code", "state": "the-state", "redirect_uri": "http://127.0.0.1:8085/callback"})
}

/// Asserts an error answer: status, `{"message"}` body (plus, for a refused login, a known
/// `reason` code), and returns the message.
pub async fn expect_error(resp: reqwest::Response, status: u16) -> String {
    expect_error_reason(resp, status).await.0
}

/// [`expect_error`], also returning the `reason` code when there is one.
pub async fn expect_error_reason(resp: reqwest::Response, status: u16) -> (String, Option<String>) {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let body: Value = resp.json().await.expect("error body is JSON");
    let obj = body.as_object().expect("error body is an object");
    let reason = obj.get("reason").map(|r| {
        let r = r.as_str().expect("reason is a string");
        assert!(
            lakests_core::Reason::parse(r).is_some(),
            "reason {r:?} is a known code: {body}"
        );
        r.to_owned()
    });
    assert_eq!(
        obj.len(),
        1 + usize::from(reason.is_some()),
        "error body has only message (and reason): {body}"
    );
    let message = obj["message"]
        .as_str()
        .expect("message is a string")
        .to_owned();
    (message, reason)
}
