//! The change feeds. PostgreSQL: the generation row (migration 0005) read by
//! [`lakests_store::PgChanges`]. A change committed anywhere (another replica's store, psql) is
//! seen by the next call; concurrent calls share reads without ever answering with one that
//! began before them; the feed says `None` when the database cannot be read. SQLite: the
//! inotify watch of [`lakests_store::SqliteChanges`] sees every write to the database file and
//! none to the audit log beside it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lakests_core::cache::ChangeFeed;
use lakests_core::store::{LoginAudit, LoginOutcome, Store, UserRecord};
use lakests_store::{PgChanges, PostgresStore};
use support::PostgresFixture;

fn audit_record() -> LoginAudit {
    LoginAudit {
        at: 2,
        outcome: LoginOutcome::Success,
        reason: "token minted".into(),
        external_id: Some("sub-alice".into()),
        username: Some("alice".into()),
        client_addr: None,
        request_id: "r".into(),
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn sqlite_a_login_audit_record_moves_no_generation_and_a_user_write_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lakests.db");
    let store = lakests_store::SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("open");
    let feed = lakests_store::SqliteChanges::watch(&path).expect("watch");
    let g0 = feed.generation().await.expect("a generation");
    for _ in 0..3 {
        store.append_audit(&audit_record()).await.expect("audit");
    }
    assert_eq!(
        feed.generation().await,
        Some(g0),
        "audit records (in {}) moved the generation",
        lakests_store::SqliteStore::audit_path(&path).display()
    );
    assert_eq!(store.list_audit(10).await.expect("list").len(), 3);
    store.create_user(&user("alice")).await.expect("create");
    let g1 = feed.generation().await.expect("a generation");
    assert_ne!(g0, g1, "a user created");
    store.purge_audit_before(3).await.expect("purge");
    assert_eq!(feed.generation().await, Some(g1), "audit retention");
    store.close().await;
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        username: name.into(),
        external_id: Some(format!("sub-{name}")),
        email: None,
        friendly_name: None,
        groups: vec![],
        created_at: 1,
    }
}

struct Db {
    admin_url: String,
    database: String,
    url: String,
    store: PostgresStore,
    psql: sqlx::PgPool,
}

impl Db {
    async fn new(test: &str) -> Option<Db> {
        let admin_url = support::postgres_url(test)?;
        let (database, url) = PostgresFixture::create_database(&admin_url).await;
        let store = PostgresStore::connect(&url, 2, Duration::from_secs(10))
            .await
            .expect("connect (runs the migrations)");
        let psql = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("a second connection");
        Some(Db {
            admin_url,
            database,
            url,
            store,
            psql,
        })
    }

    async fn row(&self) -> i64 {
        sqlx::query_scalar("SELECT value FROM lakests_generation")
            .fetch_one(&self.psql)
            .await
            .expect("the generation row")
    }

    async fn drop(self) {
        self.store.close().await;
        self.psql.close().await;
        PostgresFixture::drop_database(&self.admin_url, &self.database).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_elsewhere_is_seen_by_the_next_call() {
    let Some(db) = Db::new("a_change_committed_elsewhere_is_seen_by_the_next_call").await else {
        return;
    };
    let feed = PgChanges::connect(&db.url, Duration::from_secs(5))
        .await
        .expect("feed");

    // Through a store (another replica).
    let g0 = feed.generation().await.expect("a generation");
    db.store.create_user(&user("alice")).await.expect("create");
    let g1 = feed.generation().await.expect("a generation");
    assert_ne!(g0, g1, "a user created by another store");

    // By hand (psql), on each kind of cached table.
    sqlx::raw_sql("UPDATE users SET friendly_name = 'Alice' WHERE username = 'alice'")
        .execute(&db.psql)
        .await
        .expect("update");
    let g2 = feed.generation().await.expect("a generation");
    assert_ne!(g1, g2, "a user updated in psql");

    // Records that are not cached move nothing.
    db.store.append_audit(&audit_record()).await.expect("audit");
    assert_eq!(feed.generation().await, Some(g2), "an audit record");

    // A transaction that writes many rows moves the row once, at commit.
    let before = db.row().await;
    let mut tx = db.psql.begin().await.expect("begin");
    for i in 0..20 {
        sqlx::query("INSERT INTO users (username, created_at) VALUES ($1, 1)")
            .bind(format!("bulk{i}"))
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    assert_eq!(
        feed.generation().await,
        Some(g2),
        "nothing is visible before the commit"
    );
    tx.commit().await.expect("commit");
    assert_eq!(db.row().await, before + 1, "one move per transaction");
    assert_ne!(feed.generation().await, Some(g2));
    drop(feed);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_reads_but_never_one_that_began_before_them() {
    let Some(db) =
        Db::new("concurrent_calls_share_reads_but_never_one_that_began_before_them").await
    else {
        return;
    };
    let feed = Arc::new(
        PgChanges::connect(&db.url, Duration::from_secs(5))
            .await
            .expect("feed"),
    );

    // Background load: 32 tasks asking in a loop until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..32 {
        let (feed, stop) = (feed.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert!(feed.generation().await.is_some());
                calls += 1;
            }
            calls
        }));
    }
    // Under that load, every commit is seen by the very next call, 100 times.
    for i in 0..100 {
        let before = feed.generation().await.expect("a generation");
        db.store
            .create_user(&user(&format!("user{i}")))
            .await
            .expect("create");
        let after = feed.generation().await.expect("a generation");
        assert_ne!(before, after, "commit {i} was not seen by the next call");
    }
    stop.store(true, Ordering::Relaxed);
    let mut calls = 200;
    for task in load {
        calls += task.await.expect("load task");
    }
    let reads = feed.reads();
    eprintln!("{calls} calls answered by {reads} reads");
    assert!(
        reads < calls,
        "{calls} calls made {reads} reads: nothing shared"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_database_cannot_be_read_the_feed_vouches_for_nothing() {
    let Some(db) = Db::new("when_the_database_cannot_be_read_the_feed_vouches_for_nothing").await
    else {
        return;
    };
    let feed = PgChanges::connect(&db.url, Duration::from_secs(2))
        .await
        .expect("feed");
    assert!(feed.generation().await.is_some());
    let url = db.url.clone();
    db.drop().await;
    assert_eq!(feed.generation().await, None, "the database is gone");
    // And a feed cannot be set up on it.
    let err = PgChanges::connect(&url, Duration::from_secs(2))
        .await
        .expect_err("no database");
    assert!(!err.to_string().contains("lakests-test"), "{err}");
}
