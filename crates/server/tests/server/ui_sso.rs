//! Single sign-on in the lakeFS web UI (issue 16), over the real HTTP stack: `lakests serve`'s
//! `Application` with the authenticator (two providers, both the development IdP), the
//! authorization API on its listener and the development IdP, reached by a cookie-keeping
//! client that follows redirects by hand as a browser does.
//!
//! The happy path ends with lakeFS's own session cookie, decoded with lakests's codec (the Go
//! implementation reads the same bytes: `crates/core/tests/gorilla_session.rs`; the real lakeFS
//! accepts it: `tests/python/test_real_lakefs_ui_sso.py`). Every attack or bad input ends in a
//! 4xx page without a session cookie, never a 5xx, and no page shows the code or the state.
//!
//! Logout is also proven against panva's oidc-provider (from npm, `tests/oidc-provider`), which
//! has sessions and an `end_session_endpoint`: lakests's logout ends the provider's session
//! (RP-Initiated Logout 1.0 with `client_id` and `post_logout_redirect_uri`). The per-client
//! rate limit and the bound on logins in flight are exercised here too.

#[allow(dead_code)]
#[path = "../../../authenticator/tests/authenticator/support/node.rs"]
mod node;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lakests_config::Config;
use lakests_core::token::TokenIssuer;
use lakests_core::{Store, SystemClock, ui_session};
use serde_json::json;
use tokio::sync::oneshot;
use url::Url;

const SECRET: &str = "lakefs-and-lakests-share-this-secret-key-for-the-ui";
const CLIENT_ID: &str = "lakefs-ui";
const LAKEFS_URL: &str = "http://lakefs.test:8000";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

struct System {
    base: String,
    store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// `providers`: how many providers (named corp, other) the web-UI login offers.
async fn start(providers: usize) -> System {
    start_with(providers, json!({})).await
}

/// Like [`start`], with these keys added to `authenticator.ui_sso`.
async fn start_with(providers: usize, ui_extra: serde_json::Value) -> System {
    let dir = tempfile::tempdir().expect("tempdir");
    let [authn_port, idp_port] = lakests_testkit::ports();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let base = format!("http://127.0.0.1:{authn_port}");
    let callback = format!("{base}/lakests/ui/callback");
    let provider = |name: &str, cli_redirect: &str| {
        json!({
            "name": name,
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "redirect_uris": [cli_redirect],
            "pkce": "state",
            "provision_users": true,
            "username_claim": "email",
            "groups_claim": "groups",
        })
    };
    let mut list = vec![provider("corp", "http://127.0.0.1:1/corp")];
    if providers > 1 {
        list.push(provider("other", "http://127.0.0.1:1/other"));
    }
    let mut ui_sso = json!({"enabled": true, "lakefs_url": LAKEFS_URL, "public_url": base});
    for (k, v) in ui_extra.as_object().expect("an object") {
        ui_sso[k] = v.clone();
    }
    let doc = json!({
        "data_dir": dir.path(),
        "logging": {"level": "warn"},
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": false}},
        "authenticator": {
            "listen_address": format!("127.0.0.1:{authn_port}"),
            "providers": list,
            "ui_sso": ui_sso,
        },
        "authorization": {"enabled": true},
        "idp": {
            "enabled": true,
            "listen_address": format!("127.0.0.1:{idp_port}"),
            "issuer": issuer,
            "interactive": false,
            "users": [
                {"sub": "alice", "email": "alice@example.com", "name": "Alice", "groups": ["Developers"]},
                {"sub": "nomail", "name": "No Mail", "groups": []},
            ],
            "clients": [
                {"client_id": CLIENT_ID, "redirect_uris": [callback, "http://127.0.0.1:1/corp", "http://127.0.0.1:1/other"]},
                {"client_id": "someone-else", "redirect_uris": [callback]},
            ],
        },
    });
    run(doc, base, dir).await
}

async fn run(doc: serde_json::Value, base: String, dir: tempfile::TempDir) -> System {
    let config = Config::from_sources(Some(&doc.to_string()), Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("config: {e}"));
    let app = lakests_server::Application::build_with_clock(config, Arc::new(SystemClock))
        .await
        .expect("build");
    let store = app.store();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    System {
        base,
        store,
        stop: Some(tx),
        _dir: dir,
    }
}

/// The lakeFS UI the oidc-provider fixture's `lakests-ui` client returns to after logout.
const OP_LAKEFS_URL: &str = "http://127.0.0.1:8000";

/// panva's oidc-provider with its `lakests-ui` client registered for the callback of a lakests
/// to start on `authn_port`, and that lakests, whose web-UI login has one provider, `op`.
async fn start_with_oidc_provider() -> (node::OidcProvider, System) {
    let authn_port = lakests_testkit::port();
    let base = format!("http://127.0.0.1:{authn_port}");
    let op = node::OidcProvider::start_with_env(
        false,
        &[(
            "LAKESTS_UI_REDIRECT_URIS",
            &format!("{base}/lakests/ui/callback"),
        )],
    )
    .await;
    let issuer = op.issuer.as_str();
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = json!({
        "data_dir": dir.path(),
        "logging": {"level": "warn"},
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": false}},
        "authenticator": {
            "listen_address": format!("127.0.0.1:{authn_port}"),
            "providers": [{
                "name": "op",
                "issuer": issuer,
                "client_id": "lakests-ui",
                "client_auth": "none",
                "scopes": ["openid", "email", "profile", "groups"],
                "redirect_uris": ["http://127.0.0.1:1/cli"],
                "pkce": "state",
                "provision_users": true,
                "username_claim": "email",
                "groups_claim": "groups",
            }],
            "ui_sso": {"enabled": true, "lakefs_url": OP_LAKEFS_URL, "public_url": base},
        },
        "authorization": {"enabled": true},
    });
    (op, run(doc, base, dir).await)
}

/// A browser without a screen: follows nothing by itself, keeps cookies by name (cookies
/// ignore ports, so one jar serves every loopback port, as in a browser).
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
    retry_after: Option<String>,
}

