//! The authorization API (lakeFS's `auth.api.endpoint`) through the real server, called the way
//! lakeFS's `APIAuthService` calls it (AUTHZ.md): its JWT, paths escaped twice, the query
//! parameters it always sends, the one status it accepts per call. Every sequence runs on
//! SQLite and on PostgreSQL (a fresh database per test; skipped loudly without
//! `LAKESTS_TEST_POSTGRES_URL`, failed instead with `LAKESTS_TEST_REQUIRE_POSTGRES=1`).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use lakests_config::Config;
use lakests_core::directory::Directory;
use lakests_core::{Store, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

const SECRET: &str = "authz-test-secret-key-shared-with-lakefs";
const STATIC_TOKEN: &str = "a-static-auth-api-token";

enum Backend {
    Sqlite,
    Postgres,
}

/// The server with the authorization role on its own port.
struct Service {
    base: String,
    store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    database: Option<(String, String)>,
}

fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("LAKESTS_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("LAKESTS_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("LAKESTS_TEST_REQUIRE_POSTGRES=1 but LAKESTS_TEST_POSTGRES_URL is not set");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! PostgreSQL authorization API test SKIPPED ({test}): set LAKESTS_TEST_POSTGRES_URL !!!"
            );
            None
        }
    }
}

async fn admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("connect to LAKESTS_TEST_POSTGRES_URL")
}

impl Service {
    async fn start(backend: Backend, test: &str) -> Option<Service> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut database = None;
        let db_yaml = match backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => {
                let admin_url = postgres_url(test)?;
                let name = format!("lakests_authz_{}", uuid::Uuid::new_v4().simple());
                let pool = admin(&admin_url).await;
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create database");
                pool.close().await;
                let mut url = url::Url::parse(&admin_url).expect("url");
                url.set_path(&format!("/{name}"));
                database = Some((admin_url, name));
                format!(
                    "database:\n  type: postgres\n  postgres:\n    connection_string: \"{url}\"\n    max_open_connections: 4\n"
                )
            }
        };
        let yaml = format!(
            r#"
data_dir: "{dir}"
auth:
  encrypt:
    secret_key: "{SECRET}"
  sts:
    enabled: false
authorization:
  enabled: true
  listen_address: "127.0.0.1:0"
  api_token: "{STATIC_TOKEN}"
{db_yaml}"#,
            dir = dir.path().display()
        );
        let config = Config::from_sources(Some(&yaml), Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("config: {e}"));
        let app = lakests_server::Application::build_with_clock(config, Arc::new(SystemClock))
            .await
            .expect("build");
        let addr = app.authorization_addr().expect("authorization role runs");
        assert!(app.sts_addr().is_none(), "auth.sts.enabled: false");
        let store = app.store();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Some(Service {
            base: format!("http://{addr}/api/v1"),
            store,
            shutdown: Some(tx),
            _dir: dir,
            database,
        })
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((admin_url, name)) = self.database.take() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pool = admin(&admin_url).await;
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

