//! How each backend sees writes made by other processes, for the caches of
//! [`lakests_core::cache`]: a [`ChangeFeed`] per backend.
//!
//! - SQLite: the database's directory is watched with inotify (Linux). Every commit writes the
//!   write-ahead log, every writer closing the file (the CLI exiting) closes it for writing,
//!   and the kernel queues the event before the write returns; the feed drains the queue
//!   without blocking each time the generation is asked for, so a write by `lakests users
//!   remove` is seen by the very next request. Elsewhere, or if the watch cannot be set up,
//!   there is no feed and nothing is cached.
//! - PostgreSQL: a trigger on every cached table sends `NOTIFY lakests_invalidate` in the
//!   writing transaction (migration 0005), delivered when it commits. Each process holds one
//!   connection that `LISTEN`s and moves its generation on every notification. While that
//!   connection is down the feed answers `None` (cold: every read goes to the database); when
//!   it is back, the generation moves once more, as notifications may have been missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lakests_core::cache::ChangeFeed;
use lakests_core::store::StoreError;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

use crate::common::backend_msg;
use crate::redact::{Redactor, chain};

/// The PostgreSQL channel every cached table's trigger notifies.
pub const CHANNEL: &str = "lakests_invalidate";

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
                Some(name) => name.starts_with(self.file_name.as_bytes()),
            }
        }

        /// Drains the queued events; true when one concerned the database. `Err` when the
        /// queue cannot be read or the watch is gone.
        fn drain(&self) -> Result<bool, ()> {
            let fd = self.inotify.lock().unwrap_or_else(|e| e.into_inner());
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            let mut reader = inotify::Reader::new(&*fd, &mut buf);
            let mut changed = false;
            loop {
                match reader.next() {
                    Ok(event) => {
                        let flags = event.events();
                        if flags.intersects(
                            ReadFlags::IGNORED
                                | ReadFlags::DELETE_SELF
                                | ReadFlags::MOVE_SELF
                                | ReadFlags::UNMOUNT,
                        ) {
                            return Err(());
                        }
                        let name = event.file_name().map(|n| n.to_bytes());
                        changed |= self.concerns_database(name, flags);
                    }
                    Err(Errno::AGAIN) => return Ok(changed),
                    Err(Errno::INTR) => continue,
                    Err(_) => return Err(()),
                }
            }
        }
    }

    impl ChangeFeed for SqliteChanges {
        fn generation(&self) -> Option<u64> {
            if self.broken.load(Ordering::SeqCst) {
                return None;
            }
            match self.drain() {
                Ok(true) => {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
                Ok(false) => {}
                Err(()) => {
                    tracing::warn!(
                        "the watch on the SQLite database's directory is gone; caching stops"
                    );
                    self.broken.store(true, Ordering::SeqCst);
                    return None;
                }
            }
            Some(self.generation.load(Ordering::SeqCst))
        }

        fn bump(&self) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Notifications on [`CHANNEL`], received by a task that holds a `LISTEN` connection of its
/// own. Dropping the feed stops the task.
pub struct PgChanges {
    state: Arc<PgFeedState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct PgFeedState {
    generation: AtomicU64,
    listening: AtomicBool,
    /// Notifications received (for tests and metrics).
    received: AtomicU64,
    /// Woken on every notification.
    arrived: tokio::sync::Notify,
}

impl std::fmt::Debug for PgChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChanges")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ChangeFeed for PgChanges {
    fn generation(&self) -> Option<u64> {
        // `listening` first: a loss clears it before moving the generation.
        if !self.state.listening.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.state.generation.load(Ordering::SeqCst))
    }

    fn bump(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn mark(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }

    /// Waits (at most [`SETTLE_TIMEOUT`]) until a notification has arrived since `mark`: the
    /// write's own, or a later one. PostgreSQL signals every listening session at commit; when
    /// this process's listener has its notification, the other replicas' listeners have been
    /// sent theirs, so a client told "done" right after rarely reaches another replica before
    /// it has seen the change.
    fn settle(
        &self,
        mark: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let state = &self.state;
            let wait = async {
                loop {
                    let arrived = state.arrived.notified();
                    if state.received.load(Ordering::SeqCst) > mark
                        || !state.listening.load(Ordering::SeqCst)
                    {
                        return;
                    }
                    arrived.await;
                }
            };
            let _ = tokio::time::timeout(SETTLE_TIMEOUT, wait).await;
        })
    }
}

/// The longest a write waits for its notification to come back ([`ChangeFeed::settle`]).
const SETTLE_TIMEOUT: Duration = Duration::from_millis(500);

impl PgChanges {
    /// Listens on [`CHANNEL`] of the database at `url`, over a connection of its own, waiting at
    /// most `connect_timeout` for it; the first `LISTEN` is in place when this returns. Error
    /// messages never contain the password.
    pub async fn connect(url: &str, connect_timeout: Duration) -> Result<PgChanges, StoreError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| backend_msg(format!("invalid PostgreSQL connection URL: {e}")))?;
        let redactor = Redactor::for_url(&parsed);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            backend_msg(redactor.redact(&format!("invalid PostgreSQL URL: {}", chain(&e))))
        })?;
        Self::start(options, connect_timeout).await.map_err(|e| {
            backend_msg(redactor.redact(&format!("LISTEN on PostgreSQL: {}", chain(&e))))
        })
    }

    /// [`Self::connect`] with parsed options.
    async fn start(
        options: PgConnectOptions,
        connect_timeout: Duration,
    ) -> Result<PgChanges, sqlx::Error> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(connect_timeout)
            .connect_lazy_with(options);
        let listener = listen(&pool).await?;
        let state = Arc::new(PgFeedState::default());
        state.listening.store(true, Ordering::SeqCst);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(run(pool, listener, state.clone(), stopped));
        Ok(PgChanges { state, _stop: stop })
    }

    /// Notifications received so far.
    pub fn received(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }

    /// Whether the `LISTEN` connection is up (the cache is in use).
    pub fn listening(&self) -> bool {
        self.state.listening.load(Ordering::SeqCst)
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn run(
    pool: sqlx::PgPool,
    mut listener: sqlx::postgres::PgListener,
    state: Arc<PgFeedState>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let received = tokio::select! {
            _ = &mut stopped => break,
            r = listener.try_recv() => r,
        };
        match received {
            Ok(Some(_)) => {
                state.generation.fetch_add(1, Ordering::SeqCst);
                state.received.fetch_add(1, Ordering::SeqCst);
                state.arrived.notify_waiters();
                continue;
            }
            Ok(None) => tracing::warn!(
                "the LISTEN connection to PostgreSQL was lost; the cache is off until it is back"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the LISTEN connection to PostgreSQL failed; the cache is off until it is back")
            }
        }
        // Cold from here: nothing cached is served, nothing is stored.
        state.listening.store(false, Ordering::SeqCst);
        state.generation.fetch_add(1, Ordering::SeqCst);
        drop(listener);
        let mut backoff = Duration::from_millis(50);
        listener = loop {
            let attempt = tokio::select! {
                _ = &mut stopped => return,
                r = listen(&pool) => r,
            };
            match attempt {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN on PostgreSQL yet");
                    tokio::select! {
                        _ = &mut stopped => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        // Whatever was written while the connection was down was missed: a new generation.
        state.generation.fetch_add(1, Ordering::SeqCst);
        state.listening.store(true, Ordering::SeqCst);
        tracing::info!("listening on PostgreSQL again; the cache is back on");
    }
    pool.close().await;
}