impl Answer {
    fn session_cookie(&self) -> Option<&String> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with("internal_auth_session="))
    }

    fn assert_refused(&self, status: u16, code_or_state: &[&str]) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.session_cookie().is_none(),
            "no session cookie on a refusal: {:?}",
            self.set_cookies
        );
        assert!(self.location.is_none(), "a page, not a redirect");
        assert!(self.body.contains("<h1>"), "a page: {}", self.body);
        for s in code_or_state {
            assert!(!self.body.contains(s), "the page shows a secret");
        }
    }
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: BTreeMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Answer {
        let a = self.get_any(url).await;
        assert!(a.status < 500, "never a 5xx: {} for {url}", a.status);
        a
    }

    /// A GET that may answer anything (a 503 over the bound on logins in flight).
    async fn get_any(&mut self, url: &str) -> Answer {
        let req = self.http.get(url);
        self.send(req).await
    }

    /// A form POST (the provider's logout confirmation).
    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.http.post(url).form(form);
        let a = self.send(req).await;
        assert!(a.status < 500, "never a 5xx: {} for {url}", a.status);
        a
    }

    async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Answer {
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", cookies.join("; "));
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|l| l.to_str().expect("retry-after").to_owned());
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("location").to_owned());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().expect("cookie").to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').expect("name=value");
            // Cleared as Go does (Max-Age=0) or as Koa does (empty value, expired in 1970).
            if attrs.contains("Max-Age=0")
                || v.is_empty()
                || attrs
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970")
            {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = resp.text().await.expect("body");
        Answer {
            status,
            location,
            set_cookies,
            body,
            retry_after,
        }
    }

    /// Follows redirects from `url` (through the provider's own pages and cookies) until one
    /// leads to a URL starting with `prefix`; returns that URL without opening it.
    async fn follow_until(&mut self, url: &str, prefix: &str) -> Url {
        let mut url = Url::parse(url).expect("url");
        for _ in 0..12 {
            let a = self.get(url.as_str()).await;
            assert!(
                (300..400).contains(&a.status),
                "{} at {url}: {}",
                a.status,
                a.body
            );
            let next = url
                .join(a.location.as_deref().expect("location"))
                .expect("url");
            if next.as_str().starts_with(prefix) {
                return next;
            }
            url = next;
        }
        panic!("no redirect to {prefix} within 12 steps");
    }

    /// Opens the login route; returns the provider's authorization URL.
    async fn start_login(&mut self, sys: &System, query: &str) -> Url {
        let a = self
            .get(&format!("{}/lakests/ui/login?{query}", sys.base))
            .await;
        assert_eq!(a.status, 303, "{}", a.body);
        Url::parse(a.location.as_deref().expect("location")).expect("url")
    }

    /// Signs `login_hint` in at the development IdP; returns the callback URL it redirects to.
    async fn sign_in(&mut self, authorize: &Url, login_hint: &str, fault: Option<&str>) -> Url {
        let mut url = authorize.clone();
        url.query_pairs_mut().append_pair("login_hint", login_hint);
        if let Some(f) = fault {
            url.query_pairs_mut().append_pair("lakests_fault", f);
        }
        let a = self.get(url.as_str()).await;
        assert_eq!(a.status, 302, "{}", a.body);
        Url::parse(a.location.as_deref().expect("location")).expect("url")
    }
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_new_employee_signs_in_and_gets_lakefs_s_own_session_cookie() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    let authorize = browser
        .start_login(&sys, "next=%2Frepositories%2Fdata%2Fobjects%3Fref%3Dmain")
        .await;
    // Authorization code with PKCE S256, state and nonce, to our callback.
    assert_eq!(param(&authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&authorize, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&authorize, "code_challenge").map(|c| c.len()),
        Some(43)
    );
    assert!(param(&authorize, "nonce").is_some_and(|n| n.len() >= 43));
    assert!(param(&authorize, "state").is_some_and(|n| n.len() >= 43));
    assert_eq!(
        param(&authorize, "redirect_uri"),
        Some(format!("{}/lakests/ui/callback", sys.base))
    );
    assert!(
        browser.jar.contains_key("lakests_ui_login"),
        "the login is bound to this browser"
    );

    let callback = browser.sign_in(&authorize, "alice", None).await;
    let a = browser.get(callback.as_str()).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.location.as_deref(),
        Some("http://lakefs.test:8000/repositories/data/objects?ref=main")
    );
    let cookie = a.session_cookie().expect("the session cookie").clone();
    let attrs: Vec<&str> = cookie.split("; ").collect();
    for want in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(&want), "{want} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain-http lakeFS: no Secure");
    assert!(!cookie.contains("Domain="), "host-only by default");
    assert!(
        attrs.contains(&"Max-Age=604800"),
        "lakeFS's login_duration: {cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("internal_auth_session="))
        .expect("value");
    let token = ui_session::decode(SECRET.as_bytes(), value, now()).expect("lakeFS's codec");
    let claims = TokenIssuer::new(&SECRET.to_owned().into())
        .verify(&token, now())
        .expect("a lakeFS login token");
    assert_eq!(claims.sub, "alice@example.com");
    assert_eq!(claims.aud.as_deref(), Some("login"));
    assert!((claims.exp - claims.iat - 7 * 24 * 3600).abs() <= 1);

    // Provisioned as the authorization API does: namespaced external id, groups from the claim.
    let user = sys
        .store
        .find_user_by_external_id("corp:alice")
        .await
        .expect("store")
        .expect("provisioned");
    assert_eq!(user.username, "alice@example.com");
    assert_eq!(user.groups, vec!["Developers".to_owned()]);
    assert!(
        !browser.jar.contains_key("lakests_ui_login"),
        "the binding cookie is cleared"
    );

    // The same callback again (a replay): refused, no cookie.
    let code = param(&callback, "code").expect("code");
    let state = param(&callback, "state").expect("state");
    let mut replayer = Browser::new();
    replayer.jar = browser.jar.clone();
    replayer.jar.insert(
        "lakests_ui_login".into(),
        "the-binding-of-the-first-attempt".into(),
    );
    replayer
        .get(callback.as_str())
        .await
        .assert_refused(400, &[&code, &state]);
}

