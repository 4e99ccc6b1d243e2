//! SQLite's login audit writer: the login's own task writes its record, with no thread hop.
//!
//! sqlx's SQLite driver runs every statement on a worker thread of its connection, so each
//! audit write cost two thread wake-ups (there and back) on top of the work: perf and
//! `lakests-bench login` put the STS server at 2.0 context switches per login with the audit and
//! 0.8 without it, and its CPU per login 40-80 µs higher (bench/NOTES.md, issue 14). Here one
//! rusqlite connection to the audit file, behind a mutex, is written by whichever login gets
//! it; logins arriving while it writes leave their records and wait, and the writer writes
//! those too before it lets go (group commit: one transaction for all of them). A login
//! leaves its record and yields twice before it writes, so that logins running beside it join
//! the commit. Nothing in the write awaits, so a cancelled login cannot leave the connection
//! half-used, and a record handed over is written even if its login is gone (then at once).
//!
//! What could block a runtime thread, and why it does not: the audit file has no other
//! writer (checkpoints and retention run on blocking threads holding this same connection,
//! retention in short chunks, and readers never block a WAL writer); a write is a WAL append
//! without fsync (`synchronous = NORMAL`), SQLite's automatic checkpoint (with its fsyncs) is
//! off on this connection and done every [`CHECKPOINT_EVERY`] commits on a blocking thread.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use lakests_core::store::LoginAudit;
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::oneshot;

use crate::audit::AuditFailure;
use crate::redact::chain;

/// A record waiting for its commit, with the caller to tell.
type Pending = (LoginAudit, oneshot::Sender<Result<(), String>>);

/// Most records one transaction writes before the connection is offered again.
const BATCH: usize = 256;

/// Times a login yields after leaving its record, before it writes the records pending.
const LINGER_YIELDS: usize = 2;

/// Commits between two checkpoints. A commit of one record appends about three pages to the
/// WAL (the table's and its indexes'), so this is near SQLite's own default of 1,000 pages;
/// SQLite's automatic checkpoint, done by the committing connection with its fsyncs, is off.
const CHECKPOINT_EVERY: u32 = 250;

/// A WAL larger than this is truncated at the next checkpoint. A complete PASSIVE checkpoint
/// lets the next write start the WAL over, but not always (seen in CI: 27 MB after 5,000
/// one-record commits; the file size only, every frame was checkpointed): the truncation bounds
/// the file whatever the reason.
const TRUNCATE_WAL_ABOVE: u64 = 16 * 1024 * 1024;

/// Rows one retention chunk deletes while holding the connection.
const PURGE_CHUNK: i64 = 2_000;

/// The handle of the audit writer; clones share it.
#[derive(Clone)]
pub(crate) struct InlineAudit {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InlineAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineAudit").finish_non_exhaustive()
    }
}

struct Inner {
    conn: Mutex<Connection>,
    /// The audit file's WAL, whose size decides the checkpoint's mode.
    wal: std::path::PathBuf,
    /// The connection's busy timeout, restored after a truncating checkpoint (which does not
    /// wait for readers).
    busy_timeout: Duration,
    pending: Mutex<Vec<Pending>>,
    /// Commits since the last checkpoint was started.
    commits: AtomicU32,
    checkpointing: AtomicBool,
    /// Blocking holders (a checkpoint, a retention chunk) waiting for the connection or holding
    /// it: while there is one, logins leave their records to it instead of taking the
    /// connection, so that a steady stream of logins cannot starve it (a mutex is not fair).
    blocking: AtomicUsize,
}

