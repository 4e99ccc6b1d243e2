//! Starts the real development IdP router on 127.0.0.1:0 and speaks to it with reqwest.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use lakests_config::{IdpClient, IdpConfig, IdpUser, Secret};
use lakests_core::{Clock, ManualClock, SystemClock};
use lakests_devidp::DevIdp;
use serde_json::Value;

pub const PUBLIC_CLIENT: &str = "spa";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const CONFIDENTIAL_CLIENT: &str = "backend";
pub const CONFIDENTIAL_SECRET: &str = "s3cret: with & odd = chars";
pub const CONFIDENTIAL_REDIRECT: &str = "http://localhost:9/oidc/callback?tenant=a";
pub const BOB_PASSWORD: &str = "correct horse";

/// Alice (no password, an extra claim), Bob (a password); a public client, and a confidential
/// one whose ID tokens are ES256.
pub fn config() -> IdpConfig {
    let mut alice_claims = serde_json::Map::new();
    alice_claims.insert("department".into(), Value::from("data"));
    alice_claims.insert("level".into(), Value::from(3));
    IdpConfig {
        enabled: true,
        listen_address: "127.0.0.1:0".into(),
        users: vec![
            IdpUser {
                sub: "alice".into(),
                email: Some("alice@example.com".into()),
                name: Some("Alice Liddell".into()),
                groups: vec!["admins".into(), "data".into()],
                password: None,
                claims: alice_claims,
            },
            IdpUser {
                sub: "bob".into(),
                email: Some("bob@example.com".into()),
                name: Some("Bob".into()),
                groups: vec!["developers".into()],
                password: Some(Secret::new(BOB_PASSWORD)),
                claims: serde_json::Map::new(),
            },
        ],
        clients: vec![
            IdpClient {
                client_id: PUBLIC_CLIENT.into(),
                client_secret: None,
                redirect_uris: vec![PUBLIC_REDIRECT.into(), "http://127.0.0.1:9/other".into()],
                id_token_signed_response_alg: None,
            },
            IdpClient {
                client_id: CONFIDENTIAL_CLIENT.into(),
                client_secret: Some(Secret::new(CONFIDENTIAL_SECRET)),
                redirect_uris: vec![CONFIDENTIAL_REDIRECT.into()],
                id_token_signed_response_alg: Some(lakests_config::SigningAlg::ES256),
            },
        ],
        ..IdpConfig::default()
    }
}

/// A running development IdP.
pub struct TestIdp {
    pub issuer: String,
    pub clock: ManualClock,
    pub keys_dir: PathBuf,
    pub http: reqwest::Client,
    pub idp: Arc<DevIdp>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

impl TestIdp {
    /// Starts with `config`, fresh keys and a manual clock at the real time.
    pub async fn start(config: IdpConfig) -> TestIdp {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_dir = dir.path().join("idp-keys");
        let clock = ManualClock::new(SystemClock.now());
        let mut idp = Self::start_in(config, &keys_dir, clock).await;
        idp._dir = Some(dir);
        idp
    }

    /// Starts with `config`, the keys of `keys_dir` and `clock`.
    pub async fn start_in(config: IdpConfig, keys_dir: &Path, clock: ManualClock) -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}");
        let idp = Arc::new(
            DevIdp::new(&config, issuer.clone(), keys_dir, Arc::new(clock.clone()))
                .expect("DevIdp::new"),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = lakests_devidp::router(idp.clone());
        let task = tokio::spawn(async move {
            let _ = lakests_http::serve(listener, router, async {
                let _ = rx.await;
            })
            .await;
        });
        TestIdp {
            issuer,
            clock,
            keys_dir: keys_dir.to_path_buf(),
            http: http_client(),
            idp,
            shutdown: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    /// Stops serving and waits for the server to finish; the keys directory stays.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        self._dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub async fn jwks(&self) -> JwkSet {
        self.http
            .get(self.url("/jwks"))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json")
    }

    pub async fn authorize_get(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.url("/authorize"))
            .query(params)
            .send()
            .await
            .expect("authorize")
    }

    pub async fn authorize_post(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/authorize"))
            .form(params)
            .send()
            .await
            .expect("authorize post")
    }

    /// Signs `sub` in through the page's form for the public client and returns the code.
    pub async fn code_for(&self, sub: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid email profile"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("sub", sub),
        ];
        params.extend_from_slice(extra);
        let resp = self.authorize_post(&params).await;
        assert_eq!(
            resp.status(),
            303,
            "sign-in should redirect: {}",
            resp.text().await.unwrap_or_default()
        );
        let q = location_params(&resp);
        assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
        assert_eq!(q.get("iss"), Some(&self.issuer));
        q.get("code").cloned().expect("a code in the redirect")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .expect("token")
    }

    /// Redeems a public-client code and returns the token response JSON (asserting 200).
    pub async fn redeem(&self, code: &str, pkce: &Pkce) -> Value {
        let resp = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", PUBLIC_REDIRECT),
                ("client_id", PUBLIC_CLIENT),
                ("code_verifier", pkce.verifier.as_str()),
            ])
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("token json");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The ID token of a full public-client login of `sub` with `extra` authorize parameters.
    pub async fn id_token_for(&self, sub: &str, extra: &[(&str, &str)]) -> String {
        let pkce = Pkce::new();
        let code = self.code_for(sub, &pkce, extra).await;
        let body = self.redeem(&code, &pkce).await;
        body["id_token"].as_str().expect("id_token").to_owned()
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A PKCE pair.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = challenge_of(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

pub fn challenge_of(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// The query parameters of a redirect's Location.
pub fn location_params(resp: &reqwest::Response) -> HashMap<String, String> {
    let loc = resp
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii location");
    url::Url::parse(loc)
        .expect("absolute location")
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii location")
        .to_owned()
}

/// The header and claims of a JWT, without checking anything.
pub fn unverified(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || -> Value {
        let b = URL_SAFE_NO_PAD
            .decode(parts.next().expect("jwt part"))
            .expect("base64url");
        serde_json::from_slice(&b).expect("json")
    };
    let header = part();
    let claims = part();
    (header, claims)
}

/// Verifies only the signature of `token` with the key its `kid` names in `jwks`.
pub fn verify_signature(token: &str, jwks: &JwkSet) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}