#[tokio::test]
async fn a_replayed_callback_with_the_same_binding_is_refused() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    let authorize = browser.start_login(&sys, "next=%2F").await;
    let binding = browser.jar["lakests_ui_login"].clone();
    let callback = browser.sign_in(&authorize, "alice", None).await;
    let a = browser.get(callback.as_str()).await;
    assert_eq!(a.status, 303);
    // An attacker who saw the URL and the binding cookie replays both.
    let mut attacker = Browser::new();
    attacker.jar.insert("lakests_ui_login".into(), binding);
    let code = param(&callback, "code").unwrap();
    let state = param(&callback, "state").unwrap();
    attacker
        .get(callback.as_str())
        .await
        .assert_refused(400, &[&code, &state]);
}

#[tokio::test]
async fn forged_states_and_callbacks_without_a_login_in_flight_are_refused() {
    let sys = start(1).await;
    let cb = format!("{}/lakests/ui/callback", sys.base);
    let mut stranger = Browser::new();
    // No login in flight in this browser at all.
    let a = stranger.get(&format!("{cb}?code=abc&state=xyz")).await;
    a.assert_refused(400, &[]);
    assert!(a.body.contains("No sign-in is in progress"), "{}", a.body);
    // No state.
    stranger
        .get(&format!("{cb}?code=abc"))
        .await
        .assert_refused(400, &[]);
    stranger.get(&cb).await.assert_refused(400, &[]);

    // A forged state in a browser that has a login in flight.
    let mut browser = Browser::new();
    let authorize = browser.start_login(&sys, "").await;
    let callback = browser.sign_in(&authorize, "alice", None).await;
    let mut forged = callback.clone();
    let code = param(&callback, "code").unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state-forged-state-forged-state-000");
    let mut copy = Browser::new();
    copy.jar = browser.jar.clone();
    copy.get(forged.as_str())
        .await
        .assert_refused(400, &[&code]);

    // Login CSRF: the attacker's own (genuine) callback opened in the victim's browser, which
    // has a login of its own in flight: its binding does not match, nothing is consumed.
    let mut attacker = Browser::new();
    let a_authorize = attacker.start_login(&sys, "").await;
    let a_callback = attacker.sign_in(&a_authorize, "nomail", None).await;
    let mut victim = Browser::new();
    victim.start_login(&sys, "").await;
    victim
        .get(a_callback.as_str())
        .await
        .assert_refused(400, &[]);
    let mut victim_without = Browser::new();
    victim_without
        .get(a_callback.as_str())
        .await
        .assert_refused(400, &[]);
    // ... and none of these attempts consumed anything: the real browser still finishes.
    let a = browser.get(callback.as_str()).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(a.session_cookie().is_some());
}

