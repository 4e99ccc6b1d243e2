//! The STS login use case (`StsService`) in-process: a real SQLite store in a temporary
//! directory, an authenticator that returns the claims each test gives it, and a
//! `ManualClock`. Pins the branches that no HTTP test reaches: persisting the friendly name,
//! a failed audit write turning a success into a storage error, and concurrent first logins
//! of one identity (the provisioning race).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lakests_api::{AuthenticatorStsRequest, StsAuthRequest};

use lakests_core::sts::{Provisioning, StsError, StsPolicy, StsService};
use lakests_core::token::TokenIssuer;
use lakests_core::{
    Authenticator, AuthenticatorError, Claims, LoginOutcome, ManualClock, Reason, RequestContext,
    Store, UserRecord,
};
use lakests_store::SqliteStore;
use secrecy::SecretString;

const NOW: i64 = 1_800_000_000;
const SECRET: &str = "use-case-test-secret-key-0123456789abcdef";

/// Answers every code with the same claims, after waiting on `gate` (when set) so that
/// concurrent logins reach the store together.
struct FixedClaims {
    claims: Claims,
    gate: Option<Arc<tokio::sync::Barrier>>,
}

#[async_trait]
impl Authenticator for FixedClaims {
    async fn sts_login(
        &self,
        _request: &AuthenticatorStsRequest,
        _ctx: &RequestContext,
    ) -> Result<Claims, AuthenticatorError> {
        if let Some(gate) = &self.gate {
            gate.wait().await;
        }
        Ok(self.claims.clone())
    }
}

fn claims(pairs: &[(&str, &str)]) -> Claims {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<BTreeMap<_, _>>()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn Store>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lakests.db");
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .expect("open SQLite");
    Fixture {
        _dir: dir,
        path,
        store: Arc::new(store),
    }
}

/// lakeFS's defaults (what the configuration gives when it says nothing); the policy itself has
/// no `Default`: it comes from the configuration only.
fn base_policy() -> StsPolicy {
    StsPolicy {
        default_ttl_seconds: 3600,
        max_ttl_seconds: 43_200,
        external_id_claim: "sub".into(),
        required_claims: Default::default(),
        provisioning: None,
        friendly_name_claim: None,
        persist_friendly_name: false,
    }
}

fn service(store: Arc<dyn Store>, authenticator: FixedClaims, policy: StsPolicy) -> StsService {
    StsService::new(
        store,
        Arc::new(authenticator),
        TokenIssuer::new(&SecretString::from(SECRET)),
        Arc::new(ManualClock::new(NOW)),
        policy,
    )
}

fn request() -> StsAuthRequest {
    StsAuthRequest {
        code: "a-code".into(),
        state: "a-state".into(),
        redirect_uri: "http://127.0.0.1:8085/callback".into(),
        ttl_seconds: None,
    }
}

fn ctx(id: &str) -> RequestContext {
    RequestContext {
        request_id: id.into(),
        client_addr: Some("127.0.0.1".into()),
    }
}

fn alice() -> UserRecord {
    UserRecord {
        username: "alice".into(),
        external_id: Some("sub-alice".into()),
        email: None,
        friendly_name: Some("Old Name".into()),
        groups: vec![],
        created_at: NOW - 100,
    }
}

#[tokio::test]
async fn a_login_mints_a_token_that_verifies_and_records_one_success() {
    let f = fixture().await;
    f.store.create_user(&alice()).await.expect("create");
    let sts = service(
        f.store.clone(),
        FixedClaims {
            claims: claims(&[("sub", "sub-alice")]),
            gate: None,
        },
        base_policy(),
    );
    let grant = sts.login(&request(), &ctx("r-1")).await.expect("login");
    assert_eq!(grant.username, "alice");
    assert_eq!(grant.granted_ttl_seconds, 3600);
    let verified = TokenIssuer::new(&SecretString::from(SECRET))
        .verify(&grant.token.token, NOW)
        .expect("the token verifies");
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.exp, NOW + 3600);
    let audit = f.store.list_audit(10).await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, LoginOutcome::Success);
    assert_eq!(audit[0].username.as_deref(), Some("alice"));
    assert_eq!(audit[0].external_id.as_deref(), Some("sub-alice"));
    assert_eq!(audit[0].request_id, "r-1");
}

