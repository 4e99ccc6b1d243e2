//! The authorization API's use cases over the [`Directory`]: input rules, pagination as lakeFS
//! reads it (AUTHZ.md §5), sealing of secret access keys, and lakeFS's status semantics as
//! [`AuthzError`] variants. No HTTP here.

use std::sync::Arc;

use axum::body::Bytes;

use lakests_api::authz::{
    ClaimTokenId, Credentials, CredentialsWithSecret, ExternalPrincipal, Group, GroupCreation,
    List, Pagination, Policy, PolicyAnswer, User, UserCreation,
};
use lakests_core::Clock;
use lakests_core::cache::{CacheLimits, Memo};
use lakests_core::directory::{
    CredentialRecord, DirectoryUser, ExternalPrincipalRecord, GroupRecord, Page, PolicyRecord,
    UserFilter,
};
use lakests_core::store::{Store, StoreError, UserRecord};
use serde_json::value::RawValue;

use crate::keys;
use crate::policy;
use crate::secrets::SecretBox;

/// Largest page; `amount` ≤ 0 asks for it.
pub const MAX_PAGE: u32 = 1000;
/// Longest e-mail address, source, description or token id, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest access key id or secret given to AddCredentials, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Outcomes lakeFS tells apart by status (AUTHZ.md §3). Messages are client-safe.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 500; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthzError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(m) => AuthzError::Conflict(format!("{m} already exists")),
            StoreError::NotFound(m) => AuthzError::NotFound(format!("{m} not found")),
            StoreError::Backend(e) => AuthzError::Internal(format!("store: {e}")),
        }
    }
}

type Result<T> = std::result::Result<T, AuthzError>;

/// Largest ListEffectivePolicies body kept in memory (bigger ones are built for each call): with
/// `auth.cache`'s default bound of 1,024 entries, at most 64 MiB.
const MAX_CACHED_BODY: usize = 64 * 1024;

/// `after`, `amount` and `prefix` as lakeFS sends them (`amount` unparsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Keys strictly after this.
    pub after: String,
    /// `-1..=1000`; ≤ 0 means the server maximum. `None`: 100.
    pub amount: Option<String>,
    /// Keys starting with this.
    pub prefix: String,
}

impl PageQuery {
    /// The page to read (one more than asked, to know whether another page follows) and the
    /// page size.
    fn parse(&self) -> Result<(Page, u32)> {
        let amount = match self.amount.as_deref() {
            None => 100,
            Some(a) => {
                let n: i64 = a.parse().map_err(|_| {
                    AuthzError::Invalid("amount must be an integer from -1 to 1000".into())
                })?;
                match n {
                    -1 | 0 => MAX_PAGE,
                    1..=1000 => u32::try_from(n).unwrap_or(MAX_PAGE),
                    _ => {
                        return Err(AuthzError::Invalid(
                            "amount must be an integer from -1 to 1000".into(),
                        ));
                    }
                }
            }
        };
        for (what, v) in [("after", &self.after), ("prefix", &self.prefix)] {
            if v.len() > MAX_TEXT_LEN {
                return Err(AuthzError::Invalid(format!(
                    "{what} is longer than {MAX_TEXT_LEN} bytes"
                )));
            }
        }
        Ok((
            Page {
                prefix: self.prefix.clone(),
                after: self.after.clone(),
                limit: amount + 1,
            },
            amount,
        ))
    }
}

/// A page of `items` read with one extra item: `next_offset` is the last key when another
/// page follows, else `""` (never non-empty on an empty page).
fn paginate<T, W>(
    mut items: Vec<T>,
    amount: u32,
    key: impl Fn(&T) -> String,
    wire: impl Fn(T) -> W,
) -> List<W> {
    let has_more = items.len() > amount as usize;
    items.truncate(amount as usize);
    let next_offset = match (has_more, items.last()) {
        (true, Some(last)) => key(last),
        _ => String::new(),
    };
    let results: Vec<W> = items.into_iter().map(wire).collect();
    List {
        pagination: Pagination {
            has_more: has_more && !next_offset.is_empty(),
            next_offset,
            results: results.len(),
            max_per_page: MAX_PAGE as usize,
        },
        results,
    }
}

fn user_wire(u: DirectoryUser) -> User {
    User {
        name: u.user.username.clone(),
        username: u.user.username,
        creation_date: u.user.created_at,
        friendly_name: u.user.friendly_name,
        email: u.user.email,
        source: u.source,
        encrypted_password: None,
        external_id: u.user.external_id,
    }
}