#[tokio::test]
async fn an_identity_provider_error_response_is_a_clear_page_and_ends_the_login() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    let authorize = browser.start_login(&sys, "").await;
    let state = param(&authorize, "state").unwrap();
    let mut cb = Url::parse(&format!("{}/lakests/ui/callback", sys.base)).unwrap();
    cb.query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair(
            "error_description",
            "<script>alert('the user said no')</script>",
        )
        .append_pair("state", &state);
    let binding = browser.jar["lakests_ui_login"].clone();
    let a = browser.get(cb.as_str()).await;
    a.assert_refused(403, &[&state]);
    assert!(a.body.contains("access_denied"), "{}", a.body);
    assert!(!a.body.contains("<script>"), "the description is not shown");
    // The login is over: the same state cannot be used with a code now.
    browser.jar.insert("lakests_ui_login".into(), binding);
    let mut with_code = cb.clone();
    with_code
        .query_pairs_mut()
        .clear()
        .append_pair("code", "x")
        .append_pair("state", &state);
    browser
        .get(with_code.as_str())
        .await
        .assert_refused(400, &[&state]);

    // An unknown error code is not echoed.
    let authorize = browser.start_login(&sys, "").await;
    let state = param(&authorize, "state").unwrap();
    let mut cb2 = cb.clone();
    cb2.query_pairs_mut()
        .clear()
        .append_pair("error", "you_have_been_hacked_call_this_number")
        .append_pair("state", &state);
    let a = browser.get(cb2.as_str()).await;
    a.assert_refused(400, &[&state]);
    assert!(!a.body.contains("hacked"));
}

#[tokio::test]
async fn an_id_token_for_another_client_or_otherwise_wrong_is_refused() {
    let sys = start(1).await;
    for fault in ["wrong_audience", "expired", "bad_signature"] {
        let mut browser = Browser::new();
        let authorize = browser.start_login(&sys, "").await;
        let callback = browser.sign_in(&authorize, "alice", Some(fault)).await;
        let code = param(&callback, "code").unwrap();
        let state = param(&callback, "state").unwrap();
        let a = browser.get(callback.as_str()).await;
        a.assert_refused(403, &[&code, &state]);
    }
    // A code issued to another client (its own authorization request) is refused at the token
    // endpoint: the client id does not match.
    let mut browser = Browser::new();
    let authorize = browser.start_login(&sys, "").await;
    let mut other = authorize.clone();
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" {
                "someone-else".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    other.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = browser.sign_in(&other, "alice", None).await;
    let a = browser.get(callback.as_str()).await;
    assert!(
        matches!(a.status, 400 | 403),
        "refused: {} {}",
        a.status,
        a.body
    );
    assert!(a.session_cookie().is_none());
    assert!(
        sys.store
            .find_user_by_external_id("corp:alice")
            .await
            .unwrap()
            .is_none(),
        "nobody was provisioned by a refused login"
    );
}

