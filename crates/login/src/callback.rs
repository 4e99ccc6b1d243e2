//! The loopback callback server: bound (and its redirect URI known) before the browser opens,
//! it accepts exactly one valid authorization response — right path, right `state` — answers
//! it with a small page once the login's result is known, and stops. Anything else gets an
//! error page and does not end the login.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::secret::{AuthCode, OAuthState};

/// Longest query string accepted on the callback.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// How long the page waits for the login's result before answering anyway.
const PAGE_WAIT: Duration = Duration::from_secs(60);
/// How long stopping waits for the last response to be sent.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// Where the callback server listens.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// The address to bind; loopback by default.
    pub listen_address: IpAddr,
    /// Ports to try in order; 0 lets the system choose.
    pub ports: Vec<u16>,
    /// The path registered at the identity provider, e.g. `/callback`.
    pub path: String,
    /// Host name put in the redirect URI instead of the listen address (e.g. `localhost`).
    pub redirect_host: Option<String>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            listen_address: IpAddr::from([127, 0, 0, 1]),
            ports: vec![8085, 18000, 28000],
            path: "/callback".into(),
            redirect_host: None,
        }
    }
}

impl CallbackSettings {
    /// The redirect URI for one port.
    pub fn redirect_uri(&self, port: u16) -> Option<Url> {
        let host = match (&self.redirect_host, self.listen_address) {
            (Some(h), _) => h.clone(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
            (None, IpAddr::V4(ip)) => ip.to_string(),
        };
        Url::parse(&format!("http://{host}:{port}{}", self.path)).ok()
    }
}

/// Why no callback listener could be set up.
#[derive(Debug)]
pub enum BindError {
    /// Every candidate redirect URI was refused by the caller's check; the first one.
    NoneRegistered(Url),
    /// The registered candidates could not be bound; the last error.
    Io(String),
}

/// A bound, not yet serving, callback listener.
#[derive(Debug)]
pub struct CallbackListener {
    listener: TcpListener,
    redirect_uri: Url,
    path: String,
}

impl CallbackListener {
    /// Binds the first port of the list whose redirect URI `registered` accepts and that is
    /// free.
    pub async fn bind(
        settings: &CallbackSettings,
        registered: impl Fn(&Url) -> bool,
    ) -> Result<Self, BindError> {
        let mut first_refused = None;
        let mut last_error = None;
        for &port in &settings.ports {
            if port != 0 {
                let Some(uri) = settings.redirect_uri(port) else {
                    last_error = Some("the redirect host or path does not form a URL".to_owned());
                    continue;
                };
                if !registered(&uri) {
                    first_refused.get_or_insert(uri);
                    continue;
                }
            }
            let listener =
                match TcpListener::bind(SocketAddr::new(settings.listen_address, port)).await {
                    Ok(l) => l,
                    Err(e) => {
                        last_error = Some(e.to_string());
                        continue;
                    }
                };
            let actual = match listener.local_addr() {
                Ok(a) => a.port(),
                Err(e) => {
                    last_error = Some(e.to_string());
                    continue;
                }
            };
            let Some(uri) = settings.redirect_uri(actual) else {
                last_error = Some("the redirect host or path does not form a URL".to_owned());
                continue;
            };
            if port == 0 && !registered(&uri) {
                first_refused.get_or_insert(uri);
                continue;
            }
            return Ok(Self {
                listener,
                redirect_uri: uri,
                path: settings.path.clone(),
            });
        }
        match (last_error, first_refused) {
            (Some(e), _) => Err(BindError::Io(e)),
            (None, Some(uri)) => Err(BindError::NoneRegistered(uri)),
            (None, None) => Err(BindError::Io("no port to try".into())),
        }
    }

