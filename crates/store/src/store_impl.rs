//! The [`Store`](lakests_core::store::Store) methods both backends share, written once: the
//! same SQL runs on SQLite and PostgreSQL (`$n` placeholders, `ON CONFLICT`, `RETURNING`).
//! What differs is passed in: the name of the two-argument maximum (`MAX` in SQLite,
//! `GREATEST` in PostgreSQL). The backend type provides `pool`, `audit_pool` (where the
//! login audit lives: the same pool on PostgreSQL, a file of its own on SQLite), `audit` (its
//! writer: [`crate::audit::AuditWriter`] on PostgreSQL, `crate::sqlite_audit::InlineAudit` on
//! SQLite, both with `append`), `purge_audit`, `db` and `audit_failed` (its error mappings), as
//! for [`crate::directory`].

macro_rules! store_impl {
    ($store:ty, greatest = $greatest:literal) => {
        #[async_trait::async_trait]
        impl lakests_core::store::Store for $store {
            async fn ping(&self) -> Result<(), lakests_core::store::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(())
            }

            async fn create_user(&self, user: &lakests_core::store::UserRecord) -> Result<(), lakests_core::store::StoreError> {
                self.create_directory_user(&lakests_core::directory::DirectoryUser {
                    user: user.clone(),
                    source: None,
                })
                .await
            }

            async fn get_user(&self, username: &str) -> Result<Option<lakests_core::store::UserRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::common::UserRow> = sqlx::query_as(
                    "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
                     FROM users u LEFT JOIN user_groups g ON g.username = u.username \
                     WHERE u.username = $1",
                )
                .bind(username)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::common::fold_one_user(rows))
            }

            async fn find_user_by_external_id(
                &self,
                external_id: &str,
            ) -> Result<Option<lakests_core::store::UserRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::common::UserRow> = sqlx::query_as(
                    "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
                     FROM users u LEFT JOIN user_groups g ON g.username = u.username \
                     WHERE u.external_id = $1",
                )
                .bind(external_id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::common::fold_one_user(rows))
            }

            async fn list_users(&self) -> Result<Vec<lakests_core::store::UserRecord>, lakests_core::store::StoreError> {
                let rows: Vec<crate::common::UserRow> = sqlx::query_as(
                    "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
                     FROM users u LEFT JOIN user_groups g ON g.username = u.username",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::common::fold_users(rows))
            }

            async fn delete_user(&self, username: &str) -> Result<bool, lakests_core::store::StoreError> {
                // user_groups rows go with it: ON DELETE CASCADE.
                let done = sqlx::query("DELETE FROM users WHERE username = $1")
                    .bind(username)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_friendly_name(
                &self,
                username: &str,
                friendly_name: Option<&str>,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("UPDATE users SET friendly_name = $1 WHERE username = $2")
                    .bind(friendly_name)
                    .bind(username)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn removed_identity(
                &self,
                external_id: &str,
            ) -> Result<Option<lakests_core::store::RemovedIdentity>, lakests_core::store::StoreError> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT external_id, username, removed_at FROM removed_identities WHERE external_id = $1",
                )
                .bind(external_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(row.map(crate::common::removed_identity_from_row))
            }

            async fn list_removed_identities(&self) -> Result<Vec<lakests_core::store::RemovedIdentity>, lakests_core::store::StoreError> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT external_id, username, removed_at FROM removed_identities ORDER BY external_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(rows.into_iter().map(crate::common::removed_identity_from_row).collect())
            }

            async fn readmit_identity(&self, external_id: &str) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM removed_identities WHERE external_id = $1")
                    .bind(external_id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn append_audit(
                &self,
                record: &lakests_core::store::LoginAudit,
            ) -> Result<(), lakests_core::store::StoreError> {
                self.audit.append(record).await.map_err(|e| self.audit_failed(e))
            }

            fn checks_generation_in_audit(&self) -> bool {
                self.audit.checks_generation()
            }

            async fn append_audit_if_unchanged(
                &self,
                record: &lakests_core::store::LoginAudit,
                generation: u64,
            ) -> Result<bool, lakests_core::store::StoreError> {
                self.audit
                    .append_if_unchanged(record, generation)
                    .await
                    .map_err(|e| self.audit_failed(e))
            }

            async fn list_audit(&self, limit: u32) -> Result<Vec<lakests_core::store::LoginAudit>, lakests_core::store::StoreError> {
                let rows: Vec<crate::common::AuditRow> = sqlx::query_as(
                    "SELECT at, outcome, reason, external_id, username, client_addr, request_id \
                     FROM login_audit ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.audit_pool)
                .await
                .map_err(|e| self.db(e))?;
                rows.into_iter().map(crate::common::audit_from_row).collect()
            }

            async fn put_grant(&self, grant: &lakests_core::store::Grant) -> Result<(), lakests_core::store::StoreError> {
                sqlx::query("INSERT INTO grants (kind, key, payload, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(&grant.kind)
                    .bind(&grant.key)
                    .bind(&grant.payload)
                    .bind(grant.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if crate::common::is_unique_violation(&e) {
                            crate::common::grant_exists(&grant.kind)
                        } else {
                            self.db(e)
                        }
                    })?;
                Ok(())
            }

            async fn take_grant(
                &self,
                kind: &str,
                key: &str,
                now: i64,
            ) -> Result<Option<lakests_core::store::Grant>, lakests_core::store::StoreError> {
                // One statement deletes and returns; a concurrent taker blocks on the row lock and then
                // finds the row gone, so only one caller (on any replica) gets it.
                let row: Option<crate::common::GrantRow> = sqlx::query_as(
                    "DELETE FROM grants WHERE kind = $1 AND key = $2 RETURNING kind, key, payload, expires_at",
                )
                .bind(kind)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(crate::common::live_grant(row, now))
            }

            async fn purge_expired_grants(&self, now: i64) -> Result<u64, lakests_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM grants WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                Ok(done.rows_affected())
            }

            async fn purge_audit_before(&self, before: i64) -> Result<u64, lakests_core::store::StoreError> {
                self.purge_audit(before).await
            }

            async fn revoke_user_tokens(
                &self,
                username: &str,
                issued_up_to: i64,
            ) -> Result<(), lakests_core::store::StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO revoked_users (username, revoked_up_to) VALUES ($1, $2) \
                     ON CONFLICT (username) DO UPDATE SET revoked_up_to = ",
                    $greatest,
                    "(revoked_users.revoked_up_to, EXCLUDED.revoked_up_to)"
                ))
                .bind(username)
                .bind(issued_up_to)
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(())
            }

            async fn revoke_token(&self, jti: &str, revoked_at: i64) -> Result<bool, lakests_core::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO revoked_tokens (jti, revoked_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(revoked_at)
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn is_token_revoked(
                &self,
                username: &str,
                jti: &str,
                issued_at: i64,
            ) -> Result<bool, lakests_core::store::StoreError> {
                let revoked: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) \
                     OR EXISTS (SELECT 1 FROM revoked_users WHERE username = $2 AND revoked_up_to >= $3)",
                )
                .bind(jti)
                .bind(username)
                .bind(issued_at)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
                Ok(revoked)
            }
        }
    };
}

pub(crate) use store_impl;
