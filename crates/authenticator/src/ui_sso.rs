//! Single sign-on in the lakeFS web UI (lakeFS OSS): the authenticator's listener logs a
//! browser in through an OpenID Provider and sets lakeFS's own session cookie,
//! `internal_auth_session` (see `lakests_core::ui_session` and docs/lakefs-ui-sso.md).
//!
//! - `GET /lakests/ui/login?next=<lakeFS path>[&provider=<name>]`: lakeFS's
//!   `auth.ui_config.fallback_login_url`. Checks `next` against the allowlist (paths under
//!   `lakefs_url`), shows a provider choice page when several are offered, else redirects to
//!   the provider (authorization code, PKCE S256, `state` and `nonce` kept server-side as a
//!   single-use grant that expires after `authenticator.session_ttl`, and bound to this browser
//!   by a cookie so that nobody can log a victim in under their own identity).
//! - `GET /lakests/ui/callback`: redeems the code exactly as `sts/login` does (same ID-token
//!   validation, claim rules, namespaced `sub`, provisioning), applies
//!   `auth.cookie_auth_verification.validate_id_token_claims`, finds the lakeFS user, mints a
//!   lakeFS login token and sets the cookie as lakeFS's `CookieStore` would, then redirects to
//!   the `next` kept server-side.
//! - `GET|POST /lakests/ui/logout`: lakeFS's `auth.ui_config.logout_url`. Clears the cookie with
//!   the header lakeFS's `/logout` sends and, when the provider's discovery document offers an
//!   `end_session_endpoint`, ends the provider's session (RP-Initiated Logout 1.0).
//!
//! Every refusal is a small HTML page with a 4xx status and no cookie; nothing secret (code,
//! state, token) is logged or shown.
//!
//! Login and callback share a per-client rate limit (`authenticator.ui_sso.rate_limit_*`, the
//! token buckets of `lakests_http::RateLimiter` that `sts/login` uses too): over it, a 429 page
//! with `Retry-After`. The logins a replica keeps in the store at once are bounded by
//! `authenticator.ui_sso.max_logins_in_flight`: beyond it, a 503 page, and nothing is stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakests_config::{Config, UiSsoConfig};
use lakests_core::token::TokenIssuer;
use lakests_core::{AuthenticatorError, Grant, LoginAudit, LoginOutcome, Reason, ui_session};
use lakests_http::{RateLimiter, RequestId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::AuthenticatorService;
use crate::pkce;
use crate::router::ClientAddr;
use tracing::Instrument;

/// Where lakeFS's fallback login button sends the browser.
pub const LOGIN_PATH: &str = "/lakests/ui/login";
/// The redirect URI registered at the provider is `{public_url}` + this.
pub const CALLBACK_PATH: &str = "/lakests/ui/callback";
/// lakeFS's `auth.ui_config.logout_url` is `{public_url}` + this.
pub const LOGOUT_PATH: &str = "/lakests/ui/logout";
/// The `Grant` kind of web-UI logins in flight.
pub const UI_GRANT_KIND: &str = "ui_login";
/// The cookie binding a login in flight to the browser that started it.
pub const BINDING_COOKIE: &str = "lakests_ui_login";
/// The cookie naming the provider a browser signed in with, for logout.
pub const PROVIDER_COOKIE: &str = "lakests_ui_idp";
/// Longest query string read by the login and callback routes.
pub const MAX_QUERY_BYTES: usize = 8192;
/// Longest `next` accepted.
pub const MAX_NEXT_LEN: usize = 2048;
/// Where a login returns when lakeFS sent no `next`.
const DEFAULT_NEXT: &str = "/";

/// What a web-UI login keeps server-side between the two redirects (no `Debug`: it holds the
/// verifier).
#[derive(Serialize, Deserialize)]
struct UiLogin {
    provider: String,
    next: String,
    code_verifier: String,
    nonce: String,
}

/// The web-UI login, built from `authenticator.ui_sso` and `auth.*`.
pub struct UiSso {
    service: Arc<AuthenticatorService>,
    tokens: TokenIssuer,
    secret: SecretString,
    lakefs_url: Url,
    callback_uri: String,
    cookie_path: String,
    providers: Vec<String>,
    token_ttl: i64,
    secure: bool,
    cookie_domain: Option<String>,
    required_claims: BTreeMap<String, String>,
    limiter: Arc<RateLimiter>,
    in_flight: InFlight,
}

impl std::fmt::Debug for UiSso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiSso")
            .field("lakefs_url", &self.lakefs_url.as_str())
            .field("callback_uri", &self.callback_uri)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl UiSso {
    /// Builds the web-UI login over the authenticator `service`. `config` must have passed
    /// `validate()`; what it still lacks is reported, never panicked on.
    pub fn new(config: &Config, service: Arc<AuthenticatorService>) -> Result<Self, String> {
        let ui: &UiSsoConfig = &config.authenticator.ui_sso;
        let secret = config
            .auth
            .encrypt
            .secret_key
            .as_ref()
            .ok_or("authenticator.ui_sso requires auth.encrypt.secret_key")?
            .secret_string();
        let parse = |key: &str, v: &Option<String>| -> Result<Url, String> {
            let s = v
                .as_deref()
                .ok_or_else(|| format!("authenticator.ui_sso.{key} is required"))?;
            lakests_config::parse_base_url(s)
                .map_err(|e| format!("authenticator.ui_sso.{key}: {s:?} {e}"))
        };
        let lakefs_url = parse("lakefs_url", &ui.lakefs_url)?;
        let public_url = parse("public_url", &ui.public_url)?;
        let public_base = public_url.as_str().trim_end_matches('/').to_owned();
        let cookie_path = format!("{}/lakests/ui/", public_url.path().trim_end_matches('/'));
        let providers: Vec<String> = if ui.providers.is_empty() {
            config
                .authenticator
                .providers
                .iter()
                .map(|p| p.name.clone())
                .collect()
        } else {
            ui.providers.clone()
        };
        if providers.is_empty() {
            return Err("authenticator.ui_sso requires at least one provider".into());
        }
        for name in &providers {
            if service.provider_by_name(name).is_none() {
                return Err(format!(
                    "authenticator.ui_sso.providers: {name:?} is not a configured provider"
                ));
            }
        }
        Ok(Self {
            tokens: TokenIssuer::new(&secret),
            secret,
            secure: lakefs_url.scheme() == "https",
            lakefs_url,
            callback_uri: format!("{public_base}{CALLBACK_PATH}"),
            cookie_path,
            providers,
            token_ttl: i64::try_from(ui.token_ttl.get().as_secs())
                .unwrap_or(i64::MAX)
                .clamp(1, ui_session::MAX_AGE_SECS),
            cookie_domain: ui
                .cookie_domain
                .as_ref()
                .map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
            required_claims: config
                .auth
                .cookie_auth_verification
                .validate_id_token_claims
                .clone(),
            limiter: Arc::new(RateLimiter::new(
                ui.rate_limit_per_second,
                ui.rate_limit_burst,
            )),
            in_flight: InFlight::new(ui.max_logins_in_flight),
            service,
        })
    }

    /// The redirect URI to register at the provider.
    pub fn callback_uri(&self) -> &str {
        &self.callback_uri
    }

    /// Requests to the login and callback routes answered 429 by the per-client rate limit.
    pub fn rate_limited_total(&self) -> u64 {
        self.limiter.limited_total.load(Ordering::Relaxed)
    }

    /// Logins refused with 503 because `max_logins_in_flight` were in flight.
    pub fn logins_refused_in_flight_total(&self) -> u64 {
        self.in_flight.refused_total.load(Ordering::Relaxed)
    }

    /// Where the lakeFS UI lives, with the path `next` appended (already checked).
    fn lakefs_target(&self, next: &str) -> String {
        format!("{}{next}", self.lakefs_url.as_str().trim_end_matches('/'))
    }

    /// lakeFS's login page, where a logout ends.
    fn lakefs_login_page(&self) -> String {
        self.lakefs_target("/auth/login")
    }

    /// One `Set-Cookie` value in the attribute order Go's `http.Cookie` writes (lakeFS's
    /// headers): `name=value; Path=..; [Expires=..;] Max-Age=..; HttpOnly; [Secure;]
    /// SameSite=Lax`, plus `Domain` for the session cookie when configured.
    fn set_cookie(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: i64,
        domain: bool,
    ) -> String {
        let mut c = format!("{name}={value}; Path={path}");
        if let (true, Some(d)) = (domain, &self.cookie_domain) {
            c.push_str(&format!("; Domain={d}"));
        }
        if max_age <= 0 {
            c.push_str("; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0");
        } else {
            c.push_str(&format!("; Max-Age={max_age}"));
        }
        c.push_str("; HttpOnly");
        if self.secure {
            c.push_str("; Secure");
        }
        c.push_str("; SameSite=Lax");
        c
    }

    /// `internal_auth_session=<value>` as lakeFS's `CookieStore` writes it (Path=/, HttpOnly,
    /// SameSite=Lax, Secure behind https), living as long as the token.
    fn session_cookie(&self, value: &str) -> String {
        self.set_cookie(ui_session::COOKIE_NAME, value, "/", self.token_ttl, true)
    }

    /// The header lakeFS's `/logout` sends (its value is irrelevant); with `cookie_domain`,
    /// also one for the domain cookie.
    fn clear_session_cookies(&self) -> Vec<String> {
        let mut out = vec![self.set_cookie(ui_session::COOKIE_NAME, "", "/", 0, false)];
        if self.cookie_domain.is_some() {
            out.push(self.set_cookie(ui_session::COOKIE_NAME, "", "/", 0, true));
        }
        out
    }

    fn own_cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        self.set_cookie(name, value, &self.cookie_path, max_age.max(1), false)
    }

    fn clear_own_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", &self.cookie_path, 0, false)
    }
}

