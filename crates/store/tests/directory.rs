//! The conformance suite of [`Directory`] (what lakeFS's authorization API serves): every check
//! runs on SQLite and on PostgreSQL, like `conformance.rs`.

mod support;

use std::sync::Arc;

use lakests_core::directory::{
    CredentialRecord, DirectoryUser, ExternalPrincipalRecord, GroupRecord, Page, PolicyRecord,
    UserFilter,
};
use lakests_core::store::{StoreError, UserRecord};
use support::Fixture;

fn user(username: &str, external_id: Option<&str>, groups: &[&str]) -> DirectoryUser {
    DirectoryUser {
        user: UserRecord {
            username: username.into(),
            external_id: external_id.map(Into::into),
            email: Some(format!("{username}@example.com")),
            friendly_name: Some(format!("Friendly {username}")),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            created_at: 1_700_000_000,
        },
        source: Some("internal".into()),
    }
}

fn group(name: &str) -> GroupRecord {
    GroupRecord {
        name: name.into(),
        description: Some(format!("the {name}")),
        created_at: 1_700_000_100,
    }
}

fn policy(name: &str) -> PolicyRecord {
    PolicyRecord {
        name: name.into(),
        statement: format!(
            r#"[{{"effect":"allow","action":["fs:ReadObject"],"resource":"arn:lakefs:fs:::repository/{name}/*"}}]"#
        ),
        acl: String::new(),
        created_at: 1_700_000_200,
    }
}

fn credential(access_key_id: &str, username: &str) -> CredentialRecord {
    CredentialRecord {
        access_key_id: access_key_id.into(),
        username: username.into(),
        sealed_secret: vec![1, 0, 255, 7, 42],
        created_at: 1_700_000_300,
    }
}

fn page(prefix: &str, after: &str, limit: u32) -> Page {
    Page {
        prefix: prefix.into(),
        after: after.into(),
        limit,
    }
}

fn all(limit: u32) -> Page {
    Page::first(limit)
}

fn already_exists<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::AlreadyExists(message)) => message,
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::NotFound(message)) => message,
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn usernames(users: &[DirectoryUser]) -> Vec<&str> {
    users.iter().map(|u| u.user.username.as_str()).collect()
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(name).collect()
}

mod checks {
    use super::*;

    pub async fn users_keep_their_source_and_are_paged_by_prefix_and_after<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for name in ["carol", "Bob", "alice", "al_x", "alex", "dave"] {
            s.create_directory_user(&user(name, Some(&format!("sub-{name}")), &["g"]))
                .await
                .expect("create");
        }
        let alice = s
            .get_directory_user("alice")
            .await
            .expect("get")
            .expect("alice");
        assert_eq!(alice, user("alice", Some("sub-alice"), &["g"]));
        assert_eq!(s.get_directory_user("nobody").await.expect("get"), None);

        let every = s
            .list_directory_users(&UserFilter::All, &all(100))
            .await
            .expect("list");
        assert_eq!(
            usernames(&every),
            ["Bob", "al_x", "alex", "alice", "carol", "dave"],
            "byte order"
        );
        let first = s
            .list_directory_users(&UserFilter::All, &all(2))
            .await
            .expect("page 1");
        assert_eq!(usernames(&first), ["Bob", "al_x"]);
        let second = s
            .list_directory_users(&UserFilter::All, &page("", "al_x", 2))
            .await
            .expect("page 2");
        assert_eq!(usernames(&second), ["alex", "alice"]);
        // A prefix is literal: `_` and `%` are not wildcards.
        let al_ = s
            .list_directory_users(&UserFilter::All, &page("al_", "", 10))
            .await
            .expect("prefix");
        assert_eq!(usernames(&al_), ["al_x"]);
        let al = s
            .list_directory_users(&UserFilter::All, &page("al", "alex", 10))
            .await
            .expect("prefix and after");
        assert_eq!(usernames(&al), ["alice"]);
        let pct = s
            .list_directory_users(&UserFilter::All, &page("%", "", 10))
            .await
            .expect("percent");
        assert!(pct.is_empty());

        let by_sub = s
            .list_directory_users(&UserFilter::ExternalId("sub-carol".into()), &all(2))
            .await
            .expect("by external id");
        assert_eq!(usernames(&by_sub), ["carol"]);
        assert_eq!(by_sub[0].user.groups, ["g"]);
        let none = s
            .list_directory_users(&UserFilter::ExternalId("sub-car".into()), &all(2))
            .await
            .expect("by unknown external id");
        assert!(none.is_empty());
        let by_mail = s
            .list_directory_users(&UserFilter::Email("dave@example.com".into()), &all(2))
            .await
            .expect("by email");
        assert_eq!(usernames(&by_mail), ["dave"]);

