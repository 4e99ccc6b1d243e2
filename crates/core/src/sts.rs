//! The STS login use case, in lakeFS's order (WIRE.md §2): authenticate the code, check the
//! required claims, require `sub`, resolve (or provision) the user, mint the token. Every
//! attempt leaves one audit record.

use std::collections::BTreeMap;
use std::sync::Arc;

use lakests_api::{
    AuthenticationToken, AuthenticatorStsRequest, AuthorizeExchangeRequest,
    AuthorizeExchangeResponse, AuthorizeRequest, AuthorizeResponse, StsAuthRequest,
};

use crate::authenticator::{Authenticator, AuthenticatorError, RequestContext};
use crate::cache::{CacheLimits, Memo};
use crate::claims::{self, Claims};
use crate::clock::Clock;
use crate::reason::{Reason, Refusal};
use crate::store::{LoginAudit, LoginOutcome, Store, StoreError, UserRecord};
use crate::token::{TokenError, TokenIssuer};
use crate::user::check_name;

/// Largest accepted `code`, in bytes.
pub const MAX_CODE_LEN: usize = 4096;
/// Largest accepted `state`, in bytes.
pub const MAX_STATE_LEN: usize = 4096;
/// Largest accepted `redirect_uri`, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

/// How unknown identities become users (lakeFS's OIDC provisioning rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    /// Claim whose value becomes the username (default `sub`).
    pub username_claim: String,
    /// Claim with comma-separated initial groups.
    pub initial_groups_claim: Option<String>,
    /// Groups when the claim is absent or not configured.
    pub default_initial_groups: Vec<String>,
}

/// Policy of the STS server, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    /// TTL when the request names none.
    pub default_ttl_seconds: i64,
    /// Largest TTL granted; larger requests are clamped.
    pub max_ttl_seconds: i64,
    /// lakeFS's `validate_id_token_claims`: claim -> required exact value.
    pub required_claims: BTreeMap<String, String>,
    /// `Some` when unknown identities are provisioned automatically.
    pub provisioning: Option<Provisioning>,
    /// Claim with the friendly name (lakeFS's `friendly_name_claim_name`).
    pub friendly_name_claim: Option<String>,
    /// Update a known user's friendly name from the claim on every login.
    pub persist_friendly_name: bool,
    /// The claim whose value is the external user id (lakeFS's
    /// `external_user_id_claim_name`, `sub` by default).
    pub external_id_claim: String,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct StsGrant {
    /// What the client receives.
    pub token: AuthenticationToken,
    /// The TTL actually granted, after clamping.
    pub granted_ttl_seconds: i64,
    /// The user the token is for.
    pub username: String,
}

/// Why a login (or a session-mode step of one) failed: the one error of the login path. Every
/// failure of the authenticator becomes one of these through the one `From` conversion, and
/// [`StsError::status`], [`StsError::client_message`] and [`StsError::reason`] are the one
/// mapping to an answer. 4xx messages are safe for the client; 5xx answers are generic and
/// the cause goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// The request is malformed (400, reason `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// The login is refused (401), with its stable reason.
    #[error("{0}")]
    Unauthorized(Refusal),
    /// The authenticator answered 409.
    #[error("{0}")]
    Conflict(String),
    /// What was asked is not offered here, e.g. session-mode login with an authenticator
    /// that has none (404).
    #[error("{0}")]
    NotOffered(String),
    /// `auth.sts.max_concurrent_logins` are in flight (429).
    #[error("too many logins in progress; try again in a moment")]
    Busy,
    /// The authenticator or its identity provider failed (502, 504 or 500).
    #[error("authenticator: {0}")]
    Authenticator(AuthenticatorError),
    /// Storage failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Token signing failed (500).
    #[error("token: {0}")]
    Token(TokenError),
}

