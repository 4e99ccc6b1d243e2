//! [`Directory`] on both backends. The SQL is the same text for SQLite and PostgreSQL
//! (`$N` parameters work on both); only the collation that makes comparisons and ordering byte
//! order differs (SQLite's default BINARY, PostgreSQL's `"C"`), so one macro writes both impls.

use std::collections::BTreeMap;

use lakests_core::directory::{
    CredentialRecord, DirectoryUser, ExternalPrincipalRecord, GroupRecord, Page, PolicyRecord,
};
use lakests_core::store::{StoreError, UserRecord};

/// `users` with `source`, joined with `user_groups`: one row per (user, group).
pub(crate) type DirectoryUserRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);

/// The columns of `groups`.
pub(crate) type GroupRow = (String, Option<String>, i64);
/// The columns of `policies`.
pub(crate) type PolicyRow = (String, String, String, i64);
/// The columns of `credentials`.
pub(crate) type CredentialRow = (String, String, Vec<u8>, i64);
/// The columns of `external_principals`.
pub(crate) type PrincipalRow = (String, String);

/// Folds joined rows into users ordered by username in byte order, groups sorted.
pub(crate) fn fold_directory_users(rows: Vec<DirectoryUserRow>) -> Vec<DirectoryUser> {
    let mut users: BTreeMap<String, DirectoryUser> = BTreeMap::new();
    for (username, external_id, email, friendly_name, created_at, source, group) in rows {
        let entry = users
            .entry(username.clone())
            .or_insert_with(|| DirectoryUser {
                user: UserRecord {
                    username,
                    external_id,
                    email,
                    friendly_name,
                    groups: Vec::new(),
                    created_at,
                },
                source,
            });
        if let Some(group) = group {
            entry.user.groups.push(group);
        }
    }
    users
        .into_values()
        .map(|mut u| {
            u.user.groups.sort();
            u.user.groups.dedup();
            u
        })
        .collect()
}

pub(crate) fn group_from_row((name, description, created_at): GroupRow) -> GroupRecord {
    GroupRecord {
        name,
        description,
        created_at,
    }
}

pub(crate) fn policy_from_row((name, statement, acl, created_at): PolicyRow) -> PolicyRecord {
    PolicyRecord {
        name,
        statement,
        acl,
        created_at,
    }
}

pub(crate) fn credential_from_row(
    (access_key_id, username, sealed_secret, created_at): CredentialRow,
) -> CredentialRecord {
    CredentialRecord {
        access_key_id,
        username,
        sealed_secret,
        created_at,
    }
}

pub(crate) fn principal_from_row((id, username): PrincipalRow) -> ExternalPrincipalRecord {
    ExternalPrincipalRecord { id, username }
}

/// The SQL `LIMIT` of a page (at least 1).
pub(crate) fn limit(page: &Page) -> i64 {
    i64::from(page.limit.max(1))
}

pub(crate) fn not_found(what: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("{what} {name:?}"))
}

/// Whether the error is a foreign key violation (the user, group or policy a write names was
/// removed concurrently).
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

