//! The storage backends of [`lakests_core::store::Store`]: an embedded SQLite file (the
//! default) and PostgreSQL (for several replicas sharing state). Both run their own migrations
//! at start and pass the same conformance suite (`tests/conformance.rs`).

mod audit;
mod changes;
mod common;
mod directory;
mod postgres;
mod redact;
mod sqlite;
mod sqlite_audit;
mod store_impl;

use std::path::Path;
use std::sync::Arc;

use lakests_config::{Cache, Database, DatabaseKind, PostgresConfig};
use lakests_core::cache::{CacheLimits, CachingStore, ChangeFeed};
use lakests_core::clock::Clock;
use lakests_core::store::{Store, StoreError};

pub use changes::PgChanges;
#[cfg(target_os = "linux")]
pub use changes::SqliteChanges;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Opens the backend `database.type` names: the SQLite file at `sqlite_path` (the caller
/// resolves it: [`lakests_config::Config::sqlite_path`]) or the PostgreSQL server at
/// `database.postgres.connection_string`. Migrations have run when this returns. Takes the
/// database settings only: configuration reaches the store through the wiring.
pub async fn open(db: &Database, sqlite_path: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match db.kind {
        DatabaseKind::Sqlite => {
            let store = SqliteStore::open(sqlite_path, db.sqlite.busy_timeout.get()).await?;
            Ok(Arc::new(store))
        }
        DatabaseKind::Postgres => {
            let url = db.postgres.connection_string.as_ref().ok_or_else(|| {
                common::backend_msg("database.postgres.connection_string is required when database.type is postgres")
            })?;
            let store = PostgresStore::connect(
                url.expose(),
                db.postgres.max_open_connections,
                db.postgres.connect_timeout.get(),
            )
            .await?;
            Ok(Arc::new(store))
        }
    }
}

/// [`open`], with the hot reads cached when `auth.cache.enabled` (the default): a
/// [`CachingStore`] over the backend's [`ChangeFeed`] (inotify on the SQLite file's directory,
/// the `lakests_generation` row on PostgreSQL), so that changes made by this process, by the CLI
/// or by another replica are seen on the next request. When the backend cannot provide a feed
/// the store is returned uncached (and a warning is logged): never a cache that could miss a
/// change.
pub async fn open_cached(
    db: &Database,
    sqlite_path: &Path,
    cache: &Cache,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Store>, StoreError> {
    let limits = CacheLimits {
        ttl_seconds: i64::try_from(cache.ttl.get().as_secs()).unwrap_or(i64::MAX),
        jitter_seconds: i64::try_from(cache.jitter.get().as_secs()).unwrap_or(0),
        capacity: cache.size,
    };
    let store = open(db, sqlite_path).await?;
    let feed = match (cache.enabled, db.kind) {
        (false, _) => None,
        (true, DatabaseKind::Sqlite) => sqlite_feed(sqlite_path),
        (true, DatabaseKind::Postgres) => postgres_feed(&db.postgres).await,
    };
    Ok(match feed {
        Some(feed) => Arc::new(CachingStore::new(store, feed, clock, limits)),
        None => store,
    })
}

#[cfg(target_os = "linux")]
fn sqlite_feed(path: &std::path::Path) -> Option<Arc<dyn ChangeFeed>> {
    match SqliteChanges::watch(path) {
        Ok(feed) => Some(Arc::new(feed)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the SQLite database for changes; auth.cache is off");
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn sqlite_feed(_path: &std::path::Path) -> Option<Arc<dyn ChangeFeed>> {
    tracing::warn!("changes to an SQLite database are only watched on Linux; auth.cache is off");
    None
}

async fn postgres_feed(pg: &PostgresConfig) -> Option<Arc<dyn ChangeFeed>> {
    let url = pg.connection_string.as_ref()?;
    match PgChanges::connect(url.expose(), pg.connect_timeout.get()).await {
        Ok(feed) => Some(Arc::new(feed)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the generation of the PostgreSQL database; auth.cache is off");
            None
        }
    }
}
