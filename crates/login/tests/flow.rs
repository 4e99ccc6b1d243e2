//! The login use case over real HTTP on loopback against a stand-in lakeFS server and identity
//! provider (one axum app playing both), with an in-process browser that follows redirects.
//! The end-to-end tests with the real lakests roles, headless Chromium and oidc-provider live
//! in crates/cli/tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use lakests_core::{Clock, SystemClock};
use lakests_login::callback::CallbackSettings;
use lakests_login::{
    Browser, Endpoint, FileTokenCache, Login, LoginError, LoginOptions, ObtainedToken,
    ProviderSource, Reporter, ServerClient,
};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    base: String,
    pkce: String,
    registered: Vec<String>,
    any_port: bool,
    /// code -> (challenge, state the IdP saw)
    codes: HashMap<String, (String, String)>,
    /// session state -> verifier kept server-side
    sessions: HashMap<String, String>,
    issued: usize,
    map_user: bool,
    idp_error: Option<String>,
    logins: Vec<Value>,
}

type Shared = Arc<Mutex<Fake>>;

fn challenge(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

async fn discovery(State(s): State<Shared>) -> Response {
    let f = s.lock().unwrap();
    if f.pkce == "none" {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))).into_response();
    }
    Json(json!({
        "issuer": f.base, "client_id": "lakests-cli", "scopes": ["openid", "profile"],
        "pkce": f.pkce, "redirect_uris": f.registered,
        "allow_loopback_any_port": f.any_port,
        "default_ttl_seconds": 3600, "max_ttl_seconds": 43200
    }))
    .into_response()
}

async fn openid_configuration(State(s): State<Shared>) -> Json<Value> {
    let base = s.lock().unwrap().base.clone();
    Json(json!({"issuer": base, "authorization_endpoint": format!("{base}/authorize")}))
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut f = s.lock().unwrap();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "lakests-cli");
    assert_eq!(q["code_challenge_method"], "S256");
    let mut loc = url::Url::parse(&q["redirect_uri"]).unwrap();
    if let Some(e) = &f.idp_error {
        loc.query_pairs_mut()
            .append_pair("error", e)
            .append_pair("error_description", "the user said no")
            .append_pair("state", &q["state"]);
    } else {
        f.issued += 1;
        let code = format!("code-{}", f.issued);
        f.codes.insert(
            code.clone(),
            (q["code_challenge"].clone(), q["state"].clone()),
        );
        loc.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &q["state"])
            .append_pair("iss", &f.base);
    }
    (StatusCode::FOUND, [(header::LOCATION, loc.to_string())]).into_response()
}

async fn sts_authorize(State(s): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let mut f = s.lock().unwrap();
    let verifier = "server-side-verifier-of-forty-three-chars-x".to_owned();
    let state = format!("session-{}", f.sessions.len());
    f.sessions.insert(state.clone(), verifier.clone());
    let mut url = url::Url::parse(&format!("{}/authorize", f.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "lakests-cli")
        .append_pair("redirect_uri", body["redirect_uri"].as_str().unwrap())
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    Json(
        json!({"authorization_url": url.to_string(), "state": state, "expires_at": 4_000_000_000i64}),
    )
}

async fn sts_login(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut f = s.lock().unwrap();
    f.logins.push(body.clone());
    let code = body["code"].as_str().unwrap_or("");
    let state = body["state"].as_str().unwrap_or("");
    let Some((chal, seen_state)) = f.codes.remove(code) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "unknown code"})),
        )
            .into_response();
    };
    assert_eq!(seen_state, state, "state round-trips");
    let verifier = f
        .sessions
        .get(state)
        .cloned()
        .unwrap_or_else(|| state.to_owned());
    if challenge(&verifier) != chal {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "PKCE failed"})),
        )
            .into_response();
    }
    if !f.map_user {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"message": "no user has external id alice-ext", "reason": "no_user_mapped"}),
            ),
        )
            .into_response();
    }
    let asked = body["ttl_seconds"].as_i64().unwrap_or(3600);
    let ttl = asked.min(43200);
    let n = f.logins.len();
    (
        [("x-lakests-granted-ttl-seconds", ttl.to_string())],
        Json(json!({"token": format!("tok-{n}"), "token_expiration": SystemClock.now() + ttl})),
    )
        .into_response()
}

async fn user(headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("Bearer tok-") {
        Json(json!({"user": {"id": "alice", "creation_date": 1, "email": "alice@example.com"}}))
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "bad token"})),
        )
            .into_response()
    }
}

