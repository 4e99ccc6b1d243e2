//! The embedded SQLite backend: one file, WAL journal (concurrent readers, serialized
//! writers), foreign keys on.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lakests_core::directory::{Directory, DirectoryUser};
use lakests_core::store::{Grant, LoginAudit, RemovedIdentity, Store, StoreError, UserRecord};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::common::{
    AuditRow, GrantRow, UserRow, audit_from_row, backend, backend_msg, external_id_exists,
    fold_one_user, fold_users, grant_exists, is_unique_violation, live_grant,
    removed_identity_from_row, user_exists,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections in the pool. WAL lets readers run beside the one writer; writers queue on the
/// busy timeout, so more connections than this buys nothing for a login service.
const MAX_CONNECTIONS: u32 = 8;

/// The [`Store`] on an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating on first run, with its parent directory) the database file at `path`
    /// and runs the migrations. A file this creates is readable by its owner only (0600): it
    /// holds the user directory. `busy_timeout` is how long a writer waits for the lock.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let shown = path.display();
        create_private_file(path)
            .map_err(|e| backend_msg(format!("creating SQLite database {shown}: {e}")))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A pooled SQLite connection is a file handle in this process: checking it before
            // each use only cost a round trip to its worker thread (two context switches per
            // query on the login path; perf, bench/NOTES.md).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| backend_msg(format!("opening SQLite database {shown}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| backend_msg(format!("migrating SQLite database {shown}: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn db(&self, error: sqlx::Error) -> StoreError {
        backend(error)
    }

    fn user_conflict(&self, error: sqlx::Error, user: &UserRecord) -> StoreError {
        user_conflict(error, user)
    }
}

crate::directory::directory_impl!(SqliteStore, "");

/// Creates the parent directories (0700) and the file (0600) unless they exist. SQLite gives
/// its `-wal` and `-shm` files the mode of the database file.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(parent)?;
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Which unique key of `users` a violation is about; SQLite names it in the message
/// (`UNIQUE constraint failed: users.external_id`).
fn user_conflict(error: sqlx::Error, user: &UserRecord) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            if db.message().contains("users.external_id") {
                external_id_exists(user.external_id.as_deref())
            } else {
                user_exists(&user.username)
            }
        }
        _ => backend(error),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
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
             WHERE u.username = ?",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(fold_one_user(rows))
    }

    async fn find_user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
             FROM users u LEFT JOIN user_groups g ON g.username = u.username \
             WHERE u.external_id = ?",
        )
        .bind(external_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(fold_one_user(rows))
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.username, u.external_id, u.email, u.friendly_name, u.created_at, g.group_name \
             FROM users u LEFT JOIN user_groups g ON g.username = u.username",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(fold_users(rows))
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        // user_groups rows go with it: ON DELETE CASCADE, foreign keys are on.
        let done = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_friendly_name(
        &self,
        username: &str,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET friendly_name = ? WHERE username = ?")
            .bind(friendly_name)
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
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
        .map_err(backend)?;
        Ok(row.map(removed_identity_from_row))
    }

    async fn list_removed_identities(&self) -> Result<Vec<RemovedIdentity>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT external_id, username, removed_at FROM removed_identities ORDER BY external_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(removed_identity_from_row).collect())
    }

    async fn readmit_identity(&self, external_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM removed_identities WHERE external_id = $1")
            .bind(external_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_audit(&self, record: &LoginAudit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(record.at)
        .bind(record.outcome.as_str())
        .bind(&record.reason)
        .bind(&record.external_id)
        .bind(&record.username)
        .bind(&record.client_addr)
        .bind(&record.request_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<LoginAudit>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, outcome, reason, external_id, username, client_addr, request_id \
             FROM login_audit ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(audit_from_row).collect()
    }

    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO grants (kind, key, payload, expires_at) VALUES (?, ?, ?, ?)")
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
                    backend(e)
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
        // One statement deletes and returns: of concurrent takers only one sees the row.
        let row: Option<GrantRow> = sqlx::query_as(
            "DELETE FROM grants WHERE kind = ? AND key = ? RETURNING kind, key, payload, expires_at",
        )
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(live_grant(row, now))
    }

    async fn purge_expired_grants(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM grants WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn purge_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_audit WHERE at < ?")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn revoke_user_tokens(
        &self,
        username: &str,
        issued_up_to: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_users (username, revoked_up_to) VALUES (?, ?) \
             ON CONFLICT (username) DO UPDATE SET revoked_up_to = \
             MAX(revoked_users.revoked_up_to, excluded.revoked_up_to)",
        )
        .bind(username)
        .bind(issued_up_to)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn revoke_token(&self, jti: &str, revoked_at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, revoked_at) VALUES (?, ?) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(revoked_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn is_token_revoked(
        &self,
        username: &str,
        jti: &str,
        issued_at: i64,
    ) -> Result<bool, StoreError> {
        let revoked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) \
             OR EXISTS (SELECT 1 FROM revoked_users WHERE username = ? AND revoked_up_to >= ?)",
        )
        .bind(jti)
        .bind(username)
        .bind(issued_at)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(revoked)
    }
}
