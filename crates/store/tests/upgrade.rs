//! Upgrading a database made before the directory (migration 0001 only): existing users keep
//! their memberships, and the groups they name become group records, on both backends. An
//! SQLite database made before the audit log had a file of its own keeps its records.

mod support;

use std::borrow::Cow;
use std::time::Duration;

use lakests_core::directory::Page;
use lakests_core::store::Store;
use lakests_store::{PostgresStore, SqliteStore};
use support::PostgresFixture;

const OLD_ROWS: &str = "INSERT INTO users (username, external_id, email, friendly_name, created_at) \
     VALUES ('alice', 'sub-alice', NULL, NULL, 100), ('bob', NULL, NULL, NULL, 50); \
     INSERT INTO user_groups (username, group_name) VALUES ('alice', 'admins'), ('alice', 'devs'), ('bob', 'devs');";

/// An SQLite database at `path` as the first `migrations` migrations left it.
async fn old_sqlite_database(path: &std::path::Path, migrations: usize) -> sqlx::SqlitePool {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .expect("old database");
    let mut old = sqlx::migrate!("./migrations/sqlite");
    old.migrations = Cow::Owned(old.migrations[..migrations].to_vec());
    old.run(&pool).await.expect("old migrations");
    pool
}

async fn check_upgraded(store: &dyn Store) {
    let alice = store.get_user("alice").await.expect("get").expect("alice");
    assert_eq!(alice.groups, ["admins", "devs"]);
    let groups = store.list_groups(&Page::first(10)).await.expect("groups");
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["admins", "devs"]);
    assert_eq!(
        groups[1].created_at, 50,
        "the earliest member's creation time"
    );
    let members = store
        .list_group_members("devs", &Page::first(10))
        .await
        .expect("members");
    assert_eq!(members.len(), 2);
    // Memberships now reference the groups: deleting one takes its memberships.
    assert!(store.delete_group("devs").await.expect("delete"));
    let alice = store.get_user("alice").await.expect("get").expect("alice");
    assert_eq!(alice.groups, ["admins"]);
}

#[tokio::test]
async fn sqlite_memberships_survive_the_upgrade_and_become_groups() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");
    {
        let pool = old_sqlite_database(&path, 1).await;
        sqlx::raw_sql(OLD_ROWS).execute(&pool).await.expect("rows");
        pool.close().await;
    }
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("upgrade");
    check_upgraded(&store).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_audit_records_move_into_the_audit_log_once_and_none_is_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");
    {
        let pool = old_sqlite_database(&path, 4).await;
        for i in 1..=300 {
            sqlx::query(
                "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) \
                 VALUES ($1, 'success', 'token minted', 'sub-alice', 'alice', '127.0.0.1', $2)",
            )
            .bind(i64::from(i))
            .bind(format!("r-{i}"))
            .execute(&pool)
            .await
            .expect("old audit row");
        }
        pool.close().await;
    }
    let audit_file = SqliteStore::audit_path(&path);
    assert!(!audit_file.exists());
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("upgrade");
    let records = store.list_audit(1000).await.expect("audit");
    assert_eq!(records.len(), 300, "every old record, once");
    assert_eq!(records[0].request_id, "r-300", "newest first, as before");
    assert_eq!(records[299].request_id, "r-1");
    // New records follow the old ones.
    let mut next = records[0].clone();
    next.request_id = "r-new".into();
    store.append_audit(&next).await.expect("append");
    assert_eq!(
        store.list_audit(1).await.expect("audit")[0].request_id,
        "r-new"
    );
    store.close().await;

    // The main file no longer has the table; opening again moves nothing twice.
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("reopen");
    assert_eq!(store.list_audit(1000).await.expect("audit").len(), 301);
    store.close().await;
    let main = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .expect("main file");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'login_audit'",
    )
    .fetch_one(&main)
    .await
    .expect("schema");
    assert_eq!(tables, 0, "login_audit is still in the main file");
    main.close().await;
}

#[tokio::test]
async fn postgres_memberships_survive_the_upgrade_and_become_groups() {
    let Some(admin) = support::postgres_url("postgres_memberships_survive_the_upgrade") else {
        return;
    };
    let (database, url) = PostgresFixture::create_database(&admin).await;
    {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("old database");
        let mut old = sqlx::migrate!("./migrations/postgres");
        old.migrations = Cow::Owned(old.migrations[..1].to_vec());
        old.run(&pool).await.expect("migration 0001");
        sqlx::raw_sql(OLD_ROWS).execute(&pool).await.expect("rows");
        pool.close().await;
    }
    let store = PostgresStore::connect(&url, 2, Duration::from_secs(10))
        .await
        .expect("upgrade");
    check_upgraded(&store).await;
    store.close().await;
    PostgresFixture::drop_database(&admin, &database).await;
}
