//! Wire types of lakeFS's authorization API (`auth.api.endpoint`; AUTHZ.md and
//! `lakefs-authorization-api.yml`), as lakeFS's `APIAuthService` sends and reads them.

use serde::{Deserialize, Deserializer, Serialize};

/// An optional field that may be absent but not `null` (the spec types it; lakeFS's client
/// omits it rather than sending `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `pagination` of every list. lakeFS reads only `next_offset` (`""` on the last page) and
/// `results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// Whether another page follows.
    pub has_more: bool,
    /// The `after` of the next page; `""` on the last page.
    pub next_offset: String,
    /// Number of items in this page.
    pub results: usize,
    /// Largest page the server returns.
    pub max_per_page: usize,
}

/// A page of items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<T> {
    /// Where the page ends.
    pub pagination: Pagination,
    /// The items, ascending by key.
    pub results: Vec<T>,
}

/// `User`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The username (the key).
    pub username: String,
    /// The username again (the spec requires `name`).
    #[serde(default)]
    pub name: String,
    /// Unix seconds.
    pub creation_date: i64,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where the user came from (`internal`, `oidc`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Always `null`: lakests keeps no passwords (lakeFS logins go through OIDC or keys).
    #[serde(rename = "encryptedPassword", default)]
    pub encrypted_password: Option<String>,
    /// The identity provider subject mapped to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// `UserCreation`: `POST /auth/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreation {
    /// The username.
    pub username: String,
    /// E-mail address.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<String>,
    /// Display name (note the camel case of the request).
    #[serde(
        rename = "friendlyName",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub friendly_name: Option<String>,
    /// Where the user comes from.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<String>,
    /// A password hash; refused when set (lakests keeps no passwords).
    #[serde(
        rename = "encryptedPassword",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub encrypted_password: Option<String>,
    /// The identity provider subject; unique.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// lakeFS's invitation flow.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub invite: Option<bool>,
}

/// `PUT /auth/users/{u}/friendly_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendlyNameUpdate {
    /// The new display name.
    pub friendly_name: String,
}

/// `GroupCreation`: `POST /auth/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCreation {
    /// The group's name (lakeFS sends its display name as `id`).
    pub id: String,
    /// Free text.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
}

/// `Group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Equal to `name` (the UI routes by it).
    pub id: String,
    /// The group's name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unix seconds.
    pub creation_date: i64,
}

/// `Policy`: request and response of the policy operations. `statement` is kept as JSON so it
/// is validated by rule (with a message naming the problem) rather than by shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Unique name.
    pub name: String,
    /// Unix seconds (ignored on write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<i64>,
    /// The statements, lakeFS's format.
    #[serde(default)]
    pub statement: serde_json::Value,
    /// The simplified-RBAC ACL, `""` for ordinary policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// `Policy` as lakests answers it: `statement` is the stored JSON passed through as it is
/// (lakests wrote it with serde_json after validating it), not parsed and serialized again on
/// every read: the effective policies are on lakeFS's request path.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyAnswer {
    /// Unique name.
    pub name: String,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<i64>,
    /// The statements, lakeFS's format, as stored.
    pub statement: Box<serde_json::value::RawValue>,
    /// The simplified-RBAC ACL, `""` for ordinary policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// `Credentials`: an access key without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// Unix seconds.
    pub creation_date: i64,
}

/// `CredentialsWithSecret`. `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsWithSecret {
    /// The access key id.
    pub access_key_id: String,
    /// The secret, in clear.
    pub secret_access_key: String,
    /// Unix seconds.
    pub creation_date: i64,
    /// Deprecated numeric id; always 0 (lakeFS uses `user_name` when it is set).
    #[serde(default)]
    pub user_id: i64,
    /// The owner.
    pub user_name: String,
}

impl std::fmt::Debug for CredentialsWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsWithSecret")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("creation_date", &self.creation_date)
            .field("user_name", &self.user_name)
            .finish()
    }
}

/// `ExternalPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalPrincipal {
    /// The principal id (e.g. an IAM role ARN).
    pub id: String,
    /// The username it logs in as.
    pub user_id: String,
}

/// `ClaimTokenId`: `POST /auth/tokenid/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTokenId {
    /// The token id (`jti`).
    pub token_id: String,
    /// Unix seconds until which the claim is kept.
    pub expires_at: i64,
}

/// `VersionConfig`: `GET /config/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionConfig {
    /// The service's version.
    pub version: String,
}
