//! The login use case over small parts — [`Browser`], [`Clock`], [`TokenCache`], a
//! [`Reporter`] for the lines a person reads — in the manner of int128/kubelogin: the callback
//! server is bound and its URL known before the browser opens, the URL is printed when no
//! browser can open, and one timeout covers the whole flow.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lakests_api::{LoginDiscovery, StsAuthRequest, User};
use lakests_core::Clock;
use tokio::time::Instant;

use crate::browser::Browser;
use crate::cache::{CacheLock, CachedToken, TokenCache};
use crate::callback::{
    Arrival, BindError, Callback, CallbackListener, CallbackOutcome, CallbackSettings, Page,
};
use crate::client::ServerClient;
use crate::endpoint::Endpoint;
use crate::error::LoginError;
use crate::pkce;
use crate::redirect::is_registered;
use crate::secret::{AccessToken, AuthCode, OAuthState};

/// Default overall timeout of a login.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// By default a cached token is reused only while it has more than this many seconds to live;
/// closer to its expiry, `lakests login` signs in again.
pub const DEFAULT_MIN_VALIDITY_SECONDS: i64 = 300;
/// How often a waiting login checks whether the other one has finished.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// Where the identity provider's facts come from.
#[derive(Debug, Clone)]
pub enum ProviderSource {
    /// The server's `/.well-known/lakests-login` document (lakests playing lakeFS, or a proxy
    /// that routes it).
    Discover,
    /// The `/.well-known/lakests-login` document of the lakests authenticator at this URL: for
    /// a lakeFS endpoint, which does not serve it. Session-mode logins start at this
    /// authenticator; the code still goes to the endpoint's `sts/login`.
    Authenticator(Endpoint),
    /// Given on the command line, for a lakeFS without that document (PKCE `state` mode).
    Given {
        /// The issuer.
        issuer: String,
        /// The client id registered at the provider.
        client_id: String,
        /// Scopes to request (`openid` when empty).
        scopes: Vec<String>,
    },
}

/// What one login asks for.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// The lakeFS server.
    pub endpoint: Endpoint,
    /// Where the provider's facts come from.
    pub provider: ProviderSource,
    /// The loopback callback server.
    pub callback: CallbackSettings,
    /// Requested token lifetime; the server's default when `None`.
    pub ttl_seconds: Option<i64>,
    /// Overall timeout, from start to token.
    pub timeout: Duration,
    /// Log in again even when a cached token is still valid.
    pub force: bool,
    /// A cached token is reused only while it has more than this many seconds to live.
    pub min_validity_seconds: i64,
}

impl LoginOptions {
    /// Options with the defaults for everything but the endpoint.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            provider: ProviderSource::Discover,
            callback: CallbackSettings::default(),
            ttl_seconds: None,
            timeout: DEFAULT_TIMEOUT,
            force: false,
            min_validity_seconds: DEFAULT_MIN_VALIDITY_SECONDS,
        }
    }
}

/// Lines for the person at the terminal (stderr in the CLI).
pub trait Reporter: Send + Sync {
    /// Shows one message.
    fn say(&self, message: &str);
}

/// Writes messages to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrReporter;

impl Reporter for StderrReporter {
    fn say(&self, message: &str) {
        eprintln!("{}", strip_controls(message));
    }
}

/// `text` without control characters (line breaks kept): messages carry values a server or an
/// identity provider chose (issuer, user name), which must not steer the terminal.
pub fn strip_controls(text: &str) -> String {
    text.chars()
        .filter(|c| *c == '\n' || !(c.is_control() || is_bidi_control(*c)))
        .collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks a session-mode `authorization_url` from the lakeFS server before it is opened: an
/// http(s) URL on the origin of the identity provider's own `authorization_endpoint` (a
/// hostile server could otherwise hand the desktop opener a `file:` URL or a phishing page).
pub fn check_authorization_url(
    url: &str,
    authorization_endpoint: &url::Url,
) -> Result<(), &'static str> {
    let parsed = url::Url::parse(url).map_err(|_| "not a URL")?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err("not an http(s) URL");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it carries credentials");
    }
    if parsed.origin() != authorization_endpoint.origin() {
        return Err("another origin than the provider's authorization endpoint");
    }
    Ok(())
}

