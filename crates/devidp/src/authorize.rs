//! `/authorize`: checks the request, then signs a user in from the page (or, with
//! `idp.interactive: false`, from `login_hint`) and redirects back with a code.
//!
//! An unknown `client_id` or an unregistered `redirect_uri` gets an error page: the IdP never
//! redirects to a URI it does not know. Every other problem is redirected back as
//! `error=...&state=...` (RFC 6749 §4.1.2.1).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lakests_config::{IdpClient, IdpFault};

use crate::html::{self, PageUser, SignInPage};
use crate::params::{MAX_PARAMS_BYTES, ParamError, Params};
use crate::{CODE_TTL_SECONDS, DevIdp, MAX_FAULTS_PER_LOGIN, PendingCode, secrets_equal};

/// Parameters `/authorize` reads, with their longest accepted values.
const AUTHORIZE_PARAMS: &[(&str, usize)] = &[
    ("response_type", 64),
    ("client_id", 256),
    ("redirect_uri", 2048),
    ("scope", 1024),
    ("state", 1024),
    ("nonce", 512),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("login_hint", 256),
    ("prompt", 64),
    ("response_mode", 32),
    ("lakests_fault", 512),
    ("request", 8192),
    ("request_uri", 2048),
    // Sent by the sign-in page's forms.
    ("sub", 256),
    ("password", 1024),
    ("action", 16),
];

/// A request that passed every check.
struct AuthRequest<'a> {
    client: &'a IdpClient,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    faults: Vec<IdpFault>,
    fault_text: Option<String>,
    login_hint: Option<String>,
    prompt_none: bool,
}

/// Why a request stops.
enum Refusal {
    /// Shown as a page: the redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the (registered) redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn param_refusal(e: &ParamError) -> Refusal {
    let status = match e {
        ParamError::TooLarge => StatusCode::URI_TOO_LONG,
        _ => StatusCode::BAD_REQUEST,
    };
    Refusal::Page(status, e.to_string())
}

fn check<'a>(idp: &'a DevIdp, p: &Params) -> Result<AuthRequest<'a>, Refusal> {
    let Some(client_id) = p.get("client_id") else {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "client_id is missing".into(),
        ));
    };
    let Some(client) = idp.client(client_id) else {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "client_id names no registered client (idp.clients)".into(),
        ));
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is missing".into(),
        ));
    };
    if !client
        .redirect_uris
        .iter()
        .any(|u| redirect_matches(u, redirect_uri))
    {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            format!(
                "redirect_uri is not one of the redirect URIs registered for client {} (they must \
                 match exactly, except the port of a loopback URI)",
                client.client_id
            ),
        ));
    }
    let state = p.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    if p.get("request").is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.get("request_uri").is_some() {
        return Err(refuse(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match p.get("response_type") {
        None => return Err(refuse("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = p.get("response_mode")
        && mode != "query"
    {
        return Err(refuse(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let scope = p.get("scope").unwrap_or("");
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(refuse("invalid_scope", "scope must include openid"));
    }
    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) if lakests_core::pkce::is_valid_challenge(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 base64url characters (S256)",
            ));
        }
        (Some(_), None) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method is missing; only S256 is supported (plain is refused)",
            ));
        }
        (_, Some("S256")) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (_, Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is refused)",
            ));
        }
    };
    if client.client_secret.is_none() && code_challenge.is_none() {
        return Err(refuse(
            "invalid_request",
            "PKCE is required for public clients: send code_challenge with code_challenge_method=S256",
        ));
    }
    let mut faults = Vec::new();
    if let Some(text) = p.get("lakests_fault") {
        for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part.parse::<IdpFault>() {
                Ok(f) => {
                    if !faults.contains(&f) {
                        faults.push(f);
                    }
                }
                Err(why) => {
                    return Err(refuse("invalid_request", &format!("lakests_fault: {why}")));
                }
            }
        }
        if faults.len() > MAX_FAULTS_PER_LOGIN {
            return Err(refuse(
                "invalid_request",
                &format!("lakests_fault: at most {MAX_FAULTS_PER_LOGIN} faults per login"),
            ));
        }
    }
    let prompt_none = match p.get("prompt") {
        None => false,
        Some(prompt) => {
            let values: Vec<&str> = prompt.split(' ').collect();
            if values.contains(&"none") && values.len() > 1 {
                return Err(refuse(
                    "invalid_request",
                    "prompt=none cannot be combined with other values",
                ));
            }
            values.contains(&"none")
        }
    };
    Ok(AuthRequest {
        client,
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state,
        nonce: p.get("nonce").map(str::to_owned),
        code_challenge,
        faults,
        fault_text: p.get("lakests_fault").map(str::to_owned),
        login_hint: p.get("login_hint").map(str::to_owned),
        prompt_none,
    })
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether a requested redirect URI matches a registered one: exactly, or, for a loopback URI
/// (`http` to 127.0.0.1, [::1] or localhost), in everything but the port, as RFC 8252 §7.3
/// requires of an authorization server for native apps.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    lakests_core::redirect::redirect_matches(registered, requested, true)
}

