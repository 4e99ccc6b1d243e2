//! Opening the stores: the SQLite file on disk, and `lakests_store::open` choosing the backend
//! from the configuration.

mod support;

use std::time::Duration;

use lakests_config::{Config, DatabaseKind, Secret};
use lakests_core::store::{StoreError, UserRecord};
use lakests_store::SqliteStore;
use support::PostgresFixture;

fn alice() -> UserRecord {
    UserRecord {
        username: "alice".into(),
        external_id: Some("sub-alice".into()),
        email: None,
        friendly_name: None,
        groups: vec!["admins".into()],
        created_at: 1,
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_creates_its_directory_and_a_file_only_the_owner_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = dir.path().join("a").join("b");
    let path = parent.join("lakests.db");
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("open");
    lakests_core::store::Store::create_user(&store, &alice())
        .await
        .expect("write");

    assert_eq!(mode(&path), 0o600, "database file");
    assert_eq!(mode(&parent), 0o700, "created directory");
    assert_eq!(mode(&dir.path().join("a")), 0o700, "created directory");
    // WAL journal mode: the write-ahead log sits beside the file, as private as the file.
    let wal = parent.join("lakests.db-wal");
    assert!(wal.exists(), "no WAL file: journal mode is not WAL");
    assert_eq!(mode(&wal), 0o600, "WAL file");
    // The login audit log beside it, as private.
    let audit = parent.join("lakests-audit.db");
    assert_eq!(SqliteStore::audit_path(&path), audit);
    assert_eq!(mode(&audit), 0o600, "audit log");
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_leaves_the_mode_of_an_existing_file_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lakests.db");
    std::fs::write(&path, b"").expect("create empty file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("open an empty file");
    assert_eq!(mode(&path), 0o640);
    assert_eq!(
        mode(&SqliteStore::audit_path(&path)),
        0o640,
        "a new audit log takes the database file's mode"
    );
    lakests_core::store::Store::ping(&store)
        .await
        .expect("ping");
    store.close().await;
}

#[tokio::test]
async fn sqlite_refuses_a_file_that_is_not_a_database_with_a_backend_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not-a-db");
    std::fs::write(&path, vec![b'x'; 4096]).expect("write junk");
    match SqliteStore::open(&path, Duration::from_secs(1)).await {
        Err(StoreError::Backend(e)) => assert!(e.to_string().contains("not-a-db"), "{e}"),
        Err(e) => panic!("expected a backend error, got {e:?}"),
        Ok(_) => panic!("opened a file that is not a database"),
    }
}

#[tokio::test]
async fn open_uses_the_sqlite_file_in_the_data_dir_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().join("state"),
        ..Config::default()
    };
    assert_eq!(config.database.kind, DatabaseKind::Sqlite);
    let store = lakests_store::open(&config.database, &config.sqlite_path())
        .await
        .expect("open");
    store.create_user(&alice()).await.expect("create");
    drop(store);
    let path = dir.path().join("state").join("lakests.db");
    assert!(path.is_file(), "{} was not created", path.display());

    // The configured file, seen through the concrete backend, has the user.
    let reopened = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("reopen");
    let got = lakests_core::store::Store::get_user(&reopened, "alice")
        .await
        .expect("get");
    assert_eq!(got, Some(alice()));
    reopened.close().await;
}

#[tokio::test]
async fn open_uses_the_configured_sqlite_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().join("unused"),
        ..Config::default()
    };
    config.database.sqlite.path = Some(dir.path().join("custom.sqlite"));
    let store = lakests_store::open(&config.database, &config.sqlite_path())
        .await
        .expect("open");
    store.ping().await.expect("ping");
    assert!(dir.path().join("custom.sqlite").is_file());
    assert!(!dir.path().join("unused").exists());
}

