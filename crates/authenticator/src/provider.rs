//! One configured identity provider at run time: its discovery document and JWKS, fetched
//! lazily, cached, refreshed after `metadata_ttl`, and fetched by one caller at a time (no
//! stampede on a cold cache, no pile-up of timeouts while the provider is down).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use std::collections::BTreeMap;

use lakests_config::{
    ClaimRequirement, ClientAuth, PkceMode, ProviderConfig, Secret, namespaced_external_id,
};
use lakests_core::{AuthenticatorError, Clock};
use url::Url;

use crate::discovery::{self, Metadata};
use crate::jwks::KeySet;
use crate::metrics::{IdpCall, Metrics};
use lakests_http::outbound::{FetchError, Outbound};

/// What the service lends a provider to fetch with.
pub(crate) struct Env<'a> {
    pub out: &'a Outbound,
    pub clock: &'a dyn Clock,
    pub metrics: &'a Metrics,
    /// `authenticator.metadata_ttl`, seconds.
    pub ttl: i64,
    /// `authenticator.jwks_refetch_interval`, seconds.
    pub refetch_interval: i64,
}

/// A consistent snapshot of what was fetched.
#[derive(Debug)]
pub(crate) struct Cached {
    pub meta: Arc<Metadata>,
    pub keys: Arc<KeySet>,
    /// When the discovery document was fetched (clock seconds).
    fetched_at: i64,
}

#[derive(Default)]
struct FetchState {
    /// The error of the last failed discovery attempt, handed to callers that waited for it.
    last_error: Option<AuthenticatorError>,
    /// When discovery was last attempted.
    last_attempt: Option<i64>,
    /// When an unknown `kid` last caused a JWKS fetch.
    last_kid_refetch: Option<i64>,
}

/// A provider's issuer identifier, exactly as configured: an http(s) URL, compared byte for
/// byte with the `iss` of its documents and tokens (OpenID Connect Core §3.1.3.7 step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuerUrl(String);