/// A poisoned lock still holds a usable connection or list: nothing in them is left half-done
/// by a panic (a transaction not committed is rolled back when it is dropped).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl InlineAudit {
    /// Opens the writer connection to the audit file at `path` (created and migrated).
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(4);
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                wal: {
                    let mut wal = path.as_os_str().to_owned();
                    wal.push("-wal");
                    wal.into()
                },
                busy_timeout,
                pending: Mutex::new(Vec::new()),
                commits: AtomicU32::new(0),
                checkpointing: AtomicBool::new(false),
                blocking: AtomicUsize::new(0),
            }),
        })
    }

    /// Appends `record`, returning once it is committed.
    /// SQLite's generation is not a row the audit write could check (it is read from the
    /// file's change feed, cheaply): logins look their user up checked.
    pub(crate) fn checks_generation(&self) -> bool {
        false
    }

    /// Never called (see [`Self::checks_generation`]): writes nothing.
    pub(crate) async fn append_if_unchanged(
        &self,
        _record: &LoginAudit,
        _generation: u64,
    ) -> Result<bool, AuditFailure> {
        Ok(false)
    }

    pub(crate) async fn append(&self, record: &LoginAudit) -> Result<(), AuditFailure> {
        let (reply, committed) = oneshot::channel();
        lock(&self.inner.pending).push((record.clone(), reply));
        {
            // Written when this guard goes: after the yields, or at once if the login is
            // dropped meanwhile (a record handed over is written even if its login is gone).
            let _write = WriteOnDrop(&self.inner);
            // Logins running on this thread reach their own audit write during the yields and
            // write this record with theirs: one commit for several. Measured (paired partial
            // runs, ES256): 1.1 -> 2.7 records per commit, the STS server's CPU per login about
            // 5 µs lower; more yields batched no more and switched context more often.
            for _ in 0..LINGER_YIELDS {
                tokio::task::yield_now().await;
            }
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AuditFailure::Database(message)),
            Err(_) => Err(AuditFailure::Stopped),
        }
    }

    /// Deletes the records older than `before` (unix seconds), in chunks on a blocking thread;
    /// logins waiting meanwhile are written between chunks. Returns how many went.
    pub(crate) async fn purge_before(&self, before: i64) -> Result<u64, String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.purge_before(before))
            .await
            .map_err(|_| "the audit retention task failed".to_owned())?
    }
}

/// Writes the pending records when dropped (see [`InlineAudit::append`]).
struct WriteOnDrop<'a>(&'a Arc<Inner>);

impl Drop for WriteOnDrop<'_> {
    fn drop(&mut self) {
        self.0.write_pending();
    }
}

impl Inner {
    /// Writes every pending record unless another caller holds the connection, in which case
    /// that caller writes them before letting go (it looks again after letting go, so a record
    /// left while it was letting go is not forgotten).
    fn write_pending(self: &Arc<Self>) {
        loop {
            // A blocking holder is waiting or writing: it writes what is pending when it has
            // the connection, and looks again after it lets go.
            if self.blocking.load(Ordering::SeqCst) > 0 {
                return;
            }
            let mut conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            self.drain(&mut conn, false);
            drop(conn);
            if lock(&self.pending).is_empty() {
                return;
            }
        }
    }

