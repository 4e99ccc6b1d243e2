//! Upgrading a database made before the directory (migration 0001 only): existing users keep
//! their memberships, and the groups they name become group records, on both backends.

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
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .expect("old database");
        let mut old = sqlx::migrate!("./migrations/sqlite");
        old.migrations = Cow::Owned(old.migrations[..1].to_vec());
        old.run(&pool).await.expect("migration 0001");
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
