//! Test support: signing keys, a hostile OpenID Provider of our own making, and a running
//! authenticator role (real HTTP on 127.0.0.1, real SQLite store, a manual clock).

#![allow(dead_code)]

pub mod browser;
pub mod node;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RsaKeyPair, RsaPublicKeyComponents,
};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use lakests_authenticator::AuthenticatorService;
use lakests_config::{
    AuthenticatorConfig, ClientAuth, Duration as CfgDuration, PkceMode, ProviderConfig, Secret,
};
use lakests_core::{Clock, ManualClock, Store};
use serde_json::{Value, json};

/// The manual clock's starting time.
pub const T0: i64 = 1_750_000_000;
/// The client secret of the hostile provider's confidential client.
pub const CLIENT_SECRET: &str = "hostile-client-secret-never-in-logs";
/// Its client id.
pub const CLIENT_ID: &str = "lakests-client";
/// A redirect URI the default provider allows (exact match).
pub const REDIRECT: &str = "https://app.example/callback";
/// A loopback redirect URI the default provider allows.
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:8085/callback";
/// A redirect URI of a session-mode provider (same IdP).
pub const SESSION_REDIRECT: &str = "https://app.example/session-callback";

// ---------------------------------------------------------------------------------------
// Keys

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    enc: EncodingKey,
    /// The public JWK, with `kid`, `use: sig` and `alg`.
    pub jwk: Value,
    /// The DER SubjectPublicKeyInfo: what an attacker would use as an HMAC key.
    pub public_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl SigningKey {
    pub fn rsa(kid: &str, alg: Algorithm) -> Self {
        let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
        let enc = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap();
        let comps = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
        let public_der = kp.public_key().as_der().unwrap().as_ref().to_vec();
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": alg_name(alg),
            "n": URL_SAFE_NO_PAD.encode(&comps.n), "e": URL_SAFE_NO_PAD.encode(&comps.e)});
        Self {
            kid: kid.into(),
            alg,
            enc,
            jwk,
            public_der,
        }
    }

    pub fn ec(kid: &str, alg: Algorithm) -> Self {
        let (signing, crv, len) = match alg {
            Algorithm::ES256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            Algorithm::ES384 => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            _ => panic!("not an EC algorithm"),
        };
        let kp = EcdsaKeyPair::generate(signing).unwrap();
        let pkcs8 = kp.to_pkcs8v1().unwrap();
        let enc = EncodingKey::from_ec_der(pkcs8.as_ref());
        let point = kp.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(len);
        let jwk = json!({"kty": "EC", "kid": kid, "use": "sig", "alg": alg_name(alg), "crv": crv,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
        Self {
            kid: kid.into(),
            alg,
            enc,
            jwk,
            public_der: point,
        }
    }

    pub fn ed(kid: &str) -> Self {
        let kp = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = kp.to_pkcs8().unwrap();
        let enc = EncodingKey::from_ed_der(pkcs8.as_ref());
        let x = kp.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "OKP", "kid": kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&x)});
        Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            enc,
            jwk,
            public_der: x,
        }
    }

    /// A compact JWS of `claims` with header `{"alg", "typ": "JWT", "kid"}` merged with
    /// `extra_header` (a `null` value removes a field).
    pub fn sign(&self, claims: &Value, extra_header: Value) -> String {
        let mut header = json!({"alg": alg_name(self.alg), "typ": "JWT", "kid": self.kid});
        merge(&mut header, extra_header);
        let input = signing_input(&header, claims);
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.enc, self.alg).unwrap();
        format!("{input}.{sig}")
    }
}

pub fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
    }
}

pub fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                t.remove(&k);
            } else {
                t.insert(k, v);
            }
        }
    }
}

pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// HS256 over `input` keyed with `key`, base64url.
pub fn hs256(input: &str, key: &[u8]) -> String {
    jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .unwrap()
}