/// How a login obtained its token (not to be confused with the audit's
/// `lakests_core::LoginOutcome`, a login attempt's success or failure on the server).
#[derive(Debug, Clone)]
pub enum ObtainedToken {
    /// A cached token was still valid (possibly one a concurrent login just obtained).
    Cached(CachedToken),
    /// A new token was obtained through the browser.
    New(CachedToken),
}

impl ObtainedToken {
    /// The token, however it was obtained.
    pub fn token(&self) -> &CachedToken {
        match self {
            ObtainedToken::Cached(t) | ObtainedToken::New(t) => t,
        }
    }
}

/// The result of `--print-code`: what `lakefs.client.from_web_identity` needs.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The lakeFS endpoint (the SDK's `host`).
    pub endpoint: String,
    /// The authorization code.
    pub code: AuthCode,
    /// The `state` to pass along with it.
    pub state: OAuthState,
    /// The redirect URI the code was issued for.
    pub redirect_uri: String,
    /// The requested TTL, if any.
    pub ttl_seconds: Option<i64>,
}

/// Where the PKCE verifier lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkceMode {
    /// lakeFS's documented flow: the `state` is the verifier.
    State,
    /// The server starts the login and keeps the verifier.
    Session,
}

/// The provider facts a login works with.
#[derive(Debug)]
struct Plan {
    issuer: String,
    client_id: String,
    scopes: Vec<String>,
    mode: PkceMode,
    /// Registered redirect URIs and whether loopback ports are free; `None` when unknown.
    registered: Option<(Vec<String>, bool)>,
    max_ttl_seconds: Option<i64>,
    /// Where session-mode logins start (`POST /api/v1/sts/authorize`): the server that
    /// published the discovery document.
    authorize_at: Endpoint,
}

/// A browser sign-in that came back with a code; the browser still waits for its page.
struct SignedIn {
    code: AuthCode,
    state: OAuthState,
    redirect_uri: String,
    reply: crate::callback::Reply,
    callback: Callback,
}

/// The login use case.
#[derive(Clone)]
pub struct Login {
    client: ServerClient,
    browser: Arc<dyn Browser>,
    cache: Arc<dyn TokenCache>,
    clock: Arc<dyn Clock>,
    reporter: Arc<dyn Reporter>,
}

impl Login {
    /// The use case over its parts.
    pub fn new(
        client: ServerClient,
        browser: Arc<dyn Browser>,
        cache: Arc<dyn TokenCache>,
        clock: Arc<dyn Clock>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        Self {
            client,
            browser,
            cache,
            clock,
            reporter,
        }
    }

    /// Logs in: a valid cached token if there is one (unless `force`), else a browser sign-in
    /// whose code is redeemed at `POST /api/v1/sts/login`; the new token is cached. A second
    /// login for the same endpoint waits for the first one and reuses its token.
    pub async fn login(&self, opts: &LoginOptions) -> Result<ObtainedToken, LoginError> {
        let deadline = Instant::now() + opts.timeout;
        let ep = &opts.endpoint;
        if !opts.force
            && let Some(t) = self.cache.load(ep)?
            && t.usable_at(self.clock.now(), opts.min_validity_seconds)
        {
            return Ok(ObtainedToken::Cached(t));
        }
        let started = self.clock.now();
        let (lock, waited) = self.lock(ep, deadline, opts.timeout).await?;
        // The login we waited for has just cached a token: reuse it (with --force too, as
        // long as it is newer than this run).
        if waited
            && let Some(t) = self.cache.load(ep)?
            && (!opts.force || t.obtained_at >= started)
            && t.usable_at(self.clock.now(), opts.min_validity_seconds)
        {
            return Ok(ObtainedToken::Cached(t));
        }
        let s = self.sign_in(opts, deadline).await?;
        let req = StsAuthRequest {
            code: s.code.expose().to_owned(),
            state: s.state.expose().to_owned(),
            redirect_uri: s.redirect_uri.clone(),
            ttl_seconds: opts.ttl_seconds,
        };
        let redeemed = self
            .client
            .sts_login(ep, &req, deadline, opts.timeout)
            .await;
        let (grant, granted_ttl) = match redeemed {
            Ok(r) => r,
            Err(e) => {
                s.reply.send(Page::Failed(e.to_string()));
                s.callback.stop().await;
                return Err(e);
            }
        };
        let token = AccessToken::new(grant.token);
        let user = self
            .client
            .current_user(ep, &token, deadline, opts.timeout)
            .await;
        let username = match &user {
            Ok(u) => Some(u.id.clone()),
            Err(e) => {
                self.reporter
                    .say(&format!("note: the new token could not be confirmed: {e}"));
                None
            }
        };
        s.reply.send(Page::SignedIn(match &username {
            Some(u) => format!("Signed in to lakeFS at {ep} as {u}."),
            None => format!("Signed in to lakeFS at {ep}."),
        }));
        s.callback.stop().await;
        let now = self.clock.now();
        let cached = CachedToken {
            endpoint: ep.to_string(),
            token,
            token_expiration: grant.token_expiration,
            username,
            obtained_at: now,
        };
        self.cache.store(ep, &cached)?;
        drop(lock);
        if let Some(asked) = opts.ttl_seconds {
            let granted = granted_ttl.unwrap_or(grant.token_expiration - now);
            if (granted - asked).abs() > 60 || granted_ttl.is_some_and(|g| g != asked) {
                self.reporter.say(&format!(
                    "The server granted a token for {} instead of the requested {}.",
                    human_seconds(granted),
                    human_seconds(asked)
                ));
            }
        }
        Ok(ObtainedToken::New(cached))
    }

