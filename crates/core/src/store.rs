//! The storage port: one trait, implemented by the SQLite and PostgreSQL backends of
//! `lakests-store`, which both pass the same conformance suite.

use async_trait::async_trait;

use crate::directory::Directory;

/// A user of the directory, as lakeFS knows users, plus the external id STS login maps to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The lakeFS username (`sub` of minted tokens, `id` of `GET /api/v1/user`).
    pub username: String,
    /// The identity provider's subject this user is mapped to; unique when set.
    pub external_id: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Group names, sorted and without duplicates.
    pub groups: Vec<String>,
    /// Unix seconds of creation.
    pub created_at: i64,
}

/// Whether a login attempt succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A token was minted.
    Success,
    /// The login was refused or failed.
    Failure,
}

impl LoginOutcome {
    /// `"success"` or `"failure"`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(LoginOutcome::Success),
            "failure" => Some(LoginOutcome::Failure),
            _ => None,
        }
    }
}

/// One audit record per login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAudit {
    /// Unix seconds.
    pub at: i64,
    /// Outcome.
    pub outcome: LoginOutcome,
    /// Why (for a failure) or how (for a success, e.g. "token minted").
    pub reason: String,
    /// The `sub` claim, when the authenticator returned one.
    pub external_id: Option<String>,
    /// The lakeFS user, when one was resolved.
    pub username: Option<String>,
    /// The client's address as the server saw it.
    pub client_addr: Option<String>,
    /// The request id (`X-Request-ID`).
    pub request_id: String,
}

/// A short-lived, single-use record: an authenticator login session (PKCE verifier and nonce
/// kept server-side) or a development IdP authorization code. `kind` namespaces the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// Namespace, e.g. `"login_session"` or `"idp_code"`.
    pub kind: String,
    /// The key within the namespace (a state value or a code).
    pub key: String,
    /// Opaque payload, typically JSON.
    pub payload: String,
    /// Unix seconds after which the grant is gone.
    pub expires_at: i64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("kind", &self.kind)
            .field("key", &"[redacted]")
            .field("payload", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Storage failures. Messages are for logs and operators, never for HTTP bodies.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key (username, external id, grant key) is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A write names a user, group or policy that does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An identity whose user was removed ([`Store::removed_identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedIdentity {
    /// The external id (`<provider>:<sub>` for identities the authenticator namespaced).
    pub external_id: String,
    /// The username the removed user had.
    pub username: String,
    /// When the user was removed (Unix seconds, the database's clock).
    pub removed_at: i64,
}

/// Everything lakests keeps: the user directory (with what lakeFS's authorization API serves,
/// [`Directory`]), login audit records and single-use grants.
#[async_trait]
pub trait Store: Directory + Send + Sync + 'static {
    /// The generation of the data (see [`crate::cache`]): it changes whenever anything a cache
    /// may hold has changed. `None` (the default) when the store cannot tell, and nothing may
    /// be cached over it.
    async fn generation(&self) -> Option<u64> {
        None
    }

    /// Checks the connection.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a user. [`StoreError::AlreadyExists`] when the username or the external id is
    /// taken.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The user with this username.
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user mapped to this external id.
    async fn find_user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// All users, ordered by username.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Removes a user and its group memberships; false when there was none.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;
    /// Sets a user's friendly name; false when there is no such user.
    async fn set_friendly_name(
        &self,
        username: &str,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// The mark a removed user left on its identity: deleting a user that has an external id
    /// records it (in the same statement), and provisioning at login refuses such an identity
    /// until it is readmitted. `None` when the identity was never removed or was readmitted.
    async fn removed_identity(
        &self,
        external_id: &str,
    ) -> Result<Option<RemovedIdentity>, StoreError>;
    /// Every removed identity, ordered by external id.
    async fn list_removed_identities(&self) -> Result<Vec<RemovedIdentity>, StoreError>;
    /// Forgets the removal of an identity, so that a login may provision it again; false when
    /// it was not marked.
    async fn readmit_identity(&self, external_id: &str) -> Result<bool, StoreError>;

    /// Appends a login audit record.
    async fn append_audit(&self, record: &LoginAudit) -> Result<(), StoreError>;

    /// Whether [`Store::append_audit_if_unchanged`] checks the generation in the audit write
    /// itself (PostgreSQL), so that a login may take its user from memory without first reading
    /// the generation: the audit write then proves nothing changed in between.
    fn checks_generation_in_audit(&self) -> bool {
        false
    }

    /// For a login: the user mapped to `external_id` and, when it was answered from memory
    /// without a read of the generation, the generation it was cached under. The login's audit
    /// record must then be written by [`Store::append_audit_if_unchanged`] with it, and the
    /// login start over with a checked lookup if that writes nothing. `None` with a checked
    /// lookup (the default).
    async fn find_user_for_login(
        &self,
        external_id: &str,
    ) -> Result<(Option<UserRecord>, Option<u64>), StoreError> {
        Ok((self.find_user_by_external_id(external_id).await?, None))
    }

    /// Appends `record` only if the store's generation is still `generation`, checked in the
    /// same statement: `false`, and nothing written, when it moved. A store that cannot check
    /// writes nothing and answers `false`.
    async fn append_audit_if_unchanged(
        &self,
        record: &LoginAudit,
        generation: u64,
    ) -> Result<bool, StoreError> {
        let _ = (record, generation);
        Ok(false)
    }
    /// The newest `limit` audit records, newest first.
    async fn list_audit(&self, limit: u32) -> Result<Vec<LoginAudit>, StoreError>;

    /// Stores a grant. [`StoreError::AlreadyExists`] when (kind, key) is taken.
    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError>;
    /// Removes and returns the grant if it exists and `expires_at > now`. Atomic: of two
    /// concurrent takes (from any replica) at most one gets it. An expired grant is removed
    /// and not returned.
    async fn take_grant(
        &self,
        kind: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Grant>, StoreError>;
    /// Removes every grant with `expires_at <= now`; returns how many.
    async fn purge_expired_grants(&self, now: i64) -> Result<u64, StoreError>;

    /// Removes every audit record with `at < before` (audit retention); returns how many.
    async fn purge_audit_before(&self, before: i64) -> Result<u64, StoreError>;

    /// Revokes every token of `username` issued at or before `issued_up_to` (Unix seconds).
    /// A later call with an earlier time changes nothing.
    async fn revoke_user_tokens(&self, username: &str, issued_up_to: i64)
    -> Result<(), StoreError>;
    /// Revokes the one token with this `jti`; false when it already was.
    async fn revoke_token(&self, jti: &str, revoked_at: i64) -> Result<bool, StoreError>;
    /// Whether the token of `username` with `jti`, issued at `issued_at`, has been revoked
    /// (by its `jti`, or by a revocation of the user's tokens up to a time at or after
    /// `issued_at`). Every replica sharing the database sees a revocation at once.
    async fn is_token_revoked(
        &self,
        username: &str,
        jti: &str,
        issued_at: i64,
    ) -> Result<bool, StoreError>;
}
