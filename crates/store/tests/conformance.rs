//! The conformance suite of [`Store`]: every check runs on SQLite and on PostgreSQL (a fresh
//! database per test; skipped loudly without `LAKESTS_TEST_POSTGRES_URL`, failed instead when
//! `LAKESTS_TEST_REQUIRE_POSTGRES=1`).

mod support;

use std::sync::Arc;

use lakests_core::store::{Grant, LoginAudit, LoginOutcome, StoreError, UserRecord};
use support::Fixture;

fn user(username: &str, external_id: Option<&str>, groups: &[&str]) -> UserRecord {
    UserRecord {
        username: username.into(),
        external_id: external_id.map(Into::into),
        email: Some(format!("{username}@example.com")),
        friendly_name: Some(format!("Friendly {username}")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        created_at: 1_700_000_000,
    }
}

fn grant(kind: &str, key: &str, expires_at: i64) -> Grant {
    Grant {
        kind: kind.into(),
        key: key.into(),
        payload: format!("{{\"for\":\"{key}\"}}"),
        expires_at,
    }
}

fn audit(at: i64, outcome: LoginOutcome, request_id: &str) -> LoginAudit {
    LoginAudit {
        at,
        outcome,
        reason: format!("reason {at}"),
        external_id: Some(format!("sub-{at}")),
        username: Some(format!("user-{at}")),
        client_addr: Some("127.0.0.1".into()),
        request_id: request_id.into(),
    }
}

fn already_exists(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::AlreadyExists(message)) => message,
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

/// Every check takes the fixture; most only use `f.store()`.
mod checks {
    pub use super::checked_audit::*;
    pub use super::removed::*;
    use super::*;

    pub async fn ping_succeeds<F: Fixture>(f: Arc<F>) {
        f.store().ping().await.expect("ping");
    }

    pub async fn a_created_user_can_be_read_found_listed_and_deleted<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let alice = user("alice", Some("sub-alice"), &["admins", "devs"]);
        s.create_user(&alice).await.expect("create alice");
        assert_eq!(s.get_user("alice").await.expect("get"), Some(alice.clone()));
        assert_eq!(
            s.find_user_by_external_id("sub-alice").await.expect("find"),
            Some(alice.clone())
        );
        assert_eq!(s.get_user("bob").await.expect("get unknown"), None);
        assert_eq!(
            s.find_user_by_external_id("sub-bob")
                .await
                .expect("find unknown"),
            None
        );
        // Lookups are exact, not case-folded or prefix matches.
        assert_eq!(s.get_user("Alice").await.expect("get case"), None);
        assert_eq!(
            s.find_user_by_external_id("sub-alic")
                .await
                .expect("find prefix"),
            None
        );
        assert_eq!(s.list_users().await.expect("list"), vec![alice]);

        assert!(s.delete_user("alice").await.expect("delete"));
        assert_eq!(s.get_user("alice").await.expect("get deleted"), None);
        assert_eq!(
            s.find_user_by_external_id("sub-alice")
                .await
                .expect("find deleted"),
            None
        );
        assert!(s.list_users().await.expect("list").is_empty());
        assert!(!s.delete_user("alice").await.expect("delete again"));
    }

    pub async fn users_are_listed_in_username_order<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for name in ["carol", "Bob", "alice", "dave"] {
            s.create_user(&user(name, None, &[name]))
                .await
                .expect("create");
        }
        let listed = s.list_users().await.expect("list");
        let names: Vec<&str> = listed.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["Bob", "alice", "carol", "dave"], "byte order");
        for u in &listed {
            assert_eq!(
                u.groups,
                std::slice::from_ref(&u.username),
                "each user keeps its own groups"
            );
        }
    }

    pub async fn a_duplicate_username_is_already_exists<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_user(&user("alice", Some("sub-1"), &["a"]))
            .await
            .expect("first");
        let message = already_exists(s.create_user(&user("alice", Some("sub-2"), &["b"])).await);
        assert!(
            message.contains("user") && message.contains("alice"),
            "{message}"
        );
        let kept = s.get_user("alice").await.expect("get").expect("alice");
        assert_eq!(kept.external_id.as_deref(), Some("sub-1"));
        assert_eq!(
            kept.groups,
            ["a"],
            "the failed create left no groups behind"
        );
        assert_eq!(
            s.find_user_by_external_id("sub-2").await.expect("find"),
            None
        );
    }

    pub async fn a_duplicate_external_id_is_already_exists<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_user(&user("alice", Some("sub-1"), &[]))
            .await
            .expect("first");
        let message = already_exists(s.create_user(&user("bob", Some("sub-1"), &["g"])).await);
        assert!(
            message.contains("external id") && message.contains("sub-1"),
            "{message}"
        );
        assert_eq!(
            s.get_user("bob").await.expect("get"),
            None,
            "nothing of bob was stored"
        );
        assert_eq!(s.list_users().await.expect("list").len(), 1);
    }

    pub async fn users_without_external_id_do_not_conflict<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let mut bare = user("bare", None, &[]);
        bare.email = None;
        bare.friendly_name = None;
        s.create_user(&bare).await.expect("create bare");
        s.create_user(&user("other", None, &[]))
            .await
            .expect("a second user without external id");
        assert_eq!(s.get_user("bare").await.expect("get"), Some(bare));
        assert_eq!(
            s.find_user_by_external_id("").await.expect("find empty"),
            None
        );
    }

    pub async fn groups_come_back_sorted_without_duplicates_and_go_with_the_user<F: Fixture>(
        f: Arc<F>,
    ) {
        let s = f.store();
        s.create_user(&user(
            "alice",
            None,
            &["zeta", "Admins", "alpha", "zeta", "alpha"],
        ))
        .await
        .expect("create with duplicate groups");
        let alice = s.get_user("alice").await.expect("get").expect("alice");
        assert_eq!(alice.groups, ["Admins", "alpha", "zeta"]);
        assert_eq!(s.list_users().await.expect("list")[0].groups, alice.groups);

        assert!(s.delete_user("alice").await.expect("delete"));
        s.create_user(&user("alice", None, &[]))
            .await
            .expect("recreate without groups");
        let again = s.get_user("alice").await.expect("get").expect("alice");
        assert!(
            again.groups.is_empty(),
            "old memberships were removed: {:?}",
            again.groups
        );
    }

    pub async fn set_friendly_name_changes_only_that_user<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_user(&user("alice", None, &[]))
            .await
            .expect("alice");
        s.create_user(&user("bob", None, &[])).await.expect("bob");
        assert!(
            s.set_friendly_name("alice", Some("Alice A."))
                .await
                .expect("set")
        );
        assert_eq!(
            s.get_user("alice")
                .await
                .expect("get")
                .and_then(|u| u.friendly_name)
                .as_deref(),
            Some("Alice A.")
        );
        assert_eq!(
            s.get_user("bob")
                .await
                .expect("get")
                .and_then(|u| u.friendly_name)
                .as_deref(),
            Some("Friendly bob")
        );
        assert!(s.set_friendly_name("alice", None).await.expect("clear"));
        assert_eq!(
            s.get_user("alice")
                .await
                .expect("get")
                .and_then(|u| u.friendly_name),
            None
        );
        assert!(
            !s.set_friendly_name("nobody", Some("x"))
                .await
                .expect("unknown user")
        );
        assert_eq!(
            s.get_user("nobody").await.expect("get"),
            None,
            "no user was created"
        );
    }

    pub async fn every_one_of_200_concurrent_audit_records_is_kept<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.append_audit(&audit(3000 + i, LoginOutcome::Success, &format!("c-{i}")))
                    .await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("append");
        }
        let all = s.list_audit(1000).await.expect("list");
        assert_eq!(all.len(), 200);
        let mut ids: Vec<String> = all.into_iter().map(|r| r.request_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200, "every record once");
    }

    /// A login dropped once its record is handed over (its client gone, its request timed
    /// out) still leaves the record: the audit write does not depend on the login being polled
    /// to the end.
    pub async fn an_audit_record_handed_over_is_written_though_its_login_is_dropped<F: Fixture>(
        f: Arc<F>,
    ) {
        let s = f.store();
        let record = audit(4000, LoginOutcome::Success, "dropped-login");
        let mut append = Box::pin(s.append_audit(&record));
        // One poll hands the record over; the login is dropped before its commit is reported.
        std::future::poll_fn(|cx| {
            let _ = append.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(append);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let all = s.list_audit(10).await.expect("list");
            if all == vec![record.clone()] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the record of a dropped login was not written within 5 s: {all:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn audit_records_are_listed_newest_first_up_to_the_limit<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        assert!(s.list_audit(10).await.expect("empty").is_empty());
        let records: Vec<LoginAudit> = (1..=5)
            .map(|i| {
                let outcome = if i % 2 == 0 {
                    LoginOutcome::Failure
                } else {
                    LoginOutcome::Success
                };
                audit(1000 + i, outcome, &format!("req-{i}"))
            })
            .collect();
        for r in &records {
            s.append_audit(r).await.expect("append");
        }
        let mut bare = audit(2000, LoginOutcome::Failure, "req-bare");
        bare.external_id = None;
        bare.username = None;
        bare.client_addr = None;
        s.append_audit(&bare).await.expect("append bare");

        let all = s.list_audit(100).await.expect("list");
        let mut expected = records.clone();
        expected.push(bare.clone());
        expected.reverse();
        assert_eq!(all, expected);

        let newest = s.list_audit(2).await.expect("list 2");
        assert_eq!(newest, vec![bare, records[4].clone()]);
        assert!(s.list_audit(0).await.expect("list 0").is_empty());
    }

    pub async fn a_grant_can_be_taken_once<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let g = grant("login_session", "state-1", 2000);
        s.put_grant(&g).await.expect("put");
        assert_eq!(
            s.take_grant("idp_code", "state-1", 1000)
                .await
                .expect("other kind"),
            None
        );
        assert_eq!(
            s.take_grant("login_session", "state-2", 1000)
                .await
                .expect("other key"),
            None
        );
        assert_eq!(
            s.take_grant("login_session", "state-1", 1000)
                .await
                .expect("take"),
            Some(g)
        );
        assert_eq!(
            s.take_grant("login_session", "state-1", 1000)
                .await
                .expect("take again"),
            None
        );
    }

    pub async fn an_expired_grant_is_not_returned_and_is_removed<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.put_grant(&grant("idp_code", "c1", 1000))
            .await
            .expect("put");
        // expires_at == now is expired.
        assert_eq!(
            s.take_grant("idp_code", "c1", 1000)
                .await
                .expect("take expired"),
            None
        );
        // Removed: not even a take "from the past" finds it.
        assert_eq!(
            s.take_grant("idp_code", "c1", 0).await.expect("take after"),
            None
        );
        assert_eq!(s.purge_expired_grants(i64::MAX).await.expect("purge"), 0);
        // One second before expiry it is still live.
        s.put_grant(&grant("idp_code", "c2", 1000))
            .await
            .expect("put");
        assert!(
            s.take_grant("idp_code", "c2", 999)
                .await
                .expect("take live")
                .is_some()
        );
    }

    pub async fn a_duplicate_grant_key_is_already_exists<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.put_grant(&grant("login_session", "secret-state", 2000))
            .await
            .expect("put");
        let message = already_exists(
            s.put_grant(&grant("login_session", "secret-state", 3000))
                .await,
        );
        assert!(message.contains("login_session"), "{message}");
        assert!(
            !message.contains("secret-state"),
            "the key is a secret: {message}"
        );
        // The same key in another namespace is another grant.
        s.put_grant(&grant("idp_code", "secret-state", 2000))
            .await
            .expect("other kind");
        let kept = s
            .take_grant("login_session", "secret-state", 0)
            .await
            .expect("take")
            .expect("kept");
        assert_eq!(kept.expires_at, 2000, "the first grant was kept unchanged");
    }

    pub async fn purging_removes_only_expired_grants_and_counts_them<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for (key, expires_at) in [("a", 100), ("b", 200), ("c", 300), ("d", 400)] {
            s.put_grant(&grant("k", key, expires_at))
                .await
                .expect("put");
        }
        assert_eq!(s.purge_expired_grants(50).await.expect("purge none"), 0);
        assert_eq!(s.purge_expired_grants(200).await.expect("purge"), 2);
        assert_eq!(s.purge_expired_grants(200).await.expect("purge again"), 0);
        assert_eq!(s.take_grant("k", "b", 0).await.expect("take b"), None);
        assert!(s.take_grant("k", "c", 200).await.expect("take c").is_some());
        assert!(s.take_grant("k", "d", 200).await.expect("take d").is_some());
    }

    pub async fn of_16_concurrent_takes_of_a_grant_exactly_one_wins<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for round in 0..5 {
            let key = format!("code-{round}");
            s.put_grant(&grant("idp_code", &key, 2000))
                .await
                .expect("put");
            let barrier = Arc::new(tokio::sync::Barrier::new(16));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let (s, key, barrier) = (s.clone(), key.clone(), barrier.clone());
                tasks.spawn(async move {
                    barrier.wait().await;
                    s.take_grant("idp_code", &key, 1000).await
                });
            }
            let mut winners = 0;
            while let Some(joined) = tasks.join_next().await {
                if joined.expect("task").expect("take").is_some() {
                    winners += 1;
                }
            }
            assert_eq!(winners, 1, "round {round}");
        }
    }

    pub async fn of_16_concurrent_creations_of_a_username_exactly_one_succeeds<F: Fixture>(
        f: Arc<F>,
    ) {
        let s = f.store();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.spawn(async move {
                let u = user(
                    "racer",
                    Some(&format!("sub-{i}")),
                    &["g1", &format!("g-{i}")],
                );
                barrier.wait().await;
                (s.create_user(&u).await, u)
            });
        }
        let mut winner = None;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("task") {
                (Ok(()), u) => {
                    assert!(
                        winner.is_none(),
                        "two creations of the same username succeeded"
                    );
                    winner = Some(u);
                }
                (Err(StoreError::AlreadyExists(_)), _) => {}
                (Err(e), _) => panic!("unexpected error: {e}"),
            }
        }
        let mut winner = winner.expect("one creation succeeded");
        winner.groups.sort();
        let stored = s.get_user("racer").await.expect("get").expect("racer");
        assert_eq!(
            stored, winner,
            "the stored user is the winner's, groups included"
        );
        assert_eq!(s.list_users().await.expect("list").len(), 1);
    }

    pub async fn unicode_and_long_values_round_trip<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let long = |c: char| -> String { std::iter::repeat_n(c, 256 / c.len_utf8()).collect() };
        let u = UserRecord {
            username: "ünïcødé-用户-🦀".into(),
            external_id: Some(long('é')),
            email: Some(long('a')),
            friendly_name: Some("Zoë O'Brien \"quoted\" ; DROP TABLE users; --".into()),
            groups: vec![long('g'), "группа".into(), "👩‍💻".into()],
            created_at: i64::MAX,
        };
        assert_eq!(u.external_id.as_ref().map(String::len), Some(256));
        s.create_user(&u).await.expect("create");
        let mut expected = u.clone();
        expected.groups.sort();
        assert_eq!(
            s.get_user(&u.username).await.expect("get"),
            Some(expected.clone())
        );
        assert_eq!(
            s.find_user_by_external_id(&long('é')).await.expect("find"),
            Some(expected)
        );

        let g = Grant {
            kind: "login_session".into(),
            key: long('🔑'),
            payload: long('ß'),
            expires_at: i64::MAX,
        };
        s.put_grant(&g).await.expect("put");
        assert_eq!(
            s.take_grant(&g.kind, &g.key, i64::MIN).await.expect("take"),
            Some(g)
        );

        let a = LoginAudit {
            at: -1,
            outcome: LoginOutcome::Failure,
            reason: long('✗'),
            external_id: Some(long('x')),
            username: Some("ünïcødé-用户-🦀".into()),
            client_addr: Some("[2001:db8::1]:443".into()),
            request_id: long('r'),
        };
        s.append_audit(&a).await.expect("append");
        assert_eq!(s.list_audit(1).await.expect("list"), vec![a]);
    }

    pub async fn restarting_keeps_the_data_and_reruns_migrations_harmlessly<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let alice = user("alice", Some("sub-alice"), &["admins"]);
        s.create_user(&alice).await.expect("create");
        s.put_grant(&grant("login_session", "st", 2000))
            .await
            .expect("put grant");
        s.append_audit(&audit(1, LoginOutcome::Success, "r1"))
            .await
            .expect("append");
        drop(s);

        for _ in 0..2 {
            let s = f.restart().await;
            assert_eq!(s.get_user("alice").await.expect("get"), Some(alice.clone()));
            assert_eq!(s.list_audit(10).await.expect("audit").len(), 1);
        }
        let s = f.restart().await;
        assert!(
            s.take_grant("login_session", "st", 1000)
                .await
                .expect("take")
                .is_some()
        );
        // The schema is intact after re-running the migrations: constraints still hold.
        already_exists(s.create_user(&alice).await);
    }
}