/// Implements `Directory` for a store type with `pool`, `db(&self, sqlx::Error)` and
/// `user_conflict(&self, sqlx::Error, &UserRecord)`. `$c` is the collation clause that makes
/// text comparison byte order.
macro_rules! directory_impl {
    ($store:ty, $c:literal) => {
        #[async_trait::async_trait]
        impl lakests_core::directory::Directory for $store {
            async fn create_directory_user(
                &self,
                u: &lakests_core::directory::DirectoryUser,
            ) -> Result<(), lakests_core::store::StoreError> {
                let user = &u.user;
                let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
                sqlx::query(
                    "INSERT INTO users (username, external_id, email, friendly_name, created_at, source) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user.username)
                .bind(&user.external_id)
                .bind(&user.email)
                .bind(&user.friendly_name)
                .bind(user.created_at)
                .bind(&u.source)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.user_conflict(e, user))?;
                for group in crate::common::normalize_groups(&user.groups) {
                    sqlx::query(
                        "INSERT INTO groups (name, description, created_at) VALUES ($1, NULL, $2) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(group)
                    .bind(user.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db(e))?;
                    sqlx::query("INSERT INTO user_groups (username, group_name) VALUES ($1, $2)")
                        .bind(&user.username)
                        .bind(group)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.db(e))?;
                }
                tx.commit().await.map_err(|e| self.db(e))
            }

            async fn get_directory_user(
                &self,
                username: &str,
            ) -> Result<Option<lakests_core::directory::DirectoryUser>, lakests_core::store::StoreError>
            {
                let rows: Vec<crate::directory::DirectoryUserRow> = sqlx::query_as(
                    "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, u.source, g.group_name \
                     FROM users u LEFT JOIN user_groups g ON g.username = u.username \
                     WHERE u.username = $1",
                )
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::directory::fold_directory_users(rows).into_iter().next())
            }

            async fn list_directory_users(
                &self,
                filter: &lakests_core::directory::UserFilter,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::DirectoryUser>, lakests_core::store::StoreError>
            {
                use lakests_core::directory::UserFilter;
                let (sql, value) = match filter {
                    UserFilter::All => (
                        concat!(
                            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, u.source, g.group_name \
                             FROM (SELECT * FROM users WHERE substr(username, 1, length($1)) = $1 \
                             AND username", $c, " > $2 ORDER BY username", $c, " LIMIT $3) u \
                             LEFT JOIN user_groups g ON g.username = u.username"
                        ),
                        None,
                    ),
                    UserFilter::ExternalId(v) => (
                        concat!(
                            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, u.source, g.group_name \
                             FROM (SELECT * FROM users WHERE substr(username, 1, length($1)) = $1 \
                             AND username", $c, " > $2 AND external_id = $4 ORDER BY username", $c, " LIMIT $3) u \
                             LEFT JOIN user_groups g ON g.username = u.username"
                        ),
                        Some(v),
                    ),
                    UserFilter::Email(v) => (
                        concat!(
                            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, u.source, g.group_name \
                             FROM (SELECT * FROM users WHERE substr(username, 1, length($1)) = $1 \
                             AND username", $c, " > $2 AND email = $4 ORDER BY username", $c, " LIMIT $3) u \
                             LEFT JOIN user_groups g ON g.username = u.username"
                        ),
                        Some(v),
                    ),
                };
                let mut query = sqlx::query_as::<_, crate::directory::DirectoryUserRow>(sql)
                    .bind(&page.prefix)
                    .bind(&page.after)
                    .bind(crate::directory::limit(page));
                if let Some(v) = value {
                    query = query.bind(v);
                }
                let rows = query.fetch_all(&self.pool).await.map_err(|e| self.db(e))?;
                Ok(crate::directory::fold_directory_users(rows))
            }

            async fn update_user_profile(
                &self,
                username: &str,
                email: Option<&str>,
                friendly_name: Option<&str>,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET email = $1, friendly_name = $2 WHERE username = $3",
                )
                .bind(email)
                .bind(friendly_name)
                .bind(username)
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_groups(
                &self,
                username: &str,
                groups: &[String],
            ) -> Result<bool, lakests_core::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
                let created: Option<(i64,)> =
                    sqlx::query_as("SELECT created_at FROM users WHERE username = $1")
                        .bind(username)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| self.db(e))?;
                let Some((created_at,)) = created else {
                    return Ok(false);
                };
                sqlx::query("DELETE FROM user_groups WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db(e))?;
                for group in crate::common::normalize_groups(groups) {
                    sqlx::query(
                        "INSERT INTO groups (name, description, created_at) VALUES ($1, NULL, $2) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(group)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db(e))?;
                    sqlx::query("INSERT INTO user_groups (username, group_name) VALUES ($1, $2)")
                        .bind(username)
                        .bind(group)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.db(e))?;
                }
                tx.commit().await.map_err(|e| self.db(e))?;
                Ok(true)
            }

            async fn create_group(
                &self,
                group: &lakests_core::directory::GroupRecord,
            ) -> Result<(), lakests_core::store::StoreError> {
                sqlx::query("INSERT INTO groups (name, description, created_at) VALUES ($1, $2, $3)")
                    .bind(&group.name)
                    .bind(&group.description)
                    .bind(group.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if crate::common::is_unique_violation(&e) {
                            lakests_core::store::StoreError::AlreadyExists(format!("group {:?}", group.name))
                        } else {
                            self.db(e)
                        }
                    })?;
                Ok(())
            }

            async fn get_group(
                &self,
                name: &str,
            ) -> Result<Option<lakests_core::directory::GroupRecord>, lakests_core::store::StoreError> {
                let row: Option<crate::directory::GroupRow> = sqlx::query_as(
                    "SELECT name, description, created_at FROM groups WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(row.map(crate::directory::group_from_row))
            }

            async fn delete_group(&self, name: &str) -> Result<bool, lakests_core::store::StoreError> {
                // Memberships and attachments go with it: ON DELETE CASCADE, one statement.
                let done = sqlx::query("DELETE FROM groups WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_groups(
                &self,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::GroupRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::GroupRow> = sqlx::query_as(concat!(
                    "SELECT name, description, created_at FROM groups \
                     WHERE substr(name, 1, length($1)) = $1 AND name", $c, " > $2 \
                     ORDER BY name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::group_from_row).collect())
            }

            async fn add_group_member(
                &self,
                group: &str,
                username: &str,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.require("group", "SELECT 1 FROM groups WHERE name = $1", group).await?;
                self.require("user", "SELECT 1 FROM users WHERE username = $1", username).await?;
                sqlx::query(
                    "INSERT INTO user_groups (username, group_name) VALUES ($1, $2) \
                     ON CONFLICT (username, group_name) DO NOTHING",
                )
                .bind(username)
                .bind(group)
                .execute(&self.pool)
                .await
                .map_err(|e| self.link_error(e, "group or user", group))?;
                Ok(())
            }

            async fn remove_group_member(
                &self,
                group: &str,
                username: &str,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM user_groups WHERE group_name = $1 AND username = $2")
                    .bind(group)
                    .bind(username)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_group_members(
                &self,
                group: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::DirectoryUser>, lakests_core::store::StoreError>
            {
                let rows: Vec<crate::directory::DirectoryUserRow> = sqlx::query_as(concat!(
                    "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, u.source, g.group_name \
                     FROM (SELECT x.* FROM users x JOIN user_groups m ON m.username = x.username \
                     WHERE m.group_name = $4 AND substr(x.username, 1, length($1)) = $1 \
                     AND x.username", $c, " > $2 ORDER BY x.username", $c, " LIMIT $3) u \
                     LEFT JOIN user_groups g ON g.username = u.username"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(group)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::directory::fold_directory_users(rows))
            }

            async fn list_user_groups(
                &self,
                username: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::GroupRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::GroupRow> = sqlx::query_as(concat!(
                    "SELECT g.name, g.description, g.created_at FROM groups g \
                     JOIN user_groups m ON m.group_name = g.name \
                     WHERE m.username = $4 AND substr(g.name, 1, length($1)) = $1 \
                     AND g.name", $c, " > $2 ORDER BY g.name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::group_from_row).collect())
            }

            async fn create_policy(
                &self,
                policy: &lakests_core::directory::PolicyRecord,
            ) -> Result<(), lakests_core::store::StoreError> {
                sqlx::query(
                    "INSERT INTO policies (name, statement, acl, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&policy.name)
                .bind(&policy.statement)
                .bind(&policy.acl)
                .bind(policy.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    if crate::common::is_unique_violation(&e) {
                        lakests_core::store::StoreError::AlreadyExists(format!("policy {:?}", policy.name))
                    } else {
                        self.db(e)
                    }
                })?;
                Ok(())
            }

            async fn update_policy(
                &self,
                policy: &lakests_core::directory::PolicyRecord,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("UPDATE policies SET statement = $1, acl = $2 WHERE name = $3")
                    .bind(&policy.statement)
                    .bind(&policy.acl)
                    .bind(&policy.name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn get_policy(
                &self,
                name: &str,
            ) -> Result<Option<lakests_core::directory::PolicyRecord>, lakests_core::store::StoreError> {
                let row: Option<crate::directory::PolicyRow> = sqlx::query_as(
                    "SELECT name, statement, acl, created_at FROM policies WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(row.map(crate::directory::policy_from_row))
            }

            async fn delete_policy(&self, name: &str) -> Result<bool, lakests_core::store::StoreError> {
                // Attachments go with it: ON DELETE CASCADE, one statement.
                let done = sqlx::query("DELETE FROM policies WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_policies(
                &self,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::PolicyRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::PolicyRow> = sqlx::query_as(concat!(
                    "SELECT name, statement, acl, created_at FROM policies \
                     WHERE substr(name, 1, length($1)) = $1 AND name", $c, " > $2 \
                     ORDER BY name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::policy_from_row).collect())
            }

            async fn attach_user_policy(
                &self,
                username: &str,
                policy: &str,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.require("user", "SELECT 1 FROM users WHERE username = $1", username).await?;
                self.require("policy", "SELECT 1 FROM policies WHERE name = $1", policy).await?;
                sqlx::query("INSERT INTO user_policies (username, policy_name) VALUES ($1, $2)")
                    .bind(username)
                    .bind(policy)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if crate::common::is_unique_violation(&e) {
                            lakests_core::store::StoreError::AlreadyExists(format!(
                                "attachment of policy {policy:?} to user {username:?}"
                            ))
                        } else {
                            self.link_error(e, "user or policy", username)
                        }
                    })?;
                Ok(())
            }

            async fn detach_user_policy(
                &self,
                username: &str,
                policy: &str,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM user_policies WHERE username = $1 AND policy_name = $2")
                    .bind(username)
                    .bind(policy)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_user_policies(
                &self,
                username: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::PolicyRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::PolicyRow> = sqlx::query_as(concat!(
                    "SELECT p.name, p.statement, p.acl, p.created_at FROM policies p \
                     JOIN user_policies a ON a.policy_name = p.name \
                     WHERE a.username = $4 AND substr(p.name, 1, length($1)) = $1 \
                     AND p.name", $c, " > $2 ORDER BY p.name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::policy_from_row).collect())
            }

            async fn list_effective_policies(
                &self,
                username: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::PolicyRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::PolicyRow> = sqlx::query_as(concat!(
                    "SELECT p.name, p.statement, p.acl, p.created_at FROM policies p \
                     WHERE p.name IN ( \
                        SELECT a.policy_name FROM user_policies a WHERE a.username = $4 \
                        UNION \
                        SELECT gp.policy_name FROM group_policies gp \
                        JOIN user_groups m ON m.group_name = gp.group_name WHERE m.username = $4) \
                     AND substr(p.name, 1, length($1)) = $1 \
                     AND p.name", $c, " > $2 ORDER BY p.name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::policy_from_row).collect())
            }

            async fn attach_group_policy(
                &self,
                group: &str,
                policy: &str,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.require("group", "SELECT 1 FROM groups WHERE name = $1", group).await?;
                self.require("policy", "SELECT 1 FROM policies WHERE name = $1", policy).await?;
                sqlx::query("INSERT INTO group_policies (group_name, policy_name) VALUES ($1, $2)")
                    .bind(group)
                    .bind(policy)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if crate::common::is_unique_violation(&e) {
                            lakests_core::store::StoreError::AlreadyExists(format!(
                                "attachment of policy {policy:?} to group {group:?}"
                            ))
                        } else {
                            self.link_error(e, "group or policy", group)
                        }
                    })?;
                Ok(())
            }

            async fn detach_group_policy(
                &self,
                group: &str,
                policy: &str,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM group_policies WHERE group_name = $1 AND policy_name = $2")
                    .bind(group)
                    .bind(policy)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_group_policies(
                &self,
                group: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::PolicyRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::directory::PolicyRow> = sqlx::query_as(concat!(
                    "SELECT p.name, p.statement, p.acl, p.created_at FROM policies p \
                     JOIN group_policies a ON a.policy_name = p.name \
                     WHERE a.group_name = $4 AND substr(p.name, 1, length($1)) = $1 \
                     AND p.name", $c, " > $2 ORDER BY p.name", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(group)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::policy_from_row).collect())
            }

            async fn create_credential(
                &self,
                credential: &lakests_core::directory::CredentialRecord,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.require("user", "SELECT 1 FROM users WHERE username = $1", &credential.username)
                    .await?;
                sqlx::query(
                    "INSERT INTO credentials (access_key_id, username, sealed_secret, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&credential.access_key_id)
                .bind(&credential.username)
                .bind(&credential.sealed_secret)
                .bind(credential.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    if crate::common::is_unique_violation(&e) {
                        lakests_core::store::StoreError::AlreadyExists(format!(
                            "access key {:?}",
                            credential.access_key_id
                        ))
                    } else {
                        self.link_error(e, "user", &credential.username)
                    }
                })?;
                Ok(())
            }

            async fn get_credential(
                &self,
                access_key_id: &str,
            ) -> Result<Option<lakests_core::directory::CredentialRecord>, lakests_core::store::StoreError>
            {
                let row: Option<crate::directory::CredentialRow> = sqlx::query_as(
                    "SELECT access_key_id, username, sealed_secret, created_at FROM credentials \
                     WHERE access_key_id = $1",
                )
                .bind(access_key_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(row.map(crate::directory::credential_from_row))
            }

            async fn delete_credential(
                &self,
                username: &str,
                access_key_id: &str,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM credentials WHERE username = $1 AND access_key_id = $2")
                    .bind(username)
                    .bind(access_key_id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_user_credentials(
                &self,
                username: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::CredentialRecord>, lakests_core::store::StoreError>
            {
                let rows: Vec<crate::directory::CredentialRow> = sqlx::query_as(concat!(
                    "SELECT access_key_id, username, sealed_secret, created_at FROM credentials \
                     WHERE username = $4 AND substr(access_key_id, 1, length($1)) = $1 \
                     AND access_key_id", $c, " > $2 ORDER BY access_key_id", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::credential_from_row).collect())
            }

            async fn create_external_principal(
                &self,
                principal: &lakests_core::directory::ExternalPrincipalRecord,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.require("user", "SELECT 1 FROM users WHERE username = $1", &principal.username)
                    .await?;
                sqlx::query("INSERT INTO external_principals (id, username) VALUES ($1, $2)")
                    .bind(&principal.id)
                    .bind(&principal.username)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if crate::common::is_unique_violation(&e) {
                            lakests_core::store::StoreError::AlreadyExists(format!(
                                "external principal {:?}",
                                principal.id
                            ))
                        } else {
                            self.link_error(e, "user", &principal.username)
                        }
                    })?;
                Ok(())
            }

            async fn get_external_principal(
                &self,
                id: &str,
            ) -> Result<Option<lakests_core::directory::ExternalPrincipalRecord>, lakests_core::store::StoreError>
            {
                let row: Option<crate::directory::PrincipalRow> =
                    sqlx::query_as("SELECT id, username FROM external_principals WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| self.db(e))?;
                Ok(row.map(crate::directory::principal_from_row))
            }

            async fn delete_external_principal(
                &self,
                username: &str,
                id: &str,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM external_principals WHERE username = $1 AND id = $2")
                    .bind(username)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_user_external_principals(
                &self,
                username: &str,
                page: &lakests_core::directory::Page,
            ) -> Result<Vec<lakests_core::directory::ExternalPrincipalRecord>, lakests_core::store::StoreError>
            {
                let rows: Vec<crate::directory::PrincipalRow> = sqlx::query_as(concat!(
                    "SELECT id, username FROM external_principals \
                     WHERE username = $4 AND substr(id, 1, length($1)) = $1 \
                     AND id", $c, " > $2 ORDER BY id", $c, " LIMIT $3"
                ))
                .bind(&page.prefix)
                .bind(&page.after)
                .bind(crate::directory::limit(page))
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::directory::principal_from_row).collect())
            }

            async fn claim_token_id(
                &self,
                token_id: &str,
                expires_at: i64,
                now: i64,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
                sqlx::query("DELETE FROM claimed_token_ids WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db(e))?;
                let done = sqlx::query(
                    "INSERT INTO claimed_token_ids (token_id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (token_id) DO NOTHING",
                )
                .bind(token_id)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
                tx.commit().await.map_err(|e| self.db(e))?;
                Ok(done.rows_affected() == 1)
            }
        }

        impl $store {
            /// `Ok` when `sql` (one `$1` parameter) finds a row, else NotFound naming `what`.
            async fn require(
                &self,
                what: &str,
                sql: &'static str,
                name: &str,
            ) -> Result<(), lakests_core::store::StoreError> {
                let found: Option<(i32,)> = sqlx::query_as(sql)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                match found {
                    Some(_) => Ok(()),
                    None => Err(crate::directory::not_found(what, name)),
                }
            }

            /// A foreign key violation (a concurrent removal) is NotFound; anything else a
            /// backend error.
            fn link_error(
                &self,
                e: sqlx::Error,
                what: &str,
                name: &str,
            ) -> lakests_core::store::StoreError {
                if crate::directory::is_foreign_key_violation(&e) {
                    crate::directory::not_found(what, name)
                } else {
                    self.db(e)
                }
            }
        }
    };
}

pub(crate) use directory_impl;
