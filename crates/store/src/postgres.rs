//! The PostgreSQL backend, for several replicas sharing one database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lakests_core::directory::{Directory, DirectoryUser};
use lakests_core::store::{Grant, LoginAudit, RemovedIdentity, Store, StoreError, UserRecord};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use url::Url;

use crate::common::{
    AuditRow, GrantRow, UserRow, audit_from_row, backend_msg, external_id_exists, fold_one_user,
    fold_users, grant_exists, is_unique_violation, live_grant, removed_identity_from_row,
    user_exists,
};
use crate::redact::{Redactor, chain};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    redactor: Redactor,
    audit: AuditWriter,
}

/// Login audit records waiting for their commit, with the caller to tell.
type AuditJob = (LoginAudit, tokio::sync::oneshot::Sender<Result<(), String>>);

/// Most records one audit `INSERT` carries.
const AUDIT_BATCH: usize = 64;

/// Group commit for login audit records: every login waits for its record's commit (a record
/// is never acknowledged before it is durable), but records that arrive while a commit is in
/// progress share the next one: one multi-row `INSERT` and one WAL flush for all of them
/// instead of one each. With logins in flight, that is most of PostgreSQL's work per login
/// (bench/NOTES.md, issue 14 target 3).
#[derive(Debug, Clone)]
struct AuditWriter {
    jobs: tokio::sync::mpsc::Sender<AuditJob>,
}