fn group_wire(g: GroupRecord) -> Group {
    Group {
        id: g.name.clone(),
        name: g.name,
        description: g.description,
        creation_date: g.created_at,
    }
}

fn policy_wire(p: PolicyRecord) -> Result<PolicyAnswer> {
    let statement = RawValue::from_string(p.statement)
        .map_err(|_| AuthzError::Internal(format!("stored policy {:?} is not JSON", p.name)))?;
    Ok(PolicyAnswer {
        name: p.name,
        creation_date: Some(p.created_at),
        statement,
        acl: Some(p.acl),
    })
}

fn principal_wire(p: ExternalPrincipalRecord) -> ExternalPrincipal {
    ExternalPrincipal {
        id: p.id,
        user_id: p.username,
    }
}

fn name(what: &'static str, value: &str) -> Result<()> {
    lakests_core::user::check_name(what, value).map_err(|e| AuthzError::Invalid(e.to_string()))
}

fn text(what: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.len() > MAX_TEXT_LEN => Err(AuthzError::Invalid(format!(
            "{what} is longer than {MAX_TEXT_LEN} bytes"
        ))),
        Some(v) if v.chars().any(char::is_control) => Err(AuthzError::Invalid(format!(
            "{what} must not contain control characters"
        ))),
        _ => Ok(()),
    }
}

/// The authorization API.
pub struct AuthzService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    secrets: SecretBox,
    /// ListEffectivePolicies bodies as sent, by user and page, under the store's generation
    /// when they were read: lakeFS asks for them on every request it authorizes, and building
    /// a body (each stored statement checked as JSON, the page serialized) cost more than the
    /// cached read under it (bench/NOTES.md). Served only while the generation is unchanged;
    /// the TTL and size bound are memory limits.
    effective_bodies: Memo<String, Bytes>,
}

impl std::fmt::Debug for AuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService").finish_non_exhaustive()
    }
}

