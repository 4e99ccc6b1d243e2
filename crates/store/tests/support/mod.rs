//! Test databases: a fresh SQLite file or a fresh, uniquely named PostgreSQL database per
//! test, behind one [`Fixture`] trait so every check runs on every backend.

#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakests_core::store::Store;
use lakests_store::{PostgresStore, SqliteStore};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// URL of a PostgreSQL server whose user may create databases.
pub const POSTGRES_URL_VAR: &str = "LAKESTS_TEST_POSTGRES_URL";
/// When `1`, a missing [`POSTGRES_URL_VAR`] fails the PostgreSQL tests instead of skipping them.
pub const REQUIRE_POSTGRES_VAR: &str = "LAKESTS_TEST_REQUIRE_POSTGRES";

/// The PostgreSQL server URL, or `None` (after a loud line on stderr) when it is not set and
/// not required. Panics when it is required and missing.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!(
                    "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: PostgreSQL tests cannot run"
                );
            }
            // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and
            // a skip must not go unnoticed.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! PostgreSQL conformance SKIPPED ({test}): set {POSTGRES_URL_VAR}, \
                 e.g. postgres://postgres@127.0.0.1:5432/postgres !!!"
            );
            None
        }
    }
}

/// A store on a fresh database, and a way to restart it.
pub trait Fixture: Send + Sync + Sized + 'static {
    /// A fresh database, or `None` when the backend is not available (skipped loudly).
    fn setup(test: &'static str) -> impl Future<Output = Option<Self>> + Send;
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;
    /// Closes the store under test and opens a new one on the same database, as a process
    /// restart does (the migrations run again).
    fn restart(&self) -> impl Future<Output = Arc<dyn Store>> + Send;
    /// Closes everything and removes the database (best effort).
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

/// Runs `check` on a fresh fixture, tears the fixture down even when the check panics, then
/// reports the panic.
pub async fn run<F, C, Fut>(test: &'static str, check: C)
where
    F: Fixture,
    C: FnOnce(Arc<F>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = F::setup(test).await else {
        return;
    };
    let fixture = Arc::new(fixture);
    let outcome = tokio::spawn(check(fixture.clone())).await;
    if let Ok(fixture) = Arc::try_unwrap(fixture) {
        fixture.teardown().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A fresh SQLite file in a temporary directory.
pub struct SqliteFixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    stores: Mutex<Vec<SqliteStore>>,
}

/// The busy timeout of test SQLite stores: long enough for 16 concurrent writers.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqliteFixture {
    fn current(&self) -> SqliteStore {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.last().cloned().unwrap_or_else(|| panic!("no store"))
    }
}

impl Fixture for SqliteFixture {
    async fn setup(_test: &'static str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("data").join("lakests.db");
        let store = SqliteStore::open(&path, SQLITE_BUSY_TIMEOUT)
            .await
            .expect("open a fresh SQLite database");
        Some(SqliteFixture {
            dir,
            path,
            stores: Mutex::new(vec![store]),
        })
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.current())
    }

    async fn restart(&self) -> Arc<dyn Store> {
        self.current().close().await;
        let store = SqliteStore::open(&self.path, SQLITE_BUSY_TIMEOUT)
            .await
            .expect("reopen the SQLite database");
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(store.clone());
        Arc::new(store)
    }

    async fn teardown(self) {
        let stores = self.stores.into_inner().unwrap_or_else(|p| p.into_inner());
        for store in stores {
            store.close().await;
        }
    }
}

/// A fresh database `lakests_test_<uuid>` on the server at `LAKESTS_TEST_POSTGRES_URL`.
pub struct PostgresFixture {
    pub admin_url: String,
    pub database: String,
    pub url: String,
    stores: Mutex<Vec<PostgresStore>>,
}

/// Pool size of test PostgreSQL stores: small, as many tests run in parallel on one server.
const POSTGRES_POOL: u32 = 4;

/// The URL of `admin_url`'s server with another database.
pub fn with_database(admin_url: &str, database: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("LAKESTS_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{database}"));
    url.into()
}

/// One connection to the server's administrative database.
async fn admin_pool(admin_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(admin_url)
        .await
}

impl PostgresFixture {
    fn current(&self) -> PostgresStore {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.last().cloned().unwrap_or_else(|| panic!("no store"))
    }

    /// Creates a fresh database and returns its name and URL.
    pub async fn create_database(admin_url: &str) -> (String, String) {
        let database = format!("lakests_test_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_pool(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_VAR}: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("create database {database}: {e}"));
        admin.close().await;
        let url = with_database(admin_url, &database);
        (database, url)
    }

    /// Drops a database made by [`Self::create_database`], reporting (not failing) trouble.
    pub async fn drop_database(admin_url: &str, database: &str) {
        let dropped = async {
            let admin = admin_pool(admin_url).await?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .execute(&admin)
                .await?;
            admin.close().await;
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = dropped.await {
            eprintln!("warning: could not drop test database {database}: {e}");
        }
    }
}

impl Fixture for PostgresFixture {
    async fn setup(test: &'static str) -> Option<Self> {
        let admin_url = postgres_url(test)?;
        let (database, url) = Self::create_database(&admin_url).await;
        let store = PostgresStore::connect(&url, POSTGRES_POOL, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("connect to test database {database}: {e}"));
        Some(PostgresFixture {
            admin_url,
            database,
            url,
            stores: Mutex::new(vec![store]),
        })
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.current())
    }

    async fn restart(&self) -> Arc<dyn Store> {
        self.current().close().await;
        let store = PostgresStore::connect(&self.url, POSTGRES_POOL, Duration::from_secs(10))
            .await
            .expect("reconnect to the test database");
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(store.clone());
        Arc::new(store)
    }

    async fn teardown(self) {
        let stores = self.stores.into_inner().unwrap_or_else(|p| p.into_inner());
        for store in stores {
            store.close().await;
        }
        Self::drop_database(&self.admin_url, &self.database).await;
    }
}