    /// `--print-code`: the browser sign-in alone; the code is returned, not redeemed (and
    /// nothing is cached).
    pub async fn print_code(&self, opts: &LoginOptions) -> Result<CodeGrant, LoginError> {
        let deadline = Instant::now() + opts.timeout;
        let s = self.sign_in(opts, deadline).await?;
        s.reply.send(Page::CodeReceived);
        s.callback.stop().await;
        Ok(CodeGrant {
            endpoint: opts.endpoint.to_string(),
            code: s.code,
            state: s.state,
            redirect_uri: s.redirect_uri,
            ttl_seconds: opts.ttl_seconds,
        })
    }

    /// The cached token for `endpoint`, confirmed by `GET /api/v1/user`.
    pub async fn whoami(
        &self,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<(CachedToken, User), LoginError> {
        let deadline = Instant::now() + timeout;
        let Some(t) = self.cache.load(endpoint)? else {
            return Err(LoginError::NotLoggedIn {
                endpoint: endpoint.to_string(),
            });
        };
        if !t.usable_at(self.clock.now(), 0) {
            return Err(LoginError::Expired {
                endpoint: endpoint.to_string(),
                at: rfc3339(t.token_expiration),
            });
        }
        let user = self
            .client
            .current_user(endpoint, &t.token, deadline, timeout)
            .await?;
        Ok((t, user))
    }

    /// Removes the cached token; whether there was one.
    pub fn logout(&self, endpoint: &Endpoint) -> Result<bool, LoginError> {
        self.cache.remove(endpoint)
    }

    /// Takes the per-endpoint lock, waiting (bounded by the deadline) while another login
    /// holds it; also says whether it had to wait.
    async fn lock(
        &self,
        ep: &Endpoint,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(CacheLock, bool), LoginError> {
        let mut waited = false;
        loop {
            if let Some(lock) = self.cache.try_lock(ep)? {
                return Ok((lock, waited));
            }
            if !waited {
                self.reporter.say(&format!(
                    "Another lakests login for {ep} is in progress; waiting for it to finish."
                ));
                waited = true;
            }
            if Instant::now() + LOCK_POLL > deadline {
                return Err(LoginError::LockTimeout {
                    after: timeout,
                    endpoint: ep.to_string(),
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    async fn plan(&self, opts: &LoginOptions, deadline: Instant) -> Result<Plan, LoginError> {
        match &opts.provider {
            ProviderSource::Given {
                issuer,
                client_id,
                scopes,
            } => Ok(Plan {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                scopes: if scopes.is_empty() {
                    vec!["openid".into()]
                } else {
                    scopes.clone()
                },
                mode: PkceMode::State,
                registered: None,
                max_ttl_seconds: None,
                authorize_at: opts.endpoint.clone(),
            }),
            ProviderSource::Discover | ProviderSource::Authenticator(_) => {
                let (at, missing) = match &opts.provider {
                    ProviderSource::Authenticator(a) => (
                        a,
                        LoginError::NoAuthenticatorDiscovery {
                            authenticator: a.to_string(),
                        },
                    ),
                    _ => (
                        &opts.endpoint,
                        LoginError::NoDiscovery {
                            endpoint: opts.endpoint.to_string(),
                        },
                    ),
                };
                let d: LoginDiscovery = self
                    .client
                    .discovery(at, deadline, opts.timeout)
                    .await?
                    .ok_or(missing)?;
                let mode = match d.pkce.as_str() {
                    "state" => PkceMode::State,
                    "session" => PkceMode::Session,
                    other => {
                        return Err(LoginError::UnsupportedPkceMode(
                            other.chars().take(40).collect(),
                        ));
                    }
                };
                Ok(Plan {
                    issuer: d.issuer,
                    client_id: d.client_id,
                    scopes: d.scopes,
                    mode,
                    registered: Some((d.redirect_uris, d.allow_loopback_any_port)),
                    max_ttl_seconds: Some(d.max_ttl_seconds),
                    authorize_at: at.clone(),
                })
            }
        }
    }

    /// Discovery, callback server, authorization URL, browser, and the one valid response.
    async fn sign_in(
        &self,
        opts: &LoginOptions,
        deadline: Instant,
    ) -> Result<SignedIn, LoginError> {
        let plan = self.plan(opts, deadline).await?;
        if let (Some(asked), Some(max)) = (opts.ttl_seconds, plan.max_ttl_seconds)
            && asked > max
        {
            self.reporter.say(&format!(
                "The server grants tokens for at most {}; asking for {} anyway.",
                human_seconds(max),
                human_seconds(asked)
            ));
        }
        // In state mode the provider's metadata comes first: a provider that cannot be
        // reached is reported before anything opens.
        let authorization_endpoint = match plan.mode {
            PkceMode::State => Some(
                self.client
                    .authorization_endpoint(&plan.issuer, deadline, opts.timeout)
                    .await?,
            ),
            PkceMode::Session => None,
        };
        let listener = CallbackListener::bind(&opts.callback, |uri| match &plan.registered {
            Some((uris, any_port)) => is_registered(uri, uris, *any_port),
            None => true,
        })
        .await
        .map_err(|e| match e {
            BindError::NoneRegistered(uri) => LoginError::RedirectNotRegistered {
                uri: uri.to_string(),
                registered: plan
                    .registered
                    .as_ref()
                    .map(|(u, any)| {
                        let list = u.join(", ");
                        if *any {
                            format!("{list}, on any loopback port")
                        } else {
                            list
                        }
                    })
                    .unwrap_or_default(),
            },
            BindError::Io(cause) => LoginError::CannotListen {
                address: opts.callback.listen_address.to_string(),
                ports: opts
                    .callback
                    .ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                cause,
            },
        })?;
        let redirect_uri = listener.redirect_uri().to_string();
        // Session mode: the secret proving this process started the login (never in a URL).
        let mut redeem_secret: Option<String> = None;
        let (url, state) = match authorization_endpoint {
            Some(mut url) => {
                // lakeFS's documented flow (WIRE.md §6): the verifier travels as `state`.
                let verifier = pkce::new_verifier()?;
                let challenge = pkce::challenge(&verifier);
                url.query_pairs_mut()
                    .append_pair("response_type", "code")
                    .append_pair("client_id", &plan.client_id)
                    .append_pair("redirect_uri", &redirect_uri)
                    .append_pair("scope", &plan.scopes.join(" "))
                    .append_pair("state", verifier.expose())
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
                (url.to_string(), OAuthState::new(verifier.expose()))
            }
            None => {
                let a = self
                    .client
                    .authorize(
                        &plan.authorize_at,
                        &plan.issuer,
                        &redirect_uri,
                        deadline,
                        opts.timeout,
                    )
                    .await?;
                // Opened only if it is the provider's own sign-in page.
                let endpoint = self
                    .client
                    .authorization_endpoint(&plan.issuer, deadline, opts.timeout)
                    .await?;
                check_authorization_url(&a.authorization_url, &endpoint).map_err(|why| {
                    LoginError::UnsafeAuthorizationUrl {
                        endpoint: opts.endpoint.to_string(),
                        why,
                    }
                })?;
                redeem_secret = a.redeem_secret;
                (a.authorization_url, OAuthState::new(a.state))
            }
        };
        let mut callback = listener.start(state.clone(), Some(plan.issuer.clone()));
        let wait = humantime::format_duration(opts.timeout);
        match self.browser.open(&url) {
            Ok(()) => self.reporter.say(&format!(
                "Opened a browser to sign in at {}; waiting up to {wait}.",
                plan.issuer
            )),
            Err(why) => {
                let why = if why == crate::browser::NO_BROWSER {
                    String::new()
                } else {
                    format!(" (no browser could be opened: {why})")
                };
                self.reporter.say(&format!(
                    "Open this URL in a browser on this machine to sign in{why}:\n\n    {url}\n\nWaiting up to {wait}."
                ));
            }
        }
        let arrival = match tokio::time::timeout_at(deadline, callback.arrival()).await {
            Ok(Some(a)) => a,
            Ok(None) | Err(_) => {
                callback.stop().await;
                return Err(LoginError::Timeout {
                    after: opts.timeout,
                });
            }
        };
        let Arrival { outcome, reply } = arrival;
        let failure = match outcome {
            CallbackOutcome::Code(code) => {
                // Session mode: the redirect's state is useless without the secret; trade both
                // for the one-time state that `sts/login` accepts.
                let state = match redeem_secret {
                    None => state,
                    Some(secret) => match self
                        .client
                        .exchange(
                            // The server that started the session keeps it (the
                            // authenticator of a lakeFS endpoint).
                            &plan.authorize_at,
                            state.expose(),
                            &secret,
                            deadline,
                            opts.timeout,
                        )
                        .await
                    {
                        Ok(fresh) => OAuthState::new(fresh.state),
                        Err(e) => {
                            reply.send(Page::Failed(e.to_string()));
                            callback.stop().await;
                            return Err(e);
                        }
                    },
                };
                return Ok(SignedIn {
                    code,
                    state,
                    redirect_uri,
                    reply,
                    callback,
                });
            }
            CallbackOutcome::Refused { error, description } => {
                LoginError::IdpRefused { error, description }
            }
            CallbackOutcome::IssuerMismatch { got } => LoginError::IssuerMismatch {
                expected: plan.issuer.clone(),
                got,
            },
        };
        reply.send(Page::Failed(failure.to_string()));
        callback.stop().await;
        Err(failure)
    }
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A whole number of seconds for people, e.g. `8h` or `1h 30m`.
pub fn human_seconds(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or(0);
    // Minutes are precise enough for lifetimes longer than one.
    let rounded = if secs >= 120 {
        (secs + 30) / 60 * 60
    } else {
        secs
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// `2026-01-01T08:00:00Z (in 8h)` or `... (expired)`.
pub fn describe_expiry(expiration: i64, now: i64) -> String {
    let left = expiration - now;
    if left > 0 {
        format!("{} (in {})", rfc3339(expiration), human_seconds(left))
    } else {
        format!("{} (expired)", rfc3339(expiration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, point 5: only the provider's own sign-in page is ever opened.
    #[test]
    fn only_http_urls_on_the_authorization_endpoints_origin_are_opened() {
        let ep = url::Url::parse("https://idp.example.com:8443/oauth2/authorize").unwrap();
        assert!(
            check_authorization_url(
                "https://idp.example.com:8443/oauth2/authorize?client_id=x&state=y",
                &ep
            )
            .is_ok()
        );
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "smb://evil/share",
            "https://evil.example.com/oauth2/authorize",
            "http://idp.example.com:8443/oauth2/authorize",
            "https://idp.example.com/oauth2/authorize",
            "https://idp.example.com:8443@evil.example.com/",
            "https://user:pw@idp.example.com:8443/oauth2/authorize",
            "not a url",
            "",
        ] {
            assert!(check_authorization_url(bad, &ep).is_err(), "{bad}");
        }
    }

    #[test]
    fn printed_messages_lose_their_control_characters() {
        assert_eq!(
            strip_controls("Opened at http://x\u{1b}]8;;file:///\u{7}\u{1b}[2J\nnext \u{202e}line"),
            "Opened at http://x]8;;file:///[2J\nnext line"
        );
    }

    #[test]
    fn durations_and_expiries_read_well() {
        assert_eq!(human_seconds(28_800), "8h");
        assert_eq!(human_seconds(28_790), "8h");
        assert_eq!(human_seconds(5_400), "1h 30m");
        assert_eq!(human_seconds(45), "45s");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            describe_expiry(1_000_000 + 3600, 1_000_000),
            "1970-01-12T14:46:40Z (in 1h)"
        );
        assert!(describe_expiry(5, 10).ends_with("(expired)"));
    }
}