/// lakeFS's `generateAuthAPIJWT`: HS256 with the shared secret, `sub: _lakefs-internal`,
/// `aud: ["auth-client"]`, valid ten years.
fn lakefs_service_jwt(secret: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let claims = json!({
        "sub": "_lakefs-internal",
        "aud": ["auth-client"],
        "iat": now,
        "exp": now + 10 * 365 * 24 * 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// A lakeFS user's login token under the same key (`GenerateJWTLogin`).
fn lakefs_login_jwt(secret: &str) -> String {
    let claims =
        json!({"iss": "auth", "aud": "login", "sub": "admin", "iat": 1, "exp": 4_000_000_000i64});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// A path segment as lakeFS's generated client sends it: every byte outside
/// `A-Za-z0-9-_.~$&+:=@` escaped, then the `%` escaped again.
fn seg(value: &str) -> String {
    let mut once = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b) {
            once.push(char::from(b));
        } else {
            once.push_str(&format!("%{b:02X}"));
        }
    }
    once.replace('%', "%25")
}

/// Go's `url.Values.Encode`: keys sorted, values query-escaped (space as `+`).
fn query(pairs: &[(&str, &str)]) -> String {
    let mut pairs = pairs.to_vec();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// `P`: the three pagination parameters, always all three.
fn p(after: &str, amount: i64, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("after", after.to_owned()),
        ("amount", amount.to_string()),
        ("prefix", prefix.to_owned()),
    ]
}

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
    raw: String,
}

/// The test client: calls the service as `APIAuthService` does.
struct Lakefs {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Lakefs {
    fn new(base: &str, token: String) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            base: base.to_owned(),
            token,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        q: &[(&str, String)],
        body: Option<Value>,
    ) -> Reply {
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut url = format!("{}{path}", self.base);
        if !pairs.is_empty() {
            url.push('?');
            url.push_str(&query(&pairs));
        }
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("x-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let raw = resp.text().await.expect("body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
            raw,
        }
    }

    /// A call that must answer exactly `want` (the one status lakeFS accepts). A 200/201 with a
    /// schema must be JSON; a bodiless 201/204 must not claim JSON (AUTHZ.md §1).
    async fn expect(
        &self,
        want: u16,
        method: Method,
        path: &str,
        q: &[(&str, String)],
        body: Option<Value>,
    ) -> Value {
        let what = format!("{method} {path}");
        let r = self.call(method, path, q, body).await;
        assert_eq!(r.status.as_u16(), want, "{what}: {}", r.raw);
        if r.raw.is_empty() {
            assert!(
                !r.content_type.as_deref().unwrap_or("").contains("json"),
                "{what}: an empty body must not claim JSON"
            );
        } else {
            assert!(
                r.content_type.as_deref().unwrap_or("").contains("json"),
                "{what}: a body must be JSON"
            );
        }
        if want >= 400 {
            assert!(
                r.body.get("message").and_then(Value::as_str).is_some(),
                "{what}: error body {}",
                r.raw
            );
        }
        r.body
    }

    /// lakeFS's list loops: follow `next_offset` until it is `""`.
    async fn collect(&self, path: &str, amount: i64, extra: &[(&str, String)]) -> Vec<Value> {
        let mut after = String::new();
        let mut all = Vec::new();
        for _ in 0..1000 {
            let mut q = p(&after, amount, "");
            q.extend(extra.iter().cloned());
            let page = self.expect(200, Method::GET, path, &q, None).await;
            let results = page["results"].as_array().expect("results").clone();
            assert_eq!(
                page["pagination"]["results"].as_u64(),
                Some(results.len() as u64)
            );
            let next = page["pagination"]["next_offset"]
                .as_str()
                .expect("next_offset")
                .to_owned();
            assert!(
                next.is_empty() || !results.is_empty(),
                "a non-empty next_offset on an empty page"
            );
            all.extend(results);
            if next.is_empty() {
                return all;
            }
            after = next;
        }
        panic!("pagination did not end");
    }

    async fn effective_policies(&self, user: &str) -> Vec<String> {
        let path = format!("/auth/users/{}/policies", seg(user));
        self.collect(&path, 1000, &[("effective", "true".into())])
            .await
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect()
    }
}

fn names(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().expect("key").to_owned())
        .collect()
}

fn statement(action: &str, resource: &str) -> Value {
    json!([{"effect": "allow", "action": [action], "resource": resource}])
}

fn policy_body(name: &str, action: &str) -> Value {
    json!({"name": name, "statement": statement(action, "*"), "acl": "", "creation_date": 0})
}

mod sequences {
    use super::*;

    /// Startup (`CheckHealth`) and lakeFS's authentication: its JWT or the static token;
    /// nothing else reaches the data.
    pub async fn startup_and_authentication(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        lakefs
            .expect(204, Method::GET, "/healthcheck", &[], None)
            .await;
        let v = lakefs
            .expect(200, Method::GET, "/config/version", &[], None)
            .await;
        assert!(v["version"].is_string());
        let static_client = Lakefs::new(&s.base, STATIC_TOKEN.into());
        static_client
            .expect(200, Method::GET, "/auth/users", &p("", 100, ""), None)
            .await;
        for bad in [
            lakefs_service_jwt("another-secret-key-of-some-other-lakefs"),
            lakefs_login_jwt(SECRET),
            format!("{STATIC_TOKEN}x"),
            String::new(),
        ] {
            let client = Lakefs::new(&s.base, bad);
            for path in ["/config/version", "/auth/users"] {
                let body = client.expect(401, Method::GET, path, &[], None).await;
                assert!(!body.to_string().contains(STATIC_TOKEN));
            }
            client
                .expect(
                    401,
                    Method::POST,
                    "/auth/users",
                    &[],
                    Some(json!({"username": "intruder"})),
                )
                .await;
        }
        assert!(
            s.store.get_user("intruder").await.expect("get").is_none(),
            "nothing reached the data"
        );
    }

