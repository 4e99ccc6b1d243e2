//! Conformance of the hardening parts of [`Store`] (issue 12): token revocation and audit
//! retention, on SQLite and on PostgreSQL alike (a fresh database per test; PostgreSQL skipped
//! loudly without `LAKESTS_TEST_POSTGRES_URL`, failed when `LAKESTS_TEST_REQUIRE_POSTGRES=1`).

mod support;

use std::sync::Arc;

use lakests_core::store::{LoginAudit, LoginOutcome};
use support::Fixture;

fn audit(at: i64) -> LoginAudit {
    LoginAudit {
        at,
        outcome: LoginOutcome::Failure,
        reason: format!("reason {at}"),
        external_id: None,
        username: None,
        client_addr: Some("127.0.0.1".into()),
        request_id: format!("req-{at}"),
    }
}

mod checks {
    use super::*;

    pub async fn revoking_a_users_tokens_covers_those_issued_up_to_that_time<F: Fixture>(
        f: Arc<F>,
    ) {
        let s = f.store();
        assert!(!s.is_token_revoked("bob", "j1", 100).await.expect("check"));
        s.revoke_user_tokens("bob", 1_000).await.expect("revoke");
        assert!(s.is_token_revoked("bob", "j1", 999).await.expect("check"));
        assert!(
            s.is_token_revoked("bob", "j1", 1_000).await.expect("check"),
            "issued in the second of the revocation"
        );
        assert!(!s.is_token_revoked("bob", "j2", 1_001).await.expect("check"));
        assert!(!s.is_token_revoked("alice", "j1", 999).await.expect("check"));
        assert!(!s.is_token_revoked("Bob", "j1", 999).await.expect("check"));
        // An earlier revocation does not shorten a later one; a later one extends it.
        s.revoke_user_tokens("bob", 500)
            .await
            .expect("revoke earlier");
        assert!(s.is_token_revoked("bob", "j1", 999).await.expect("check"));
        s.revoke_user_tokens("bob", 2_000)
            .await
            .expect("revoke later");
        assert!(s.is_token_revoked("bob", "j3", 1_999).await.expect("check"));
        // Kept across a restart (a new replica sees it).
        let s = f.restart().await;
        assert!(s.is_token_revoked("bob", "j3", 1_999).await.expect("check"));
    }

    pub async fn revoking_one_token_by_jti_covers_only_that_token<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        assert!(s.revoke_token("jti-1", 10).await.expect("revoke"));
        assert!(
            !s.revoke_token("jti-1", 11).await.expect("again"),
            "already revoked"
        );
        assert!(
            s.is_token_revoked("alice", "jti-1", 5)
                .await
                .expect("check")
        );
        assert!(
            s.is_token_revoked("alice", "jti-1", 50)
                .await
                .expect("check")
        );
        assert!(
            !s.is_token_revoked("alice", "jti-2", 5)
                .await
                .expect("check")
        );
        assert!(!s.is_token_revoked("alice", "", 5).await.expect("check"));
        let other = f.restart().await;
        assert!(
            other
                .is_token_revoked("x", "jti-1", 5)
                .await
                .expect("check")
        );
    }

    pub async fn audit_records_before_the_cutoff_are_purged_and_counted<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for at in [100, 200, 300, 400] {
            s.append_audit(&audit(at)).await.expect("append");
        }
        assert_eq!(s.purge_audit_before(300).await.expect("purge"), 2);
        let left: Vec<i64> = s
            .list_audit(10)
            .await
            .expect("list")
            .iter()
            .map(|a| a.at)
            .collect();
        assert_eq!(left, [400, 300]);
        assert_eq!(s.purge_audit_before(300).await.expect("again"), 0);
    }

    /// A purge larger than one retention chunk (SQLite deletes 2,000 rows at a time) counts
    /// every row, and the logins writing beside it lose no record.
    pub async fn a_large_purge_beside_logins_counts_every_row_and_loses_no_new_record<
        F: Fixture,
    >(
        f: Arc<F>,
    ) {
        let s = f.store();
        let old = 4_500;
        let mut writes = tokio::task::JoinSet::new();
        for chunk in 0..10 {
            let s = s.clone();
            writes.spawn(async move {
                for at in (chunk * old / 10)..((chunk + 1) * old / 10) {
                    s.append_audit(&audit(at))
                        .await
                        .expect("append an old record");
                }
            });
        }
        writes.join_all().await;
        let cutoff = old;
        let purge = {
            let s = s.clone();
            tokio::spawn(async move { s.purge_audit_before(cutoff).await })
        };
        let mut logins = tokio::task::JoinSet::new();
        for at in cutoff..cutoff + 200 {
            let s = s.clone();
            logins.spawn(async move { s.append_audit(&audit(at)).await });
        }
        for done in logins.join_all().await {
            done.expect("a record written beside the purge");
        }
        assert_eq!(
            purge.await.expect("the purge task").expect("purge"),
            u64::try_from(old).expect("count")
        );
        let left = s.list_audit(1_000).await.expect("list");
        assert_eq!(left.len(), 200, "the records written beside the purge");
        assert!(left.iter().all(|a| a.at >= cutoff));
    }
}

macro_rules! conformance {
    ($($check:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    revoking_a_users_tokens_covers_those_issued_up_to_that_time,
    revoking_one_token_by_jti_covers_only_that_token,
    audit_records_before_the_cutoff_are_purged_and_counted,
    a_large_purge_beside_logins_counts_every_row_and_loses_no_new_record,
}