/// Keys generated once per test binary (RSA generation is slow).
pub struct Keys {
    pub rs256: SigningKey,
    pub rs256_rotated: SigningKey,
    pub ps256: SigningKey,
    pub es256: SigningKey,
    pub es384: SigningKey,
    pub ed: SigningKey,
    pub attacker: SigningKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rs256: SigningKey::rsa("rsa-1", Algorithm::RS256),
        rs256_rotated: SigningKey::rsa("rsa-2", Algorithm::RS256),
        ps256: SigningKey::rsa("ps-1", Algorithm::PS256),
        es256: SigningKey::ec("ec-1", Algorithm::ES256),
        es384: SigningKey::ec("ec384-1", Algorithm::ES384),
        ed: SigningKey::ed("ed-1"),
        attacker: SigningKey::rsa("rsa-1", Algorithm::RS256),
    })
}

// ---------------------------------------------------------------------------------------
// The hostile provider

/// What the token endpoint answers.
#[derive(Clone)]
pub enum TokenReply {
    /// 200 with this ID token and an access token.
    IdToken(String),
    /// Any status with a JSON body.
    Json(u16, Value),
    /// Any status, content type and body.
    Raw(u16, &'static str, Vec<u8>),
    /// Never answers.
    Hang,
    /// A redirect to this URL.
    Redirect(String),
}

/// A token request as the provider received it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

pub struct IdpState {
    pub discovery: Value,
    pub jwks: Vec<Value>,
    pub token: TokenReply,
    pub userinfo: Value,
    pub token_requests: Vec<TokenRequest>,
    pub userinfo_auth: Vec<Option<String>>,
}

#[derive(Default)]
pub struct Hits {
    pub discovery: AtomicUsize,
    pub jwks: AtomicUsize,
    pub token: AtomicUsize,
    pub userinfo: AtomicUsize,
    /// Any path an ID token's header points to (jku, x5u): must stay 0.
    pub evil: AtomicUsize,
    /// The target of a token-endpoint redirect: must stay 0.
    pub redirected: AtomicUsize,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<IdpState>>,
    hits: Arc<Hits>,
}

/// An OpenID Provider that says whatever a test tells it to.
pub struct HostileIdp {
    pub issuer: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    pub hits: Arc<Hits>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileIdp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let k = keys();
        let state = Arc::new(Mutex::new(IdpState {
            discovery: json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "ES384", "EdDSA", "HS256", "none"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
            }),
            jwks: vec![
                k.rs256.jwk.clone(),
                k.ps256.jwk.clone(),
                k.es256.jwk.clone(),
                k.es384.jwk.clone(),
                k.ed.jwk.clone(),
            ],
            token: TokenReply::Json(400, json!({"error": "invalid_grant"})),
            userinfo: json!({}),
            token_requests: Vec::new(),
            userinfo_auth: Vec::new(),
        }));
        let hits = Arc::new(Hits::default());
        let shared = Shared {
            state: state.clone(),
            hits: hits.clone(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/evil", get(evil))
            .route("/redirected", get(redirected).post(redirected))
            .with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            issuer,
            addr,
            state,
            hits,
            task,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut IdpState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// The token endpoint answers this ID token from now on.
    pub fn issue(&self, id_token: String) {
        self.with(|s| s.token = TokenReply::IdToken(id_token));
    }

    pub fn reply(&self, r: TokenReply) {
        self.with(|s| s.token = r);
    }

    pub fn last_token_request(&self) -> TokenRequest {
        self.with(|s| s.token_requests.last().cloned().expect("a token request"))
    }

    pub fn discovery_hits(&self) -> usize {
        self.hits.discovery.load(Ordering::SeqCst)
    }
    pub fn jwks_hits(&self) -> usize {
        self.hits.jwks.load(Ordering::SeqCst)
    }
    pub fn token_hits(&self) -> usize {
        self.hits.token.load(Ordering::SeqCst)
    }
}

async fn discovery(State(s): State<Shared>) -> Response {
    s.hits.discovery.fetch_add(1, Ordering::SeqCst);
    let doc = s.state.lock().unwrap().discovery.clone();
    axum::Json(doc).into_response()
}

async fn jwks(State(s): State<Shared>) -> Response {
    s.hits.jwks.fetch_add(1, Ordering::SeqCst);
    let keys = s.state.lock().unwrap().jwks.clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.hits.token.fetch_add(1, Ordering::SeqCst);
    let reply = {
        let mut st = s.state.lock().unwrap();
        st.token_requests.push(TokenRequest {
            form,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        st.token.clone()
    };
    match reply {
        TokenReply::IdToken(t) => axum::Json(json!({
            "access_token": "hostile-access-token-never-in-logs",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": t,
        }))
        .into_response(),
        TokenReply::Json(status, body) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        TokenReply::Raw(status, ct, body) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", ct)],
            body,
        )
            .into_response(),
        TokenReply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        TokenReply::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
    }
}

async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    s.hits.userinfo.fetch_add(1, Ordering::SeqCst);
    let mut st = s.state.lock().unwrap();
    st.userinfo_auth.push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    axum::Json(st.userinfo.clone()).into_response()
}

async fn evil(State(s): State<Shared>) -> Response {
    s.hits.evil.fetch_add(1, Ordering::SeqCst);
    let attacker = keys().attacker.jwk.clone();
    axum::Json(json!({ "keys": [attacker] })).into_response()
}

async fn redirected(State(s): State<Shared>) -> Response {
    s.hits.redirected.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"id_token": "x"})).into_response()
}