async fn spawn_fake(pkce: &str) -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared = Arc::new(Mutex::new(Fake {
        base,
        pkce: pkce.to_owned(),
        registered: vec!["http://127.0.0.1/callback".into()],
        any_port: true,
        map_user: true,
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/.well-known/lakests-login", get(discovery))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/authorize", get(authorize))
        .route("/api/v1/sts/authorize", post(sts_authorize))
        .route("/api/v1/sts/login", post(sts_login))
        .route("/api/v1/user", get(user))
        .with_state(shared.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    shared
}

/// Follows redirects like a browser would, on a task; counts how often it was opened.
#[derive(Default)]
struct FollowBrowser {
    opens: AtomicUsize,
    inert: bool,
}

impl Browser for FollowBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        if self.inert {
            return Ok(());
        }
        let mut url = url.to_owned();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap();
            for _ in 0..5 {
                let r = http.get(&url).send().await.unwrap();
                match r.headers().get(header::LOCATION) {
                    Some(l) => url = l.to_str().unwrap().to_owned(),
                    None => return,
                }
            }
        });
        Ok(())
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Reporter for Lines {
    fn say(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

impl Lines {
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

struct Setup {
    fake: Shared,
    browser: Arc<FollowBrowser>,
    lines: Arc<Lines>,
    login: Login,
    opts: LoginOptions,
    _dir: tempfile::TempDir,
}

async fn setup(pkce: &str, browser: FollowBrowser) -> Setup {
    let fake = spawn_fake(pkce).await;
    let base = fake.lock().unwrap().base.clone();
    let dir = tempfile::tempdir().unwrap();
    let browser = Arc::new(browser);
    let lines = Arc::new(Lines::default());
    let login = Login::new(
        ServerClient::new(Duration::from_secs(10)).unwrap(),
        browser.clone(),
        Arc::new(FileTokenCache::in_dir(dir.path().join("tokens"))),
        Arc::new(SystemClock),
        lines.clone(),
    );
    let mut opts = LoginOptions::new(Endpoint::parse(&base).unwrap());
    opts.callback = CallbackSettings {
        ports: vec![0],
        ..CallbackSettings::default()
    };
    opts.timeout = Duration::from_secs(20);
    Setup {
        fake,
        browser,
        lines,
        login,
        opts,
        _dir: dir,
    }
}

#[tokio::test]
async fn state_mode_sends_the_verifier_as_state_and_caches_the_token() {
    let s = setup("state", FollowBrowser::default()).await;
    let mut opts = s.opts.clone();
    opts.ttl_seconds = Some(900);
    let out = s.login.login(&opts).await.unwrap();
    let ObtainedToken::New(t) = out else {
        panic!("expected a new token")
    };
    assert_eq!(t.token.expose(), "tok-1");
    assert_eq!(t.username.as_deref(), Some("alice"));
    let logins = s.fake.lock().unwrap().logins.clone();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["ttl_seconds"], 900);
    assert_eq!(logins[0]["state"].as_str().unwrap().len(), 43);
    assert!(
        logins[0]["redirect_uri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    // Cached: no browser, no server call.
    let again = s.login.login(&s.opts).await.unwrap();
    assert!(matches!(again, ObtainedToken::Cached(ref c) if c.token.expose() == "tok-1"));
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 1);

    // --force: a new sign-in.
    let mut force = s.opts.clone();
    force.force = true;
    let forced = s.login.login(&force).await.unwrap();
    assert!(matches!(forced, ObtainedToken::New(ref c) if c.token.expose() == "tok-2"));
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 2);

    assert!(s.login.logout(&s.opts.endpoint).unwrap());
    let e = s
        .login
        .whoami(&s.opts.endpoint, Duration::from_secs(5))
        .await;
    assert!(matches!(e, Err(LoginError::NotLoggedIn { .. })));
}

#[tokio::test]
async fn session_mode_uses_the_state_the_server_chose() {
    let s = setup("session", FollowBrowser::default()).await;
    let out = s.login.login(&s.opts).await.unwrap();
    assert_eq!(out.token().token.expose(), "tok-1");
    let logins = s.fake.lock().unwrap().logins.clone();
    assert_eq!(logins[0]["state"], "session-0");
    let (t, user) = s
        .login
        .whoami(&s.opts.endpoint, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(user.id, "alice");
    assert_eq!(t.token.expose(), "tok-1");
}

#[tokio::test]
async fn concurrent_logins_open_one_browser_and_share_the_token() {
    let s = setup("state", FollowBrowser::default()).await;
    let (a, b) = tokio::join!(s.login.login(&s.opts), s.login.login(&s.opts));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.token().token.expose(), b.token().token.expose());
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 1);
    assert!(
        matches!(a, ObtainedToken::Cached(_)) != matches!(b, ObtainedToken::Cached(_)),
        "one signs in, the other reuses"
    );
    assert!(
        s.lines.all().contains("is in progress; waiting"),
        "{}",
        s.lines.all()
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_fails_before_the_browser_opens() {
    let s = setup("state", FollowBrowser::default()).await;
    {
        let mut f = s.fake.lock().unwrap();
        f.registered = vec!["http://127.0.0.1:8085/callback".into()];
        f.any_port = false;
    }
    let mut opts = s.opts.clone();
    opts.callback.ports = vec![18085, 28085];
    let e = s.login.login(&opts).await.unwrap_err();
    assert_eq!(
        e.to_string().split(" (registered").next().unwrap(),
        "redirect URI http://127.0.0.1:18085/callback is not registered for this client"
    );
    assert!(
        e.to_string().contains("http://127.0.0.1:8085/callback"),
        "{e}"
    );
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_idp_error_and_an_unmapped_user_are_reported() {
    let s = setup("state", FollowBrowser::default()).await;
    s.fake.lock().unwrap().idp_error = Some("access_denied".into());
    let e = s.login.login(&s.opts).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "the identity provider refused the login: access_denied (the user said no)"
    );
    {
        let mut f = s.fake.lock().unwrap();
        f.idp_error = None;
        f.map_user = false;
    }
    let e = s.login.login(&s.opts).await.unwrap_err();
    assert!(
        e.to_string().starts_with(
            "no lakeFS user is mapped to your identity (the server answered 401: no user has external id alice-ext): ask your lakeFS administrator"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_browser_that_never_comes_back_times_out() {
    let s = setup(
        "state",
        FollowBrowser {
            inert: true,
            ..FollowBrowser::default()
        },
    )
    .await;
    let mut opts = s.opts.clone();
    opts.timeout = Duration::from_millis(1500);
    let e = s.login.login(&opts).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "login timed out after 1s 500ms: the browser was closed or the sign-in was not finished"
    );
}

#[tokio::test]
async fn without_a_discovery_document_the_flags_describe_the_provider() {
    let s = setup("none", FollowBrowser::default()).await;
    let e = s.login.login(&s.opts).await.unwrap_err();
    assert!(matches!(e, LoginError::NoDiscovery { .. }), "{e}");
    assert!(e.to_string().contains("--issuer and --client-id"), "{e}");
    let mut opts = s.opts.clone();
    opts.provider = ProviderSource::Given {
        issuer: s.fake.lock().unwrap().base.clone(),
        client_id: "lakests-cli".into(),
        scopes: vec![],
    };
    assert_eq!(
        s.login.login(&opts).await.unwrap().token().token.expose(),
        "tok-1"
    );
}

#[tokio::test]
async fn unreachable_servers_are_named_in_the_error() {
    let s = setup("state", FollowBrowser::default()).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut opts = s.opts.clone();
    opts.endpoint = Endpoint::parse(&dead_url).unwrap();
    let e = s.login.login(&opts).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot reach the lakeFS server at {dead_url}: ")),
        "{e}"
    );
    let mut opts = s.opts.clone();
    opts.provider = ProviderSource::Given {
        issuer: dead_url.clone(),
        client_id: "x".into(),
        scopes: vec![],
    };
    let e = s.login.login(&opts).await.unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "cannot reach the identity provider at {dead_url}: "
        )),
        "{e}"
    );
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_cached_token_is_reused_until_min_validity_then_renewed() {
    let s = setup("state", FollowBrowser::default()).await;
    let clock = lakests_core::ManualClock::new(SystemClock.now());
    let dir = tempfile::tempdir().unwrap();
    let login = Login::new(
        ServerClient::new(Duration::from_secs(10)).unwrap(),
        s.browser.clone(),
        Arc::new(FileTokenCache::in_dir(dir.path())),
        Arc::new(clock.clone()),
        s.lines.clone(),
    );
    let mut opts = s.opts.clone();
    opts.ttl_seconds = Some(3600);
    opts.min_validity_seconds = 300;
    let first = login.login(&opts).await.unwrap();
    assert!(matches!(first, ObtainedToken::New(_)));
    let exp = first.token().token_expiration;
    // 301 s left: still valid enough, answered from the cache without a call.
    clock.set(exp - 301);
    let again = login.login(&opts).await.unwrap();
    assert!(matches!(again, ObtainedToken::Cached(_)));
    assert_eq!(s.fake.lock().unwrap().logins.len(), 1);
    // 299 s left: close to expiry, a new sign-in.
    clock.set(exp - 299);
    let renewed = login.login(&opts).await.unwrap();
    assert!(matches!(renewed, ObtainedToken::New(_)));
    assert_eq!(s.fake.lock().unwrap().logins.len(), 2);
    assert_eq!(s.browser.opens.load(Ordering::SeqCst), 2);
}