#[tokio::test]
async fn return_urls_off_the_allowlist_are_refused_before_anything_starts() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    for next in [
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "http%3A%2F%2Flakefs.test%3A8001%2F",
        "javascript%3Aalert(1)",
        "%2Frepositories%0D%0ASet-Cookie%3A%20x%3Dy",
        "%2F%09%2Fevil.example",
        "evil.example",
    ] {
        let a = browser
            .get(&format!("{}/lakests/ui/login?next={next}", sys.base))
            .await;
        a.assert_refused(400, &[]);
        assert!(
            a.body.contains("not a page of this lakeFS"),
            "{next}: {}",
            a.body
        );
        assert!(
            !browser.jar.contains_key("lakests_ui_login"),
            "nothing started"
        );
    }
}

#[tokio::test]
async fn oversized_and_repeated_parameters_are_4xx_pages() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    let long = "a".repeat(3000);
    browser
        .get(&format!("{}/lakests/ui/login?next=%2F{long}", sys.base))
        .await
        .assert_refused(400, &[]);
    browser
        .get(&format!(
            "{}/lakests/ui/login?next=%2Fa&next=%2Fb",
            sys.base
        ))
        .await
        .assert_refused(400, &[]);
    browser
        .get(&format!(
            "{}/lakests/ui/login?provider={}",
            sys.base,
            "p".repeat(300)
        ))
        .await
        .assert_refused(400, &[]);
    browser
        .get(&format!(
            "{}/lakests/ui/callback?code={}&state=s",
            sys.base,
            "c".repeat(5000)
        ))
        .await
        .assert_refused(400, &[]);
    browser
        .get(&format!(
            "{}/lakests/ui/callback?state={}",
            sys.base,
            "s".repeat(600)
        ))
        .await
        .assert_refused(400, &[]);
    browser
        .get(&format!(
            "{}/lakests/ui/callback?x={}",
            sys.base,
            "x".repeat(9000)
        ))
        .await
        .assert_refused(400, &[]);
    let mut huge_cookie = Browser::new();
    huge_cookie
        .jar
        .insert("lakests_ui_login".into(), "b".repeat(6000));
    huge_cookie
        .get(&format!("{}/lakests/ui/callback?code=c&state=s", sys.base))
        .await
        .assert_refused(400, &[]);
}

#[tokio::test]
async fn several_providers_get_a_choice_page() {
    let sys = start(2).await;
    let mut browser = Browser::new();
    let a = browser
        .get(&format!(
            "{}/lakests/ui/login?next=%2Frepositories",
            sys.base
        ))
        .await;
    assert_eq!(a.status, 200);
    assert!(a.session_cookie().is_none());
    assert!(a.body.contains("Sign in with corp") && a.body.contains("Sign in with other"));
    assert!(
        a.body.contains("?provider=other&amp;next=%2Frepositories"),
        "{}",
        a.body
    );
    let authorize = browser
        .start_login(&sys, "provider=other&next=%2Frepositories")
        .await;
    let callback = browser.sign_in(&authorize, "alice", None).await;
    let a = browser.get(callback.as_str()).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.location.as_deref(),
        Some("http://lakefs.test:8000/repositories")
    );
    assert!(
        sys.store
            .find_user_by_external_id("other:alice")
            .await
            .unwrap()
            .is_some()
    );
    browser
        .get(&format!("{}/lakests/ui/login?provider=nope", sys.base))
        .await
        .assert_refused(400, &[]);
}