// ---------------------------------------------------------------------------------------
// The authenticator under test

/// A provider entry with the test defaults.
pub fn provider(
    name: &str,
    issuer: &str,
    redirect_uris: &[&str],
    pkce: PkceMode,
) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        client_auth: Some(ClientAuth::ClientSecretBasic),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
        allow_loopback_any_port: false,
        pkce,
        clock_skew_seconds: 60,
        required_claims: Default::default(),
        userinfo: false,
        external_id_namespace: None,
        provision_users: false,
        username_claim: "sub".into(),
        groups_claim: None,
    }
}

/// The authenticator role, served on 127.0.0.1, with a SQLite store in a temporary
/// directory and a manual clock.
pub struct Authn {
    pub base: String,
    pub clock: ManualClock,
    pub service: Arc<AuthenticatorService>,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Authn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The base configuration: 2 s timeouts so the hanging cases stay quick.
pub fn base_config(providers: Vec<ProviderConfig>) -> AuthenticatorConfig {
    AuthenticatorConfig {
        listen_address: "127.0.0.1:0".into(),
        request_timeout: CfgDuration::from_secs(2),
        providers,
        ..AuthenticatorConfig::default()
    }
}

impl Authn {
    pub async fn start(config: AuthenticatorConfig, clock: ManualClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            lakests_store::SqliteStore::open(
                &dir.path().join("lakests.db"),
                Duration::from_secs(5),
            )
            .await
            .unwrap(),
        );
        let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
        let service =
            Arc::new(AuthenticatorService::new(&config, store.clone(), clock_dyn).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = lakests_authenticator::router(service.clone());
        let task = tokio::spawn(async move {
            let _ = lakests_http::serve(listener, router, std::future::pending()).await;
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            clock,
            service,
            store,
            http,
            task,
            _dir: dir,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-request-id", "test-request-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json, text)
    }

    pub async fn login(&self, code: &str, state: &str, redirect_uri: &str) -> (u16, Value, String) {
        self.post(
            "/api/v1/sts/login",
            json!({"code": code, "state": state, "redirect_uri": redirect_uri}),
        )
        .await
    }

    pub async fn authorize(&self, redirect_uri: &str) -> (u16, Value, String) {
        self.post(
            "/api/v1/sts/authorize",
            json!({"redirect_uri": redirect_uri}),
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// A valid PKCE verifier for state mode.
pub fn verifier(n: u8) -> String {
    format!("verifier-{n}-{}", "v".repeat(40))
}

/// Asserts a refusal: the status, an `{"message"}` body and nothing else, and none of the
/// given secrets or claim values anywhere in it.
pub fn assert_refused(got: &(u16, Value, String), status: u16, must_not_contain: &[&str]) {
    let (s, json, text) = got;
    assert_eq!(*s, status, "body: {text}");
    let obj = json
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {text}"));
    let reason_ok = obj
        .get("reason")
        .and_then(Value::as_str)
        .is_some_and(|r| lakests_core::Reason::parse(r).is_some());
    assert_eq!(
        obj.len(),
        1 + usize::from(reason_ok),
        "only a message (and a known reason): {text}"
    );
    assert!(
        obj.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    assert!(!text.contains("claims"), "{text}");
    for secret in must_not_contain {
        assert!(!text.contains(secret), "{secret:?} leaked in {text}");
    }
}