    /// Writes the pending records, a transaction per [`BATCH`], until none is left, or, for a
    /// login (`blocking_holder` false), until a blocking holder waits: it writes the rest.
    fn drain(self: &Arc<Self>, conn: &mut Connection, blocking_holder: bool) {
        loop {
            if !blocking_holder && self.blocking.load(Ordering::SeqCst) > 0 {
                return;
            }
            let batch: Vec<Pending> = {
                let mut pending = lock(&self.pending);
                let n = pending.len().min(BATCH);
                pending.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            let (records, replies): (Vec<LoginAudit>, Vec<_>) = batch.into_iter().unzip();
            let done = insert(conn, &records).map_err(|e| chain(&e));
            if done.is_ok() {
                self.after_commit();
            }
            for reply in replies {
                let _ = reply.send(done.clone());
            }
        }
    }

    /// Every [`CHECKPOINT_EVERY`] commits, one checkpoint at a time on a blocking thread: it
    /// holds the connection (so no write runs beside it and the WAL starts over at the next
    /// write), copies the WAL back into the file, and writes what arrived meanwhile.
    fn after_commit(self: &Arc<Self>) {
        if self.commits.fetch_add(1, Ordering::Relaxed) + 1 < CHECKPOINT_EVERY {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.commits.store(0, Ordering::Relaxed);
        // Logins defer to the checkpoint from now on, not from when its thread starts: on a
        // busy machine that start can take longer than hundreds of commits.
        let waiting = self.wait_for_connection();
        runtime.spawn_blocking(move || {
            let inner = waiting.0.clone();
            waiting.hold(|conn| {
                let large =
                    std::fs::metadata(&inner.wal).is_ok_and(|m| m.len() > TRUNCATE_WAL_ABOVE);
                let done = if large {
                    // Without waiting for readers (the CLI listing the log): busy now means
                    // the next checkpoint tries again.
                    let _ = conn.busy_timeout(Duration::ZERO);
                    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    let _ = conn.busy_timeout(inner.busy_timeout);
                    done
                } else {
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                };
                if let Err(e) = done {
                    tracing::warn!(error = %chain(&e), "checkpoint of the audit log failed");
                }
                // Before the logins resume: a flag still set after they do would let hundreds
                // of commits pass before the next checkpoint could start.
                inner.checkpointing.store(false, Ordering::Release);
            });
        });
    }

    /// Runs `work` holding the connection, on a thread that may block (never a runtime
    /// thread): logins meanwhile leave their records, written here before letting go and by
    /// [`Self::write_pending`] after.
    fn holding<R>(self: &Arc<Self>, work: impl FnOnce(&mut Connection) -> R) -> R {
        self.wait_for_connection().hold(work)
    }

    /// Counts a blocking holder in (see [`Inner::blocking`]) until the returned guard is gone.
    fn wait_for_connection(self: &Arc<Self>) -> Waiting {
        self.blocking.fetch_add(1, Ordering::SeqCst);
        Waiting(self.clone())
    }

    fn purge_before(self: &Arc<Self>, before: i64) -> Result<u64, String> {
        let mut total = 0;
        loop {
            let deleted = self.holding(|conn| {
                conn.execute(
                    "DELETE FROM login_audit WHERE id IN \
                     (SELECT id FROM login_audit WHERE at < ?1 LIMIT ?2)",
                    params![before, PURGE_CHUNK],
                )
                .map_err(|e| chain(&e))
            })?;
            total += deleted as u64;
            if (deleted as i64) < PURGE_CHUNK {
                return Ok(total);
            }
        }
    }
}

/// A blocking holder counted in [`Inner::blocking`]: dropped (after its work, or unrun when the
/// runtime shuts down), it counts out and writes what the logins left meanwhile.
struct Waiting(Arc<Inner>);

impl Waiting {
    /// Takes the connection (blocking), runs `work`, writes what is pending, lets go.
    fn hold<R>(self, work: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = lock(&self.0.conn);
        let done = work(&mut conn);
        self.0.drain(&mut conn, true);
        drop(conn);
        done
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.blocking.fetch_sub(1, Ordering::SeqCst);
        self.0.write_pending();
    }
}

/// One transaction inserting `records`.
fn insert(conn: &mut Connection, records: &[LoginAudit]) -> Result<(), rusqlite::Error> {
    // BEGIN and COMMIT as cached statements: rusqlite's `Connection::transaction` sends them
    // through `execute_batch`, which parses their text for every commit (callgrind: about
    // 18,000 instructions of a 35,000-instruction audit write).
    conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let written = (|| {
        let mut statement = conn.prepare_cached(
            "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in records {
            statement.execute(params![
                r.at,
                r.outcome.as_str(),
                r.reason,
                r.external_id,
                r.username,
                r.client_addr,
                r.request_id,
            ])?;
        }
        drop(statement);
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    // A failed insert or commit leaves the transaction open: nothing of it is kept.
    if written.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakests_core::store::LoginOutcome;

    fn record(request_id: &str) -> LoginAudit {
        LoginAudit {
            at: 1_700_000_000,
            outcome: LoginOutcome::Success,
            reason: "ok".into(),
            external_id: None,
            username: None,
            client_addr: None,
            request_id: request_id.into(),
        }
    }

    #[tokio::test]
    async fn a_failed_write_leaves_no_transaction_open_and_nothing_of_its_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.db");
        let other = Connection::open(&path).expect("open");
        other
            .execute_batch(include_str!(
                "../migrations/sqlite-audit/0001_login_audit.sql"
            ))
            .expect("schema");
        let audit = InlineAudit::open(&path, Duration::from_secs(1)).expect("open audit");
        assert!(audit.append(&record("first")).await.is_ok());
        // The table goes away under the writer: its next write fails inside the transaction.
        other
            .execute_batch("ALTER TABLE login_audit RENAME TO hidden")
            .expect("rename");
        assert!(audit.append(&record("lost")).await.is_err());
        other
            .execute_batch("ALTER TABLE hidden RENAME TO login_audit")
            .expect("rename back");
        // A transaction left open by the failure would refuse this write's BEGIN.
        assert!(audit.append(&record("second")).await.is_ok());
        let mut statement = other
            .prepare("SELECT request_id FROM login_audit ORDER BY id")
            .expect("select");
        let ids: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(ids, ["first", "second"]);
    }
}