#[tokio::test]
async fn the_friendly_name_is_persisted_from_its_claim_only_when_asked() {
    let f = fixture().await;
    f.store.create_user(&alice()).await.expect("create");
    let authenticator = || FixedClaims {
        claims: claims(&[("sub", "sub-alice"), ("name", "Alice Liddell")]),
        gate: None,
    };
    let mut policy = StsPolicy {
        friendly_name_claim: Some("name".into()),
        ..base_policy()
    };
    // Not asked: unchanged.
    service(f.store.clone(), authenticator(), policy.clone())
        .login(&request(), &ctx("r-1"))
        .await
        .expect("login");
    let user = f
        .store
        .get_user("alice")
        .await
        .expect("read")
        .expect("alice");
    assert_eq!(user.friendly_name.as_deref(), Some("Old Name"));
    // Asked: the claim's value is stored.
    policy.persist_friendly_name = true;
    service(f.store.clone(), authenticator(), policy)
        .login(&request(), &ctx("r-2"))
        .await
        .expect("login");
    let user = f
        .store
        .get_user("alice")
        .await
        .expect("read")
        .expect("alice");
    assert_eq!(user.friendly_name.as_deref(), Some("Alice Liddell"));
}

#[tokio::test]
async fn a_login_whose_audit_record_cannot_be_written_fails() {
    let f = fixture().await;
    f.store.create_user(&alice()).await.expect("create");
    // Another connection takes the audit table away.
    let audit_file = SqliteStore::audit_path(&f.path);
    let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", audit_file.display()))
        .await
        .expect("second connection");
    sqlx::query("DROP TABLE login_audit")
        .execute(&other)
        .await
        .expect("drop the audit table");
    other.close().await;
    let sts = service(
        f.store.clone(),
        FixedClaims {
            claims: claims(&[("sub", "sub-alice")]),
            gate: None,
        },
        base_policy(),
    );
    match sts.login(&request(), &ctx("r-1")).await {
        Err(StsError::Store(_)) => {}
        Ok(grant) => panic!("a token was handed out without its audit record: {grant:?}"),
        Err(e) => panic!("expected a storage error, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_logins_of_one_identity_make_one_user() {
    let f = fixture().await;
    const LOGINS: usize = 16;
    let sts = Arc::new(service(
        f.store.clone(),
        FixedClaims {
            claims: claims(&[("sub", "sub-new"), ("preferred_username", "newcomer")]),
            gate: Some(Arc::new(tokio::sync::Barrier::new(LOGINS))),
        },
        StsPolicy {
            provisioning: Some(Provisioning {
                username_claim: "preferred_username".into(),
                initial_groups_claim: None,
                default_initial_groups: vec![],
            }),
            ..base_policy()
        },
    ));
    let mut tasks = Vec::new();
    for i in 0..LOGINS {
        let sts = sts.clone();
        tasks.push(tokio::spawn(async move {
            sts.login(&request(), &ctx(&format!("r-{i}"))).await
        }));
    }
    for t in tasks {
        let grant = t.await.expect("task").expect("every login succeeds");
        assert_eq!(grant.username, "newcomer");
    }
    let users = f.store.list_users().await.expect("list");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].external_id.as_deref(), Some("sub-new"));
}

#[tokio::test]
async fn a_username_taken_by_another_identity_is_not_handed_over() {
    let f = fixture().await;
    f.store.create_user(&alice()).await.expect("create");
    let sts = service(
        f.store.clone(),
        FixedClaims {
            claims: claims(&[("sub", "sub-mallory"), ("preferred_username", "alice")]),
            gate: None,
        },
        StsPolicy {
            provisioning: Some(Provisioning {
                username_claim: "preferred_username".into(),
                initial_groups_claim: None,
                default_initial_groups: vec![],
            }),
            ..base_policy()
        },
    );
    match sts.login(&request(), &ctx("r-1")).await {
        Err(StsError::Unauthorized(refusal)) => {
            assert_eq!(refusal.reason, Reason::CannotProvision, "{refusal:?}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let alice_now = f
        .store
        .get_user("alice")
        .await
        .expect("read")
        .expect("alice");
    assert_eq!(alice_now.external_id.as_deref(), Some("sub-alice"));
}
