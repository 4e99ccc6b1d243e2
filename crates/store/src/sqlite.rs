//! The embedded SQLite backend: one file, WAL journal (concurrent readers, serialized
//! writers), foreign keys on.

use std::path::Path;
use std::time::Duration;

use lakests_core::directory::Directory;
use lakests_core::store::{StoreError, UserRecord};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::common::{backend, backend_msg, external_id_exists, user_exists};

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

crate::store_impl::store_impl!(SqliteStore, greatest = "MAX", {
    async fn append_audit(
        &self,
        record: &lakests_core::store::LoginAudit,
    ) -> Result<(), lakests_core::store::StoreError> {
        sqlx::query(
            "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        .map_err(|e| self.db(e))?;
        Ok(())
    }
});