/// A redirect to `redirect_uri` with `params` (and `iss`, RFC 9207) added to its query.
fn redirect(
    idp: &DevIdp,
    status: StatusCode,
    redirect_uri: &str,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return html::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the registered redirect_uri is not a valid URL; fix idp.clients",
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", idp.issuer());
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return html::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the redirect URL cannot be sent as a header",
        );
    };
    no_store((status, [(header::LOCATION, location)]).into_response())
}

fn refusal_response(idp: &DevIdp, status: StatusCode, r: Refusal) -> Response {
    match r {
        Refusal::Page(code, message) => html::error_page(code, &message),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = state.as_deref() {
                params.push(("state", s));
            }
            redirect(idp, status, &redirect_uri, &params)
        }
    }
}

/// Issues a code for `sub` and redirects back with it.
fn sign_in(idp: &DevIdp, status: StatusCode, req: &AuthRequest<'_>, sub: &str) -> Response {
    let now = idp.clock.now();
    let pending = PendingCode {
        client_id: req.client.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        scope: req.scope.clone(),
        sub: sub.to_owned(),
        auth_time: now,
        faults: req.faults.clone(),
        expires_at: now.saturating_add(CODE_TTL_SECONDS),
        redeemed: None,
    };
    let Some(code) = idp.store_code(pending) else {
        tracing::warn!("too many outstanding authorization codes; refusing a sign-in");
        return refusal_response(
            idp,
            status,
            Refusal::Redirect {
                redirect_uri: req.redirect_uri.clone(),
                state: req.state.clone(),
                error: "temporarily_unavailable",
                description: "too many outstanding authorization codes; try again in a minute"
                    .into(),
            },
        );
    };
    // At debug: a completed sign-in has its `info` line when its code is redeemed ("issued
    // tokens", with the same client and subject); one line per sign-in instead of two.
    tracing::debug!(client_id = %req.client.client_id, sub = %sub, "development IdP sign-in; code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    redirect(idp, status, &req.redirect_uri, &params)
}

fn render_page(
    idp: &DevIdp,
    status: StatusCode,
    req: &AuthRequest<'_>,
    error: Option<&str>,
) -> Response {
    let mut hidden: Vec<(&'static str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", req.client.client_id.as_str()),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("scope", req.scope.as_str()),
    ];
    for (name, value) in [
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("code_challenge", &req.code_challenge),
        ("lakests_fault", &req.fault_text),
    ] {
        if let Some(v) = value {
            hidden.push((name, v.as_str()));
        }
    }
    if req.code_challenge.is_some() {
        hidden.push(("code_challenge_method", "S256"));
    }
    let faults: Vec<String> = idp
        .faults
        .iter()
        .chain(req.faults.iter())
        .map(ToString::to_string)
        .collect();
    let action = idp.endpoint("/authorize");
    let page = SignInPage {
        action: &action,
        client_id: &req.client.client_id,
        redirect_uri: &req.redirect_uri,
        issuer: idp.issuer(),
        hidden: &hidden,
        users: idp
            .users
            .iter()
            .map(|u| PageUser {
                sub: &u.sub,
                name: u.name.as_deref(),
                email: u.email.as_deref(),
                groups: &u.groups,
                has_password: u.password.is_some(),
            })
            .collect(),
        hint: req.login_hint.as_deref(),
        error,
        faults: &faults,
    };
    html::respond(status, html::sign_in_page(&page))
}

/// `GET /authorize`.
pub(crate) async fn authorize_get(
    State(idp): State<Arc<DevIdp>>,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let params = match Params::parse(raw.as_bytes(), AUTHORIZE_PARAMS) {
        Ok(p) => p,
        Err(e) => return refusal_response(&idp, StatusCode::FOUND, param_refusal(&e)),
    };
    let req = match check(&idp, &params) {
        Ok(r) => r,
        Err(r) => return refusal_response(&idp, StatusCode::FOUND, r),
    };
    if !idp.interactive
        && let Some(hint) = req.login_hint.as_deref()
    {
        if idp.user(hint).is_some() {
            return sign_in(&idp, StatusCode::FOUND, &req, hint);
        }
        return refusal_response(
            &idp,
            StatusCode::FOUND,
            Refusal::Redirect {
                redirect_uri: req.redirect_uri.clone(),
                state: req.state.clone(),
                error: "login_required",
                description: "login_hint names no configured user (idp.users)".into(),
            },
        );
    }
    if req.prompt_none {
        return refusal_response(
            &idp,
            StatusCode::FOUND,
            Refusal::Redirect {
                redirect_uri: req.redirect_uri.clone(),
                state: req.state.clone(),
                error: "login_required",
                description: "prompt=none, but signing in needs the sign-in page".into(),
            },
        );
    }
    render_page(&idp, StatusCode::OK, &req, None)
}

/// `POST /authorize`: the sign-in page's forms.
pub(crate) async fn authorize_post(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return html::error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the sign-in form must be sent as application/x-www-form-urlencoded",
        );
    }
    if body.len() > MAX_PARAMS_BYTES {
        return html::error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            &ParamError::TooLarge.to_string(),
        );
    }
    let params = match Params::parse(&body, AUTHORIZE_PARAMS) {
        Ok(p) => p,
        Err(e) => return refusal_response(&idp, StatusCode::SEE_OTHER, param_refusal(&e)),
    };
    let mut req = match check(&idp, &params) {
        Ok(r) => r,
        Err(r) => return refusal_response(&idp, StatusCode::SEE_OTHER, r),
    };
    match params.get("action") {
        Some("cancel") => {
            return refusal_response(
                &idp,
                StatusCode::SEE_OTHER,
                Refusal::Redirect {
                    redirect_uri: req.redirect_uri.clone(),
                    state: req.state.clone(),
                    error: "access_denied",
                    description: "the user cancelled the sign-in".into(),
                },
            );
        }
        None | Some("signin") => {}
        Some(_) => {
            return render_page(
                &idp,
                StatusCode::BAD_REQUEST,
                &req,
                Some("unknown action; use the buttons below"),
            );
        }
    }
    let Some(sub) = params.get("sub") else {
        return render_page(&idp, StatusCode::BAD_REQUEST, &req, Some("pick a user"));
    };
    let Some(user) = idp.user(sub) else {
        return render_page(
            &idp,
            StatusCode::BAD_REQUEST,
            &req,
            Some("that user is not configured"),
        );
    };
    if let Some(expected) = &user.password {
        let given = params.get("password").unwrap_or("");
        if !secrets_equal(given, expected.expose()) {
            tracing::info!(sub = %user.sub, "development IdP sign-in refused: wrong password");
            // Put the focus back on the password that was wrong.
            req.login_hint = Some(user.sub.clone());
            return render_page(
                &idp,
                StatusCode::UNAUTHORIZED,
                &req,
                Some("wrong password; try again"),
            );
        }
    }
    sign_in(&idp, StatusCode::SEE_OTHER, &req, &user.sub)
}

#[cfg(test)]
mod redirect_tests {
    use super::redirect_matches;

    #[test]
    fn loopback_redirect_uris_match_on_any_port_and_nothing_else_does() {
        let reg = "http://127.0.0.1:8085/callback";
        assert!(redirect_matches(reg, reg));
        assert!(redirect_matches(reg, "http://127.0.0.1:41234/callback"));
        assert!(redirect_matches(reg, "http://127.0.0.1/callback"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:41234/other"));
        assert!(!redirect_matches(reg, "http://localhost:8085/callback"));
        assert!(!redirect_matches(reg, "https://127.0.0.1:8085/callback"));
        let web = "https://app.example.com/cb";
        assert!(!redirect_matches(web, "https://app.example.com:444/cb"));
        assert!(!redirect_matches(web, "https://app.example.com/cb/"));
    }
}