impl IssuerUrl {
    fn new(issuer: &str) -> Result<Self, String> {
        match Url::parse(issuer) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(Self(issuer.to_owned())),
            _ => Err(format!("issuer {issuer:?} is not an http(s) URL")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The OAuth client id this authenticator is registered under at a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientId(String);

impl ClientId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A redirect URI registered for a provider's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedirectUrl(String);

impl RedirectUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Everything but the port, for a loopback URI (RFC 8252 §7.3); `None` otherwise.
    pub fn loopback_key(&self) -> Option<String> {
        lakests_core::redirect::loopback_key(&self.0)
    }
}

/// How the client authenticates at the token endpoint, resolved from the configuration.
pub(crate) struct Client {
    pub id: ClientId,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
}

/// Automatic user creation on first login (`provision_users`), with its claims.
pub(crate) struct Provisioning {
    /// The claim a new user's name comes from.
    pub username_claim: String,
    /// The claim memberships are kept in line with, when set.
    pub groups_claim: Option<String>,
}

/// A provider of `authenticator.providers`: its configuration turned into typed values once,
/// at start, and what was fetched from it.
pub(crate) struct Provider {
    /// Its name in the configuration, in logs and metrics.
    pub name: String,
    pub issuer: IssuerUrl,
    pub client: Client,
    /// The scopes, space-separated as the authorization request carries them.
    pub scope: String,
    pub redirect_uris: Vec<RedirectUrl>,
    pub allow_loopback_any_port: bool,
    pub pkce: PkceMode,
    pub clock_skew_seconds: i64,
    pub required_claims: BTreeMap<String, ClaimRequirement>,
    pub userinfo: bool,
    /// The prefix of this provider's external ids (`external_id_namespace`, default its name).
    namespace: String,
    pub provisioning: Option<Provisioning>,
    discovery_url: Url,
    cache: RwLock<Option<Arc<Cached>>>,
    fetch: tokio::sync::Mutex<FetchState>,
    /// Bumped after every discovery attempt, so waiters can tell one happened meanwhile.
    attempts: AtomicU64,
}

impl Provider {
    /// A provider with nothing fetched yet.
    pub fn new(cfg: &ProviderConfig) -> Result<Self, String> {
        let issuer = IssuerUrl::new(&cfg.issuer)?;
        let discovery_url = discovery::discovery_url(issuer.as_str())
            .map_err(|_| format!("issuer {:?} is not a URL", cfg.issuer))?;
        Ok(Self {
            name: cfg.name.clone(),
            issuer,
            client: Client {
                id: ClientId(cfg.client_id.clone()),
                secret: cfg.client_secret.clone(),
                auth: cfg.effective_client_auth(),
            },
            scope: cfg.scopes.join(" "),
            redirect_uris: cfg.redirect_uris.iter().cloned().map(RedirectUrl).collect(),
            allow_loopback_any_port: cfg.allow_loopback_any_port,
            pkce: cfg.pkce,
            clock_skew_seconds: cfg.clock_skew_seconds,
            required_claims: cfg.required_claims.clone(),
            userinfo: cfg.userinfo,
            namespace: cfg.namespace().to_owned(),
            provisioning: cfg.provision_users.then(|| Provisioning {
                username_claim: cfg.username_claim.clone(),
                groups_claim: cfg.groups_claim.clone(),
            }),
            discovery_url,
            cache: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            attempts: AtomicU64::new(0),
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The external id a `sub` of this provider is stored under: namespaced, so that two
    /// providers' subjects never meet.
    pub fn external_id(&self, sub: &str) -> String {
        namespaced_external_id(&self.namespace, sub)
    }

    fn cached(&self) -> Option<Arc<Cached>> {
        self.cache
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn store(&self, c: Arc<Cached>) {
        match self.cache.write() {
            Ok(mut g) => *g = Some(c),
            Err(p) => *p.into_inner() = Some(c),
        }
    }

    /// The metadata and keys, fetched if missing or older than the TTL. A failed refresh
    /// keeps the stale copy (and is retried at most once per refetch interval).
    pub async fn current(&self, env: &Env<'_>) -> Result<Arc<Cached>, AuthenticatorError> {
        let fresh = |c: &Arc<Cached>, now: i64| now.saturating_sub(c.fetched_at) < env.ttl;
        if let Some(c) = self.cached().filter(|c| fresh(c, env.clock.now())) {
            return Ok(c);
        }
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        let mut st = self.fetch.lock().await;
        let now = env.clock.now();
        let cached = self.cached();
        if let Some(c) = cached.as_ref().filter(|c| fresh(c, now)) {
            return Ok(c.clone());
        }
        if self.attempts.load(Ordering::Acquire) != seen_attempts {
            // Someone tried while we waited and did not succeed: share the outcome rather
            // than queue one more timeout behind theirs.
            if let Some(c) = cached {
                return Ok(c);
            }
            if let Some(e) = &st.last_error {
                return Err(e.clone());
            }
        }
        if let (Some(c), Some(at)) = (&cached, st.last_attempt)
            && now.saturating_sub(at) < env.refetch_interval
        {
            return Ok(c.clone());
        }
        st.last_attempt = Some(now);
        let result = self.fetch_all(env).await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok((meta, keys)) => {
                let c = Arc::new(Cached {
                    meta: Arc::new(meta),
                    keys: Arc::new(keys),
                    fetched_at: now,
                });
                self.store(c.clone());
                st.last_error = None;
                Ok(c)
            }
            Err(e) => {
                st.last_error = Some(e.clone());
                match cached {
                    Some(c) => {
                        tracing::warn!(provider = %self.name(), error = %e,
                            "refreshing the provider's metadata failed; using the cached copy");
                        Ok(c)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Fetches the JWKS again because an ID token names a key we do not have. At most one
    /// such fetch per refetch interval; `None` when rate-limited.
    pub async fn refetch_keys(
        &self,
        seen: &Arc<Cached>,
        env: &Env<'_>,
    ) -> Result<Option<Arc<Cached>>, AuthenticatorError> {
        let mut st = self.fetch.lock().await;
        if let Some(c) = self.cached()
            && !Arc::ptr_eq(&c.keys, &seen.keys)
        {
            // Refetched by someone else while we waited.
            return Ok(Some(c));
        }
        let now = env.clock.now();
        if let Some(at) = st.last_kid_refetch
            && now.saturating_sub(at) < env.refetch_interval
        {
            return Ok(None);
        }
        st.last_kid_refetch = Some(now);
        tracing::info!(provider = %self.name(), "ID token signed with an unknown key; fetching the JWKS again");
        let keys = self.fetch_keys(&seen.meta.jwks_uri, env).await?;
        let c = Arc::new(Cached {
            meta: seen.meta.clone(),
            keys: Arc::new(keys),
            fetched_at: seen.fetched_at,
        });
        self.store(c.clone());
        Ok(Some(c))
    }

    async fn fetch_all(&self, env: &Env<'_>) -> Result<(Metadata, KeySet), AuthenticatorError> {
        env.metrics.idp_call(IdpCall::Discovery);
        let req = env
            .out
            .client()
            .get(self.discovery_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let got = env
            .out
            .execute(req)
            .await
            .map_err(|e| fetch_error("discovery endpoint", e))?;
        if got.status != reqwest::StatusCode::OK {
            return Err(AuthenticatorError::Upstream(format!(
                "the discovery endpoint of provider {} answered HTTP {}",
                self.name(),
                got.status.as_u16()
            )));
        }
        let meta = discovery::parse(self.issuer.as_str(), &got.body)
            .map_err(|m| AuthenticatorError::Upstream(format!("provider {}: {m}", self.name())))?;
        if let Some(methods) = &meta.token_auth_methods {
            let ours = match self.client.auth {
                ClientAuth::ClientSecretBasic => "client_secret_basic",
                ClientAuth::ClientSecretPost => "client_secret_post",
                ClientAuth::None => "none",
            };
            if !methods.iter().any(|m| m == ours) {
                tracing::warn!(provider = %self.name(), client_auth = ours,
                    "the provider does not advertise this token endpoint authentication method");
            }
        }
        let keys = self.fetch_keys(&meta.jwks_uri, env).await?;
        Ok((meta, keys))
    }

    async fn fetch_keys(&self, uri: &Url, env: &Env<'_>) -> Result<KeySet, AuthenticatorError> {
        env.metrics.idp_call(IdpCall::Jwks);
        let req = env
            .out
            .client()
            .get(uri.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let got = env
            .out
            .execute(req)
            .await
            .map_err(|e| fetch_error("JWKS endpoint", e))?;
        if got.status != reqwest::StatusCode::OK {
            return Err(AuthenticatorError::Upstream(format!(
                "the JWKS endpoint of provider {} answered HTTP {}",
                self.name(),
                got.status.as_u16()
            )));
        }
        let keys = KeySet::parse(&got.body)
            .map_err(|m| AuthenticatorError::Upstream(format!("provider {}: {m}", self.name())))?;
        if keys.keys.is_empty() {
            tracing::warn!(provider = %self.name(), "the provider's JWKS has no usable signing key");
        }
        Ok(keys)
    }
}

/// Maps a failed outbound call to the error the caller sees: 504 for a timeout, 502 for
/// anything else.
pub(crate) fn fetch_error(what: &str, e: FetchError) -> AuthenticatorError {
    match e {
        FetchError::Timeout => AuthenticatorError::Timeout(format!(
            "the identity provider's {what} did not answer in time"
        )),
        other => AuthenticatorError::Upstream(format!("the identity provider's {what} {other}")),
    }
}
