//! The storage backends of [`lakests_core::store::Store`]: an embedded SQLite file (the
//! default) and PostgreSQL (for several replicas sharing state). Both run their own migrations
//! at start and pass the same conformance suite (`tests/conformance.rs`).

mod common;
mod directory;
mod postgres;
mod redact;
mod sqlite;

use std::sync::Arc;

use lakests_config::{Config, DatabaseKind};
use lakests_core::store::{Store, StoreError};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Opens the backend the configuration names (`database.type`): the SQLite file at
/// [`Config::sqlite_path`] or the PostgreSQL server at `database.postgres.connection_string`.
/// Migrations have run when this returns.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let db = &config.database;
    match db.kind {
        DatabaseKind::Sqlite => {
            let store =
                SqliteStore::open(&config.sqlite_path(), db.sqlite.busy_timeout.get()).await?;
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