impl From<AuthenticatorError> for StsError {
    fn from(e: AuthenticatorError) -> Self {
        match e {
            AuthenticatorError::InvalidRequest(m) => StsError::InvalidRequest(m),
            AuthenticatorError::Unauthorized(r) => StsError::Unauthorized(r),
            AuthenticatorError::Conflict(m) => StsError::Conflict(m),
            AuthenticatorError::NotOffered(m) => StsError::NotOffered(m),
            other @ (AuthenticatorError::Timeout(_)
            | AuthenticatorError::Upstream(_)
            | AuthenticatorError::Internal(_)) => StsError::Authenticator(other),
        }
    }
}

impl StsError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            StsError::InvalidRequest(_) => 400,
            StsError::Unauthorized(_) => 401,
            StsError::NotOffered(_) => 404,
            StsError::Conflict(_) => 409,
            StsError::Busy => 429,
            StsError::Authenticator(AuthenticatorError::Timeout(_)) => 504,
            StsError::Authenticator(AuthenticatorError::Internal(_)) => 500,
            StsError::Authenticator(_) => 502,
            StsError::Store(_) | StsError::Token(_) => 500,
        }
    }

    /// The message of the `{"message"}` body: the error's own for 4xx, a generic one for 5xx
    /// (which never carries a cause: those go to the log).
    pub fn client_message(&self) -> String {
        match self {
            StsError::Authenticator(AuthenticatorError::Timeout(_)) => {
                "the authenticator or its identity provider did not answer in time".into()
            }
            StsError::Authenticator(AuthenticatorError::Internal(_))
            | StsError::Store(_)
            | StsError::Token(_) => "internal error".into(),
            StsError::Authenticator(_) => {
                "the authenticator or its identity provider is unavailable".into()
            }
            other => other.to_string(),
        }
    }

    /// The stable reason code, for refused and malformed logins: what the audit record, the
    /// log line and the CLI's message are keyed on.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            StsError::InvalidRequest(_) => Some(Reason::InvalidRequest),
            StsError::Unauthorized(r) => Some(r.reason),
            _ => None,
        }
    }
}

/// Why a bearer token was refused on an API call.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// Bad, expired or foreign token, or a removed user: 401.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Storage failed: 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The STS server's use cases.
pub struct StsService {
    store: Arc<dyn Store>,
    authenticator: Arc<dyn Authenticator>,
    tokens: TokenIssuer,
    clock: Arc<dyn Clock>,
    policy: StsPolicy,
    /// Verified bearer tokens (by the SHA-256 of their bytes) with their user, stamped with the
    /// store's generation: see [`StsService::with_user_cache`].
    bearer_cache: Option<Memo<[u8; 32], (i64, UserRecord)>>,
    malformed_total: std::sync::atomic::AtomicU64,
}