#[tokio::test]
async fn logout_clears_the_cookie_as_lakefs_does_and_returns_to_lakefs() {
    let sys = start(1).await;
    let mut browser = Browser::new();
    let authorize = browser.start_login(&sys, "").await;
    let callback = browser.sign_in(&authorize, "alice", None).await;
    browser.get(callback.as_str()).await;
    assert!(browser.jar.contains_key("internal_auth_session"));
    assert_eq!(
        browser.jar.get("lakests_ui_idp").map(String::as_str),
        Some("corp")
    );
    let a = browser
        .get(&format!("{}/lakests/ui/logout", sys.base))
        .await;
    assert_eq!(a.status, 303);
    // The development IdP offers no end_session_endpoint: straight back to lakeFS's login.
    assert_eq!(
        a.location.as_deref(),
        Some("http://lakefs.test:8000/auth/login")
    );
    assert!(
        a.set_cookies.contains(
            &"internal_auth_session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; HttpOnly; SameSite=Lax"
                .to_owned()
        ),
        "{:?}",
        a.set_cookies
    );
    assert!(!browser.jar.contains_key("internal_auth_session"));
    assert!(!browser.jar.contains_key("lakests_ui_idp"));
}

/// The real thing the development IdP cannot show: a provider with sessions. Signed in through
/// oidc-provider, lakests's logout sends the browser to its `end_session_endpoint` with
/// `client_id` and `post_logout_redirect_uri` (no `id_token_hint`: lakests keeps no ID token);
/// oidc-provider accepts both (its confirmation page, not an error), returns to lakeFS's login
/// page after the confirmation, and its session is gone: a silent authorization
/// (`prompt=none`) that gave a code before the logout now answers `login_required`.
#[tokio::test]
async fn logout_ends_the_session_at_a_real_openid_provider() {
    let (op, sys) = start_with_oidc_provider().await;
    let callback_prefix = format!("{}/lakests/ui/callback", sys.base);
    let mut browser = Browser::new();

    // Sign in as alice at oidc-provider (its interaction signs the login_hint in).
    let mut authorize = browser.start_login(&sys, "next=%2Frepositories").await;
    assert!(authorize.as_str().starts_with(&op.issuer), "{authorize}");
    authorize
        .query_pairs_mut()
        .append_pair("login_hint", "alice");
    let callback = browser
        .follow_until(authorize.as_str(), &callback_prefix)
        .await;
    let a = browser.get(callback.as_str()).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.location.as_deref(),
        Some("http://127.0.0.1:8000/repositories")
    );
    assert!(a.session_cookie().is_some());
    assert_eq!(
        browser.jar.get("lakests_ui_idp").map(String::as_str),
        Some("op")
    );
    assert!(
        browser.jar.contains_key("_session"),
        "oidc-provider keeps a session: {:?}",
        browser.jar.keys()
    );

    // Control: while the provider's session lives, a silent authorization gives a code.
    let mut silent = browser.start_login(&sys, "").await;
    silent.query_pairs_mut().append_pair("prompt", "none");
    let answer = browser
        .follow_until(silent.as_str(), &callback_prefix)
        .await;
    assert!(
        param(&answer, "code").is_some() && param(&answer, "error").is_none(),
        "silent sign-in while the session lives: {answer}"
    );

    // Logout at lakests: the cookie is cleared and the browser goes to the provider.
    let a = browser
        .get(&format!("{}/lakests/ui/logout", sys.base))
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(!browser.jar.contains_key("internal_auth_session"));
    assert!(!browser.jar.contains_key("lakests_ui_idp"));
    let end = Url::parse(a.location.as_deref().expect("location")).expect("url");
    assert_eq!(
        end.as_str().split('?').next(),
        Some(format!("{}/session/end", op.issuer).as_str()),
        "the provider's end_session_endpoint"
    );
    assert_eq!(param(&end, "client_id").as_deref(), Some("lakests-ui"));
    assert_eq!(
        param(&end, "post_logout_redirect_uri").as_deref(),
        Some("http://127.0.0.1:8000/auth/login")
    );
    assert_eq!(
        param(&end, "id_token_hint"),
        None,
        "lakests keeps no ID token"
    );

    // oidc-provider accepts the client and the redirect URI: its confirmation page.
    let page = browser.get(end.as_str()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Do you want to sign-out from"),
        "oidc-provider's logout confirmation page: {}",
        page.body
    );
    assert!(!page.body.contains("error"), "{}", page.body);
    let xsrf = page
        .body
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's xsrf")
        .to_owned();
    let confirm = Url::parse(&op.issuer)
        .unwrap()
        .join("/session/end/confirm")
        .unwrap();
    let done = browser
        .post_form(confirm.as_str(), &[("xsrf", &xsrf), ("logout", "yes")])
        .await;
    assert!((300..400).contains(&done.status), "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("http://127.0.0.1:8000/auth/login"),
        "back to lakeFS's login page"
    );

    // The provider's session is gone: the same silent authorization now needs a sign-in ...
    let mut silent = browser.start_login(&sys, "").await;
    silent.query_pairs_mut().append_pair("prompt", "none");
    let answer = browser
        .follow_until(silent.as_str(), &callback_prefix)
        .await;
    assert_eq!(
        param(&answer, "error").as_deref(),
        Some("login_required"),
        "{answer}"
    );
    assert!(param(&answer, "code").is_none());
    // ... which lakests shows as a refusal without a session ...
    browser.get(answer.as_str()).await.assert_refused(400, &[]);
    // ... and an ordinary authorization goes to the provider's sign-in again.
    let again = browser.start_login(&sys, "").await;
    let a = browser.get(again.as_str()).await;
    assert!((300..400).contains(&a.status), "{}", a.body);
    let to = a.location.expect("location");
    assert!(
        to.contains("/interaction/"),
        "asked to sign in, not given a code: {to}"
    );
}