    /// rbac `internal` setup, then a request's authorization, basic auth and the S3 gateway.
    pub async fn setup_then_every_request(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        for g in ["Admins", "SuperUsers", "Developers", "Viewers"] {
            let group = lakefs
                .expect(
                    201,
                    Method::POST,
                    "/auth/groups",
                    &[],
                    Some(json!({"id": g})),
                )
                .await;
            assert_eq!(group["name"], g);
            assert_eq!(group["id"], g);
            assert!(group["creation_date"].is_i64());
        }
        let policies = [
            ("FSFullAccess", "fs:*"),
            ("FSReadAll", "fs:Read*"),
            ("AuthFullAccess", "auth:*"),
            ("AuthManageOwnCredentials", "auth:CreateCredentials"),
        ];
        for (name, action) in policies {
            lakefs
                .expect(
                    201,
                    Method::POST,
                    "/auth/policies",
                    &[],
                    Some(policy_body(name, action)),
                )
                .await;
        }
        for (g, pol) in [
            ("Admins", "FSFullAccess"),
            ("Admins", "AuthFullAccess"),
            ("Viewers", "FSReadAll"),
            ("Developers", "FSFullAccess"),
            ("Developers", "AuthManageOwnCredentials"),
        ] {
            let path = format!("/auth/groups/{}/policies/{}", seg(g), seg(pol));
            lakefs.expect(201, Method::PUT, &path, &[], None).await;
        }
        let user = lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users",
                &[],
                Some(json!({"username": "admin", "source": "internal"})),
            )
            .await;
        assert_eq!(user["username"], "admin");
        assert!(user["encryptedPassword"].is_null());
        lakefs
            .expect(200, Method::GET, "/auth/groups/Admins", &[], None)
            .await;
        lakefs
            .expect(
                201,
                Method::PUT,
                "/auth/groups/Admins/members/admin",
                &[],
                None,
            )
            .await;
        // AddCredentials with given keys, stored exactly.
        let creds = lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users/admin/credentials",
                &[
                    ("access_key", "AKIAIOSFODNN7EXAMPLE".into()),
                    (
                        "secret_key",
                        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                    ),
                ],
                None,
            )
            .await;
        assert_eq!(creds["access_key_id"], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(creds["user_name"], "admin");
        // CreateCredentials: generated, shaped like lakeFS's.
        let generated = lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users/admin/credentials",
                &[],
                None,
            )
            .await;
        let ak = generated["access_key_id"].as_str().expect("ak").to_owned();
        let sk = generated["secret_access_key"]
            .as_str()
            .expect("sk")
            .to_owned();
        assert!(
            ak.starts_with("AKIAJ") && ak.ends_with('Q') && ak.len() == 20,
            "{ak}"
        );
        assert_eq!(sk.len(), 40);
        assert!(
            generated["user_id"].is_i64(),
            "user_id is an integer or absent"
        );

        // Every API request: GetUser, then the effective policies, collected until "".
        let user = lakefs
            .expect(200, Method::GET, "/auth/users/admin", &[], None)
            .await;
        assert_eq!(user["source"], "internal");
        assert!(user["creation_date"].is_i64());
        assert_eq!(
            lakefs.effective_policies("admin").await,
            ["AuthFullAccess", "FSFullAccess"]
        );
        // Basic auth and the S3 gateway: GetCredentials gives the secret in clear.
        for (key, secret) in [
            (
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            (ak.as_str(), sk.as_str()),
        ] {
            let c = lakefs
                .expect(
                    200,
                    Method::GET,
                    &format!("/auth/credentials/{}", seg(key)),
                    &[],
                    None,
                )
                .await;
            assert_eq!(c["secret_access_key"], secret);
            assert_eq!(c["user_name"], "admin");
        }
        // At rest the secret is sealed.
        let stored = s
            .store
            .get_credential("AKIAIOSFODNN7EXAMPLE")
            .await
            .expect("get")
            .expect("stored");
        assert!(
            !stored.sealed_secret.windows(10).any(|w| w == b"wJalrXUtnF"),
            "the secret is not stored in clear"
        );
        // lakeFS's UI lists and reads keys without secrets.
        let keys = lakefs
            .collect("/auth/users/admin/credentials", 1, &[])
            .await;
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.get("secret_access_key").is_none()));
        lakefs
            .expect(
                200,
                Method::GET,
                &format!("/auth/users/admin/credentials/{}", seg(&ak)),
                &[],
                None,
            )
            .await;
        lakefs
            .expect(
                409,
                Method::POST,
                "/auth/users/admin/credentials",
                &[
                    ("access_key", "AKIAIOSFODNN7EXAMPLE".into()),
                    ("secret_key", "other".into()),
                ],
                None,
            )
            .await;
        lakefs
            .expect(
                204,
                Method::DELETE,
                &format!("/auth/users/admin/credentials/{}", seg(&ak)),
                &[],
                None,
            )
            .await;
        lakefs
            .expect(
                404,
                Method::GET,
                &format!("/auth/credentials/{}", seg(&ak)),
                &[],
                None,
            )
            .await;
    }

    /// OIDC/SAML session login and lakeFS's `StsLogin`: lookups by external id, creation with a
    /// 409 on a race, initial groups, friendly name.
    pub async fn external_id_lookups_and_provisioning(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/groups",
                &[],
                Some(json!({"id": "Viewers"})),
            )
            .await;
        let sub = "auth0|42 +x";
        let lookup = |sub: &str| vec![("amount", "2".to_owned()), ("external_id", sub.to_owned())];
        let found = lakefs
            .expect(200, Method::GET, "/auth/users", &lookup(sub), None)
            .await;
        assert_eq!(found["results"].as_array().map(Vec::len), Some(0));
        let created = json!({"username": sub, "source": "oidc", "external_id": sub, "email": "a@example.com", "friendlyName": "Ann"});
        lakefs
            .expect(201, Method::POST, "/auth/users", &[], Some(created.clone()))
            .await;
        // A concurrent login created it first: 409, then lakeFS reads it again.
        lakefs
            .expect(409, Method::POST, "/auth/users", &[], Some(created))
            .await;
        let found = lakefs
            .expect(200, Method::GET, "/auth/users", &lookup(sub), None)
            .await;
        let results = found["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "exactly one user for StsLogin");
        assert_eq!(results[0]["username"], sub);
        assert_eq!(results[0]["external_id"], sub);
        assert_eq!(results[0]["friendly_name"], "Ann");
        // The double-escaped path reaches the same user, `+` kept.
        let path = format!("/auth/groups/Viewers/members/{}", seg(sub));
        lakefs.expect(201, Method::PUT, &path, &[], None).await;
        lakefs.expect(201, Method::PUT, &path, &[], None).await;
        lakefs
            .expect(
                204,
                Method::PUT,
                &format!("/auth/users/{}/friendly_name", seg(sub)),
                &[],
                Some(json!({"friendly_name": "Ann B."})),
            )
            .await;
        let user = lakefs
            .expect(
                200,
                Method::GET,
                &format!("/auth/users/{}", seg(sub)),
                &[],
                None,
            )
            .await;
        assert_eq!(user["friendly_name"], "Ann B.");
        let groups = lakefs
            .collect(&format!("/auth/users/{}/groups", seg(sub)), 100, &[])
            .await;
        assert_eq!(names(&groups, "name"), ["Viewers"]);
        // Prefix-like external ids are not matches; an unknown one is an empty list (404 for
        // lakeFS).
        let none = lakefs
            .expect(200, Method::GET, "/auth/users", &lookup("auth0|4"), None)
            .await;
        assert_eq!(none["results"].as_array().map(Vec::len), Some(0));
        let by_email = lakefs
            .expect(
                200,
                Method::GET,
                "/auth/users",
                &[("amount", "2".into()), ("email", "a@example.com".into())],
                None,
            )
            .await;
        assert_eq!(
            names(by_email["results"].as_array().expect("r"), "username"),
            [sub]
        );
        let by_id = lakefs
            .expect(
                200,
                Method::GET,
                "/auth/users",
                &[("amount", "2".into()), ("id", "1".into())],
                None,
            )
            .await;
        assert_eq!(by_id["results"].as_array().map(Vec::len), Some(0));

        // Issue 15: once the user is deleted (lakeFS's DeleteUser), lakeFS's provisioning of
        // the same external id is refused (409, which lakeFS answers by reading again and
        // finding nobody), until the identity is readmitted.
        lakefs
            .expect(
                204,
                Method::DELETE,
                &format!("/auth/users/{}", seg(sub)),
                &[],
                None,
            )
            .await;
        let again = json!({"username": sub, "source": "oidc", "external_id": sub});
        let refused = lakefs
            .expect(409, Method::POST, "/auth/users", &[], Some(again.clone()))
            .await;
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains("removed")),
            "{refused}"
        );
        let found = lakefs
            .expect(200, Method::GET, "/auth/users", &lookup(sub), None)
            .await;
        assert_eq!(found["results"].as_array().map(Vec::len), Some(0));
        assert!(s.store.readmit_identity(sub).await.expect("readmit"));
        lakefs
            .expect(201, Method::POST, "/auth/users", &[], Some(again))
            .await;
    }

    /// Simplified RBAC: a group's ACL is policy `ACL(_-_)<group>`.
    pub async fn simplified_acl_writes(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/groups",
                &[],
                Some(json!({"id": "Devs"})),
            )
            .await;
        let name = "ACL(_-_)Devs";
        let body = json!({"name": name, "acl": "Write", "creation_date": 0, "statement": statement("fs:*", "*")});
        // Set: PUT (unknown: 404), then POST.
        lakefs
            .expect(
                404,
                Method::PUT,
                &format!("/auth/policies/{}", seg(name)),
                &[],
                Some(body.clone()),
            )
            .await;
        lakefs
            .expect(201, Method::POST, "/auth/policies", &[], Some(body.clone()))
            .await;
        let attached = lakefs
            .expect(
                200,
                Method::GET,
                "/auth/groups/Devs/policies",
                &p("", -1, ""),
                None,
            )
            .await;
        assert_eq!(attached["results"].as_array().map(Vec::len), Some(0));
        let path = format!("/auth/groups/Devs/policies/{}", seg(name));
        lakefs.expect(201, Method::PUT, &path, &[], None).await;
        lakefs.expect(409, Method::PUT, &path, &[], None).await;
        // Set again: PUT succeeds, 200 with the policy.
        let mut read = body.clone();
        read["acl"] = json!("Read");
        let updated = lakefs
            .expect(
                200,
                Method::PUT,
                &format!("/auth/policies/{}", seg(name)),
                &[],
                Some(read),
            )
            .await;
        assert_eq!(updated["acl"], "Read");
        // Get: group policies with amount=2, one with a non-empty acl.
        let got = lakefs
            .expect(
                200,
                Method::GET,
                "/auth/groups/Devs/policies",
                &p("", 2, ""),
                None,
            )
            .await;
        let results = got["results"].as_array().expect("results");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["acl"], "Read");
        assert_eq!(results[0]["statement"], statement("fs:*", "*"));
        lakefs.expect(204, Method::DELETE, &path, &[], None).await;
        lakefs.expect(404, Method::DELETE, &path, &[], None).await;
    }

    /// The UI's lists page as lakeFS reads them; deletes cascade; principals; token ids.
    pub async fn ui_lists_deletes_principals_and_token_ids(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        for u in ["carol", "Bob", "alice", "dave", "al_x"] {
            lakefs
                .expect(
                    201,
                    Method::POST,
                    "/auth/users",
                    &[],
                    Some(json!({"username": u})),
                )
                .await;
        }
        let all = lakefs.collect("/auth/users", 2, &[]).await;
        assert_eq!(
            names(&all, "username"),
            ["Bob", "al_x", "alice", "carol", "dave"]
        );
        let al = lakefs
            .expect(200, Method::GET, "/auth/users", &p("al_x", 100, "al"), None)
            .await;
        assert_eq!(
            names(al["results"].as_array().expect("r"), "username"),
            ["alice"]
        );
        assert_eq!(al["pagination"]["next_offset"], "");

        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/groups",
                &[],
                Some(json!({"id": "G", "description": "d"})),
            )
            .await;
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/policies",
                &[],
                Some(policy_body("P1", "fs:ReadObject")),
            )
            .await;
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/policies",
                &[],
                Some(policy_body("P2", "fs:ListObjects")),
            )
            .await;
        lakefs
            .expect(201, Method::PUT, "/auth/groups/G/members/alice", &[], None)
            .await;
        lakefs
            .expect(201, Method::PUT, "/auth/groups/G/members/Bob", &[], None)
            .await;
        lakefs
            .expect(201, Method::PUT, "/auth/groups/G/policies/P2", &[], None)
            .await;
        lakefs
            .expect(201, Method::PUT, "/auth/users/alice/policies/P1", &[], None)
            .await;
        lakefs
            .expect(201, Method::PUT, "/auth/users/alice/policies/P2", &[], None)
            .await;
        lakefs
            .expect(409, Method::PUT, "/auth/users/alice/policies/P1", &[], None)
            .await;
        let own = lakefs
            .collect(
                "/auth/users/alice/policies",
                1,
                &[("effective", "false".into())],
            )
            .await;
        assert_eq!(names(&own, "name"), ["P1", "P2"]);
        assert_eq!(lakefs.effective_policies("alice").await, ["P1", "P2"]);
        assert_eq!(lakefs.effective_policies("Bob").await, ["P2"]);
        let members = lakefs.collect("/auth/groups/G/members", 1, &[]).await;
        assert_eq!(names(&members, "username"), ["Bob", "alice"]);
        let policies = lakefs.collect("/auth/policies", 1, &[]).await;
        assert_eq!(names(&policies, "name"), ["P1", "P2"]);
        let groups = lakefs.collect("/auth/groups", 100, &[]).await;
        assert_eq!(groups[0]["description"], "d");

        // External principals.
        let arn = "arn:aws:iam::123456789012:role/data-reader";
        let q = [("principalId", arn.to_owned())];
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users/alice/external/principals",
                &q,
                None,
            )
            .await;
        lakefs
            .expect(
                409,
                Method::POST,
                "/auth/users/Bob/external/principals",
                &q,
                None,
            )
            .await;
        let got = lakefs
            .expect(200, Method::GET, "/auth/external/principals", &q, None)
            .await;
        assert_eq!(got, json!({"id": arn, "user_id": "alice"}));
        let listed = lakefs
            .collect("/auth/users/alice/external/principals/ls", 100, &[])
            .await;
        assert_eq!(names(&listed, "id"), [arn]);

        // Deleting alice takes her memberships, attachments, keys and principals with her.
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users/alice/credentials",
                &[],
                None,
            )
            .await;
        lakefs
            .expect(204, Method::DELETE, "/auth/users/alice", &[], None)
            .await;
        lakefs
            .expect(404, Method::DELETE, "/auth/users/alice", &[], None)
            .await;
        lakefs
            .expect(404, Method::GET, "/auth/external/principals", &q, None)
            .await;
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users",
                &[],
                Some(json!({"username": "alice"})),
            )
            .await;
        assert!(
            lakefs.effective_policies("alice").await.is_empty(),
            "nothing revived"
        );
        assert!(
            lakefs
                .collect("/auth/users/alice/credentials", 100, &[])
                .await
                .is_empty()
        );
        let members = lakefs.collect("/auth/groups/G/members", 100, &[]).await;
        assert_eq!(names(&members, "username"), ["Bob"]);
        // Deleting a policy detaches it; deleting a group drops its memberships.
        lakefs
            .expect(204, Method::DELETE, "/auth/policies/P2", &[], None)
            .await;
        assert!(lakefs.effective_policies("Bob").await.is_empty());
        lakefs
            .expect(204, Method::DELETE, "/auth/groups/G", &[], None)
            .await;
        assert!(
            lakefs
                .collect("/auth/users/Bob/groups", 100, &[])
                .await
                .is_empty()
        );

        // Token ids: claimed once.
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64
            + 3600;
        let claim = json!({"token_id": "jti-1", "expires_at": exp});
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/tokenid/claim",
                &[],
                Some(claim.clone()),
            )
            .await;
        lakefs
            .expect(400, Method::POST, "/auth/tokenid/claim", &[], Some(claim))
            .await;
        lakefs
            .expect(
                400,
                Method::POST,
                "/auth/tokenid/claim",
                &[],
                Some(json!({"token_id": "jti-2", "expires_at": 1})),
            )
            .await;
    }

    /// Bad input on every route: a clear 4xx `{"message"}`, nothing half-written.
    /// ListEffectivePolicies bodies are kept in memory under the store's generation: every
    /// write that changes what a user's policies are, or what they say, shows on the very next
    /// call (issue 14: the bodies are cached; issue 11: never stale).
    pub async fn effective_policies_follow_every_write(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        async fn effective(lakefs: &Lakefs) -> Vec<String> {
            lakefs
                .collect(
                    "/auth/users/eve/policies",
                    1000,
                    &[("effective", "true".into())],
                )
                .await
                .iter()
                .map(|p| {
                    let action = p["statement"][0]["action"][0].as_str().unwrap_or("");
                    format!("{}={action}", p["name"].as_str().unwrap_or(""))
                })
                .collect()
        }
        let (read, write, delete) = ("fs:ReadObject", "fs:WriteObject", "fs:DeleteObject");
        let setup = [
            ("/auth/users", json!({"username": "eve"})),
            ("/auth/groups", json!({"id": "EG"})),
            ("/auth/policies", policy_body("E1", read)),
            ("/auth/policies", policy_body("E2", write)),
        ];
        for (path, body) in setup {
            lakefs
                .expect(201, Method::POST, path, &[], Some(body))
                .await;
        }
        assert!(effective(&lakefs).await.is_empty());
        // Each write, then what the very next call must answer (the second of two identical
        // calls in a row comes from memory).
        /// A write (status, method, path, body), then the effective policies after it.
        type Step<'a> = (u16, Method, &'a str, Option<Value>, &'a [&'a str]);
        let steps: [Step; 6] = [
            (
                201,
                Method::PUT,
                "/auth/users/eve/policies/E1",
                None,
                &["E1=fs:ReadObject"],
            ),
            (
                201,
                Method::PUT,
                "/auth/groups/EG/policies/E2",
                None,
                &["E1=fs:ReadObject"],
            ),
            (
                201,
                Method::PUT,
                "/auth/groups/EG/members/eve",
                None,
                &["E1=fs:ReadObject", "E2=fs:WriteObject"],
            ),
            // What a policy says changes the body too.
            (
                200,
                Method::PUT,
                "/auth/policies/E2",
                Some(policy_body("E2", delete)),
                &["E1=fs:ReadObject", "E2=fs:DeleteObject"],
            ),
            (
                204,
                Method::DELETE,
                "/auth/users/eve/policies/E1",
                None,
                &["E2=fs:DeleteObject"],
            ),
            (
                204,
                Method::DELETE,
                "/auth/groups/EG/members/eve",
                None,
                &[],
            ),
        ];
        for (status, method, path, body, expected) in steps {
            lakefs.expect(status, method, path, &[], body).await;
            assert_eq!(effective(&lakefs).await, expected, "after {path}");
            assert_eq!(effective(&lakefs).await, expected, "again after {path}");
        }
        // A change made by another writer of the SQLite file, as the CLI is (on PostgreSQL,
        // crates/cli/tests/replicas.rs covers writes through another replica).
        if s.database.is_none() {
            let other = lakests_store::SqliteStore::open(
                &s._dir.path().join("lakests.db"),
                Duration::from_secs(5),
            )
            .await
            .expect("open the same file");
            other.attach_user_policy("eve", "E1").await.expect("attach");
            assert_eq!(effective(&lakefs).await, ["E1=fs:ReadObject"]);
            other.close().await;
        }
    }

    pub async fn bad_input_is_a_clear_4xx_and_writes_nothing(s: &Service) {
        let lakefs = Lakefs::new(&s.base, lakefs_service_jwt(SECRET));
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/users",
                &[],
                Some(json!({"username": "u"})),
            )
            .await;
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/groups",
                &[],
                Some(json!({"id": "g"})),
            )
            .await;
        lakefs
            .expect(
                201,
                Method::POST,
                "/auth/policies",
                &[],
                Some(policy_body("p", "fs:*")),
            )
            .await;

        // Unknown ids.
        for (method, path) in [
            (Method::GET, "/auth/users/nobody"),
            (Method::DELETE, "/auth/users/nobody"),
            (Method::GET, "/auth/groups/nogroup"),
            (Method::DELETE, "/auth/groups/nogroup"),
            (Method::GET, "/auth/policies/nopolicy"),
            (Method::DELETE, "/auth/policies/nopolicy"),
            (Method::GET, "/auth/users/nobody/groups"),
            (Method::GET, "/auth/users/nobody/policies"),
            (Method::GET, "/auth/users/nobody/credentials"),
            (Method::GET, "/auth/users/nobody/external/principals/ls"),
            (Method::GET, "/auth/groups/nogroup/members"),
            (Method::GET, "/auth/groups/nogroup/policies"),
            (Method::PUT, "/auth/groups/nogroup/members/u"),
            (Method::PUT, "/auth/groups/g/members/nobody"),
            (Method::DELETE, "/auth/groups/g/members/u"),
            (Method::PUT, "/auth/users/nobody/policies/p"),
            (Method::PUT, "/auth/users/u/policies/nopolicy"),
            (Method::DELETE, "/auth/users/u/policies/p"),
            (Method::PUT, "/auth/groups/nogroup/policies/p"),
            (Method::PUT, "/auth/groups/g/policies/nopolicy"),
            (Method::DELETE, "/auth/groups/g/policies/p"),
            (Method::POST, "/auth/users/nobody/credentials"),
            (Method::GET, "/auth/users/u/credentials/AKIAJNOPE"),
            (Method::DELETE, "/auth/users/u/credentials/AKIAJNOPE"),
            (Method::GET, "/auth/credentials/AKIAJNOPE"),
        ] {
            lakefs
                .expect(404, method, path, &p("", 100, ""), None)
                .await;
        }
        // ListEffectivePolicies of an unknown user (checked only when its page is empty).
        let mut effective = p("", 100, "");
        effective.push(("effective", "true".into()));
        lakefs
            .expect(
                404,
                Method::GET,
                "/auth/users/nobody/policies",
                &effective,
                None,
            )
            .await;
        lakefs
            .expect(
                404,
                Method::PUT,
                "/auth/users/nobody/friendly_name",
                &[],
                Some(json!({"friendly_name": "x"})),
            )
            .await;
        // Duplicates.
        lakefs
            .expect(
                409,
                Method::POST,
                "/auth/users",
                &[],
                Some(json!({"username": "u"})),
            )
            .await;
        lakefs
            .expect(
                409,
                Method::POST,
                "/auth/groups",
                &[],
                Some(json!({"id": "g"})),
            )
            .await;
        lakefs
            .expect(
                409,
                Method::POST,
                "/auth/policies",
                &[],
                Some(policy_body("p", "fs:*")),
            )
            .await;
        // Invalid bodies: names, policies, passwords.
        for (path, body) in [
            ("/auth/users", json!({"username": ""})),
            ("/auth/users", json!({"username": "x\ny"})),
            (
                "/auth/users",
                json!({"username": "pw", "encryptedPassword": "JDJhJDEw"}),
            ),
            ("/auth/users", json!({"name": "missing username"})),
            ("/auth/users", json!({"username": 7})),
            ("/auth/users", json!({"username": "n", "external_id": null})),
            ("/auth/groups", json!({"id": " padded "})),
            ("/auth/policies", json!({"name": "bad", "statement": []})),
            (
                "/auth/policies",
                json!({"name": "bad", "statement": [{"effect": "maybe", "action": ["fs:*"], "resource": "*"}]}),
            ),
            (
                "/auth/policies",
                json!({"name": "bad", "statement": [{"effect": "allow", "action": ["s3:*"], "resource": "*"}]}),
            ),
            (
                "/auth/policies",
                json!({"name": "bad", "statement": [{"effect": "allow", "action": ["fs:*"], "resource": "bucket"}]}),
            ),
            (
                "/auth/policies",
                json!({"name": "bad", "statement": [{"effect": "allow", "action": ["fs:*"], "resource": "*", "condition": {"Bogus": {}}}]}),
            ),
            (
                "/auth/policies",
                json!({"name": "a/b", "statement": statement("fs:*", "*")}),
            ),
            (
                "/auth/tokenid/claim",
                json!({"token_id": "t", "expires_at": "soon"}),
            ),
            (
                "/auth/tokenid/claim",
                json!({"token_id": "t", "expires_at": 1.7e9}),
            ),
        ] {
            let r = lakefs
                .expect(400, Method::POST, path, &[], Some(body.clone()))
                .await;
            let m = r["message"].as_str().unwrap_or_default();
            assert!(!m.is_empty(), "{path} {body}");
        }
        let r = lakefs
            .expect(
                400,
                Method::POST,
                "/auth/policies",
                &[],
                Some(json!({"name": "bad", "statement": [{"effect": "allow", "action": ["s3:GetObject"], "resource": "*"}]})),
            )
            .await;
        assert!(
            r["message"]
                .as_str()
                .unwrap_or_default()
                .contains("statement[0]: action[0]"),
            "the message names the problem: {r}"
        );
        // A policy body whose name differs from the path.
        lakefs
            .expect(
                400,
                Method::PUT,
                "/auth/policies/p",
                &[],
                Some(policy_body("q", "fs:*")),
            )
            .await;
        // Half a key pair; bad keys.
        for q in [
            vec![("access_key", "AKIAJONLY".to_owned())],
            vec![("secret_key", "only".to_owned())],
            vec![
                ("access_key", "AK IA".to_owned()),
                ("secret_key", "s".to_owned()),
            ],
        ] {
            lakefs
                .expect(400, Method::POST, "/auth/users/u/credentials", &q, None)
                .await;
        }
        // Principals without an id.
        lakefs
            .expect(400, Method::GET, "/auth/external/principals", &[], None)
            .await;
        lakefs
            .expect(
                400,
                Method::POST,
                "/auth/users/u/external/principals",
                &[],
                None,
            )
            .await;
        // Bad pagination values.
        for amount in ["-2", "1001", "x", "1.5"] {
            lakefs
                .expect(
                    400,
                    Method::GET,
                    "/auth/users",
                    &[("amount", amount.to_owned())],
                    None,
                )
                .await;
        }
        for effective in ["maybe", ""] {
            lakefs
                .expect(
                    400,
                    Method::GET,
                    "/auth/users/u/policies",
                    &[("effective", effective.to_owned())],
                    None,
                )
                .await;
        }
        let r = lakefs
            .call(
                Method::GET,
                "/auth/users",
                &[("amount", "1".to_owned()), ("amount", "2".to_owned())],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "a repeated parameter: {}", r.raw);
        // Raw bodies: not JSON, wrong content type, too large.
        let http = reqwest::Client::new();
        let token = lakefs_service_jwt(SECRET);
        for (ct, body, want) in [
            ("application/json", "{not json".to_owned(), 400),
            ("text/plain", "{\"username\":\"t\"}".to_owned(), 415),
            (
                "application/json",
                format!(
                    "{{\"username\":\"big\",\"email\":\"{}\"}}",
                    "a".repeat(70 * 1024)
                ),
                413,
            ),
        ] {
            let r = http
                .post(format!("{}/auth/users", s.base))
                .bearer_auth(&token)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), want);
            let v: Value = r.json().await.expect("json error body");
            assert!(v["message"].is_string());
        }
        // Unknown routes and methods.
        lakefs
            .expect(404, Method::GET, "/auth/nothing", &[], None)
            .await;
        lakefs
            .expect(405, Method::PATCH, "/auth/users", &[], None)
            .await;

        // Nothing was half-written.
        let users = lakefs.collect("/auth/users", 100, &[]).await;
        assert_eq!(names(&users, "username"), ["u"]);
        let groups = lakefs.collect("/auth/groups", 100, &[]).await;
        assert_eq!(names(&groups, "name"), ["g"]);
        let policies = lakefs.collect("/auth/policies", 100, &[]).await;
        assert_eq!(names(&policies, "name"), ["p"]);
        assert!(
            lakefs
                .collect("/auth/users/u/credentials", 100, &[])
                .await
                .is_empty()
        );
        assert!(
            lakefs
                .collect("/auth/users/u/groups", 100, &[])
                .await
                .is_empty()
        );
    }
}

macro_rules! on_both_backends {
    ($($seq:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $seq() {
                    let s = crate::authz_api::Service::start(crate::authz_api::Backend::Sqlite, stringify!($seq))
                        .await
                        .expect("sqlite always runs");
                    crate::authz_api::sequences::$seq(&s).await;
                    s.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $seq() {
                    let Some(s) = crate::authz_api::Service::start(crate::authz_api::Backend::Postgres, stringify!($seq)).await else {
                        return;
                    };
                    crate::authz_api::sequences::$seq(&s).await;
                    s.stop().await;
                }
            )+
        }
    };
}

on_both_backends! {
    startup_and_authentication,
    setup_then_every_request,
    external_id_lookups_and_provisioning,
    simplified_acl_writes,
    ui_lists_deletes_principals_and_token_ids,
    effective_policies_follow_every_write,
    bad_input_is_a_clear_4xx_and_writes_nothing,
}