impl StsService {
    /// Wires the use case.
    pub fn new(
        store: Arc<dyn Store>,
        authenticator: Arc<dyn Authenticator>,
        tokens: TokenIssuer,
        clock: Arc<dyn Clock>,
        policy: StsPolicy,
    ) -> Self {
        Self {
            store,
            authenticator,
            tokens,
            clock,
            policy,
            bearer_cache: None,
            malformed_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Caches verified bearer tokens with their users for at most `ttl_seconds` (lakeFS's
    /// `auth.cache`), so that a repeated token costs neither its signature check nor a store
    /// read. An entry is served only while the store's generation is the one it was read under
    /// ([`Store::generation`]): a removal, re-creation or revocation made anywhere the store can
    /// see refuses the token on the next request. Over a store without a generation nothing is
    /// cached.
    pub fn with_user_cache(self, ttl_seconds: i64, capacity: usize) -> Self {
        self.with_user_cache_jitter(ttl_seconds, 0, capacity)
    }

    /// [`StsService::with_user_cache`], each entry living up to `jitter_seconds` longer at
    /// random (lakeFS's `auth.cache.jitter`).
    pub fn with_user_cache_jitter(
        mut self,
        ttl_seconds: i64,
        jitter_seconds: i64,
        capacity: usize,
    ) -> Self {
        self.bearer_cache = Some(Memo::new(CacheLimits {
            ttl_seconds,
            jitter_seconds,
            capacity,
        }));
        self
    }

    /// The store behind the service.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Bearer tokens answered from the cache since start.
    pub fn bearer_cache_hits(&self) -> u64 {
        self.bearer_cache.as_ref().map_or(0, Memo::hits)
    }

    /// Login requests refused as malformed since start (counted, not audited one by one).
    pub fn malformed_requests(&self) -> u64 {
        self.malformed_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `POST /api/v1/sts/authorize`: starts a session-mode login at the authenticator
    /// (in-process or remote); [`StsError::NotOffered`] when it has no session mode.
    pub async fn authorize(
        &self,
        req: &AuthorizeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeResponse, StsError> {
        let result = self.authenticator.authorize(req, ctx).await;
        result.map_err(|e| {
            let e = StsError::from(e);
            log_failure("sts authorize", &e);
            e
        })
    }

    /// `POST /api/v1/sts/authorize/exchange`: the second step of a session-mode login, at the
    /// authenticator.
    pub async fn exchange(
        &self,
        req: &AuthorizeExchangeRequest,
        ctx: &RequestContext,
    ) -> Result<AuthorizeExchangeResponse, StsError> {
        let result = self.authenticator.exchange(req, ctx).await;
        result.map_err(|e| {
            let e = StsError::from(e);
            log_failure("sts authorize exchange", &e);
            e
        })
    }

    /// `POST /api/v1/sts/login`. Records one audit entry per attempt, except for malformed
    /// requests (400): those are only counted ([`Self::malformed_requests`]), so that nobody
    /// can grow the audit log without presenting at least a plausible code.
    pub async fn login(
        &self,
        req: &StsAuthRequest,
        ctx: &RequestContext,
    ) -> Result<StsGrant, StsError> {
        let mut audit = LoginAudit {
            at: self.clock.now(),
            outcome: LoginOutcome::Failure,
            reason: String::new(),
            external_id: None,
            username: None,
            client_addr: ctx.client_addr.clone(),
            request_id: ctx.request_id.clone(),
        };
        let result = match self.login_inner(req, ctx, &mut audit).await {
            // A user taken from memory unchecked (PostgreSQL: no read of the generation before
            // the lookup) is confirmed by the audit write itself, which writes the success
            // record only if nothing changed since the user was cached. If something did, the
            // user is resolved again with a checked lookup and the minted token is dropped
            // unseen; that outcome is audited below like any other.
            Ok(Minted {
                grant,
                unchecked: Some(u),
            }) => {
                audit.outcome = LoginOutcome::Success;
                audit.reason = success_reason(&grant);
                match self
                    .store
                    .append_audit_if_unchanged(&audit, u.generation)
                    .await
                {
                    Ok(true) => {
                        log_success(&grant);
                        return Ok(grant);
                    }
                    Ok(false) => {
                        tracing::debug!("the cached user may have changed; resolving it again");
                        audit.outcome = LoginOutcome::Failure;
                        audit.reason = String::new();
                        audit.username = None;
                        self.resolve_and_mint(&u.sub, &u.claims, u.ttl, &mut audit, true)
                            .await
                            .map(|(grant, _)| grant)
                    }
                    Err(e) => {
                        // A login must not succeed without its audit record.
                        tracing::error!(error = %e, "could not write the login audit record");
                        return Err(StsError::Store(e));
                    }
                }
            }
            other => other.map(|m| m.grant),
        };
        match &result {
            Ok(grant) => {
                audit.outcome = LoginOutcome::Success;
                audit.reason = success_reason(grant);
            }
            Err(StsError::InvalidRequest(_)) => {
                self.malformed_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return result;
            }
            Err(e) => {
                log_failure("sts login", e);
                audit.reason = audit_reason(e);
            }
        }
        if let Err(e) = self.store.append_audit(&audit).await {
            // A login must not succeed without its audit record.
            tracing::error!(error = %e, "could not write the login audit record");
            if result.is_ok() {
                return Err(StsError::Store(e));
            }
        }
        if let Ok(grant) = &result {
            log_success(grant);
        }
        result
    }

    async fn login_inner(
        &self,
        req: &StsAuthRequest,
        ctx: &RequestContext,
        audit: &mut LoginAudit,
    ) -> Result<Minted, StsError> {
        check_request(req)?;
        let ttl = self.granted_ttl(req.ttl_seconds)?;

        // 1. Authenticate the code.
        let claims = self
            .authenticator
            .sts_login(&AuthenticatorStsRequest::from(req), ctx)
            .await?;
        // Stored escaped: the audit log is read on terminals.
        audit.external_id = claims
            .get(&self.policy.external_id_claim)
            .map(|sub| crate::user::printable(sub).into_owned());

        // 2. validate_id_token_claims.
        if let Some(name) = claims::first_mismatch(&claims, &self.policy.required_claims) {
            return Err(StsError::Unauthorized(Refusal::new(
                Reason::ClaimRule,
                format!("claim {name:?} is missing or does not have the required value"),
            )));
        }

        // 3. `sub` (or `external_user_id_claim_name`) is the external id.
        let sub = match claims.get(&self.policy.external_id_claim) {
            Some(s) if !s.is_empty() => s.clone(),
            _ => {
                return Err(StsError::Unauthorized(Refusal::new(
                    Reason::SubjectMissing,
                    format!(
                        "the ID token has no {} claim",
                        self.policy.external_id_claim
                    ),
                )));
            }
        };
        // The remote authenticator may not be ours: refuse what ours refuses.
        if sub.chars().any(char::is_control) || sub.len() > crate::user::MAX_NAME_LEN {
            return Err(StsError::Unauthorized(Refusal::new(
                Reason::IdTokenInvalid,
                "the sub claim is too long or contains control characters",
            )));
        }

        // 4. Resolve the user; 5. mint.
        let (grant, generation) = self
            .resolve_and_mint(&sub, &claims, ttl, audit, false)
            .await?;
        Ok(Minted {
            grant,
            unchecked: generation.map(|generation| Unchecked {
                generation,
                sub,
                claims,
                ttl,
            }),
        })
    }

    /// Steps 4 and 5 of a login: the user mapped to `sub` (provisioned when allowed), then the
    /// token. Unless `checked`, the user may come from memory unchecked (see
    /// [`Store::find_user_for_login`]): the generation it was cached under comes back with the
    /// grant then.
    async fn resolve_and_mint(
        &self,
        sub: &str,
        claims: &Claims,
        ttl: i64,
        audit: &mut LoginAudit,
        checked: bool,
    ) -> Result<(StsGrant, Option<u64>), StsError> {
        let (found, generation) = if checked {
            (self.store.find_user_by_external_id(sub).await?, None)
        } else {
            self.store.find_user_for_login(sub).await?
        };
        let user = match found {
            Some(user) => {
                self.refresh_friendly_name(&user, claims).await?;
                user
            }
            None => self.provision(sub, claims).await?,
        };
        audit.username = Some(user.username.clone());

        let now = self.clock.now();
        let (token, minted) = self
            .tokens
            .mint(&user.username, now, ttl)
            .map_err(StsError::Token)?;
        let grant = StsGrant {
            token: AuthenticationToken {
                token,
                token_expiration: minted.exp,
            },
            granted_ttl_seconds: ttl,
            username: user.username,
        };
        Ok((grant, generation))
    }

    /// The TTL to grant: the default when none is asked, clamped to the maximum, 400 when
    /// not positive.
    pub fn granted_ttl(&self, requested: Option<i64>) -> Result<i64, StsError> {
        match requested {
            None => Ok(self
                .policy
                .default_ttl_seconds
                .min(self.policy.max_ttl_seconds)),
            Some(t) if t <= 0 => Err(StsError::InvalidRequest(
                "ttl_seconds must be a positive number of seconds".into(),
            )),
            Some(t) => Ok(t.min(self.policy.max_ttl_seconds)),
        }
    }

    async fn refresh_friendly_name(
        &self,
        user: &UserRecord,
        claims: &Claims,
    ) -> Result<(), StsError> {
        if !self.policy.persist_friendly_name {
            return Ok(());
        }
        let Some(claim) = &self.policy.friendly_name_claim else {
            return Ok(());
        };
        if let Some(name) = claims.get(claim)
            && user.friendly_name.as_deref() != Some(name.as_str())
        {
            self.store
                .set_friendly_name(&user.username, Some(name))
                .await?;
        }
        Ok(())
    }

    async fn provision(&self, sub: &str, claims: &Claims) -> Result<UserRecord, StsError> {
        let Some(p) = &self.policy.provisioning else {
            return Err(StsError::Unauthorized(Refusal::new(
                Reason::NoUserMapped,
                "no user is mapped to this identity",
            )));
        };
        if let Some(removed) = self.store.removed_identity(sub).await? {
            tracing::info!(
                user = %removed.username,
                "refused to provision a removed user again"
            );
            return Err(StsError::Unauthorized(Refusal::new(
                Reason::IdentityRemoved,
                "the user of this identity was removed; an administrator can readmit it",
            )));
        }
        let username = claims.get(&p.username_claim).cloned().ok_or_else(|| {
            StsError::Unauthorized(Refusal::new(
                Reason::CannotProvision,
                format!(
                    "cannot create a user: the ID token has no {:?} claim",
                    p.username_claim
                ),
            ))
        })?;
        check_name("username", &username).map_err(|e| {
            StsError::Unauthorized(Refusal::new(
                Reason::CannotProvision,
                format!("cannot create a user: {e}"),
            ))
        })?;
        let mut groups = match p.initial_groups_claim.as_ref().and_then(|c| claims.get(c)) {
            Some(v) => claims::split_groups(v),
            None => p.default_initial_groups.clone(),
        };
        groups.sort();
        groups.dedup();
        let user = UserRecord {
            username,
            external_id: Some(sub.to_owned()),
            email: claims.get("email").cloned(),
            friendly_name: self
                .policy
                .friendly_name_claim
                .as_ref()
                .and_then(|c| claims.get(c))
                .cloned(),
            groups,
            created_at: self.clock.now(),
        };
        match self.store.create_user(&user).await {
            Ok(()) => {
                tracing::info!(user = %user.username, "provisioned a user on first login");
                Ok(user)
            }
            // A concurrent first login of the same identity created it: use that one.
            Err(StoreError::AlreadyExists(_)) => {
                match self.store.find_user_by_external_id(sub).await? {
                    Some(existing) => Ok(existing),
                    None => Err(StsError::Unauthorized(Refusal::new(
                        Reason::CannotProvision,
                        "cannot create a user: the username is taken by another identity",
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves the user of a bearer token (`GET /api/v1/user` and every authenticated call).
    pub async fn authenticate_bearer(&self, token: &str) -> Result<UserRecord, BearerError> {
        let now = self.clock.now();
        // The generation is read before anything else: what is read after it is stamped with
        // it, so a write that lands meanwhile makes the entry stale at once.
        let generation = match &self.bearer_cache {
            Some(_) => self.store.generation().await,
            None => None,
        };
        let cached = match (&self.bearer_cache, generation) {
            (Some(cache), Some(generation)) => {
                let key = token_digest(token);
                if let Some((exp, user)) = cache.get(&key, generation, now)
                    && exp > now
                {
                    return Ok(user);
                }
                Some((cache, key, generation))
            }
            _ => None,
        };
        let claims = self
            .tokens
            .verify(token, now)
            .map_err(|e| BearerError::Unauthorized(token_error_message(&e)))?;
        let user = self
            .store
            .get_user(&claims.sub)
            .await?
            .ok_or(BearerError::Unauthorized("the token's user does not exist"))?;
        self.check_token_of(&user, &claims).await?;
        if let Some((cache, key, generation)) = cached {
            cache.put(
                key,
                (claims.exp, user.clone()),
                generation,
                now,
                Some(claims.exp),
            );
        }
        Ok(user)
    }

    /// Refuses a token issued before its user was created (a removed and re-created user's
    /// old tokens), and a revoked token. Cached only under the store's generation, which every
    /// revocation moves: a revocation takes effect at once, on every replica.
    async fn check_token_of(
        &self,
        user: &UserRecord,
        claims: &crate::token::TokenClaims,
    ) -> Result<(), BearerError> {
        if claims.iat < user.created_at {
            return Err(BearerError::Unauthorized(
                "the token was issued before its user was created",
            ));
        }
        if self
            .store
            .is_token_revoked(&user.username, &claims.jti, claims.iat)
            .await?
        {
            return Err(BearerError::Unauthorized("the token has been revoked"));
        }
        Ok(())
    }
}

/// The key of a token in the bearer cache: its SHA-256, so that a lookup compares digests,
/// never token bytes.
fn token_digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    out
}

fn token_error_message(e: &TokenError) -> &'static str {
    match e {
        TokenError::Expired => "token expired",
        TokenError::WrongAudience => "token audience is not accepted",
        TokenError::NotYetValid => "token is not valid yet",
        TokenError::Invalid | TokenError::Signing => "invalid token",
    }
}

fn check_request(req: &StsAuthRequest) -> Result<(), StsError> {
    check_login_fields(&req.code, &req.state, &req.redirect_uri).map_err(StsError::InvalidRequest)
}

/// The one check of a login request's fields, shared by the STS use case and the
/// authenticator (one wording for both): `code`, `state` and `redirect_uri` present and within
/// their size limits. The message names the field and never echoes its value.
pub fn check_login_fields(code: &str, state: &str, redirect_uri: &str) -> Result<(), String> {
    for (field, value, max) in [
        ("code", code, MAX_CODE_LEN),
        ("state", state, MAX_STATE_LEN),
        ("redirect_uri", redirect_uri, MAX_REDIRECT_URI_LEN),
    ] {
        if value.is_empty() {
            return Err(format!("{field} must not be empty"));
        }
        if value.len() > max {
            return Err(format!("{field} is longer than {max} bytes"));
        }
    }
    Ok(())
}

/// The log line of a failed step, keyed on the reason code when there is one; a 5xx with its
/// cause, which the client's answer does not carry.
fn log_failure(what: &str, e: &StsError) {
    match e.reason() {
        Some(code) => tracing::info!(reason = code.as_str(), message = %e, "{what} refused"),
        None if e.status() >= 500 => tracing::error!(error = %e, "{what} failed"),
        None => tracing::info!(status = e.status(), message = %e, "{what} refused"),
    }
}

/// The audit reason of a successful login.
fn success_reason(grant: &StsGrant) -> String {
    format!("token minted for {} s", grant.granted_ttl_seconds)
}

/// The log line of a successful login, written once its audit record is.
fn log_success(grant: &StsGrant) {
    tracing::info!(user = %grant.username, ttl = grant.granted_ttl_seconds, "sts login succeeded");
}

/// A token minted for a login, not yet audited.
struct Minted {
    grant: StsGrant,
    /// Set when the user came from memory without a read of the generation.
    unchecked: Option<Unchecked>,
}

/// What a login needs to resolve its user again, checked.
struct Unchecked {
    /// The generation the user was cached under.
    generation: u64,
    sub: String,
    claims: Claims,
    ttl: i64,
}

/// The audit record's reason: the stable code first when there is one.
fn audit_reason(e: &StsError) -> String {
    match (e.reason(), e) {
        (Some(code), e) => format!("{code}: {e}"),
        (None, StsError::Store(_)) => "storage failed".into(),
        (None, StsError::Token(_)) => "token signing failed".into(),
        (None, StsError::Authenticator(e)) => format!("authenticator failed: {e}"),
        (None, e) => format!("{}: {e}", e.status()),
    }
}