/// A flood of login requests from one address is answered 429 with a page and `Retry-After`,
/// before anything is stored or sent to the provider; the callback shares the bucket; another
/// address and the logout are unaffected; the bucket refills.
#[tokio::test]
async fn login_and_callback_are_rate_limited_per_client_address() {
    let sys = start_with(
        1,
        json!({"rate_limit_per_second": 1, "rate_limit_burst": 3}),
    )
    .await;
    let login = format!("{}/lakests/ui/login?next=%2F", sys.base);
    let mut browser = Browser::new();
    for _ in 0..3 {
        let a = browser.get(&login).await;
        assert_eq!(a.status, 303, "{}", a.body);
    }
    let mut fresh = Browser::new();
    let a = fresh.get(&login).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert!(
        a.location.is_none(),
        "a page, not a redirect to the provider"
    );
    assert!(
        a.set_cookies.is_empty(),
        "nothing started: {:?}",
        a.set_cookies
    );
    assert!(
        a.body.contains("<h1>Too many sign-in attempts</h1>")
            && a.body.contains("Wait 1 second and try again."),
        "{}",
        a.body
    );
    // The callback counts against the same bucket.
    let a = browser
        .get(&format!("{}/lakests/ui/callback?code=c&state=s", sys.base))
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.session_cookie().is_none());
    // Logout is never limited.
    let a = browser
        .get(&format!("{}/lakests/ui/logout", sys.base))
        .await;
    assert_eq!(a.status, 303);
    // Another client address has its own bucket.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = other.get(&login).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    // A second later one token is back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(browser.get(&login).await.status, 303);
    assert_eq!(browser.get(&login).await.status, 429);
}

/// `max_logins_in_flight` bounds the logins kept in the store: beyond it a 503 page with
/// `Retry-After` and nothing stored; a finished login makes room again.
#[tokio::test]
async fn logins_in_flight_are_bounded() {
    let sys = start_with(1, json!({"max_logins_in_flight": 2})).await;
    let mut first = Browser::new();
    let authorize = first.start_login(&sys, "").await;
    let mut second = Browser::new();
    second.start_login(&sys, "").await;
    let mut third = Browser::new();
    let a = third
        .get_any(&format!("{}/lakests/ui/login?next=%2F", sys.base))
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.location.is_none());
    assert!(
        a.set_cookies.is_empty(),
        "nothing started: {:?}",
        a.set_cookies
    );
    assert!(
        a.body.contains("Too many sign-ins are in progress"),
        "{}",
        a.body
    );
    let retry: u64 = a.retry_after.expect("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // A callback that finds nothing frees nothing.
    third
        .get(&format!("{}/lakests/ui/callback?code=c&state=s", sys.base))
        .await
        .assert_refused(400, &[]);
    assert_eq!(
        third
            .get_any(&format!("{}/lakests/ui/login", sys.base))
            .await
            .status,
        503
    );
    // The first login finishes: room for one more, and only one.
    let callback = first.sign_in(&authorize, "alice", None).await;
    let a = first.get(callback.as_str()).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(a.session_cookie().is_some());
    third.start_login(&sys, "").await;
    let mut fourth = Browser::new();
    assert_eq!(
        fourth
            .get_any(&format!("{}/lakests/ui/login", sys.base))
            .await
            .status,
        503
    );
}