/// Issue 15: deleting a user remembers its identity (whatever path deletes it: the trigger
/// does it in the same statement), so that automatic creation can refuse it; readmitting
/// forgets it. Users without an external id leave no mark.
pub mod removed {
    use super::*;

    pub async fn removing_a_user_remembers_its_identity_until_readmitted<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_user(&user("alice", Some("dev:alice"), &["devs"]))
            .await
            .expect("create alice");
        s.create_user(&user("bob", None, &[]))
            .await
            .expect("create bob");
        assert_eq!(s.removed_identity("dev:alice").await.expect("before"), None);

        assert!(s.delete_user("alice").await.expect("delete alice"));
        assert!(s.delete_user("bob").await.expect("delete bob"));
        let mark = s
            .removed_identity("dev:alice")
            .await
            .expect("after")
            .expect("alice's identity is remembered");
        assert_eq!(mark.external_id, "dev:alice");
        assert_eq!(mark.username, "alice");
        assert!(mark.removed_at > 1_700_000_000, "{mark:?}");
        // Exact match only.
        assert_eq!(s.removed_identity("dev:alic").await.expect("prefix"), None);
        assert_eq!(
            s.list_removed_identities().await.expect("list"),
            vec![mark.clone()],
            "bob had no external id: no mark"
        );

