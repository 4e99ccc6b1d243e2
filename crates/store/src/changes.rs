//! How each backend sees writes made by other processes, for the caches of
//! [`lakests_core::cache`]: a [`ChangeFeed`] per backend.
//!
//! - SQLite: the database's directory is watched with inotify (Linux). Every commit writes the
//!   write-ahead log, every writer closing the file (the CLI exiting) closes it for writing,
//!   and the kernel queues the event before the write returns; the feed drains the queue
//!   without blocking each time the generation is asked for, so a write by `lakests users
//!   remove` is seen by the very next request. Elsewhere, or if the watch cannot be set up,
//!   there is no feed and nothing is cached.
//! - PostgreSQL: the generation is a row of the database (`lakests_generation`, migration
//!   0005), moved at commit by every transaction that writes a cached table, whoever runs it
//!   (another replica, the CLI, psql). The feed reads it for every request that asks, over a
//!   connection of its own, one read at a time: a request waits for a read that *began after
//!   it asked*, shared with every request waiting at that moment, so a change committed before
//!   a request arrived is always seen, and the database answers one cheap query per round trip
//!   instead of one per request. When the read fails or times out the feed answers `None` (every
//!   read goes to the database).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lakests_core::cache::ChangeFeed;
use lakests_core::store::StoreError;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

use crate::common::backend_msg;
use crate::redact::{Redactor, chain};

#[cfg(target_os = "linux")]
pub use sqlite_feed::SqliteChanges;

#[cfg(target_os = "linux")]
mod sqlite_feed {
    use std::ffi::OsString;
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use lakests_core::cache::ChangeFeed;
    use rustix::fd::OwnedFd;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    /// Writes to one SQLite database file (and its `-wal`, `-journal` and `-shm` companions),
    /// seen through an inotify watch on its directory.
    pub struct SqliteChanges {
        generation: AtomicU64,
        /// Set for good when the watch is gone (the directory removed or moved): no more
        /// caching.
        broken: AtomicBool,
        inotify: Mutex<OwnedFd>,
        file_name: OsString,
    }

    impl std::fmt::Debug for SqliteChanges {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SqliteChanges")
                .field("generation", &self.generation.load(Ordering::Relaxed))
                .field("broken", &self.broken.load(Ordering::Relaxed))
                .finish_non_exhaustive()
        }
    }

    impl SqliteChanges {
        /// Watches the directory of the database file at `path`.
        pub fn watch(path: &Path) -> std::io::Result<Self> {
            let file_name = path
                .file_name()
                .ok_or_else(|| std::io::Error::other("the database path names no file"))?
                .to_os_string();
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            inotify::add_watch(
                &fd,
                dir,
                WatchFlags::MODIFY
                    | WatchFlags::CLOSE_WRITE
                    | WatchFlags::CREATE
                    | WatchFlags::DELETE
                    | WatchFlags::MOVED_FROM
                    | WatchFlags::MOVED_TO
                    | WatchFlags::ATTRIB
                    | WatchFlags::DELETE_SELF
                    | WatchFlags::MOVE_SELF,
            )?;
            Ok(Self {
                generation: AtomicU64::new(0),
                broken: AtomicBool::new(false),
                inotify: Mutex::new(fd),
                file_name,
            })
        }

        /// Whether an event is about the database (or the directory itself).
        fn concerns_database(&self, name: Option<&[u8]>, flags: ReadFlags) -> bool {
            if flags.intersects(ReadFlags::QUEUE_OVERFLOW) {
                return true;
            }
            match name {
                // The directory itself (removed, moved, ...).
                None => true,
                Some(name) => is_database_file(self.file_name.as_bytes(), name),
            }
        }

        /// Drains the queued events and, before letting go of the queue, moves the generation
        /// (an event concerned the database) or marks the feed broken (the watch is gone):
        /// whoever takes the lock next and finds the queue empty must also find what the
        /// events taken before it did. (Moving the generation after unlocking let a request
        /// that began after a write find the queue drained by another request and the
        /// generation not yet moved: a stale answer.) `None` when the feed is broken.
        fn refresh(&self) -> Option<u64> {
            let fd = self.inotify.lock().unwrap_or_else(|e| e.into_inner());
            if self.broken.load(Ordering::SeqCst) {
                return None;
            }
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            let mut reader = inotify::Reader::new(&*fd, &mut buf);
            let mut changed = false;
            let intact = loop {
                match reader.next() {
                    Ok(event) => {
                        let flags = event.events();
                        if flags.intersects(
                            ReadFlags::IGNORED
                                | ReadFlags::DELETE_SELF
                                | ReadFlags::MOVE_SELF
                                | ReadFlags::UNMOUNT,
                        ) {
                            break false;
                        }
                        let name = event.file_name().map(|n| n.to_bytes());
                        changed |= self.concerns_database(name, flags);
                    }
                    Err(Errno::AGAIN) => break true,
                    Err(Errno::INTR) => continue,
                    Err(_) => break false,
                }
            };
            if !intact {
                self.broken.store(true, Ordering::SeqCst);
                drop(fd);
                tracing::warn!(
                    "the watch on the SQLite database's directory is gone; caching stops"
                );
                return None;
            }
            if changed {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            drop(fd);
            Some(self.generation.load(Ordering::SeqCst))
        }
    }

    /// The database file itself or one of SQLite's companions of it (`-wal`, `-shm`,
    /// `-journal`, and the `-mj...` super-journals of multi-file transactions); not the audit
    /// log beside it (`<stem>-audit.<ext>`), which every login writes.
    pub(super) fn is_database_file(database: &[u8], name: &[u8]) -> bool {
        match name.strip_prefix(database) {
            Some(b"" | b"-wal" | b"-shm" | b"-journal") => true,
            Some(rest) => rest.starts_with(b"-mj"),
            None => false,
        }
    }

    #[async_trait::async_trait]
    impl ChangeFeed for SqliteChanges {
        async fn generation(&self) -> Option<u64> {
            if self.broken.load(Ordering::SeqCst) {
                return None;
            }
            self.refresh()
        }

        fn bump(&self) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::is_database_file;

        #[test]
        fn the_database_and_its_companions_count_and_the_audit_log_beside_it_does_not() {
            for name in [
                "lakests.db",
                "lakests.db-wal",
                "lakests.db-shm",
                "lakests.db-journal",
                "lakests.db-mj0A1B2C3D",
            ] {
                assert!(is_database_file(b"lakests.db", name.as_bytes()), "{name}");
            }
            for name in [
                "lakests-audit.db",
                "lakests-audit.db-wal",
                "lakests.db.bak",
                "lakests.dbx",
                "other.db",
            ] {
                assert!(!is_database_file(b"lakests.db", name.as_bytes()), "{name}");
            }
            // A database without an extension: its audit log starts with its name.
            assert!(!is_database_file(b"lakests", b"lakests-audit"));
            assert!(!is_database_file(b"lakests", b"lakests-audit-wal"));
            assert!(is_database_file(b"lakests", b"lakests-wal"));
        }
    }
}

