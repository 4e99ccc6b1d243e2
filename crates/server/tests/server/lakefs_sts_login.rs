//! lakeFS's STS flow end to end without lakeFS: a STAND-IN for lakeFS's `StsLogin` (not lakeFS
//! itself) does what lakeFS does with `auth.authentication_api.endpoint` and `auth.api.endpoint`
//! pointed at one lakests base URL: authenticator `sts/login`, `validate_id_token_claims`,
//! `GET /auth/users?external_id=<sub>` with exactly one user, then mint with the shared secret.
//! The user logs in through the development IdP and is provisioned at its first login, its
//! groups synced from the `groups` claim.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use lakests_config::Config;
use lakests_core::token::TokenIssuer;
use lakests_core::{Store, SystemClock};
use serde_json::{Value, json};
use tokio::sync::oneshot;

const SECRET: &str = "lakefs-and-lakests-share-this-secret-key";
const CLIENT_ID: &str = "lakests";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

struct System {
    base: String,
    idp: String,
    callback_dev: String,
    callback_other: String,
    store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl System {
    async fn start() -> System {
        let dir = tempfile::tempdir().expect("tempdir");
        // Bound here and handed to the application: the issuer must name its port.
        let idp_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let idp_port = idp_listener.local_addr().expect("address").port();
        let issuer = format!("http://127.0.0.1:{idp_port}");
        let callback_dev = "http://127.0.0.1:1/dev/callback".to_owned();
        let callback_other = "http://127.0.0.1:1/other/callback".to_owned();
        let provider = |name: &str, callback: &str| {
            json!({
                "name": name,
                "issuer": issuer,
                "client_id": CLIENT_ID,
                "redirect_uris": [callback],
                "pkce": "state",
                "provision_users": true,
                "groups_claim": "groups",
            })
        };
        let doc = json!({
            "data_dir": dir.path(),
            "logging": {"level": "warn"},
            "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": false}},
            "authenticator": {
                "listen_address": "127.0.0.1:0",
                "providers": [provider("dev", &callback_dev), provider("other", &callback_other)],
            },
            // Shares the authenticator's listener: one base URL for lakeFS.
            "authorization": {"enabled": true},
            "idp": {
                "enabled": true,
                "listen_address": format!("127.0.0.1:{idp_port}"),
                "issuer": issuer,
                "interactive": false,
                "users": [{"sub": "alice", "email": "alice@example.com", "name": "Alice", "groups": ["Developers", "Viewers"]}],
                "clients": [{"client_id": CLIENT_ID, "redirect_uris": [callback_dev, callback_other]}],
            },
        });
        let config = Config::from_sources(Some(&doc.to_string()), Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("config: {e}"));
        let app = lakests_server::Application::build_with_listeners(
            config,
            Arc::new(SystemClock),
            lakests_server::Listeners {
                idp: Some(idp_listener),
                ..Default::default()
            },
        )
        .await
        .expect("build");
        let authn = app.authenticator_addr().expect("authenticator");
        assert_eq!(
            app.authorization_addr(),
            Some(authn),
            "the authorization API shares the authenticator's listener"
        );
        let store = app.store();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        System {
            base: format!("http://{authn}/api/v1"),
            idp: issuer,
            callback_dev,
            callback_other,
            store,
            stop: Some(tx),
            _dir: dir,
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// What lakeFS's `StsLogin` ends with, or where it stopped.
#[derive(Debug)]
enum StsOutcome {
    Token { username: String, token: String },
    Refused(String),
}

/// A stand-in for lakeFS (not lakeFS): its STS login, step by step, against lakests.
struct LakefsStandIn {
    http: reqwest::Client,
    base: String,
    service_token: String,
    validate_id_token_claims: Vec<(&'static str, &'static str)>,
}

impl LakefsStandIn {
    fn new(base: &str) -> Self {
        let t = now();
        let service_token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"sub": "_lakefs-internal", "aud": ["auth-client"], "iat": t, "exp": t + 315_360_000, "jti": "standin"}),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign");
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            service_token,
            validate_id_token_claims: vec![("aud", CLIENT_ID)],
        }
    }

    async fn sts_login(&self, code: &str, state: &str, redirect_uri: &str) -> StsOutcome {
        // 1. The authenticator.
        let resp = self
            .http
            .post(format!("{}/sts/login", self.base))
            .json(&json!({"code": code, "state": state, "redirect_uri": redirect_uri}))
            .send()
            .await
            .expect("authenticator");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        if status != 200 {
            return StsOutcome::Refused(format!("authenticator {status}: {body}"));
        }
        let claims = &body["claims"];
        // 2. validate_id_token_claims.
        for (k, v) in &self.validate_id_token_claims {
            if claims[*k] != *v {
                return StsOutcome::Refused(format!("claim {k} mismatch"));
            }
        }
        // 3. GetUserByExternalID(sub): exactly one user.
        let sub = claims["sub"].as_str().expect("sub").to_owned();
        let resp = self
            .http
            .get(format!("{}/auth/users", self.base))
            .query(&[("amount", "2"), ("external_id", sub.as_str())])
            .bearer_auth(&self.service_token)
            .send()
            .await
            .expect("lookup");
        assert_eq!(resp.status(), 200);
        let list: Value = resp.json().await.expect("json");
        let results = list["results"].as_array().expect("results");
        let username = match results.len() {
            0 => return StsOutcome::Refused(format!("no user with external id {sub}")),
            1 => results[0]["username"]
                .as_str()
                .expect("username")
                .to_owned(),
            _ => panic!("more than one user for {sub}: lakeFS answers 500"),
        };
        // 4. Mint with the shared secret.
        let (token, _) = TokenIssuer::new(&SECRET.to_owned().into())
            .mint(&username, now(), 3600)
            .expect("mint");
        StsOutcome::Token { username, token }
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(&[("after", ""), ("amount", "100"), ("prefix", "")])
            .bearer_auth(&self.service_token)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.expect("json")
    }
}