        // The login store's users are directory users without a source.
        s.create_user(&UserRecord {
            username: "plain".into(),
            external_id: None,
            email: None,
            friendly_name: None,
            groups: vec!["h".into()],
            created_at: 5,
        })
        .await
        .expect("create plain");
        let plain = s
            .get_directory_user("plain")
            .await
            .expect("get")
            .expect("plain");
        assert_eq!(plain.source, None);
        assert!(
            s.get_group("h").await.expect("group").is_some(),
            "a user's groups exist as groups"
        );
    }

    pub async fn profiles_and_group_sync_change_only_that_user<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_directory_user(&user("alice", None, &["a", "b"]))
            .await
            .expect("alice");
        s.create_directory_user(&user("bob", None, &["a"]))
            .await
            .expect("bob");
        assert!(
            s.update_user_profile("alice", Some("new@example.com"), None)
                .await
                .expect("update")
        );
        let alice = s.get_user("alice").await.expect("get").expect("alice");
        assert_eq!(alice.email.as_deref(), Some("new@example.com"));
        assert_eq!(alice.friendly_name, None);
        assert!(
            !s.update_user_profile("nobody", None, None)
                .await
                .expect("unknown")
        );

        assert!(
            s.set_user_groups("alice", &["b".into(), "c".into(), "c".into()])
                .await
                .expect("sync")
        );
        assert_eq!(
            s.get_user("alice")
                .await
                .expect("get")
                .expect("alice")
                .groups,
            ["b", "c"]
        );
        assert!(s.get_group("c").await.expect("c").is_some(), "created");
        assert_eq!(
            s.get_user("bob").await.expect("get").expect("bob").groups,
            ["a"],
            "bob's memberships are untouched"
        );
        assert!(s.set_user_groups("alice", &[]).await.expect("clear"));
        assert!(
            s.get_user("alice")
                .await
                .expect("get")
                .expect("alice")
                .groups
                .is_empty()
        );
        assert!(
            !s.set_user_groups("nobody", &["x".into()])
                .await
                .expect("unknown")
        );
        assert!(
            s.get_group("x").await.expect("x").is_none(),
            "nothing was written for an unknown user"
        );
    }

    pub async fn groups_are_created_read_paged_and_deleted_with_their_links<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        for name in ["Viewers", "Admins", "Developers"] {
            s.create_group(&group(name)).await.expect("create");
        }
        let m = already_exists(s.create_group(&group("Admins")).await);
        assert!(m.contains("Admins"), "{m}");
        assert_eq!(
            s.get_group("Admins").await.expect("get"),
            Some(group("Admins"))
        );
        assert_eq!(s.get_group("admins").await.expect("get"), None);
        let listed = s.list_groups(&all(10)).await.expect("list");
        assert_eq!(
            names(&listed, |g| &g.name),
            ["Admins", "Developers", "Viewers"]
        );
        let next = s.list_groups(&page("", "Admins", 1)).await.expect("page");
        assert_eq!(names(&next, |g| &g.name), ["Developers"]);
        let d = s.list_groups(&page("D", "", 10)).await.expect("prefix");
        assert_eq!(names(&d, |g| &g.name), ["Developers"]);

        s.create_directory_user(&user("alice", None, &[]))
            .await
            .expect("alice");
        s.add_group_member("Admins", "alice").await.expect("add");
        s.add_group_member("Admins", "alice")
            .await
            .expect("adding again changes nothing");
        s.add_group_member("Viewers", "alice").await.expect("add");
        let m = not_found(s.add_group_member("Nope", "alice").await);
        assert!(m.contains("group") && m.contains("Nope"), "{m}");
        let m = not_found(s.add_group_member("Admins", "nobody").await);
        assert!(m.contains("user") && m.contains("nobody"), "{m}");
        let members = s
            .list_group_members("Admins", &all(10))
            .await
            .expect("members");
        assert_eq!(usernames(&members), ["alice"]);
        assert_eq!(members[0].user.groups, ["Admins", "Viewers"]);
        let groups = s.list_user_groups("alice", &all(10)).await.expect("groups");
        assert_eq!(names(&groups, |g| &g.name), ["Admins", "Viewers"]);
        let groups = s
            .list_user_groups("alice", &page("", "Admins", 10))
            .await
            .expect("groups after");
        assert_eq!(names(&groups, |g| &g.name), ["Viewers"]);

        s.create_policy(&policy("p")).await.expect("policy");
        s.attach_group_policy("Admins", "p").await.expect("attach");
        assert!(s.delete_group("Admins").await.expect("delete"));
        assert!(!s.delete_group("Admins").await.expect("delete again"));
        assert_eq!(
            s.get_user("alice")
                .await
                .expect("get")
                .expect("alice")
                .groups,
            ["Viewers"],
            "the membership went with the group"
        );
        s.create_group(&group("Admins")).await.expect("recreate");
        assert!(
            s.list_group_members("Admins", &all(10))
                .await
                .expect("members")
                .is_empty(),
            "a recreated group has no old members"
        );
        assert!(
            s.list_group_policies("Admins", &all(10))
                .await
                .expect("policies")
                .is_empty(),
            "nor old policies"
        );
        assert!(s.remove_group_member("Viewers", "alice").await.expect("rm"));
        assert!(
            !s.remove_group_member("Viewers", "alice")
                .await
                .expect("rm again")
        );
    }

    pub async fn policies_are_created_updated_paged_and_deleted_with_their_attachments<
        F: Fixture,
    >(
        f: Arc<F>,
    ) {
        let s = f.store();
        for name in ["FSReadAll", "AuthManageOwnCredentials", "FSFullAccess"] {
            s.create_policy(&policy(name)).await.expect("create");
        }
        let m = already_exists(s.create_policy(&policy("FSReadAll")).await);
        assert!(m.contains("FSReadAll"), "{m}");
        assert_eq!(
            s.get_policy("FSReadAll").await.expect("get"),
            Some(policy("FSReadAll"))
        );
        let mut changed = policy("FSReadAll");
        changed.statement = r#"[{"effect":"deny","action":["*"],"resource":"*"}]"#.into();
        changed.acl = "Read".into();
        changed.created_at = 1;
        assert!(s.update_policy(&changed).await.expect("update"));
        let stored = s.get_policy("FSReadAll").await.expect("get").expect("p");
        assert_eq!(stored.statement, changed.statement);
        assert_eq!(stored.acl, "Read");
        assert_eq!(stored.created_at, 1_700_000_200, "creation date kept");
        assert!(
            !s.update_policy(&policy("Unknown")).await.expect("update"),
            "updating an unknown policy creates nothing"
        );
        assert_eq!(s.get_policy("Unknown").await.expect("get"), None);

        let listed = s.list_policies(&all(10)).await.expect("list");
        assert_eq!(
            names(&listed, |p| &p.name),
            ["AuthManageOwnCredentials", "FSFullAccess", "FSReadAll"]
        );
        let fs = s.list_policies(&page("FS", "FSFullAccess", 10)).await;
        assert_eq!(names(&fs.expect("page"), |p| &p.name), ["FSReadAll"]);

        s.create_directory_user(&user("alice", None, &["devs"]))
            .await
            .expect("alice");
        s.attach_user_policy("alice", "FSReadAll")
            .await
            .expect("attach");
        already_exists(s.attach_user_policy("alice", "FSReadAll").await);
        not_found(s.attach_user_policy("alice", "Nope").await);
        not_found(s.attach_user_policy("nobody", "FSReadAll").await);
        s.attach_group_policy("devs", "FSFullAccess")
            .await
            .expect("attach");
        s.attach_group_policy("devs", "FSReadAll")
            .await
            .expect("attach");
        already_exists(s.attach_group_policy("devs", "FSReadAll").await);
        not_found(s.attach_group_policy("nope", "FSReadAll").await);
        not_found(s.attach_group_policy("devs", "Nope").await);

        let own = s.list_user_policies("alice", &all(10)).await.expect("own");
        assert_eq!(names(&own, |p| &p.name), ["FSReadAll"]);
        let effective = s
            .list_effective_policies("alice", &all(10))
            .await
            .expect("effective");
        assert_eq!(
            names(&effective, |p| &p.name),
            ["FSFullAccess", "FSReadAll"],
            "the user's and its groups', each once"
        );
        let effective = s
            .list_effective_policies("alice", &page("", "FSFullAccess", 1))
            .await
            .expect("effective page");
        assert_eq!(names(&effective, |p| &p.name), ["FSReadAll"]);
        let group_policies = s
            .list_group_policies("devs", &page("FSF", "", 10))
            .await
            .expect("group policies");
        assert_eq!(names(&group_policies, |p| &p.name), ["FSFullAccess"]);

        assert!(s.delete_policy("FSReadAll").await.expect("delete"));
        assert!(!s.delete_policy("FSReadAll").await.expect("again"));
        assert!(
            s.list_user_policies("alice", &all(10))
                .await
                .expect("own")
                .is_empty()
        );
        let effective = s
            .list_effective_policies("alice", &all(10))
            .await
            .expect("effective");
        assert_eq!(names(&effective, |p| &p.name), ["FSFullAccess"]);
        assert!(
            s.detach_group_policy("devs", "FSFullAccess")
                .await
                .expect("detach")
        );
        assert!(
            !s.detach_group_policy("devs", "FSFullAccess")
                .await
                .expect("again")
        );
        assert!(
            !s.detach_user_policy("alice", "FSReadAll")
                .await
                .expect("gone")
        );
    }

    pub async fn credentials_are_global_keys_owned_by_one_user<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_directory_user(&user("alice", None, &[]))
            .await
            .expect("alice");
        s.create_directory_user(&user("bob", None, &[]))
            .await
            .expect("bob");
        for ak in ["AKIAJC", "AKIAJA", "AKIAJB"] {
            s.create_credential(&credential(ak, "alice"))
                .await
                .expect("create");
        }
        let m = already_exists(s.create_credential(&credential("AKIAJA", "bob")).await);
        assert!(m.contains("AKIAJA"), "{m}");
        not_found(s.create_credential(&credential("AKIAJZ", "nobody")).await);
        assert_eq!(
            s.get_credential("AKIAJA").await.expect("get"),
            Some(credential("AKIAJA", "alice"))
        );
        assert_eq!(s.get_credential("AKIAJZ").await.expect("get"), None);
        let listed = s
            .list_user_credentials("alice", &page("", "AKIAJA", 1))
            .await
            .expect("list");
        assert_eq!(names(&listed, |c| &c.access_key_id), ["AKIAJB"]);
        assert!(
            s.list_user_credentials("bob", &all(10))
                .await
                .expect("bob")
                .is_empty()
        );
        assert!(
            !s.delete_credential("bob", "AKIAJA").await.expect("not his"),
            "only the owner's key is deleted"
        );
        assert!(s.get_credential("AKIAJA").await.expect("get").is_some());
        assert!(
            s.delete_credential("alice", "AKIAJA")
                .await
                .expect("delete")
        );
        assert_eq!(s.get_credential("AKIAJA").await.expect("get"), None);
    }

    pub async fn external_principals_map_to_one_user<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_directory_user(&user("alice", None, &[]))
            .await
            .expect("alice");
        let arn = |r: &str| ExternalPrincipalRecord {
            id: format!("arn:aws:iam::123:role/{r}"),
            username: "alice".into(),
        };
        s.create_external_principal(&arn("b")).await.expect("b");
        s.create_external_principal(&arn("a")).await.expect("a");
        already_exists(s.create_external_principal(&arn("a")).await);
        not_found(
            s.create_external_principal(&ExternalPrincipalRecord {
                id: "x".into(),
                username: "nobody".into(),
            })
            .await,
        );
        assert_eq!(
            s.get_external_principal(&arn("a").id).await.expect("get"),
            Some(arn("a"))
        );
        let listed = s
            .list_user_external_principals("alice", &all(10))
            .await
            .expect("list");
        assert_eq!(listed, vec![arn("a"), arn("b")]);
        assert!(
            s.delete_external_principal("alice", &arn("a").id)
                .await
                .expect("delete")
        );
        assert_eq!(
            s.get_external_principal(&arn("a").id).await.expect("get"),
            None
        );
    }

    pub async fn a_token_id_is_claimed_once_until_it_expires<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        assert!(s.claim_token_id("t1", 2000, 1000).await.expect("claim"));
        assert!(!s.claim_token_id("t1", 2000, 1000).await.expect("again"));
        assert!(
            !s.claim_token_id("t1", 9999, 1999).await.expect("later"),
            "still claimed one second before expiry"
        );
        assert!(s.claim_token_id("t2", 1500, 1000).await.expect("other"));
        // At 2000 both are expired and purged: t1 can be claimed again.
        assert!(
            s.claim_token_id("t1", 3000, 2000)
                .await
                .expect("after expiry")
        );
    }

    pub async fn of_16_concurrent_claims_of_a_token_id_exactly_one_wins<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.spawn(async move {
                barrier.wait().await;
                s.claim_token_id("race", 2000, 1000).await
            });
        }
        let mut winners = 0;
        while let Some(joined) = tasks.join_next().await {
            if joined.expect("task").expect("claim") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    pub async fn deleting_a_user_removes_everything_attached_and_a_new_user_revives_nothing<
        F: Fixture,
    >(
        f: Arc<F>,
    ) {
        let s = f.store();
        s.create_directory_user(&user("bob", Some("sub-bob"), &["devs"]))
            .await
            .expect("bob");
        s.create_directory_user(&user("carol", None, &["devs"]))
            .await
            .expect("carol");
        s.create_policy(&policy("p")).await.expect("policy");
        s.attach_user_policy("bob", "p").await.expect("attach bob");
        s.attach_user_policy("carol", "p")
            .await
            .expect("attach carol");
        s.create_credential(&credential("AKIAJBOB", "bob"))
            .await
            .expect("key");
        s.create_credential(&credential("AKIAJCAROL", "carol"))
            .await
            .expect("key");
        s.create_external_principal(&ExternalPrincipalRecord {
            id: "arn:bob".into(),
            username: "bob".into(),
        })
        .await
        .expect("principal");

        assert!(s.delete_user("bob").await.expect("delete"));
        assert_eq!(s.get_credential("AKIAJBOB").await.expect("key"), None);
        assert_eq!(s.get_external_principal("arn:bob").await.expect("p"), None);
        assert_eq!(
            usernames(
                &s.list_group_members("devs", &all(10))
                    .await
                    .expect("members")
            ),
            ["carol"]
        );
        // Carol's links are untouched; the shared group and policy remain.
        assert!(s.get_credential("AKIAJCAROL").await.expect("key").is_some());
        assert_eq!(
            s.list_user_policies("carol", &all(10))
                .await
                .expect("carol")
                .len(),
            1
        );

        let mut new_bob = user("bob", Some("sub-new-bob"), &[]);
        new_bob.user.created_at += 10;
        s.create_directory_user(&new_bob).await.expect("new bob");
        assert!(
            s.list_user_policies("bob", &all(10))
                .await
                .expect("p")
                .is_empty()
        );
        assert!(
            s.list_user_groups("bob", &all(10))
                .await
                .expect("g")
                .is_empty()
        );
        assert!(
            s.list_user_credentials("bob", &all(10))
                .await
                .expect("c")
                .is_empty()
        );
        assert!(
            s.list_user_external_principals("bob", &all(10))
                .await
                .expect("e")
                .is_empty()
        );
        assert!(
            s.list_effective_policies("bob", &all(10))
                .await
                .expect("eff")
                .is_empty()
        );
    }

    pub async fn directory_records_survive_a_restart<F: Fixture>(f: Arc<F>) {
        let s = f.store();
        s.create_directory_user(&user("alice", Some("s"), &["g"]))
            .await
            .expect("alice");
        s.create_policy(&policy("p")).await.expect("policy");
        s.attach_group_policy("g", "p").await.expect("attach");
        s.create_credential(&credential("AKIAJX", "alice"))
            .await
            .expect("key");
        drop(s);
        let s = f.restart().await;
        assert_eq!(
            s.get_directory_user("alice").await.expect("get"),
            Some(user("alice", Some("s"), &["g"]))
        );
        assert_eq!(
            s.get_credential("AKIAJX").await.expect("key"),
            Some(credential("AKIAJX", "alice"))
        );
        let effective = s
            .list_effective_policies("alice", &all(10))
            .await
            .expect("effective");
        assert_eq!(effective, vec![policy("p")]);
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
    users_keep_their_source_and_are_paged_by_prefix_and_after,
    profiles_and_group_sync_change_only_that_user,
    groups_are_created_read_paged_and_deleted_with_their_links,
    policies_are_created_updated_paged_and_deleted_with_their_attachments,
    credentials_are_global_keys_owned_by_one_user,
    external_principals_map_to_one_user,
    a_token_id_is_claimed_once_until_it_expires,
    of_16_concurrent_claims_of_a_token_id_exactly_one_wins,
    deleting_a_user_removes_everything_attached_and_a_new_user_revives_nothing,
    directory_records_survive_a_restart,
}
