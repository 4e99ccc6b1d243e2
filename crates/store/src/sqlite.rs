//! The embedded SQLite backend: one file, WAL journal (concurrent readers, serialized
//! writers), foreign keys on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lakests_core::directory::Directory;
use lakests_core::store::{StoreError, UserRecord};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::audit::AuditFailure;
use crate::common::{backend, backend_msg, external_id_exists, user_exists};
use crate::sqlite_audit::InlineAudit;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static AUDIT_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite-audit");

/// Connections in the pool. WAL lets readers run beside the one writer; writers queue on the
/// busy timeout, so more connections than this buys nothing for a login service.
const MAX_CONNECTIONS: u32 = 8;

/// sqlx connections to the audit log, for reading it (`lakests audit`); records are written
/// by [`InlineAudit`]'s own connection.
const AUDIT_CONNECTIONS: u32 = 2;

/// The [`Store`] on an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The login audit log, in a file of its own ([`SqliteStore::audit_path`]).
    audit_pool: SqlitePool,
    audit: InlineAudit,
}

impl SqliteStore {
    /// Opens (creating on first run, with its parent directory) the database file at `path`
    /// and runs the migrations. A file this creates is readable by its owner only (0600): it
    /// holds the user directory. `busy_timeout` is how long a writer waits for the lock.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let pool = open_file(
            path,
            "SQLite database",
            None,
            busy_timeout,
            MAX_CONNECTIONS,
            &MIGRATOR,
        )
        .await?;
        let audit_file = Self::audit_path(path);
        let audit_pool = open_file(
            &audit_file,
            "the SQLite audit log",
            Some(path),
            busy_timeout,
            AUDIT_CONNECTIONS,
            &AUDIT_MIGRATOR,
        )
        .await?;
        let shown = audit_file.display();
        move_old_audit(&pool, &audit_file).await.map_err(|e| {
            backend_msg(format!(
                "moving the login audit of {} into {shown}: {e}",
                path.display()
            ))
        })?;
        let audit = InlineAudit::open(&audit_file, busy_timeout)
            .map_err(|e| backend_msg(format!("opening the SQLite audit log {shown}: {e}")))?;
        Ok(SqliteStore {
            pool,
            audit_pool,
            audit,
        })
    }

    /// Where the login audit log of the database at `path` lives: beside it, the file's stem
    /// with `-audit` (`lakests.db` keeps its audit in `lakests-audit.db`).
    pub fn audit_path(path: &Path) -> PathBuf {
        let mut name = path.file_stem().unwrap_or_default().to_os_string();
        name.push("-audit");
        if let Some(extension) = path.extension() {
            name.push(".");
            name.push(extension);
        }
        path.with_file_name(name)
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
        self.audit_pool.close().await;
    }

    fn db(&self, error: sqlx::Error) -> StoreError {
        backend(error)
    }

    /// Deletes the audit records older than `before`, in short chunks beside the logins.
    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        self.audit.purge_before(before).await.map_err(backend_msg)
    }

    fn audit_failed(&self, failure: AuditFailure) -> StoreError {
        match failure {
            AuditFailure::Database(message) => backend_msg(message),
            AuditFailure::Stopped => backend_msg("the audit writer has stopped"),
        }
    }

    fn user_conflict(&self, error: sqlx::Error, user: &UserRecord) -> StoreError {
        user_conflict(error, user)
    }
}

crate::directory::directory_impl!(SqliteStore, "");

/// Creates (see [`create_private_file`]), connects to and migrates the SQLite file at `path`;
/// errors name it as `what` and the path.
async fn open_file(
    path: &Path,
    what: &str,
    like: Option<&Path>,
    busy_timeout: Duration,
    max: u32,
    migrator: &Migrator,
) -> Result<SqlitePool, StoreError> {
    let shown = path.display();
    create_private_file(path, like)
        .map_err(|e| backend_msg(format!("creating {what} {shown}: {e}")))?;
    let pool = connect(path, busy_timeout, max)
        .await
        .map_err(|e| backend_msg(format!("opening {what} {shown}: {e}")))?;
    migrator
        .run(&pool)
        .await
        .map_err(|e| backend_msg(format!("migrating {what} {shown}: {e}")))?;
    Ok(pool)
}

/// A pool on the SQLite file at `path`: WAL journal, `synchronous = NORMAL` (a commit is
/// durable once the WAL is synced at a checkpoint; an application crash loses nothing).
async fn connect(path: &Path, busy_timeout: Duration, max: u32) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(busy_timeout);
    SqlitePoolOptions::new()
        .max_connections(max)
        // A pooled SQLite connection is a file handle in this process: checking it before
        // each use only cost a round trip to its worker thread (two context switches per
        // query on the login path; perf, bench/NOTES.md).
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// Databases made before the audit log had a file of its own keep their records in the main
/// file's `login_audit`: they move into the audit log (ids kept, so that a move interrupted
/// and run again copies nothing twice) and the old table goes, in one transaction per file.
async fn move_old_audit(pool: &SqlitePool, audit_file: &Path) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if !has_old_audit(&mut conn).await? {
        return Ok(());
    }
    let file = audit_file.to_str().ok_or_else(|| {
        sqlx::Error::Configuration("the audit log's path is not valid UTF-8".into())
    })?;
    sqlx::query("ATTACH DATABASE $1 AS audit")
        .bind(file)
        .execute(&mut *conn)
        .await?;
    let moved = move_rows(&mut conn).await;
    let detached = sqlx::query("DETACH DATABASE audit")
        .execute(&mut *conn)
        .await;
    moved?;
    detached?;
    Ok(())
}

async fn move_rows(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    // Again inside the transaction: another process may have moved them meanwhile.
    if !has_old_audit(&mut tx).await? {
        return Ok(());
    }
    sqlx::query(
        "INSERT OR IGNORE INTO audit.login_audit \
         (id, at, outcome, reason, external_id, username, client_addr, request_id) \
         SELECT id, at, outcome, reason, external_id, username, client_addr, request_id \
         FROM main.login_audit",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("DROP TABLE main.login_audit")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn has_old_audit(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'login_audit')",
    )
    .fetch_one(conn)
    .await
}

/// Creates the parent directories (0700) and the file unless they exist: with mode 0600, or,
/// when `like` names an existing file, with that file's mode (the audit log is as private as
/// its database). SQLite gives its `-wal` and `-shm` files the mode of the database file.
fn create_private_file(path: &Path, like: Option<&Path>) -> std::io::Result<()> {
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
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match like.map(std::fs::metadata) {
            Some(Ok(meta)) => meta.permissions().mode() & 0o666,
            _ => 0o600,
        };
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, mode);
    }
    #[cfg(not(unix))]
    let _ = like;
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

crate::store_impl::store_impl!(SqliteStore, greatest = "MAX");