/// `lakests login`'s part in state mode: a code from the development IdP for `login_hint`.
async fn code_from_dev_idp(sys: &System, redirect_uri: &str) -> (String, String) {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).expect("random");
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, state.as_bytes()).as_ref());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = http
        .get(format!("{}/authorize", sys.idp))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", redirect_uri),
            ("scope", "openid email profile"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
    let location = resp.headers()["location"].to_str().expect("location");
    let url = url::Url::parse(location).expect("url");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    (code, state)
}

fn group_names(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|g| g["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_provisioned_at_first_login_gets_a_lakefs_token_from_lakefs_own_sts_login() {
    let sys = System::start().await;
    let lakefs = LakefsStandIn::new(&sys.base);

    // First login: no admin created alice; the authenticator provisions her.
    let (code, state) = code_from_dev_idp(&sys, &sys.callback_dev).await;
    let outcome = lakefs.sts_login(&code, &state, &sys.callback_dev).await;
    let StsOutcome::Token { username, token } = outcome else {
        panic!("login failed: {outcome:?}");
    };
    assert_eq!(username, "alice");
    // The token verifies under lakeFS's rules (HS256, aud login, exp, sub = the user).
    let claims = TokenIssuer::new(&SECRET.to_owned().into())
        .verify(&token, now())
        .expect("verifies");
    assert_eq!(claims.sub, "alice");
    let user = lakefs.get("/auth/users/alice").await;
    assert_eq!(
        user["external_id"], "dev:alice",
        "namespaced by the provider"
    );
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["friendly_name"], "Alice");
    assert_eq!(user["source"], "oidc");
    assert_eq!(
        group_names(&lakefs.get("/auth/users/alice/groups").await),
        ["Developers", "Viewers"]
    );

    // Memberships follow the claim at every login: an admin's extra group goes, a missing one
    // comes back.
    sys.store
        .set_user_groups("alice", &["Developers".into(), "Old".into()])
        .await
        .expect("change groups");
    let (code, state) = code_from_dev_idp(&sys, &sys.callback_dev).await;
    let outcome = lakefs.sts_login(&code, &state, &sys.callback_dev).await;
    assert!(matches!(outcome, StsOutcome::Token { .. }), "{outcome:?}");
    assert_eq!(
        group_names(&lakefs.get("/auth/users/alice/groups").await),
        ["Developers", "Viewers"]
    );

    // Another provider with the same sub never reaches alice: its external id is other:alice,
    // and the username alice belongs to another identity.
    let (code, state) = code_from_dev_idp(&sys, &sys.callback_other).await;
    let outcome = lakefs.sts_login(&code, &state, &sys.callback_other).await;
    match outcome {
        StsOutcome::Refused(why) => assert!(why.contains("409"), "{why}"),
        StsOutcome::Token { username, .. } => {
            panic!("another provider logged in as {username}")
        }
    }
    let other = sys
        .store
        .find_user_by_external_id("other:alice")
        .await
        .expect("find");
    assert!(
        other.is_none(),
        "nothing was created for the other provider"
    );
}