impl AuthzService {
    /// The service over `store`, sealing secrets with `secrets`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, secrets: SecretBox) -> Self {
        Self {
            store,
            clock,
            secrets,
            effective_bodies: Memo::new(CacheLimits::default()),
        }
    }

    async fn require_user(&self, username: &str) -> Result<DirectoryUser> {
        self.store
            .get_directory_user(username)
            .await?
            .ok_or_else(|| AuthzError::NotFound("user not found".into()))
    }

    async fn require_group(&self, group: &str) -> Result<GroupRecord> {
        self.store
            .get_group(group)
            .await?
            .ok_or_else(|| AuthzError::NotFound("group not found".into()))
    }

    async fn require_policy(&self, policy: &str) -> Result<PolicyRecord> {
        self.store
            .get_policy(policy)
            .await?
            .ok_or_else(|| AuthzError::NotFound("policy not found".into()))
    }

    // Users.

    /// CreateUser (and InviteUser: the user is created, no mail is sent).
    pub async fn create_user(&self, req: UserCreation) -> Result<User> {
        name("username", &req.username)?;
        if let Some(ext) = &req.external_id {
            name("external_id", ext)?;
        }
        text("email", req.email.as_deref())?;
        text("friendlyName", req.friendly_name.as_deref())?;
        text("source", req.source.as_deref())?;
        if req
            .encrypted_password
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(AuthzError::Invalid(
                "encryptedPassword is not supported: lakests keeps no passwords (log in through OpenID Connect or with access keys)".into(),
            ));
        }
        // lakeFS creates the user of an unknown external id at login (its OIDC and remote
        // authenticator paths): a removed user's identity stays out until it is readmitted.
        if let Some(ext) = &req.external_id
            && self.store.removed_identity(ext).await?.is_some()
        {
            return Err(AuthzError::Conflict(
                "the user of this external id was removed; readmit the identity first (lakests users readmit)".into(),
            ));
        }
        let user = DirectoryUser {
            user: UserRecord {
                username: req.username,
                external_id: req.external_id,
                email: req.email,
                friendly_name: req.friendly_name,
                groups: Vec::new(),
                created_at: self.clock.now(),
            },
            source: req.source,
        };
        self.store.create_directory_user(&user).await?;
        if req.invite == Some(true) {
            tracing::info!(user = %user.user.username, "invited user created; lakests sends no invitation mail");
        }
        Ok(user_wire(user))
    }

    /// GetUser.
    pub async fn get_user(&self, username: &str) -> Result<User> {
        Ok(user_wire(self.require_user(username).await?))
    }

    /// ListUsers, by `external_id` or `email` when given. `id` (numeric ids) matches nothing:
    /// lakests always answers credentials with `user_name`.
    pub async fn list_users(
        &self,
        page: &PageQuery,
        external_id: Option<&str>,
        email: Option<&str>,
        id: Option<&str>,
    ) -> Result<List<User>> {
        let (p, amount) = page.parse()?;
        text("external_id", external_id)?;
        text("email", email)?;
        if let Some(id) = id {
            id.parse::<i64>()
                .map_err(|_| AuthzError::Invalid("id must be a 64-bit integer".into()))?;
            return Ok(paginate(
                Vec::<DirectoryUser>::new(),
                amount,
                |_| String::new(),
                user_wire,
            ));
        }
        let filter = match (external_id, email) {
            (Some(e), _) => UserFilter::ExternalId(e.into()),
            (None, Some(m)) => UserFilter::Email(m.into()),
            (None, None) => UserFilter::All,
        };
        let users = self.store.list_directory_users(&filter, &p).await?;
        Ok(paginate(
            users,
            amount,
            |u| u.user.username.clone(),
            user_wire,
        ))
    }

    /// DeleteUser, with its memberships, attachments, credentials and principals.
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        if self.store.delete_user(username).await? {
            Ok(())
        } else {
            Err(AuthzError::NotFound("user not found".into()))
        }
    }

    /// UpdateUserFriendlyName.
    pub async fn set_friendly_name(&self, username: &str, friendly_name: &str) -> Result<()> {
        text("friendly_name", Some(friendly_name))?;
        if self
            .store
            .set_friendly_name(username, Some(friendly_name))
            .await?
        {
            Ok(())
        } else {
            Err(AuthzError::NotFound("user not found".into()))
        }
    }

    // Groups.

    /// CreateGroup.
    pub async fn create_group(&self, req: GroupCreation) -> Result<Group> {
        name("group id", &req.id)?;
        text("description", req.description.as_deref())?;
        let group = GroupRecord {
            name: req.id,
            description: req.description,
            created_at: self.clock.now(),
        };
        self.store.create_group(&group).await?;
        Ok(group_wire(group))
    }

    /// GetGroup.
    pub async fn get_group(&self, group: &str) -> Result<Group> {
        Ok(group_wire(self.require_group(group).await?))
    }

    /// DeleteGroup, with its memberships and attachments.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        if self.store.delete_group(group).await? {
            Ok(())
        } else {
            Err(AuthzError::NotFound("group not found".into()))
        }
    }

    /// ListGroups.
    pub async fn list_groups(&self, page: &PageQuery) -> Result<List<Group>> {
        let (p, amount) = page.parse()?;
        let groups = self.store.list_groups(&p).await?;
        Ok(paginate(groups, amount, |g| g.name.clone(), group_wire))
    }

    /// AddUserToGroup (adding a member again succeeds).
    pub async fn add_member(&self, group: &str, username: &str) -> Result<()> {
        Ok(self.store.add_group_member(group, username).await?)
    }

    /// RemoveUserFromGroup: 404 when the group, the user or the membership is missing.
    pub async fn remove_member(&self, group: &str, username: &str) -> Result<()> {
        if self.store.remove_group_member(group, username).await? {
            return Ok(());
        }
        self.require_group(group).await?;
        self.require_user(username).await?;
        Err(AuthzError::NotFound(
            "the user is not a member of the group".into(),
        ))
    }

    /// ListGroupUsers.
    pub async fn list_members(&self, group: &str, page: &PageQuery) -> Result<List<User>> {
        let (p, amount) = page.parse()?;
        self.require_group(group).await?;
        let users = self.store.list_group_members(group, &p).await?;
        Ok(paginate(
            users,
            amount,
            |u| u.user.username.clone(),
            user_wire,
        ))
    }

    /// ListUserGroups.
    pub async fn list_user_groups(&self, username: &str, page: &PageQuery) -> Result<List<Group>> {
        let (p, amount) = page.parse()?;
        self.require_user(username).await?;
        let groups = self.store.list_user_groups(username, &p).await?;
        Ok(paginate(groups, amount, |g| g.name.clone(), group_wire))
    }

    // Policies.

    fn policy_record(&self, req: Policy) -> Result<PolicyRecord> {
        policy::check_name(&req.name).map_err(AuthzError::Invalid)?;
        policy::check_statements(&req.statement).map_err(AuthzError::Invalid)?;
        let acl = req.acl.unwrap_or_default();
        text("acl", Some(&acl))?;
        let statement = serde_json::to_string(&req.statement)
            .map_err(|_| AuthzError::Internal("cannot encode a statement".into()))?;
        Ok(PolicyRecord {
            name: req.name,
            statement,
            acl,
            created_at: self.clock.now(),
        })
    }

    /// WritePolicy (create): 409 when the name is taken.
    pub async fn create_policy(&self, req: Policy) -> Result<PolicyAnswer> {
        let record = self.policy_record(req)?;
        self.store.create_policy(&record).await?;
        policy_wire(record)
    }

    /// WritePolicy (update): 404 for an unknown policy; the body's name must be the path's.
    pub async fn update_policy(&self, name_in_path: &str, req: Policy) -> Result<PolicyAnswer> {
        if req.name != name_in_path {
            return Err(AuthzError::Invalid(
                "the policy name in the body differs from the one in the path".into(),
            ));
        }
        let record = self.policy_record(req)?;
        if !self.store.update_policy(&record).await? {
            return Err(AuthzError::NotFound("policy not found".into()));
        }
        policy_wire(self.require_policy(name_in_path).await?)
    }

    /// GetPolicy.
    pub async fn get_policy(&self, name: &str) -> Result<PolicyAnswer> {
        policy_wire(self.require_policy(name).await?)
    }

    /// DeletePolicy, with its attachments.
    pub async fn delete_policy(&self, name: &str) -> Result<()> {
        if self.store.delete_policy(name).await? {
            Ok(())
        } else {
            Err(AuthzError::NotFound("policy not found".into()))
        }
    }

    fn policy_list(items: Vec<PolicyRecord>, amount: u32) -> Result<List<PolicyAnswer>> {
        let list = paginate(items, amount, |p| p.name.clone(), policy_wire);
        let results = list.results.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(List {
            pagination: list.pagination,
            results,
        })
    }

    /// ListPolicies.
    pub async fn list_policies(&self, page: &PageQuery) -> Result<List<PolicyAnswer>> {
        let (p, amount) = page.parse()?;
        Self::policy_list(self.store.list_policies(&p).await?, amount)
    }

    /// AttachPolicyToUser: 409 when already attached.
    pub async fn attach_user_policy(&self, username: &str, policy: &str) -> Result<()> {
        Ok(self.store.attach_user_policy(username, policy).await?)
    }

    /// DetachPolicyFromUser.
    pub async fn detach_user_policy(&self, username: &str, policy: &str) -> Result<()> {
        if self.store.detach_user_policy(username, policy).await? {
            return Ok(());
        }
        self.require_user(username).await?;
        self.require_policy(policy).await?;
        Err(AuthzError::NotFound(
            "the policy is not attached to the user".into(),
        ))
    }

    /// ListUserPolicies (`effective=false`) or ListEffectivePolicies (`effective=true`).
    pub async fn list_user_policies(
        &self,
        username: &str,
        page: &PageQuery,
        effective: bool,
    ) -> Result<List<PolicyAnswer>> {
        let (p, amount) = page.parse()?;
        let items = if effective {
            self.store.list_effective_policies(username, &p).await?
        } else {
            self.store.list_user_policies(username, &p).await?
        };
        // Attachments and memberships go with their user (foreign keys cascade), so a
        // non-empty page proves the user exists: the existence check (another read on
        // lakeFS's request path) is needed only for an empty one.
        if items.is_empty() {
            self.require_user(username).await?;
        }
        Self::policy_list(items, amount)
    }

    /// ListEffectivePolicies as the JSON body lakeFS reads (what [`Self::list_user_policies`]
    /// answers, serialized), from memory while the store's generation is unchanged. Over a
    /// store without a generation (no cache), built for every call.
    pub async fn effective_policies_body(&self, username: &str, page: &PageQuery) -> Result<Bytes> {
        // Read before the policies are: a body is stamped with a generation older than what
        // it was built from, never newer.
        let generation = self.store.generation().await;
        // Lengths first: no two (user, page) pairs make the same key.
        let amount = page.amount.as_deref();
        let key = format!(
            "{}:{username}{}:{}{}:{}{}",
            username.len(),
            page.after.len(),
            page.after,
            amount.map_or(-1, |a| i64::try_from(a.len()).unwrap_or(i64::MAX)),
            amount.unwrap_or(""),
            page.prefix.len(),
        ) + &page.prefix;
        let now = self.clock.now();
        if let Some(generation) = generation
            && let Some(body) = self.effective_bodies.get(&key, generation, now)
        {
            return Ok(body);
        }
        let list = self.list_user_policies(username, page, true).await?;
        let body = Bytes::from(
            serde_json::to_vec(&list).map_err(|e| AuthzError::Internal(e.to_string()))?,
        );
        if let Some(generation) = generation
            && body.len() <= MAX_CACHED_BODY
        {
            self.effective_bodies
                .put(key, body.clone(), generation, now, None);
        }
        Ok(body)
    }

    /// AttachPolicyToGroup: 409 when already attached.
    pub async fn attach_group_policy(&self, group: &str, policy: &str) -> Result<()> {
        Ok(self.store.attach_group_policy(group, policy).await?)
    }

    /// DetachPolicyFromGroup.
    pub async fn detach_group_policy(&self, group: &str, policy: &str) -> Result<()> {
        if self.store.detach_group_policy(group, policy).await? {
            return Ok(());
        }
        self.require_group(group).await?;
        self.require_policy(policy).await?;
        Err(AuthzError::NotFound(
            "the policy is not attached to the group".into(),
        ))
    }

    /// ListGroupPolicies.
    pub async fn list_group_policies(
        &self,
        group: &str,
        page: &PageQuery,
    ) -> Result<List<PolicyAnswer>> {
        let (p, amount) = page.parse()?;
        self.require_group(group).await?;
        Self::policy_list(self.store.list_group_policies(group, &p).await?, amount)
    }

    // Credentials.

    /// CreateCredentials (keys generated) or AddCredentials (both keys given, stored exactly).
    pub async fn create_credentials(
        &self,
        username: &str,
        access_key: Option<&str>,
        secret_key: Option<&str>,
    ) -> Result<CredentialsWithSecret> {
        let random = |_| AuthzError::Internal("the system random generator failed".into());
        let (access_key_id, secret, given) = match (access_key, secret_key) {
            (None, None) | (Some(""), Some("")) => (
                keys::access_key_id().map_err(random)?,
                keys::secret_access_key().map_err(random)?,
                false,
            ),
            (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => {
                check_key("access_key", a)?;
                check_key("secret_key", s)?;
                (a.to_owned(), s.to_owned(), true)
            }
            _ => {
                return Err(AuthzError::Invalid(
                    "give both access_key and secret_key, or neither".into(),
                ));
            }
        };
        let sealed = self
            .secrets
            .seal(&access_key_id, &secret)
            .map_err(|e| AuthzError::Internal(e.to_string()))?;
        let record = CredentialRecord {
            access_key_id,
            username: username.to_owned(),
            sealed_secret: sealed,
            created_at: self.clock.now(),
        };
        match self.store.create_credential(&record).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) if !given => {
                return Err(AuthzError::Internal(
                    "a generated access key id collided".into(),
                ));
            }
            Err(StoreError::AlreadyExists(_)) => {
                return Err(AuthzError::Conflict("the access key id is taken".into()));
            }
            Err(StoreError::NotFound(_)) => {
                return Err(AuthzError::NotFound("user not found".into()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CredentialsWithSecret {
            access_key_id: record.access_key_id,
            secret_access_key: secret,
            creation_date: record.created_at,
            user_id: 0,
            user_name: record.username,
        })
    }

    /// GetCredentials: the secret in clear, for lakeFS to verify signatures.
    pub async fn get_credentials(&self, access_key_id: &str) -> Result<CredentialsWithSecret> {
        let c = self
            .store
            .get_credential(access_key_id)
            .await?
            .ok_or_else(|| AuthzError::NotFound("credentials not found".into()))?;
        let secret = self
            .secrets
            .open(&c.access_key_id, &c.sealed_secret)
            .map_err(|e| AuthzError::Internal(e.to_string()))?;
        Ok(CredentialsWithSecret {
            access_key_id: c.access_key_id,
            secret_access_key: secret,
            creation_date: c.created_at,
            user_id: 0,
            user_name: c.username,
        })
    }

    /// GetCredentialsForUser: 404 unless the key belongs to the user.
    pub async fn get_user_credentials(
        &self,
        username: &str,
        access_key_id: &str,
    ) -> Result<Credentials> {
        match self.store.get_credential(access_key_id).await? {
            Some(c) if c.username == username => Ok(Credentials {
                access_key_id: c.access_key_id,
                creation_date: c.created_at,
            }),
            _ => Err(AuthzError::NotFound("credentials not found".into())),
        }
    }

    /// DeleteCredentials.
    pub async fn delete_credentials(&self, username: &str, access_key_id: &str) -> Result<()> {
        if self
            .store
            .delete_credential(username, access_key_id)
            .await?
        {
            Ok(())
        } else {
            Err(AuthzError::NotFound("credentials not found".into()))
        }
    }

    /// ListUserCredentials.
    pub async fn list_credentials(
        &self,
        username: &str,
        page: &PageQuery,
    ) -> Result<List<Credentials>> {
        let (p, amount) = page.parse()?;
        self.require_user(username).await?;
        let items = self.store.list_user_credentials(username, &p).await?;
        Ok(paginate(
            items,
            amount,
            |c| c.access_key_id.clone(),
            |c| Credentials {
                access_key_id: c.access_key_id,
                creation_date: c.created_at,
            },
        ))
    }

    // External principals.

    /// CreateUserExternalPrincipal.
    pub async fn create_principal(&self, username: &str, id: &str) -> Result<()> {
        name("principalId", id)?;
        Ok(self
            .store
            .create_external_principal(&ExternalPrincipalRecord {
                id: id.to_owned(),
                username: username.to_owned(),
            })
            .await?)
    }

    /// DeleteUserExternalPrincipal.
    pub async fn delete_principal(&self, username: &str, id: &str) -> Result<()> {
        if self.store.delete_external_principal(username, id).await? {
            Ok(())
        } else {
            Err(AuthzError::NotFound("external principal not found".into()))
        }
    }

    /// GetExternalPrincipal.
    pub async fn get_principal(&self, id: &str) -> Result<ExternalPrincipal> {
        self.store
            .get_external_principal(id)
            .await?
            .map(principal_wire)
            .ok_or_else(|| AuthzError::NotFound("external principal not found".into()))
    }

    /// ListUserExternalPrincipals.
    pub async fn list_principals(
        &self,
        username: &str,
        page: &PageQuery,
    ) -> Result<List<ExternalPrincipal>> {
        let (p, amount) = page.parse()?;
        self.require_user(username).await?;
        let items = self
            .store
            .list_user_external_principals(username, &p)
            .await?;
        Ok(paginate(items, amount, |e| e.id.clone(), principal_wire))
    }

    /// ClaimTokenIDOnce: 400 when claimed before (or already expired).
    pub async fn claim_token_id(&self, req: ClaimTokenId) -> Result<()> {
        name("token_id", &req.token_id)?;
        let now = self.clock.now();
        if req.expires_at <= now {
            return Err(AuthzError::Invalid("expires_at is in the past".into()));
        }
        if self
            .store
            .claim_token_id(&req.token_id, req.expires_at, now)
            .await?
        {
            Ok(())
        } else {
            Err(AuthzError::Invalid("token id was already claimed".into()))
        }
    }
}

fn check_key(what: &str, v: &str) -> Result<()> {
    if v.len() > MAX_KEY_LEN || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthzError::Invalid(format!(
            "{what} must be at most {MAX_KEY_LEN} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(amount: Option<&str>) -> PageQuery {
        PageQuery {
            amount: amount.map(Into::into),
            ..PageQuery::default()
        }
    }

    #[test]
    fn amounts_follow_lakefs() {
        assert_eq!(q(None).parse().map(|p| p.1).ok(), Some(100));
        assert_eq!(q(Some("-1")).parse().map(|p| p.1).ok(), Some(1000));
        assert_eq!(q(Some("0")).parse().map(|p| p.1).ok(), Some(1000));
        assert_eq!(
            q(Some("2")).parse().map(|p| (p.0.limit, p.1)).ok(),
            Some((3, 2))
        );
        for bad in ["-2", "1001", "1.5", "x", "1e3", ""] {
            assert!(
                matches!(q(Some(bad)).parse(), Err(AuthzError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn next_offset_is_empty_on_the_last_page_and_on_an_empty_page() {
        let l = paginate(vec!["a", "b", "c"], 2, |s| s.to_string(), |s| s);
        assert_eq!(l.results, ["a", "b"]);
        assert_eq!(l.pagination.next_offset, "b");
        assert!(l.pagination.has_more);
        let l = paginate(vec!["a", "b"], 2, |s| s.to_string(), |s| s);
        assert_eq!(l.pagination.next_offset, "");
        assert!(!l.pagination.has_more);
        let l = paginate(Vec::<&str>::new(), 2, |s| s.to_string(), |s| s);
        assert_eq!(l.pagination.next_offset, "");
        assert_eq!(l.pagination.results, 0);
    }
}