/// The generation of a PostgreSQL database, read from its `lakests_generation` row: see the
/// module's documentation.
pub struct PgChanges {
    state: Arc<PgFeedState>,
}

#[derive(Debug)]
struct PgFeedState {
    /// One connection: reads never overlap.
    pool: sqlx::PgPool,
    timeout: Duration,
    /// Reads begun so far; a read's number is this count when it began.
    begun: AtomicU64,
    /// Held by the read in progress.
    reading: Arc<tokio::sync::Mutex<()>>,
    /// The number and the answer of the latest read that completed.
    done: tokio::sync::watch::Sender<(u64, Option<u64>)>,
    /// Whether the last read failed (a warning is logged on each change, not on each read).
    failing: AtomicBool,
}

impl std::fmt::Debug for PgChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChanges")
            .field("reads", &self.reads())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ChangeFeed for PgChanges {
    async fn generation(&self) -> Option<u64> {
        let state = &self.state;
        // Any read numbered above what has begun by now began after this call did.
        let needed = state.begun.load(Ordering::SeqCst) + 1;
        let mut done = state.done.subscribe();
        loop {
            let (number, answer) = *done.borrow_and_update();
            if number >= needed {
                return answer;
            }
            if let Ok(guard) = state.reading.clone().try_lock_owned() {
                let number = state.begun.fetch_add(1, Ordering::SeqCst) + 1;
                let read_state = state.clone();
                // Its own task: a request that goes away must not abandon the read that other
                // requests wait for.
                let read = tokio::spawn(async move {
                    let answer = read_state.read().await;
                    // Unlocked before the answer is published: whoever finds the lock taken
                    // below is sure to be woken by a later publication.
                    drop(guard);
                    read_state.done.send_if_modified(|latest| {
                        if latest.0 < number {
                            *latest = (number, answer);
                            true
                        } else {
                            false
                        }
                    });
                    answer
                });
                return read.await.unwrap_or(None);
            }
            // A read that may have begun before this call is in progress: wait for it, then
            // for one that begins later.
            if done.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Nothing to do: the write's transaction moved the row.
    fn bump(&self) {}
}

impl PgFeedState {
    async fn read(&self) -> Option<u64> {
        let query = sqlx::query_scalar::<_, i64>("SELECT value FROM lakests_generation");
        let answer = match tokio::time::timeout(self.timeout, query.fetch_one(&self.pool)).await {
            Ok(Ok(value)) => Ok(value.cast_unsigned()),
            Ok(Err(e)) => Err(chain(&e)),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        match answer {
            Ok(value) => {
                if self.failing.swap(false, Ordering::SeqCst) {
                    tracing::info!(
                        "the generation of the PostgreSQL database is read again; the cache is back on"
                    );
                }
                Some(value)
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read the generation of the PostgreSQL database; the cache is off until it can");
                }
                None
            }
        }
    }
}

impl PgChanges {
    /// Reads the generation of the database at `url` over a connection of its own, waiting at
    /// most `timeout` for a connection or an answer; the first read has succeeded when this
    /// returns. Error messages never contain the password.
    pub async fn connect(url: &str, timeout: Duration) -> Result<PgChanges, StoreError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| backend_msg(format!("invalid PostgreSQL connection URL: {e}")))?;
        let redactor = Redactor::for_url(&parsed);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            backend_msg(redactor.redact(&format!("invalid PostgreSQL URL: {}", chain(&e))))
        })?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        let feed = PgChanges {
            state: Arc::new(PgFeedState {
                pool,
                timeout,
                begun: AtomicU64::new(0),
                reading: Arc::new(tokio::sync::Mutex::new(())),
                done: tokio::sync::watch::channel((0, None)).0,
                failing: AtomicBool::new(false),
            }),
        };
        let first = sqlx::query_scalar::<_, i64>("SELECT value FROM lakests_generation")
            .fetch_one(&feed.state.pool)
            .await;
        if let Err(e) = first {
            return Err(backend_msg(redactor.redact(&format!(
                "reading the generation on PostgreSQL: {}",
                chain(&e)
            ))));
        }
        Ok(feed)
    }

    /// Reads of the generation begun so far (for tests and metrics).
    pub fn reads(&self) -> u64 {
        self.state.begun.load(Ordering::SeqCst)
    }
}