        // A user created again under that identity (explicitly) and removed again: one mark,
        // with the newer username.
        s.create_user(&user("alice2", Some("dev:alice"), &[]))
            .await
            .expect("create alice2");
        assert!(s.delete_user("alice2").await.expect("delete alice2"));
        let marks = s.list_removed_identities().await.expect("list");
        assert_eq!(marks.len(), 1, "{marks:?}");
        assert_eq!(marks[0].username, "alice2");

        assert!(s.readmit_identity("dev:alice").await.expect("readmit"));
        assert!(
            !s.readmit_identity("dev:alice")
                .await
                .expect("readmit again")
        );
        assert_eq!(
            s.removed_identity("dev:alice").await.expect("readmitted"),
            None
        );
        assert!(s.list_removed_identities().await.expect("list").is_empty());
    }
}

mod checked_audit {
    use super::*;

    /// An audit record written under an expected generation (a login that took its user from
    /// memory unchecked) is written only while the generation holds: on PostgreSQL the check is
    /// in the INSERT itself; SQLite cannot check there and writes nothing.
    pub async fn an_audit_record_under_a_generation_is_written_only_while_it_holds<F: Fixture>(
        f: Arc<F>,
    ) {
        let s = f.store();
        let ids = |records: Vec<LoginAudit>| -> Vec<String> {
            records.into_iter().map(|r| r.request_id).collect()
        };
        if !s.checks_generation_in_audit() {
            let written = s
                .append_audit_if_unchanged(&audit(1, LoginOutcome::Success, "a"), 0)
                .await
                .expect("append");
            assert!(!written, "a store that cannot check writes nothing");
            assert!(s.list_audit(10).await.expect("list").is_empty());
            return;
        }
        // A fresh database is at generation 0; a write to a cached table moves it.
        let ok = |r: Result<bool, StoreError>| r.expect("append");
        assert!(ok(s
            .append_audit_if_unchanged(&audit(1, LoginOutcome::Success, "a"), 0)
            .await));
        s.create_user(&user("bob", Some("sub-bob"), &[]))
            .await
            .expect("create");
        assert!(!ok(s
            .append_audit_if_unchanged(&audit(2, LoginOutcome::Success, "b"), 0)
            .await));
        assert!(ok(s
            .append_audit_if_unchanged(&audit(3, LoginOutcome::Success, "c"), 1)
            .await));
        // Records without an expectation in the same batches are unaffected.
        let (d, e) = (
            audit(4, LoginOutcome::Failure, "d"),
            audit(5, LoginOutcome::Success, "e"),
        );
        let (d, e) = tokio::join!(s.append_audit(&d), s.append_audit_if_unchanged(&e, 7));
        d.expect("append d");
        assert!(!ok(e));
        assert_eq!(ids(s.list_audit(10).await.expect("list")), ["d", "c", "a"]);
    }
}

