//! The directory lakeFS's authorization API serves (AUTHZ.md §6): groups, policies, their
//! attachments, access keys, external principals and claimed token ids, beside the users of
//! [`Store`](crate::store::Store). A separate trait keeps the login store readable; every
//! [`Store`](crate::store::Store) is a [`Directory`].
//!
//! Lists are pages in byte order of their key ([`Page`]). Deleting a user, a group or a policy
//! removes everything attached to it in the same statement: never half done.

use async_trait::async_trait;

use crate::store::{StoreError, UserRecord};

/// One page of a list: keys starting with `prefix`, strictly after `after`, at most `limit`,
/// ascending in byte order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Page {
    /// Only keys starting with this.
    pub prefix: String,
    /// Only keys strictly greater than this (`""`: from the start).
    pub after: String,
    /// At most this many (at least 1).
    pub limit: u32,
}

impl Page {
    /// The first `limit` keys.
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }
}

/// Which users a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    /// Every user.
    All,
    /// The user mapped to this external id (zero or one).
    ExternalId(String),
    /// Users with this e-mail address.
    Email(String),
}

/// A user as the authorization API shows it: the record plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The user.
    pub user: UserRecord,
    /// lakeFS's `source`: `internal`, `oidc`, `remote_authenticator`, ...; `None` for users
    /// created by lakests itself.
    pub source: Option<String>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group's name (lakeFS's `id` and `name`).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A policy in lakeFS's statement format, stored verbatim after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// Unique name.
    pub name: String,
    /// The JSON array of statements, as written.
    pub statement: String,
    /// lakeFS's simplified-RBAC ACL (`""` for ordinary policies).
    pub acl: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// An access key. The secret is sealed (AEAD) by the caller; the store never sees it in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Globally unique access key id.
    pub access_key_id: String,
    /// The owner.
    pub username: String,
    /// The sealed secret access key.
    pub sealed_secret: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("access_key_id", &self.access_key_id)
            .field("username", &self.username)
            .field("sealed_secret", &"[sealed]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// An external principal (e.g. an AWS IAM role ARN) that logs in as a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalPrincipalRecord {
    /// The principal id; globally unique.
    pub id: String,
    /// The user it logs in as.
    pub username: String,
}

/// Users, groups, policies, attachments, credentials, principals and token ids.
///
/// Errors: [`StoreError::AlreadyExists`] for a taken unique key (and for attaching a policy
/// twice, as lakeFS's own store answers), [`StoreError::NotFound`] when a write names a user,
/// group or policy that does not exist. Removals answer `false` when there was nothing to
/// remove.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Creates a user with its groups (missing groups are created) and its source.
    async fn create_directory_user(&self, user: &DirectoryUser) -> Result<(), StoreError>;
    /// A user with its source.
    async fn get_directory_user(&self, username: &str)
    -> Result<Option<DirectoryUser>, StoreError>;
    /// One page of users (by username) matching `filter`.
    async fn list_directory_users(
        &self,
        filter: &UserFilter,
        page: &Page,
    ) -> Result<Vec<DirectoryUser>, StoreError>;
    /// Sets e-mail and friendly name; false when there is no such user.
    async fn update_user_profile(
        &self,
        username: &str,
        email: Option<&str>,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Makes the user's memberships exactly `groups` (missing groups are created), in one
    /// transaction; false when there is no such user.
    async fn set_user_groups(&self, username: &str, groups: &[String]) -> Result<bool, StoreError>;

    /// Creates a group.
    async fn create_group(&self, group: &GroupRecord) -> Result<(), StoreError>;
    /// A group.
    async fn get_group(&self, name: &str) -> Result<Option<GroupRecord>, StoreError>;
    /// Removes a group with its memberships and policy attachments.
    async fn delete_group(&self, name: &str) -> Result<bool, StoreError>;
    /// One page of groups.
    async fn list_groups(&self, page: &Page) -> Result<Vec<GroupRecord>, StoreError>;
    /// Adds a user to a group; adding a member again changes nothing.
    async fn add_group_member(&self, group: &str, username: &str) -> Result<(), StoreError>;
    /// Removes a membership.
    async fn remove_group_member(&self, group: &str, username: &str) -> Result<bool, StoreError>;
    /// One page of a group's members (by username).
    async fn list_group_members(
        &self,
        group: &str,
        page: &Page,
    ) -> Result<Vec<DirectoryUser>, StoreError>;
    /// One page of a user's groups.
    async fn list_user_groups(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<GroupRecord>, StoreError>;

    /// Creates a policy.
    async fn create_policy(&self, policy: &PolicyRecord) -> Result<(), StoreError>;
    /// Replaces a policy's statement and acl (its creation date stays); false when unknown.
    async fn update_policy(&self, policy: &PolicyRecord) -> Result<bool, StoreError>;
    /// A policy.
    async fn get_policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError>;
    /// Removes a policy with its attachments.
    async fn delete_policy(&self, name: &str) -> Result<bool, StoreError>;
    /// One page of policies.
    async fn list_policies(&self, page: &Page) -> Result<Vec<PolicyRecord>, StoreError>;
    /// Attaches a policy to a user.
    async fn attach_user_policy(&self, username: &str, policy: &str) -> Result<(), StoreError>;
    /// Detaches a policy from a user.
    async fn detach_user_policy(&self, username: &str, policy: &str) -> Result<bool, StoreError>;
    /// One page of the policies attached to the user itself.
    async fn list_user_policies(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError>;
    /// One page of the user's effective policies: its own and its groups', each once.
    async fn list_effective_policies(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError>;
    /// Attaches a policy to a group.
    async fn attach_group_policy(&self, group: &str, policy: &str) -> Result<(), StoreError>;
    /// Detaches a policy from a group.
    async fn detach_group_policy(&self, group: &str, policy: &str) -> Result<bool, StoreError>;
    /// One page of a group's policies.
    async fn list_group_policies(
        &self,
        group: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError>;

    /// Stores an access key for its user.
    async fn create_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError>;
    /// The access key with this id, whoever owns it.
    async fn get_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Removes a user's access key.
    async fn delete_credential(
        &self,
        username: &str,
        access_key_id: &str,
    ) -> Result<bool, StoreError>;
    /// One page of a user's access keys (by access key id).
    async fn list_user_credentials(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<CredentialRecord>, StoreError>;

    /// Maps an external principal to a user.
    async fn create_external_principal(
        &self,
        principal: &ExternalPrincipalRecord,
    ) -> Result<(), StoreError>;
    /// The principal with this id.
    async fn get_external_principal(
        &self,
        id: &str,
    ) -> Result<Option<ExternalPrincipalRecord>, StoreError>;
    /// Removes a user's principal.
    async fn delete_external_principal(&self, username: &str, id: &str)
    -> Result<bool, StoreError>;
    /// One page of a user's principals (by id).
    async fn list_user_external_principals(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<ExternalPrincipalRecord>, StoreError>;

    /// Claims a token id until `expires_at`: true the first time, false when it is claimed and
    /// not expired at `now`. Claims expired at `now` are purged first.
    async fn claim_token_id(
        &self,
        token_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}
