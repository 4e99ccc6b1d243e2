//! The PostgreSQL backend, for several replicas sharing one database.

use std::str::FromStr;
use std::time::Duration;

use lakests_core::directory::Directory;
use lakests_core::store::{StoreError, UserRecord};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use url::Url;

use crate::audit::{AuditFailure, AuditWriter};
use crate::common::{backend_msg, external_id_exists, user_exists};
use crate::redact::{Redactor, chain};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The same pool: the audit table is in the one database.
    audit_pool: PgPool,
    redactor: Redactor,
    audit: AuditWriter,
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
            audit_pool: pool.clone(),
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

    /// Deletes the audit records older than `before`, in one statement.
    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_audit WHERE at < $1")
            .bind(before)
            .execute(&self.audit_pool)
            .await
            .map_err(|e| self.db(e))?;
        Ok(done.rows_affected())
    }

    fn audit_failed(&self, failure: AuditFailure) -> StoreError {
        match failure {
            AuditFailure::Database(message) => backend_msg(self.redactor.redact(&message)),
            AuditFailure::Stopped => backend_msg("the audit writer has stopped"),
        }
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

crate::store_impl::store_impl!(PostgresStore, greatest = "GREATEST");

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
