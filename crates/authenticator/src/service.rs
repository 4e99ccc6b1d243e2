//! The authenticator use cases: `sts/login` (redeem a code for the ID token's claims) and
//! `sts/authorize` (start a session-mode login).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use lakests_api::{
    AuthenticatorStsRequest, AuthorizeExchangeRequest, AuthorizeExchangeResponse, AuthorizeRequest,
    AuthorizeResponse,
};
use lakests_config::{AuthenticatorConfig, ClaimRequirement, PkceMode};
use lakests_core::sts::{MAX_REDIRECT_URI_LEN, MAX_STATE_LEN};
use lakests_core::{
    Authenticator, AuthenticatorError, Claims, Clock, Grant, Reason, Refusal, RequestContext,
    Store, StoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::OidcError;
use crate::id_token::{self, Expectations, IdTokenError};
use crate::metrics::{Metrics, Outcome};
use crate::pkce;
use crate::provider::{Cached, Env, Provider, Provisioning};
use crate::token::{self, Redemption};
use lakests_http::outbound::{Outbound, OutboundOptions};

/// The `Grant` kind of session-mode logins ready for `sts/login`: keyed by a digest of the
/// one-time state [`AuthenticatorService::exchange`] hands out, which never travels in a URL.
pub const SESSION_GRANT_KIND: &str = "login_session";
/// The `Grant` kind of session-mode logins waiting for their redirect: keyed by a digest of
/// the redirect's `state` together with the client's redeem secret, so that knowing the
/// redirect alone finds nothing (and a wrong secret consumes nothing).
pub const PENDING_SESSION_GRANT_KIND: &str = "login_session_pending";
/// How often, at most, `authorize` purges expired grants from the store (seconds).
const PURGE_INTERVAL: i64 = 60;

/// What a session-mode login keeps server-side (no `Debug`: it holds the verifier).
#[derive(Serialize, Deserialize)]
struct Session {
    provider: String,
    redirect_uri: String,
    code_verifier: String,
    nonce: String,
}

/// The OpenID Connect relying party behind lakeFS's authentication API.
pub struct AuthenticatorService {
    providers: Vec<Provider>,
    out: Outbound,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    session_ttl: i64,
    metadata_ttl: i64,
    refetch_interval: i64,
    last_purge: AtomicI64,
}

impl std::fmt::Debug for AuthenticatorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatorService")
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(Provider::name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn secs(d: lakests_config::Duration) -> i64 {
    i64::try_from(d.get().as_secs()).unwrap_or(i64::MAX)
}

impl AuthenticatorService {
    /// Builds the service; performs no network I/O (discovery happens lazily on first use and
    /// is cached), so it can start before its IdP. Errors only for local problems (e.g. an
    /// unreadable `ca_file`).
    pub fn new(
        config: &AuthenticatorConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OidcError> {
        let out = Outbound::new(&OutboundOptions {
            ca_file: config.ca_file.clone(),
            ..OutboundOptions::new(
                config.request_timeout.get(),
                usize::try_from(config.max_response_bytes).unwrap_or(usize::MAX),
            )
        })?;
        let providers = config
            .providers
            .iter()
            .map(|p| {
                Provider::new(p).map_err(|message| OidcError::Config {
                    provider: p.name.clone(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            providers,
            out,
            store,
            clock,
            metrics: Metrics::default(),
            session_ttl: secs(config.session_ttl).max(1),
            metadata_ttl: secs(config.metadata_ttl).max(1),
            refetch_interval: secs(config.jwks_refetch_interval),
            last_purge: AtomicI64::new(i64::MIN),
        })
    }

    fn env(&self) -> Env<'_> {
        Env {
            out: &self.out,
            clock: self.clock.as_ref(),
            metrics: &self.metrics,
            ttl: self.metadata_ttl,
            refetch_interval: self.refetch_interval,
        }
    }

    /// The provider a redirect URI selects: the one listing it exactly; failing that, the one
    /// with `allow_loopback_any_port` listing the same loopback URI with another port. The
    /// configuration guarantees at most one of each.
    fn select(&self, redirect_uri: &str) -> Option<&Provider> {
        if let Some(p) = self
            .providers
            .iter()
            .find(|p| p.redirect_uris.iter().any(|u| u.as_str() == redirect_uri))
        {
            return Some(p);
        }
        let key = lakests_core::redirect::loopback_key(redirect_uri)?;
        self.providers.iter().find(|p| {
            p.allow_loopback_any_port
                && p.redirect_uris
                    .iter()
                    .any(|u| u.loopback_key().as_deref() == Some(key.as_str()))
        })
    }

    fn select_or_reject(&self, redirect_uri: &str) -> Result<&Provider, AuthenticatorError> {
        if redirect_uri.is_empty() {
            return Err(AuthenticatorError::InvalidRequest(
                "redirect_uri must not be empty".into(),
            ));
        }
        if redirect_uri.len() > MAX_REDIRECT_URI_LEN {
            return Err(AuthenticatorError::InvalidRequest(format!(
                "redirect_uri is longer than {MAX_REDIRECT_URI_LEN} bytes"
            )));
        }
        self.select(redirect_uri).ok_or_else(|| {
            AuthenticatorError::InvalidRequest(
                "redirect_uri is not allowed by any configured provider".into(),
            )
        })
    }

    /// The configured provider named `name`.
    pub(crate) fn provider_by_name(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// A provider's discovery document and keys (cached).
    pub(crate) async fn provider_metadata(
        &self,
        provider: &Provider,
    ) -> Result<Arc<Cached>, AuthenticatorError> {
        provider.current(&self.env()).await
    }

    /// The store every role shares.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The injected clock.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// `authenticator.session_ttl`, seconds.
    pub(crate) fn session_ttl(&self) -> i64 {
        self.session_ttl
    }

    /// Purges expired grants now and then (at most once a minute).
    pub(crate) async fn purge_now_and_then(&self) {
        self.maybe_purge(self.clock.now()).await;
    }

    /// The Prometheus text of the counters.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    async fn authorize_inner(
        &self,
        req: &AuthorizeRequest,
    ) -> Result<AuthorizeResponse, AuthenticatorError> {
        let provider = self.select_or_reject(&req.redirect_uri)?;
        tracing::Span::current().record("provider", provider.name());
        if provider.pkce != PkceMode::Session {
            return Err(AuthenticatorError::InvalidRequest(
                "this redirect_uri's provider uses pkce: state; the client builds the authorization URL itself (code_verifier = state)".into(),
            ));
        }
        let cached = provider.current(&self.env()).await?;
        let endpoint = cached.meta.authorization_endpoint.clone().ok_or_else(|| {
            AuthenticatorError::Upstream(format!(
                "provider {}: the discovery document has no authorization_endpoint",
                provider.name()
            ))
        })?;
        let random = || {
            pkce::random_token().map_err(|_| {
                AuthenticatorError::Internal("the system random generator failed".into())
            })
        };
        let (state, verifier, nonce, secret) = (random()?, random()?, random()?, random()?);
        let now = self.clock.now();
        let expires_at = now.saturating_add(self.session_ttl);
        let session = Session {
            provider: provider.name().to_owned(),
            redirect_uri: req.redirect_uri.clone(),
            code_verifier: verifier.clone(),
            nonce: nonce.clone(),
        };
        let payload = serde_json::to_string(&session)
            .map_err(|_| AuthenticatorError::Internal("cannot encode the login session".into()))?;
        self.store
            .put_grant(&Grant {
                kind: PENDING_SESSION_GRANT_KIND.into(),
                key: pending_key(&state, &secret),
                payload,
                expires_at,
            })
            .await
            .map_err(store_error)?;
        self.maybe_purge(now).await;
        let url = authorization_request(
            endpoint,
            provider,
            &req.redirect_uri,
            &state,
            &nonce,
            &verifier,
        );
        Ok(AuthorizeResponse {
            authorization_url: url.into(),
            state,
            expires_at,
            redeem_secret: Some(secret),
        })
    }

    async fn exchange_inner(
        &self,
        req: &AuthorizeExchangeRequest,
    ) -> Result<AuthorizeExchangeResponse, AuthenticatorError> {
        for (field, value) in [("state", &req.state), ("redeem_secret", &req.redeem_secret)] {
            if value.is_empty() || value.len() > MAX_STATE_LEN {
                return Err(AuthenticatorError::InvalidRequest(format!(
                    "{field} must be 1 to {MAX_STATE_LEN} bytes"
                )));
            }
        }
        let now = self.clock.now();
        let pending = self
            .store
            .take_grant(
                PENDING_SESSION_GRANT_KIND,
                &pending_key(&req.state, &req.redeem_secret),
                now,
            )
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                AuthenticatorError::Unauthorized(Refusal::new(
                    Reason::SessionUnknown,
                    "unknown, already exchanged or expired login session, or a wrong redeem secret",
                ))
            })?;
        let fresh = pkce::random_token().map_err(|_| {
            AuthenticatorError::Internal("the system random generator failed".into())
        })?;
        self.store
            .put_grant(&Grant {
                kind: SESSION_GRANT_KIND.into(),
                key: pkce::session_key(&fresh),
                payload: pending.payload,
                expires_at: pending.expires_at,
            })
            .await
            .map_err(store_error)?;
        Ok(AuthorizeExchangeResponse {
            state: fresh,
            expires_at: pending.expires_at,
        })
    }

    /// Removes expired login sessions now and then, so abandoned logins do not pile up.
    async fn maybe_purge(&self, now: i64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PURGE_INTERVAL
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.store.purge_expired_grants(now).await {
            tracing::warn!(error = %e, "purging expired login sessions failed");
        }
    }

    async fn login_inner(
        &self,
        req: &AuthenticatorStsRequest,
    ) -> Result<Claims, AuthenticatorError> {
        let bad = |m: String| Err(AuthenticatorError::InvalidRequest(m));
        lakests_core::sts::check_login_fields(&req.code, &req.state, &req.redirect_uri)
            .map_err(AuthenticatorError::InvalidRequest)?;
        let provider = self.select_or_reject(&req.redirect_uri)?;
        tracing::Span::current().record("provider", provider.name());

        // Where the verifier comes from, and which nonce the ID token must carry.
        let (verifier, nonce) = match provider.pkce {
            PkceMode::State => {
                if !pkce::is_valid_verifier(&req.state) {
                    return bad("state is not a valid PKCE code verifier (43 to 128 characters of A-Z a-z 0-9 - . _ ~); this provider uses pkce: state".into());
                }
                (req.state.clone(), None)
            }
            PkceMode::Session => {
                let session = self.take_session(&req.state).await?;
                if session.provider != provider.name() || session.redirect_uri != req.redirect_uri {
                    return Err(AuthenticatorError::Unauthorized(Refusal::new(
                        Reason::SessionUnknown,
                        "redirect_uri is not the one the login session was started with",
                    )));
                }
                (session.code_verifier, Some(session.nonce))
            }
        };

        self.redeem_and_map(
            provider,
            &req.code,
            &req.redirect_uri,
            &verifier,
            nonce.as_deref(),
        )
        .await
    }

    /// What every login does once it knows its provider, verifier and nonce: redeem the code,
    /// validate the ID token, merge userinfo, apply the provider's claim rules, namespace the
    /// `sub` and (with `provision_users`) create or sync the user. Shared by `sts/login` and
    /// the web-UI login, so both refuse and map exactly alike.
    pub(crate) async fn redeem_and_map(
        &self,
        provider: &Provider,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: Option<&str>,
    ) -> Result<Claims, AuthenticatorError> {
        let env = self.env();
        let cached = provider.current(&env).await?;
        let tokens = token::redeem(
            &self.out,
            &self.metrics,
            provider,
            &cached.meta.token_endpoint,
            &Redemption {
                code,
                redirect_uri,
                code_verifier: verifier,
            },
        )
        .await?;

        let mut claims = self
            .validate_id_token(provider, cached.clone(), &tokens.id_token, nonce)
            .await?;

        if provider.userinfo {
            self.merge_userinfo(provider, &cached, tokens.access_token.as_ref(), &mut claims)
                .await?;
        }

        let mut flat = lakests_core::claims::flatten(&claims);
        check_required(&provider.required_claims, &flat)?;
        // The sub lakeFS looks users up by: namespaced per provider (see ProviderConfig).
        let sub = match flat.get("sub") {
            Some(s) if !s.is_empty() => s.clone(),
            _ => {
                return Err(AuthenticatorError::Unauthorized(Refusal::new(
                    Reason::SubjectMissing,
                    "the ID token has no sub claim",
                )));
            }
        };
        let external_id = provider.external_id(&sub);
        lakests_core::user::check_name("external id", &external_id).map_err(|e| {
            AuthenticatorError::Unauthorized(Refusal::new(
                Reason::IdTokenInvalid,
                format!("the identity cannot be used: {e}"),
            ))
        })?;
        if let Some(rules) = &provider.provisioning {
            self.provision(rules, &external_id, &flat).await?;
        }
        flat.insert("sub".into(), external_id);
        Ok(flat)
    }

    /// Creates the user of a first login, or brings a known user's e-mail, friendly name and
    /// (with `groups_claim`) memberships in line with the claims.
    async fn provision(
        &self,
        rules: &Provisioning,
        external_id: &str,
        claims: &Claims,
    ) -> Result<(), AuthenticatorError> {
        let groups = match &rules.groups_claim {
            None => None,
            Some(claim) => {
                let mut groups = claims
                    .get(claim)
                    .map(|v| lakests_core::claims::split_groups(v))
                    .unwrap_or_default();
                groups.retain(|g| {
                    let ok = lakests_core::user::check_name("group", g).is_ok();
                    if !ok {
                        tracing::warn!(
                            "a group in the groups claim is not a valid group name; skipped"
                        );
                    }
                    ok
                });
                groups.sort();
                groups.dedup();
                Some(groups)
            }
        };
        if let Some(user) = self
            .store
            .find_user_by_external_id(external_id)
            .await
            .map_err(store_error)?
        {
            return self.sync(&user, claims, groups).await;
        }
        if let Some(removed) = self
            .store
            .removed_identity(external_id)
            .await
            .map_err(store_error)?
        {
            tracing::info!(
                user = %removed.username,
                "refused to provision a removed user again"
            );
            return Err(AuthenticatorError::Unauthorized(Refusal::new(
                Reason::IdentityRemoved,
                "the user of this identity was removed; an administrator can readmit it",
            )));
        }
        let username = claims
            .get(&rules.username_claim)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| {
                AuthenticatorError::Unauthorized(Refusal::new(
                    Reason::CannotProvision,
                    format!(
                        "cannot create a user: the ID token has no {:?} claim",
                        rules.username_claim
                    ),
                ))
            })?;
        lakests_core::user::check_name("username", &username).map_err(|e| {
            AuthenticatorError::Unauthorized(Refusal::new(
                Reason::CannotProvision,
                format!("cannot create a user: {e}"),
            ))
        })?;
        let user = lakests_core::directory::DirectoryUser {
            user: lakests_core::UserRecord {
                username,
                external_id: Some(external_id.to_owned()),
                email: claims.get("email").cloned(),
                friendly_name: claims.get("name").cloned(),
                groups: groups.clone().unwrap_or_default(),
                created_at: self.clock.now(),
            },
            source: Some("oidc".into()),
        };
        match self.store.create_directory_user(&user).await {
            Ok(()) => {
                tracing::info!(user = %user.user.username, "provisioned a user at its first login");
                Ok(())
            }
            // A concurrent first login of the same identity, or a username taken by another.
            Err(StoreError::AlreadyExists(_)) => {
                match self
                    .store
                    .find_user_by_external_id(external_id)
                    .await
                    .map_err(store_error)?
                {
                    Some(existing) => self.sync(&existing, claims, groups).await,
                    None => Err(AuthenticatorError::Conflict(
                        "cannot create a user: the username is taken by another identity".into(),
                    )),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn sync(
        &self,
        user: &lakests_core::UserRecord,
        claims: &Claims,
        groups: Option<Vec<String>>,
    ) -> Result<(), AuthenticatorError> {
        let email = claims.get("email").or(user.email.as_ref());
        let name = claims.get("name").or(user.friendly_name.as_ref());
        if email != user.email.as_ref() || name != user.friendly_name.as_ref() {
            self.store
                .update_user_profile(
                    &user.username,
                    email.map(String::as_str),
                    name.map(String::as_str),
                )
                .await
                .map_err(store_error)?;
        }
        if let Some(groups) = groups
            && groups != user.groups
        {
            self.store
                .set_user_groups(&user.username, &groups)
                .await
                .map_err(store_error)?;
            tracing::info!(user = %user.username, "group memberships synced from the groups claim");
        }
        Ok(())
    }

    async fn take_session(&self, state: &str) -> Result<Session, AuthenticatorError> {
        let grant = self
            .store
            .take_grant(SESSION_GRANT_KIND, &pkce::session_key(state), self.clock.now())
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                AuthenticatorError::Unauthorized(Refusal::new(
                    Reason::SessionUnknown,
                    "unknown, already used or expired login session (start again with sts/authorize)",
                ))
            })?;
        serde_json::from_str(&grant.payload).map_err(|_| {
            AuthenticatorError::Internal("a stored login session is unreadable".into())
        })
    }

    /// Parses, verifies (refetching the JWKS once for an unknown key) and validates the ID
    /// token; returns its claims.
    async fn validate_id_token(
        &self,
        provider: &Provider,
        cached: Arc<Cached>,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, AuthenticatorError> {
        let parsed = id_token::parse(id_token)?;
        match parsed.verify_signature(&cached.keys, &cached.meta.algs) {
            Ok(()) => {}
            Err(IdTokenError::UnknownKey) => {
                let newer = provider
                    .refetch_keys(&cached, &self.env())
                    .await?
                    .ok_or(IdTokenError::UnknownKey)?;
                parsed.verify_signature(&newer.keys, &newer.meta.algs)?;
            }
            Err(e) => return Err(e.into()),
        }
        id_token::validate_claims(
            &parsed.claims,
            &Expectations {
                issuer: provider.issuer.as_str(),
                client_id: provider.client.id.as_str(),
                now: self.clock.now(),
                skew: provider.clock_skew_seconds,
                nonce,
            },
        )?;
        Ok(parsed.claims)
    }

    async fn merge_userinfo(
        &self,
        provider: &Provider,
        cached: &Cached,
        access_token: Option<&secrecy::SecretString>,
        claims: &mut Map<String, Value>,
    ) -> Result<(), AuthenticatorError> {
        let endpoint = cached.meta.userinfo_endpoint.as_ref().ok_or_else(|| {
            tracing::error!(provider = %provider.name(), "userinfo is enabled but the provider has no userinfo_endpoint");
            AuthenticatorError::Internal(format!(
                "provider {}: userinfo is enabled but the provider has no userinfo_endpoint",
                provider.name()
            ))
        })?;
        let token = access_token.ok_or_else(|| {
            AuthenticatorError::Upstream(format!(
                "provider {}: the token response has no access_token for userinfo",
                provider.name()
            ))
        })?;
        let info =
            token::userinfo(&self.out, &self.metrics, provider.name(), endpoint, token).await?;
        // OpenID Connect Core §5.3.2: the userinfo sub must be the ID token's.
        if info.get("sub") != claims.get("sub") {
            return Err(AuthenticatorError::Unauthorized(Refusal::new(
                Reason::IdTokenInvalid,
                "the userinfo sub is not the ID token's sub",
            )));
        }
        for (k, v) in info {
            // The ID token's claims are signed; userinfo only adds what it lacks.
            claims.entry(k).or_insert(v);
        }
        Ok(())
    }
}

/// An ID token that fails validation refuses the login (401, `id_token_invalid`) with the
/// rule it broke.
impl From<IdTokenError> for AuthenticatorError {
    fn from(e: IdTokenError) -> Self {
        tracing::info!(reason = %e, "ID token refused");
        AuthenticatorError::Unauthorized(Refusal::new(Reason::IdTokenInvalid, e.to_string()))
    }
}

/// Per-provider claim rules, on the flattened claims: exact value, or one of several.
fn check_required(
    required: &BTreeMap<String, ClaimRequirement>,
    claims: &Claims,
) -> Result<(), AuthenticatorError> {
    for (name, rule) in required {
        let value = claims.get(name);
        let ok = match rule {
            ClaimRequirement::Exact(want) => value == Some(want),
            ClaimRequirement::OneOf(options) => value.is_some_and(|v| options.contains(v)),
        };
        if !ok {
            tracing::info!(claim = %name, "a required claim is missing or has another value");
            return Err(AuthenticatorError::Unauthorized(Refusal::new(
                Reason::ClaimRule,
                format!("the identity does not satisfy the required claim {name:?}"),
            )));
        }
    }
    Ok(())
}

/// The key of a pending session: a digest of the redirect's state and the redeem secret.
fn pending_key(state: &str, secret: &str) -> String {
    pkce::session_key(&format!("{state}\u{0}{secret}"))
}

fn store_error(e: StoreError) -> AuthenticatorError {
    tracing::error!(error = %e, "the store failed");
    AuthenticatorError::Internal("the store failed".into())
}

fn log_outcome<T>(what: &str, r: &Result<T, AuthenticatorError>) {
    let outcome = Outcome::of(r).as_str();
    match r {
        Ok(_) => tracing::info!(outcome, "{what} succeeded"),
        // Keyed on the stable reason code, as the audit record and the CLI are.
        Err(AuthenticatorError::Unauthorized(refusal)) => {
            tracing::info!(outcome, reason = refusal.reason.as_str(), message = %refusal, "{what} refused")
        }
        Err(
            e @ (AuthenticatorError::InvalidRequest(_)
            | AuthenticatorError::Conflict(_)
            | AuthenticatorError::NotOffered(_)),
        ) => {
            tracing::info!(outcome, message = %e, "{what} refused")
        }
        Err(e) => tracing::warn!(outcome, error = %e, "{what} failed"),
    }
}

#[async_trait]
impl Authenticator for AuthenticatorService {
    async fn sts_login(
        &self,
        request: &AuthenticatorStsRequest,
        ctx: &RequestContext,
    ) -> Result<Claims, AuthenticatorError> {
        let span = tracing::info_span!("sts_login", request_id = %ctx.request_id, provider = tracing::field::Empty);
        let result = self.login_inner(request).instrument(span.clone()).await;
        self.metrics.login(Outcome::of(&result));
        span.in_scope(|| log_outcome("login", &result));
        result
    }

    /// Session mode: start a login (POST /api/v1/sts/authorize).
    async fn authorize(
        &self,
        req: &AuthorizeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeResponse, AuthenticatorError> {
        let span = tracing::info_span!("authorize", request_id = %ctx.request_id, provider = tracing::field::Empty);
        let result = self.authorize_inner(req).instrument(span.clone()).await;
        self.metrics.authorize(Outcome::of(&result));
        span.in_scope(|| log_outcome("authorize", &result));
        result
    }

    /// Session mode, after the redirect (POST /api/v1/sts/authorize/exchange): the client
    /// proves the redeem secret it got from `authorize` (never in a URL) with the redirect's
    /// state, and gets a fresh one-time state for `sts/login`. Single use, atomic across
    /// replicas; a wrong secret consumes nothing.
    async fn exchange(
        &self,
        req: &AuthorizeExchangeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeExchangeResponse, AuthenticatorError> {
        let span = tracing::info_span!("authorize_exchange", request_id = %ctx.request_id);
        let result = self.exchange_inner(req).instrument(span.clone()).await;
        span.in_scope(|| log_outcome("authorize_exchange", &result));
        result
    }
}

/// The authorization request of a login that keeps its verifier and nonce server-side
/// (session-mode `sts/authorize` and the web-UI login): authorization code flow, the
/// provider's client and scopes, `state`, `nonce` and the PKCE S256 challenge of `verifier`.
pub(crate) fn authorization_request(
    mut endpoint: url::Url,
    provider: &Provider,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> url::Url {
    endpoint
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", provider.client.id.as_str())
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &provider.scope)
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce::s256_challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    endpoint
}