    /// The redirect URI the browser must come back to.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Starts serving; the one valid response arrives through [`Callback::arrival`].
    pub fn start(self, state: OAuthState, issuer: Option<String>) -> Callback {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            path: self.path,
            state,
            issuer,
            tx: Mutex::new(Some(tx)),
        });
        let app = Router::new().fallback(handle).with_state(shared);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let listener = self.listener;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Callback {
            rx,
            stop: Some(stop_tx),
            task,
        }
    }
}

/// What the browser brought back.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// The authorization code.
    Code(AuthCode),
    /// `error=...` from the identity provider.
    Refused {
        /// The OAuth error code.
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
    },
    /// The response's `iss` names another issuer than the expected one (RFC 9207).
    IssuerMismatch {
        /// The `iss` received.
        got: String,
    },
}

/// The one valid response and the way to answer the browser.
#[derive(Debug)]
pub struct Arrival {
    /// What came back.
    pub outcome: CallbackOutcome,
    /// Answers the waiting browser.
    pub reply: Reply,
}

/// The page the browser is shown at the end.
#[derive(Debug, Clone)]
pub enum Page {
    /// The login succeeded.
    SignedIn(String),
    /// The login failed; the message says why.
    Failed(String),
    /// The code was received and handed to the terminal (`--print-code`).
    CodeReceived,
}

/// Sends the final page to the browser waiting on the callback.
#[derive(Debug)]
pub struct Reply(Option<oneshot::Sender<Page>>);

impl Reply {
    /// Shows `page` in the browser.
    pub fn send(mut self, page: Page) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(page);
        }
    }
}

/// A running callback server.
#[derive(Debug)]
pub struct Callback {
    rx: oneshot::Receiver<Arrival>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Callback {
    /// Waits for the one valid response (forever: the caller bounds it). `None` if the server
    /// stopped.
    pub async fn arrival(&mut self) -> Option<Arrival> {
        (&mut self.rx).await.ok()
    }

    /// Stops the server, letting the last page be sent (bounded).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(STOP_WAIT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

struct Shared {
    path: String,
    state: OAuthState,
    issuer: Option<String>,
    tx: Mutex<Option<oneshot::Sender<Arrival>>>,
}

/// The parameters of an authorization response (RFC 6749 §4.1.2, RFC 9207).
#[derive(Default)]
pub(crate) struct AuthResponse {
    pub(crate) code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

pub(crate) fn parse_query(q: &str) -> Result<AuthResponse, &'static str> {
    let mut r = AuthResponse::default();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut r.code,
            "state" => &mut r.state,
            "error" => &mut r.error,
            "error_description" => &mut r.error_description,
            "iss" => &mut r.iss,
            _ => continue,
        };
        if slot.is_some() {
            return Err("a parameter is repeated");
        }
        *slot = Some(v.into_owned());
    }
    Ok(r)
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    if uri.path() != shared.path {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This address only serves the sign-in callback of lakests login.",
        );
    }
    if method != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "The sign-in callback only accepts GET.",
        );
    }
    let query = uri.query().unwrap_or("");
    if query.len() > MAX_QUERY_BYTES {
        return page(
            StatusCode::URI_TOO_LONG,
            "Request too large",
            "The sign-in response is too large.",
        );
    }
    let r = match parse_query(query) {
        Ok(r) => r,
        Err(why) => return page(StatusCode::BAD_REQUEST, "Invalid sign-in response", why),
    };
    let state_ok = r.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            s.as_bytes(),
            shared.state.expose().as_bytes(),
        )
        .is_ok()
    });
    if !state_ok {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in response",
            "This response does not belong to the login in progress (its state does not match). \
             Start the sign-in from the link lakests opened or printed.",
        );
    }
    let outcome = match (&shared.issuer, r.iss) {
        (Some(expected), Some(got))
            if expected.trim_end_matches('/') != got.trim_end_matches('/') =>
        {
            CallbackOutcome::IssuerMismatch {
                got: clip(&got, 300),
            }
        }
        _ => match (r.error, r.code) {
            (Some(error), _) => CallbackOutcome::Refused {
                error: clip(&error, 100),
                description: r.error_description.map(|d| clip(&d, 300)),
            },
            (None, Some(code)) if !code.is_empty() => CallbackOutcome::Code(AuthCode::new(code)),
            (None, _) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Invalid sign-in response",
                    "The response carries neither a code nor an error.",
                );
            }
        },
    };
    let Some(tx) = shared.tx.lock().ok().and_then(|mut slot| slot.take()) else {
        return page(
            StatusCode::CONFLICT,
            "Already done",
            "This login has already received its response. Return to the terminal.",
        );
    };
    let (page_tx, page_rx) = oneshot::channel();
    if tx
        .send(Arrival {
            outcome,
            reply: Reply(Some(page_tx)),
        })
        .is_err()
    {
        return page(
            StatusCode::GONE,
            "Login over",
            "The login that opened this page has ended. Return to the terminal.",
        );
    }
    match tokio::time::timeout(PAGE_WAIT, page_rx).await {
        Ok(Ok(Page::SignedIn(detail))) => page(
            StatusCode::OK,
            "Signed in",
            &format!("{detail} You can close this tab and return to the terminal."),
        ),
        Ok(Ok(Page::Failed(message))) => page(
            StatusCode::OK,
            "Sign-in failed",
            &format!("{message}. You can close this tab; the terminal shows the same message."),
        ),
        Ok(Ok(Page::CodeReceived)) => page(
            StatusCode::OK,
            "Code received",
            "The terminal has the code. You can close this tab.",
        ),
        _ => page(
            StatusCode::OK,
            "Response received",
            "Return to the terminal to see the result. You can close this tab.",
        ),
    }
}