#[tokio::test]
async fn open_with_postgres_and_no_connection_string_is_a_backend_error() {
    let mut config = Config::default();
    config.database.kind = DatabaseKind::Postgres;
    match lakests_store::open(&config.database, &config.sqlite_path()).await {
        Err(StoreError::Backend(e)) => assert!(e.to_string().contains("connection_string"), "{e}"),
        Err(e) => panic!("expected a backend error, got {e:?}"),
        Ok(_) => panic!("opened postgres without a URL"),
    }
}

#[tokio::test]
async fn open_with_postgres_connects_to_the_configured_database() {
    let Some(admin_url) =
        support::postgres_url("open_with_postgres_connects_to_the_configured_database")
    else {
        return;
    };
    let (database, url) = PostgresFixture::create_database(&admin_url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().join("state"),
        ..Config::default()
    };
    config.database.kind = DatabaseKind::Postgres;
    config.database.postgres.connection_string = Some(Secret::new(url.clone()));
    let opened = async move {
        let store = lakests_store::open(&config.database, &config.sqlite_path())
            .await
            .expect("open postgres");
        store.create_user(&alice()).await.expect("create");
        drop(store);
        // Written to PostgreSQL, not to a SQLite file.
        assert!(
            !dir.path().join("state").exists(),
            "a SQLite file was created"
        );
        let direct = lakests_store::PostgresStore::connect(&url, 2, Duration::from_secs(5))
            .await
            .expect("connect");
        let got = lakests_core::store::Store::get_user(&direct, "alice")
            .await
            .expect("get");
        direct.close().await;
        got
    };
    let got = tokio::spawn(opened).await;
    PostgresFixture::drop_database(&admin_url, &database).await;
    match got {
        Ok(got) => assert_eq!(got, Some(alice())),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The audit log's writer turns SQLite's automatic checkpoint off (it would fsync on a login's
/// thread) and checkpoints every 250 commits on a blocking thread instead: written one record
/// per commit, its WAL stays near 250 commits' worth of pages instead of growing with the log,
/// even when the checkpoint's thread is slow to start (here the runtime's only blocking thread
/// is busy for 300 ms first, as a loaded machine delayed it in CI: logins then wait for the
/// checkpoint instead of writing past it).
#[test]
fn sqlite_the_audit_logs_wal_is_checkpointed_as_it_grows() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lakests.db");
        let store = SqliteStore::open(&path, Duration::from_secs(5))
            .await
            .expect("open");
        let busy = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(300)));
        let records = 5_000;
        for at in 0..records {
            let record = lakests_core::store::LoginAudit {
                at,
                outcome: lakests_core::store::LoginOutcome::Success,
                reason: "token minted for 3600 s".into(),
                external_id: Some(format!("dev:user-{at}")),
                username: Some(format!("user-{at}")),
                client_addr: Some("127.0.0.1".into()),
                request_id: format!("00000000-0000-8000-8000-{at:012}"),
            };
            lakests_core::store::Store::append_audit(&store, &record)
                .await
                .expect("append");
        }
        busy.await.expect("the busy blocking task");
        let wal = dir.path().join("lakests-audit.db-wal");
        let wal_bytes = std::fs::metadata(&wal).expect("the audit log's WAL").len();
        // A commit of one record appends about three 4 KiB pages (the table, its index and
        // the AUTOINCREMENT counter): unchecked, or with the checkpoint starved, 5,000 commits
        // made a 64 MB WAL; checkpointed every 250 commits, 3-13 MB in repeated runs (each
        // checkpoint copies all ~780 frames back, but the WAL does not always start over at
        // the next write, so the file can span a few cycles).
        assert!(
            wal_bytes < 24 * 1024 * 1024,
            "the audit log's WAL grew to {wal_bytes} bytes over {records} commits"
        );
        let listed = lakests_core::store::Store::list_audit(&store, 10)
            .await
            .expect("list");
        assert_eq!(listed.first().map(|a| a.at), Some(records - 1));
        store.close().await;
    });
}