/// The routes of the web-UI login, without the common layers. Login and callback (each
/// creates or consumes a login and calls the provider) are rate-limited per client; logout is
/// not (it stores nothing and must always work).
pub fn ui_routes(ui: Arc<UiSso>) -> Router {
    let limited = Router::new()
        .route(LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .route_layer(lakests_http::rate_limit_layer(
            ui.limiter.clone(),
            "web-UI login rate limited",
            too_many_attempts,
        ));
    Router::new()
        .merge(limited)
        .route(LOGOUT_PATH, get(logout).post(logout))
        .with_state(ui)
}

/// The per-client rate limit's answer on the login and callback routes (given before anything
/// is read, stored or sent to the provider): a 429 page with `Retry-After`.
fn too_many_attempts(retry_after: u64) -> Response {
    busy_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        &format!(
            "Too many sign-in attempts from your address. Wait {retry_after} second{} and try again.",
            if retry_after == 1 { "" } else { "s" }
        ),
        retry_after,
    )
}

/// A 429 or 503 page with `Retry-After` (seconds).
fn busy_page(status: StatusCode, title: &str, message: &str, retry_after: u64) -> Response {
    let mut resp = page(status, title, message, &[]);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

// ---- logins in flight ---------------------------------------------------------------------

/// The logins this replica has put in the store and not yet seen finished, with their expiry:
/// at most `max_logins_in_flight`. A login finished on another replica leaves its entry until
/// it expires (the bound errs on the safe side); memory is bounded by the same number.
struct InFlight {
    max: usize,
    logins: Mutex<HashMap<String, i64>>,
    refused_total: std::sync::atomic::AtomicU64,
}

impl InFlight {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            logins: Mutex::new(HashMap::new()),
            refused_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts the login `key` expiring at `expires_at`, or says in how many seconds the
    /// soonest one in flight expires when `max` are in flight.
    fn admit(&self, key: &str, expires_at: i64, now: i64) -> Result<(), u64> {
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        if logins.len() >= self.max {
            logins.retain(|_, exp| *exp > now);
        }
        if logins.len() >= self.max {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            let soonest = logins.values().min().copied().unwrap_or(now);
            return Err(u64::try_from(soonest.saturating_sub(now))
                .unwrap_or(0)
                .max(1));
        }
        logins.insert(key.to_owned(), expires_at);
        Ok(())
    }

    /// The login `key` is over (finished, refused or never stored).
    fn release(&self, key: &str) {
        self.logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.logins.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

// ---- the return-URL allowlist -----------------------------------------------------------

/// Why a `next` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRefused {
    /// Longer than [`MAX_NEXT_LEN`].
    TooLong,
    /// Not a path of the lakeFS UI (another host, a scheme-relative `//host`, a backslash,
    /// control characters, or a path that leaves the UI's base path).
    NotAllowed,
}

/// Checks a return URL against the allowlist: a path (with optional query) under the lakeFS
/// UI's base path, or an absolute URL with exactly the lakeFS UI's origin and under its path.
/// Returns it as a path relative to `lakefs_url`'s origin, normalised.
pub fn check_next(lakefs_url: &Url, next: &str) -> Result<String, NextRefused> {
    if next.len() > MAX_NEXT_LEN {
        return Err(NextRefused::TooLong);
    }
    // Only printable ASCII: no control characters, spaces, DEL or anything a browser could
    // read differently from us; no backslash (browsers read `/\host` as `//host`).
    if next.is_empty()
        || next
            .bytes()
            .any(|b| !(0x21..0x7f).contains(&b) || b == b'\\')
    {
        return Err(NextRefused::NotAllowed);
    }
    let base_path = lakefs_url.path().trim_end_matches('/');
    let target = if next.starts_with('/') {
        if next.starts_with("//") {
            return Err(NextRefused::NotAllowed);
        }
        let mut origin = lakefs_url.clone();
        origin.set_path("");
        Url::parse(&format!(
            "{}{base_path}{next}",
            origin.as_str().trim_end_matches('/')
        ))
        .map_err(|_| NextRefused::NotAllowed)?
    } else {
        let u = Url::parse(next).map_err(|_| NextRefused::NotAllowed)?;
        if u.origin() != lakefs_url.origin() || !u.username().is_empty() || u.password().is_some() {
            return Err(NextRefused::NotAllowed);
        }
        u
    };
    if target.origin() != lakefs_url.origin() {
        return Err(NextRefused::NotAllowed);
    }
    // Dot segments are resolved by the parser: what is left must stay under the base path.
    let path = target.path();
    if !(base_path.is_empty() || path == base_path || path.starts_with(&format!("{base_path}/"))) {
        return Err(NextRefused::NotAllowed);
    }
    let rel = &path[base_path.len()..];
    let mut out = if rel.is_empty() {
        "/".to_owned()
    } else {
        rel.to_owned()
    };
    if out.starts_with("//") {
        return Err(NextRefused::NotAllowed);
    }
    if let Some(q) = target.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = target.fragment() {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

// ---- query and cookie parsing -------------------------------------------------------------

/// A query string read with limits: each name at most once, each value bounded.
struct Query(BTreeMap<String, String>);

/// Why a query is refused (the message names the parameter, never its value).
struct QueryRefused(String);

impl Query {
    fn parse(raw: Option<&str>, limits: &[(&str, usize)]) -> Result<Self, QueryRefused> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(QueryRefused(format!(
                "the request's query is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let mut map = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            let Some((name, max)) = limits.iter().find(|(n, _)| *n == k) else {
                continue;
            };
            if v.len() > *max {
                return Err(QueryRefused(format!(
                    "the parameter {name} is longer than {max} bytes"
                )));
            }
            if map.insert((*name).to_owned(), v.into_owned()).is_some() {
                return Err(QueryRefused(format!(
                    "the parameter {name} is given more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The value of the cookie `name` in the request, when present exactly once.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for h in headers.get_all(header::COOKIE) {
        let Ok(h) = h.to_str() else { continue };
        for pair in h.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

// ---- pages --------------------------------------------------------------------------------

use lakests_http::html::{CSP_NO_FORMS, escape};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}a.button{display:block;margin:.6rem 0;padding:.7rem 1rem;border:1px solid #2a6;\
border-radius:6px;color:#174;text-decoration:none}a.button:hover{background:#efe}p.hint{color:#666}";

/// Headers every page and redirect of these routes carries: never cached, never framed, no
/// referrer (the callback URL holds the code).
fn harden(resp: &mut Response) {
    lakests_http::html::harden(resp, CSP_NO_FORMS);
}

/// A page: `title`, `message` (both escaped here) and optional links (label, href).
fn page(status: StatusCode, title: &str, message: &str, links: &[(String, String)]) -> Response {
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style>\
         </head><body><h1>{t}</h1><p id=\"message\">{m}</p>",
        t = escape(title),
        m = escape(message)
    );
    for (label, href) in links {
        body.push_str(&format!(
            "<a class=\"button\" href=\"{}\">{}</a>",
            escape(href),
            escape(label)
        ));
    }
    body.push_str("</body></html>");
    lakests_http::html::page(status, body, CSP_NO_FORMS)
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return internal_page(),
    }
    for c in cookies {
        match HeaderValue::from_str(c) {
            Ok(v) => {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Err(_) => return internal_page(),
        }
    }
    harden(&mut resp);
    resp
}

fn internal_page() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in failed",
        "Something went wrong on our side. Try again later.",
        &[],
    )
}

/// A refusal page, plus headers that clear the binding cookie.
fn refusal(ui: &UiSso, status: StatusCode, message: &str, start_again: bool) -> Response {
    let links = if start_again {
        vec![("Start again".to_owned(), ui.lakefs_target("/auth/login"))]
    } else {
        Vec::new()
    };
    let mut resp = page(status, "Sign-in to lakeFS failed", message, &links);
    if let Ok(v) = HeaderValue::from_str(&ui.clear_own_cookie(BINDING_COOKIE)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The page of an authenticator error: 4xx with the service's client-safe message, 5xx
/// generic.
fn authenticator_page(ui: &UiSso, e: &AuthenticatorError) -> Response {
    match e {
        AuthenticatorError::InvalidRequest(m) => refusal(ui, StatusCode::BAD_REQUEST, m, true),
        AuthenticatorError::Unauthorized(r) => refusal(ui, StatusCode::FORBIDDEN, &r.message, true),
        AuthenticatorError::Conflict(m) => refusal(ui, StatusCode::CONFLICT, m, true),
        AuthenticatorError::NotOffered(m) => refusal(ui, StatusCode::NOT_FOUND, m, true),
        AuthenticatorError::Timeout(_) => refusal(
            ui,
            StatusCode::GATEWAY_TIMEOUT,
            "The identity provider did not answer in time. Try again.",
            true,
        ),
        AuthenticatorError::Upstream(_) => refusal(
            ui,
            StatusCode::BAD_GATEWAY,
            "The identity provider could not be used. Try again later.",
            true,
        ),
        AuthenticatorError::Internal(_) => internal_page(),
    }
}

// ---- login --------------------------------------------------------------------------------

const LOGIN_PARAMS: &[(&str, usize)] = &[("next", MAX_NEXT_LEN), ("provider", 256)];

async fn login(
    State(ui): State<Arc<UiSso>>,
    RawQuery(raw): RawQuery,
    RequestId(request_id): RequestId,
) -> Response {
    let span = tracing::info_span!("ui_login", request_id = %request_id);
    login_inner(&ui, raw.as_deref()).instrument(span).await
}

async fn login_inner(ui: &Arc<UiSso>, raw: Option<&str>) -> Response {
    let ui = ui.clone();
    let q = match Query::parse(raw, LOGIN_PARAMS) {
        Ok(q) => q,
        Err(QueryRefused(m)) => {
            tracing::info!(reason = %m, "web-UI login refused");
            return refusal(&ui, StatusCode::BAD_REQUEST, &m, false);
        }
    };
    let next = match q.get("next").filter(|n| !n.is_empty()) {
        None => DEFAULT_NEXT.to_owned(),
        Some(n) => match check_next(&ui.lakefs_url, n) {
            Ok(n) => n,
            Err(e) => {
                tracing::info!(refused = ?e, "web-UI login refused: return URL off the allowlist");
                return refusal(
                    &ui,
                    StatusCode::BAD_REQUEST,
                    "The return address is not a page of this lakeFS.",
                    false,
                );
            }
        },
    };
    let provider = match q.get("provider") {
        Some(p) => match ui.providers.iter().find(|n| n.as_str() == p) {
            Some(p) => p.clone(),
            None => {
                return refusal(
                    &ui,
                    StatusCode::BAD_REQUEST,
                    "There is no such identity provider.",
                    false,
                );
            }
        },
        None if ui.providers.len() == 1 => ui.providers[0].clone(),
        None => return choice_page(&ui, &next),
    };
    start(&ui, &provider, next)
        .await
        .unwrap_or_else(|e| authenticator_page(&ui, &e))
}

/// Several providers: one button each, carrying the (already checked) `next`.
fn choice_page(ui: &UiSso, next: &str) -> Response {
    let links: Vec<(String, String)> = ui
        .providers
        .iter()
        .map(|name| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("provider", name).append_pair("next", next);
            (format!("Sign in with {name}"), format!("?{}", q.finish()))
        })
        .collect();
    page(
        StatusCode::OK,
        "Sign in to lakeFS",
        "Choose your identity provider.",
        &links,
    )
}

async fn start(
    ui: &UiSso,
    provider_name: &str,
    next: String,
) -> Result<Response, AuthenticatorError> {
    let provider = ui
        .service
        .provider_by_name(provider_name)
        .ok_or_else(|| AuthenticatorError::Internal("an offered provider is gone".into()))?;
    let cached = ui.service.provider_metadata(provider).await?;
    let endpoint = cached.meta.authorization_endpoint.clone().ok_or_else(|| {
        AuthenticatorError::Upstream(format!(
            "provider {provider_name}: the discovery document has no authorization_endpoint"
        ))
    })?;
    let random = || {
        pkce::random_token()
            .map_err(|_| AuthenticatorError::Internal("the system random generator failed".into()))
    };
    let (state, verifier, nonce, binding) = (random()?, random()?, random()?, random()?);
    let now = ui.service.clock().now();
    let ttl = ui.service.session_ttl();
    let payload = serde_json::to_string(&UiLogin {
        provider: provider_name.to_owned(),
        next,
        code_verifier: verifier.clone(),
        nonce: nonce.clone(),
    })
    .map_err(|_| AuthenticatorError::Internal("cannot encode the login".into()))?;
    let key = grant_key(&state, &binding);
    let expires_at = now.saturating_add(ttl);
    if let Err(retry_after) = ui.in_flight.admit(&key, expires_at, now) {
        tracing::warn!(
            "web-UI login refused: authenticator.ui_sso.max_logins_in_flight logins are in flight"
        );
        return Ok(busy_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is busy",
            "Too many sign-ins are in progress right now. Try again in a minute.",
            retry_after.min(60),
        ));
    }
    if let Err(e) = ui
        .service
        .store()
        .put_grant(&Grant {
            kind: UI_GRANT_KIND.into(),
            key: key.clone(),
            payload,
            expires_at,
        })
        .await
    {
        ui.in_flight.release(&key);
        tracing::error!(error = %e, "the store failed");
        return Err(AuthenticatorError::Internal("the store failed".into()));
    }
    ui.service.purge_now_and_then().await;
    let url = crate::service::authorization_request(
        endpoint,
        provider,
        &ui.callback_uri,
        &state,
        &nonce,
        &verifier,
    );
    tracing::info!(
        provider = provider_name,
        "web-UI login sent to the identity provider"
    );
    Ok(redirect(
        url.as_str(),
        &[ui.own_cookie(BINDING_COOKIE, &binding, ttl)],
    ))
}

/// A login in flight is found by its state and the browser's binding cookie together: a state
/// alone (e.g. from a forged link) finds nothing and consumes nothing.
fn grant_key(state: &str, binding: &str) -> String {
    pkce::session_key(&format!("ui\u{0}{state}\u{0}{binding}"))
}

// ---- callback -----------------------------------------------------------------------------

const CALLBACK_PARAMS: &[(&str, usize)] = &[
    ("code", lakests_core::sts::MAX_CODE_LEN),
    ("state", 512),
    ("iss", 2048),
    ("error", 256),
    ("error_description", 2048),
    ("error_uri", 2048),
    ("session_state", 512),
];

/// The RFC 6749 §4.1.2.1 / OpenID Connect error codes shown by name; any other is "an error".
const KNOWN_ERRORS: &[&str] = &[
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
];

async fn callback(
    State(ui): State<Arc<UiSso>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    RequestId(request_id): RequestId,
    ClientAddr(client_addr): ClientAddr,
) -> Response {
    let span = tracing::info_span!("ui_callback", request_id = %request_id, provider = tracing::field::Empty);
    callback_inner(&ui, raw.as_deref(), &headers, request_id, client_addr)
        .instrument(span)
        .await
}

async fn callback_inner(
    ui: &UiSso,
    raw: Option<&str>,
    headers: &HeaderMap,
    request_id: String,
    client_addr: Option<String>,
) -> Response {
    let q = match Query::parse(raw, CALLBACK_PARAMS) {
        Ok(q) => q,
        Err(QueryRefused(m)) => {
            tracing::info!(reason = %m, "web-UI callback refused");
            return refusal(ui, StatusCode::BAD_REQUEST, &m, true);
        }
    };
    let Some(state) = q.get("state").filter(|s| !s.is_empty()) else {
        tracing::info!("web-UI callback refused: no state");
        return refusal(
            ui,
            StatusCode::BAD_REQUEST,
            "The sign-in response has no state.",
            true,
        );
    };
    let Some(binding) = cookie(headers, BINDING_COOKIE).filter(|b| !b.is_empty()) else {
        tracing::info!("web-UI callback refused: no login in flight in this browser");
        return refusal(
            ui,
            StatusCode::BAD_REQUEST,
            "No sign-in is in progress in this browser (it may have expired, or cookies are blocked). Start again.",
            true,
        );
    };
    let now = ui.service.clock().now();
    let key = grant_key(state, binding);
    let taken = ui
        .service
        .store()
        .take_grant(UI_GRANT_KIND, &key, now)
        .await;
    // Taken, expired or unknown: in no case is it in flight any more.
    if taken.is_ok() {
        ui.in_flight.release(&key);
    }
    let grant = match taken {
        Ok(Some(g)) => g,
        Ok(None) => {
            tracing::info!(
                "web-UI callback refused: unknown, already used or expired login (or another browser's)"
            );
            return refusal(
                ui,
                StatusCode::BAD_REQUEST,
                "This sign-in is unknown, already used or expired. Start again.",
                true,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the store failed");
            return internal_page();
        }
    };
    let Ok(login) = serde_json::from_str::<UiLogin>(&grant.payload) else {
        tracing::error!("a stored web-UI login is unreadable");
        return internal_page();
    };
    tracing::Span::current().record("provider", login.provider.as_str());
    if let Some(error) = q.get("error") {
        let shown = KNOWN_ERRORS
            .iter()
            .find(|k| **k == error)
            .copied()
            .unwrap_or("an unknown error");
        tracing::info!(
            error = shown,
            "web-UI login refused by the identity provider"
        );
        let status = if shown == "access_denied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        return refusal(
            ui,
            status,
            &format!("The identity provider did not sign you in ({shown})."),
            true,
        );
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        tracing::info!("web-UI callback refused: no code");
        return refusal(
            ui,
            StatusCode::BAD_REQUEST,
            "The sign-in response has no code.",
            true,
        );
    };
    let Some(provider) = ui.service.provider_by_name(&login.provider) else {
        return refusal(
            ui,
            StatusCode::BAD_REQUEST,
            "This sign-in's identity provider is no longer configured. Start again.",
            true,
        );
    };
    // RFC 9207: when the provider names itself, it must be the one the login went to.
    if let Some(iss) = q.get("iss")
        && iss != provider.issuer.as_str()
    {
        tracing::info!("web-UI callback refused: the iss parameter is another issuer");
        return refusal(
            ui,
            StatusCode::BAD_REQUEST,
            "The sign-in response comes from another identity provider.",
            true,
        );
    }
    let mut audit = LoginAudit {
        at: now,
        outcome: LoginOutcome::Failure,
        reason: String::new(),
        external_id: None,
        username: None,
        client_addr,
        request_id: request_id.clone(),
    };
    let result = finish(ui, provider, code, &login, &mut audit).await;
    let resp = match result {
        Ok(resp) => {
            audit.outcome = LoginOutcome::Success;
            audit.reason = format!("web-UI session for {} s", ui.token_ttl);
            resp
        }
        Err(e) => {
            audit.reason = match &e {
                AuthenticatorError::Unauthorized(r) => r.reason.as_str().to_owned(),
                other => other.to_string(),
            };
            match &e {
                AuthenticatorError::InvalidRequest(_)
                | AuthenticatorError::Unauthorized(_)
                | AuthenticatorError::Conflict(_) => {
                    tracing::info!(reason = %e, "web-UI login refused")
                }
                _ => tracing::warn!(error = %e, "web-UI login failed"),
            }
            authenticator_page(ui, &e)
        }
    };
    if let Err(e) = ui.service.store().append_audit(&audit).await {
        tracing::error!(error = %e, "could not write the login audit record");
        if audit.outcome == LoginOutcome::Success {
            // No session without its audit record.
            return internal_page();
        }
    }
    resp
}

async fn finish(
    ui: &UiSso,
    provider: &crate::provider::Provider,
    code: &str,
    login: &UiLogin,
    audit: &mut LoginAudit,
) -> Result<Response, AuthenticatorError> {
    let claims = ui
        .service
        .redeem_and_map(
            provider,
            code,
            &ui.callback_uri,
            &login.code_verifier,
            Some(&login.nonce),
        )
        .await?;
    let external_id = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| {
            AuthenticatorError::Unauthorized(lakests_core::Refusal::new(
                Reason::SubjectMissing,
                "the ID token has no sub claim",
            ))
        })?;
    audit.external_id = Some(lakests_core::user::printable(&external_id).into_owned());
    if let Some(name) = lakests_core::claims::first_mismatch(&claims, &ui.required_claims) {
        return Err(AuthenticatorError::Unauthorized(
            lakests_core::Refusal::new(
                Reason::ClaimRule,
                format!("claim {name:?} is missing or does not have the required value"),
            ),
        ));
    }
    let user = ui
        .service
        .store()
        .find_user_by_external_id(&external_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the store failed");
            AuthenticatorError::Internal("the store failed".into())
        })?
        .ok_or_else(|| {
            AuthenticatorError::Unauthorized(lakests_core::Refusal::new(
                Reason::NoUserMapped,
                "no lakeFS user is mapped to this identity; ask an administrator",
            ))
        })?;
    audit.username = Some(user.username.clone());
    let now = ui.service.clock().now();
    let (token, _) = ui
        .tokens
        .mint(&user.username, now, ui.token_ttl)
        .map_err(|_| AuthenticatorError::Internal("cannot sign the token".into()))?;
    let value =
        ui_session::encode(ui.secret.expose_secret().as_bytes(), &token, now).map_err(|_| {
            AuthenticatorError::Conflict(
                "the session does not fit in a cookie (the username is too long)".into(),
            )
        })?;
    tracing::info!(user = %user.username, ttl = ui.token_ttl, "web-UI login succeeded");
    Ok(redirect(
        &ui.lakefs_target(&login.next),
        &[
            ui.session_cookie(&value),
            ui.clear_own_cookie(BINDING_COOKIE),
            ui.own_cookie(PROVIDER_COOKIE, &login.provider, ui.token_ttl),
        ],
    ))
}

// ---- logout -------------------------------------------------------------------------------

async fn logout(
    State(ui): State<Arc<UiSso>>,
    headers: HeaderMap,
    RequestId(request_id): RequestId,
) -> Response {
    let span = tracing::info_span!("ui_logout", request_id = %request_id);
    let mut cookies = ui.clear_session_cookies();
    cookies.push(ui.clear_own_cookie(PROVIDER_COOKIE));
    cookies.push(ui.clear_own_cookie(BINDING_COOKIE));
    let back = ui.lakefs_login_page();
    // Only a provider we offer, named by our own cookie: never a URL from the request.
    let provider = cookie(&headers, PROVIDER_COOKIE)
        .filter(|p| ui.providers.iter().any(|n| n == p))
        .and_then(|p| ui.service.provider_by_name(p));
    let Some(provider) = provider else {
        span.in_scope(|| tracing::info!("web-UI logout"));
        return redirect(&back, &cookies);
    };
    match ui.service.provider_metadata(provider).await {
        Ok(cached) => {
            if let Some(mut end) = cached.meta.end_session_endpoint.clone() {
                end.query_pairs_mut()
                    .append_pair("client_id", provider.client.id.as_str())
                    .append_pair("post_logout_redirect_uri", &back);
                span.in_scope(|| {
                    tracing::info!(provider = %provider.name(), "web-UI logout, ending the provider's session")
                });
                return redirect(end.as_str(), &cookies);
            }
        }
        Err(e) => span.in_scope(|| {
            tracing::warn!(provider = %provider.name(), error = %e, "web-UI logout: the provider's session is left as is")
        }),
    }
    span.in_scope(|| tracing::info!("web-UI logout"));
    redirect(&back, &cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn paths_of_the_lakefs_ui_are_allowed_and_normalised() {
        let u = base("http://lakefs.example:8000");
        assert_eq!(check_next(&u, "/repositories").unwrap(), "/repositories");
        assert_eq!(
            check_next(&u, "/repositories/r/objects?ref=main&path=a%2Fb").unwrap(),
            "/repositories/r/objects?ref=main&path=a%2Fb"
        );
        assert_eq!(check_next(&u, "/").unwrap(), "/");
        assert_eq!(check_next(&u, "/a/../b").unwrap(), "/b");
        assert_eq!(
            check_next(&u, "http://lakefs.example:8000/repositories").unwrap(),
            "/repositories"
        );
        let under = base("https://corp.example/lakefs/");
        assert_eq!(
            check_next(&under, "/repositories").unwrap(),
            "/repositories"
        );
        assert_eq!(
            check_next(&under, "https://corp.example/lakefs/x").unwrap(),
            "/x"
        );
    }

    #[test]
    fn open_redirects_are_refused() {
        let u = base("http://lakefs.example:8000");
        for bad in [
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "https://evil.example/",
            "http://lakefs.example:8001/",
            "https://lakefs.example:8000/",
            "http://user@lakefs.example:8000/",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.example",
            "/path\r\nSet-Cookie: x=y",
            "/path\u{0}",
            "/\t/evil.example",
            "/ /evil.example",
            "/caf\u{e9}",
            "",
        ] {
            assert!(check_next(&u, bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_next(&u, &format!("/{}", "a".repeat(MAX_NEXT_LEN))),
            Err(NextRefused::TooLong)
        );
        let under = base("https://corp.example/lakefs");
        assert!(check_next(&under, "/../admin").is_err());
        assert!(check_next(&under, "https://corp.example/other").is_err());
        assert!(check_next(&under, "https://corp.example/lakefsx").is_err());
        // Encoded dots are not dot segments (browsers do not decode them): still under the base.
        assert_eq!(check_next(&under, "/..%2f..").unwrap(), "/..%2f..");
    }

    #[test]
    fn logins_in_flight_are_bounded_until_one_finishes_or_expires() {
        let f = InFlight::new(2);
        assert_eq!(f.admit("a", 100, 0), Ok(()));
        assert_eq!(f.admit("b", 160, 0), Ok(()));
        // Full: refused, told when the soonest one expires.
        assert_eq!(f.admit("c", 100, 10), Err(90));
        assert_eq!(f.refused_total.load(Ordering::Relaxed), 1);
        // One finishes: room for one.
        f.release("a");
        assert_eq!(f.admit("c", 110, 10), Ok(()));
        assert_eq!(f.admit("d", 110, 10), Err(100));
        // Expired ones are dropped when the bound is reached.
        assert_eq!(f.admit("d", 300, 120), Ok(()));
        assert_eq!(f.len(), 2);
        // Releasing an unknown key changes nothing.
        f.release("zzz");
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn the_binding_cookie_is_found_only_when_present_once() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lakests_ui_login=xyz; b=2"),
        );
        assert_eq!(cookie(&h, BINDING_COOKIE), Some("xyz"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("lakests_ui_login=other"),
        );
        assert_eq!(cookie(&h, BINDING_COOKIE), None);
    }
}