/// One `#[tokio::test]` per check per backend: `sqlite::<check>` and `postgres::<check>`.
macro_rules! conformance {
    ($($check:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    crate::support::run::<crate::support::SqliteFixture, _, _>(
                        concat!("sqlite::", stringify!($check)),
                        crate::checks::$check,
                    )
                    .await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    crate::support::run::<crate::support::PostgresFixture, _, _>(
                        concat!("postgres::", stringify!($check)),
                        crate::checks::$check,
                    )
                    .await;
                }
            )+
        }
    };
}

conformance! {
    ping_succeeds,
    a_created_user_can_be_read_found_listed_and_deleted,
    users_are_listed_in_username_order,
    a_duplicate_username_is_already_exists,
    a_duplicate_external_id_is_already_exists,
    users_without_external_id_do_not_conflict,
    groups_come_back_sorted_without_duplicates_and_go_with_the_user,
    set_friendly_name_changes_only_that_user,
    audit_records_are_listed_newest_first_up_to_the_limit,
    every_one_of_200_concurrent_audit_records_is_kept,
    an_audit_record_handed_over_is_written_though_its_login_is_dropped,
    a_grant_can_be_taken_once,
    an_expired_grant_is_not_returned_and_is_removed,
    a_duplicate_grant_key_is_already_exists,
    purging_removes_only_expired_grants_and_counts_them,
    of_16_concurrent_takes_of_a_grant_exactly_one_wins,
    of_16_concurrent_creations_of_a_username_exactly_one_succeeds,
    unicode_and_long_values_round_trip,
    restarting_keeps_the_data_and_reruns_migrations_harmlessly,
    removing_a_user_remembers_its_identity_until_readmitted,
    an_audit_record_under_a_generation_is_written_only_while_it_holds,
}