/// At most `max` printable characters of a value the identity provider chose.
fn clip(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

use lakests_http::html::escape;

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>lakests login: {t}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}</style>\
</head><body><h1 id=\"title\">{t}</h1><p id=\"message\">{m}</p></body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    // The callback URL carries the code: the page never leaks it through a Referer.
    lakests_http::html::page(status, body, lakests_http::html::CSP_NO_FORMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ports: Vec<u16>) -> CallbackSettings {
        CallbackSettings {
            ports,
            ..CallbackSettings::default()
        }
    }

    async fn started(state: &str) -> (Callback, String) {
        let l = CallbackListener::bind(&settings(vec![0]), |_| true)
            .await
            .unwrap();
        let uri = l.redirect_uri().to_string();
        (
            l.start(
                OAuthState::new(state),
                Some("http://idp.example".to_owned()),
            ),
            uri,
        )
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    #[tokio::test]
    async fn a_busy_port_falls_back_to_the_next_one() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let l = CallbackListener::bind(&settings(vec![busy_port, 0]), |_| true)
            .await
            .unwrap();
        let uri = l.redirect_uri();
        assert_ne!(uri.port(), Some(busy_port));
        assert_eq!(uri.host_str(), Some("127.0.0.1"));
        assert_eq!(uri.path(), "/callback");
    }

    #[tokio::test]
    async fn ports_whose_redirect_uri_is_not_registered_are_skipped() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let l = CallbackListener::bind(&settings(vec![1, port]), |u| u.port() == Some(port))
            .await
            .unwrap();
        assert_eq!(l.redirect_uri().port(), Some(port));

        let e = CallbackListener::bind(&settings(vec![1, 2]), |_| false)
            .await
            .unwrap_err();
        match e {
            BindError::NoneRegistered(u) => assert_eq!(u.as_str(), "http://127.0.0.1:1/callback"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn only_ports_in_use_give_a_bind_error() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let e = CallbackListener::bind(&settings(vec![port]), |_| true)
            .await
            .unwrap_err();
        assert!(matches!(e, BindError::Io(_)), "{e:?}");
    }

    #[test]
    fn the_redirect_host_can_differ_from_the_listen_address() {
        let s = CallbackSettings {
            redirect_host: Some("localhost".into()),
            path: "/oidc/callback".into(),
            ..CallbackSettings::default()
        };
        assert_eq!(
            s.redirect_uri(8085).unwrap().as_str(),
            "http://localhost:8085/oidc/callback"
        );
        let s = CallbackSettings {
            listen_address: "::1".parse().unwrap(),
            ..CallbackSettings::default()
        };
        assert_eq!(
            s.redirect_uri(9).unwrap().as_str(),
            "http://[::1]:9/callback"
        );
    }

    #[tokio::test]
    async fn wrong_path_wrong_state_and_empty_responses_do_not_end_the_login() {
        let (mut cb, uri) = started("the-state").await;
        let base = uri.trim_end_matches("/callback");
        let http = http();
        for (url, status) in [
            (format!("{base}/favicon.ico"), 404),
            (format!("{uri}?code=c&state=other"), 400),
            (format!("{uri}?code=c"), 400),
            (format!("{uri}?state=the-state"), 400),
            (format!("{uri}?code=a&code=b&state=the-state"), 400),
            (
                format!("{uri}?code=c&state=the-state&x={}", "y".repeat(9000)),
                414,
            ),
        ] {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{url:.80}");
            assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        }
        let r = http.post(&uri).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405);
        // Still waiting: none of those ended the login.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), cb.arrival())
                .await
                .is_err()
        );

        // The valid one does, and its page shows the result the flow sends.
        let http2 = http.clone();
        let good = format!("{uri}?code=the-code&state=the-state&iss=http%3A%2F%2Fidp.example");
        let browser = tokio::spawn(async move { http2.get(good).send().await.unwrap() });
        let arrival = cb.arrival().await.unwrap();
        match &arrival.outcome {
            CallbackOutcome::Code(c) => assert_eq!(c.expose(), "the-code"),
            other => panic!("{other:?}"),
        }
        arrival
            .reply
            .send(Page::SignedIn("Signed in to lakeFS as alice.".into()));
        let r = browser.await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("Signed in to lakeFS as alice."), "{text}");
        assert!(text.contains("close this tab"), "{text}");

        // A second valid response is not accepted again.
        let r = http
            .get(format!("{uri}?code=again&state=the-state"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
        cb.stop().await;
        assert!(http.get(&uri).send().await.is_err(), "server stopped");
    }

    #[tokio::test]
    async fn an_idp_error_ends_the_login_and_is_shown_escaped() {
        let (mut cb, uri) = started("s").await;
        let http = http();
        let url =
            format!("{uri}?error=access_denied&error_description=%3Cb%3Enope%3C%2Fb%3E&state=s");
        let browser = tokio::spawn(async move { http.get(url).send().await.unwrap() });
        let arrival = cb.arrival().await.unwrap();
        match &arrival.outcome {
            CallbackOutcome::Refused { error, description } => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("<b>nope</b>"));
            }
            other => panic!("{other:?}"),
        }
        arrival.reply.send(Page::Failed(
            "the identity provider refused the login: access_denied (<b>nope</b>)".into(),
        ));
        let text = browser.await.unwrap().text().await.unwrap();
        assert!(
            text.contains("access_denied (&lt;b&gt;nope&lt;/b&gt;)"),
            "{text}"
        );
        cb.stop().await;
    }

    #[tokio::test]
    async fn a_response_from_another_issuer_is_reported_as_a_mix_up() {
        let (mut cb, uri) = started("s").await;
        let http = http();
        let url = format!("{uri}?code=c&state=s&iss=http%3A%2F%2Fevil.example");
        let browser = tokio::spawn(async move { http.get(url).send().await.unwrap() });
        let arrival = cb.arrival().await.unwrap();
        assert!(
            matches!(&arrival.outcome, CallbackOutcome::IssuerMismatch { got } if got == "http://evil.example")
        );
        drop(arrival);
        let r = browser.await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.text().await.unwrap().contains("Return to the terminal"));
        cb.stop().await;
    }
}