impl AuditWriter {
    fn start(pool: PgPool) -> AuditWriter {
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<AuditJob>(4 * AUDIT_BATCH);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < AUDIT_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                    "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) ",
                );
                insert.push_values(&batch, |mut row, (record, _)| {
                    row.push_bind(record.at)
                        .push_bind(record.outcome.as_str())
                        .push_bind(&record.reason)
                        .push_bind(&record.external_id)
                        .push_bind(&record.username)
                        .push_bind(&record.client_addr)
                        .push_bind(&record.request_id);
                });
                let done = insert
                    .build()
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| chain(&e));
                for (_, reply) in batch {
                    let _ = reply.send(done.clone());
                }
            }
        });
        AuditWriter { jobs }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`),
    /// with a pool of at most `max_connections`, waiting at most `connect_timeout` for a
    /// connection, and runs the migrations (replicas starting together take turns: sqlx holds
    /// an advisory lock while migrating). Error messages never contain the password.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<PostgresStore, StoreError> {
        // url's parse errors never quote the input, so the password cannot leak from here.
        let parsed = Url::parse(url)
            .map_err(|e| backend_msg(format!("invalid PostgreSQL connection URL: {e}")))?;
        let redactor = Redactor::for_url(&parsed);
        let target = describe(&parsed);
        let fail = |what: &str, error: &dyn std::error::Error| {
            backend_msg(redactor.redact(&format!("{what} PostgreSQL {target}: {}", chain(error))))
        };
        let options = PgConnectOptions::from_str(url).map_err(|e| fail("invalid URL for", &e))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(connect_timeout)
            .connect_with(options)
            .await
            .map_err(|e| {
                let timeout = humanize(connect_timeout);
                fail(&format!("connecting (timeout {timeout}) to"), &e)
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| fail("migrating", &e))?;
        let audit = AuditWriter::start(pool.clone());
        Ok(PostgresStore {
            pool,
            redactor,
            audit,
        })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn backend(&self, error: sqlx::Error) -> StoreError {
        self.redactor.backend(error)
    }

    fn db(&self, error: sqlx::Error) -> StoreError {
        self.backend(error)
    }

    /// Which unique key of `users` a violation is about, by constraint name (see the
    /// migration).
    fn user_conflict(&self, error: sqlx::Error, user: &UserRecord) -> StoreError {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                if db.constraint() == Some("users_external_id_key") {
                    external_id_exists(user.external_id.as_deref())
                } else {
                    user_exists(&user.username)
                }
            }
            _ => self.backend(error),
        }
    }
}

crate::directory::directory_impl!(PostgresStore, " COLLATE \"C\"");

/// Where the URL points, without its password: `at host:port/database as user`.
fn describe(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(default host)");
    let port = url.port().unwrap_or(5432);
    let database = url.path().trim_start_matches('/');
    let user = url.username();
    let mut text = format!("at {host}:{port}/{database}");
    if !user.is_empty() {
        text.push_str(&format!(" as {user}"));
    }
    text
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(())
    }

    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.create_directory_user(&DirectoryUser {
            user: user.clone(),
            source: None,
        })
        .await
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
             FROM users u LEFT JOIN user_groups g ON g.username = u.username \
             WHERE u.username = $1",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(fold_one_user(rows))
    }

    async fn find_user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
             FROM users u LEFT JOIN user_groups g ON g.username = u.username \
             WHERE u.external_id = $1",
        )
        .bind(external_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(fold_one_user(rows))
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
             FROM users u LEFT JOIN user_groups g ON g.username = u.username",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(fold_users(rows))
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        // user_groups rows go with it: ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_friendly_name(
        &self,
        username: &str,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET friendly_name = $1 WHERE username = $2")
            .bind(friendly_name)
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn removed_identity(
        &self,
        external_id: &str,
    ) -> Result<Option<RemovedIdentity>, StoreError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT external_id, username, removed_at FROM removed_identities WHERE external_id = $1",
        )
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(row.map(removed_identity_from_row))
    }

    async fn list_removed_identities(&self) -> Result<Vec<RemovedIdentity>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT external_id, username, removed_at FROM removed_identities ORDER BY external_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(rows.into_iter().map(removed_identity_from_row).collect())
    }

    async fn readmit_identity(&self, external_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM removed_identities WHERE external_id = $1")
            .bind(external_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_audit(&self, record: &LoginAudit) -> Result<(), StoreError> {
        let (reply, committed) = tokio::sync::oneshot::channel();
        self.audit
            .jobs
            .send((record.clone(), reply))
            .await
            .map_err(|_| backend_msg("the audit writer has stopped"))?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(backend_msg(self.redactor.redact(&e))),
            Err(_) => Err(backend_msg("the audit writer has stopped")),
        }
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<LoginAudit>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, outcome, reason, external_id, username, client_addr, request_id \
             FROM login_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        rows.into_iter().map(audit_from_row).collect()
    }

    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO grants (kind, key, payload, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&grant.kind)
            .bind(&grant.key)
            .bind(&grant.payload)
            .bind(grant.expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    grant_exists(&grant.kind)
                } else {
                    self.backend(e)
                }
            })?;
        Ok(())
    }

    async fn take_grant(
        &self,
        kind: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Grant>, StoreError> {
        // One statement deletes and returns; a concurrent taker blocks on the row lock and then
        // finds the row gone, so only one caller (on any replica) gets it.
        let row: Option<GrantRow> = sqlx::query_as(
            "DELETE FROM grants WHERE kind = $1 AND key = $2 RETURNING kind, key, payload, expires_at",
        )
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(live_grant(row, now))
    }

    async fn purge_expired_grants(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM grants WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected())
    }

    async fn purge_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_audit WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected())
    }

    async fn revoke_user_tokens(
        &self,
        username: &str,
        issued_up_to: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_users (username, revoked_up_to) VALUES ($1, $2) \
             ON CONFLICT (username) DO UPDATE SET revoked_up_to = \
             GREATEST(revoked_users.revoked_up_to, EXCLUDED.revoked_up_to)",
        )
        .bind(username)
        .bind(issued_up_to)
        .execute(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(())
    }

    async fn revoke_token(&self, jti: &str, revoked_at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, revoked_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(revoked_at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn is_token_revoked(
        &self,
        username: &str,
        jti: &str,
        issued_at: i64,
    ) -> Result<bool, StoreError> {
        let revoked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) \
             OR EXISTS (SELECT 1 FROM revoked_users WHERE username = $2 AND revoked_up_to >= $3)",
        )
        .bind(jti)
        .bind(username)
        .bind(issued_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.backend(e))?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_described_target_names_host_port_database_and_user_but_not_the_password() {
        let url = Url::parse("postgres://alice:hunter2@db.example/lakests")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&url), "at db.example:5432/lakests as alice");
    }
}
