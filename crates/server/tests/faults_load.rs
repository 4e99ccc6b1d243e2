//! Faults under load (issue 12, "Faults and load"), on loopback, a few seconds each:
//!
//! - the identity provider goes slow, then down, then comes back while logins keep coming: the
//!   slow logins get 504, the logins while it is down get 502, and logins work again after,
//!   without restarting lakests;
//! - a throwaway PostgreSQL cluster of the test's own is restarted (crash-like, `-m immediate`)
//!   under load: lakests recovers without a restart, every login answered 200 has its audit
//!   record, and no user is half-created.
//!
//! The `kill -9` of a real `lakests serve` process is in `crates/cli/tests/crash.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakests_config::Config;
use lakests_core::{Clock, LoginOutcome, SystemClock, UserRecord};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:8085/callback";
const SECRET: &str = "faults-load-test-secret-key-0123456789";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A code for `sub` from the development IdP (non-interactive), with optional per-login fault
/// switches; the body for `sts/login`. `Err` when the IdP cannot be reached.
async fn code(
    http: &reqwest::Client,
    idp: &str,
    sub: &str,
    fault: Option<&str>,
) -> Result<Value, String> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", "lakests"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", verifier.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("login_hint", sub),
    ];
    if let Some(f) = fault {
        query.push(("lakests_fault", f));
    }
    let resp = http
        .get(format!("{idp}/authorize"))
        .query(&query)
        .send()
        .await
        .map_err(|e| format!("the IdP is unreachable: {e}"))?;
    assert_eq!(resp.status(), 302, "authorize for {sub}");
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {location}"))
        .1
        .into_owned();
    Ok(json!({"code": code, "state": verifier, "redirect_uri": REDIRECT}))
}

/// One answered login: when it was sent, its status, its request id and (on 200) its user.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    received: Instant,
    status: u16,
    request_id: String,
    body: Value,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// `POST {base}/api/v1/sts/login` with a request id of our own, so that its audit record can
/// be found. `None` when the request got no answer at all.
async fn post_login(http: &reqwest::Client, base: &str, body: &Value) -> Option<Answer> {
    let request_id = format!(
        "faults-{}-{}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::SeqCst)
    );
    let sent = Instant::now();
    let resp = http
        .post(format!("{base}/api/v1/sts/login"))
        .header("x-request-id", &request_id)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let text = resp.text().await.ok()?;
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status} without a JSON body: {text:?}"));
    if status != 200 {
        assert!(body["message"].is_string(), "{status}: {text}");
        assert!(
            !text.contains(SECRET) && !text.contains(body["code"].as_str().unwrap_or("\u{0}")),
            "{text}"
        );
    }
    Some(Answer {
        sent,
        received: Instant::now(),
        status,
        request_id,
        body,
    })
}

/// Workers that log in over and over until `stop`, as the users `pick` names. Each keeps every
/// answer; a code the IdP could not give, or a request without an answer, is counted apart.
struct Load {
    stop: Arc<AtomicBool>,
    no_code: Arc<AtomicU64>,
    no_answer: Arc<AtomicU64>,
    tasks: tokio::task::JoinSet<Vec<Answer>>,
}

impl Load {
    fn start(
        workers: usize,
        idp: &str,
        sts: &str,
        pick: impl Fn(u64) -> String + Send + Sync + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (no_code, no_answer) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let pick = Arc::new(pick);
        let seq = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (stop, no_code, no_answer, pick, seq) = (
                stop.clone(),
                no_code.clone(),
                no_answer.clone(),
                pick.clone(),
                seq.clone(),
            );
            let (idp, sts, http) = (idp.to_owned(), sts.to_owned(), client());
            tasks.spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let sub = pick(seq.fetch_add(1, Ordering::SeqCst));
                    let body = match code(&http, &idp, &sub, None).await {
                        Ok(b) => b,
                        Err(_) => {
                            no_code.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    match post_login(&http, &sts, &body).await {
                        Some(a) => answers.push(a),
                        None => {
                            no_answer.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                answers
            });
        }
        Self {
            stop,
            no_code,
            no_answer,
            tasks,
        }
    }

    async fn finish(mut self) -> (Vec<Answer>, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        while let Some(r) = self.tasks.join_next().await {
            all.extend(r.unwrap());
        }
        all.sort_by_key(|a| a.sent);
        (
            all,
            self.no_code.load(Ordering::SeqCst),
            self.no_answer.load(Ordering::SeqCst),
        )
    }
}

fn statuses(answers: &[Answer]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for a in answers {
        *m.entry(a.status).or_insert(0) += 1;
    }
    m
}

/// Every answered login that reached the authenticator has its audit record, found by request
/// id; a 200 has a success record naming its user.
async fn assert_audited(store: &dyn lakests_core::Store, answers: &[Answer]) {
    let audit = store.list_audit(1_000_000).await.unwrap();
    let by_id: std::collections::HashMap<&str, &lakests_core::LoginAudit> =
        audit.iter().map(|r| (r.request_id.as_str(), r)).collect();
    for a in answers {
        let record = by_id.get(a.request_id.as_str());
        if a.status == 200 {
            let r = record.unwrap_or_else(|| panic!("no audit record for answered {a:?}"));
            assert_eq!(r.outcome, LoginOutcome::Success, "{a:?}: {r:?}");
            assert!(r.username.is_some(), "{r:?}");
        } else if a.status == 502 || a.status == 504 {
            let r = record.unwrap_or_else(|| panic!("no audit record for {a:?}"));
            assert_eq!(r.outcome, LoginOutcome::Failure, "{a:?}: {r:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (a) The identity provider slow, then down, then back.

/// The development IdP alone in an application of its own, so that it can be stopped and
/// started again on the same port and keys while lakests keeps running.
struct Idp {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

async fn start_idp(dir: &Path, port: u16) -> Idp {
    let doc = json!({
        "data_dir": dir,
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{port}"), "interactive": false,
            "users": [{"sub": "alice", "email": "alice@example.com", "groups": ["admins"]}],
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let app = lakests_server::Application::build(config).await.unwrap();
    assert_eq!(app.idp_addr().unwrap().port(), port);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    Idp {
        stop: Some(tx),
        task: Some(task),
    }
}

impl Idp {
    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("the IdP stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_fail_cleanly_while_the_idp_is_slow_or_down_and_work_again_after() {
    let dir = tempfile::tempdir().unwrap();
    let idp_dir = dir.path().join("idp");
    let idp_port = lakests_testkit::port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let idp = start_idp(&idp_dir, idp_port).await;

    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path().join("lakests"),
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"rate_limit_per_second": 0}},
        "authenticator": {
            "listen_address": "127.0.0.1:0",
            "request_timeout": "1s",
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let app = lakests_server::Application::build(config).await.unwrap();
    let store = app.store();
    store
        .create_user(&UserRecord {
            username: "alice".into(),
            // External ids are namespaced by the provider (`dev`).
            external_id: Some("dev:alice".into()),
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
    let sts = format!("http://{}", app.sts_addr().unwrap());
    let authn = format!("http://{}", app.authenticator_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lakests = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let http = client();

    let load = Load::start(3, &issuer, &sts, |_| "alice".to_owned());
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Slow: the token endpoint waits 3 s, the authenticator gives up after 1 s: 504, within
    // the timeout, at both the STS server and the authenticator, while other logins go on.
    let slow_started = Instant::now();
    let mut slow = tokio::task::JoinSet::new();
    for base in [&sts, &sts, &authn] {
        let body = code(&http, &issuer, "alice", Some("slow_token:3000"))
            .await
            .unwrap();
        let (http, base, to_sts) = (http.clone(), base.clone(), base == &sts);
        slow.spawn(async move {
            let a = post_login(&http, &base, &body).await.unwrap();
            (a, Instant::now(), to_sts)
        });
    }
    let mut slow_answers = Vec::new();
    while let Some(r) = slow.join_next().await {
        let (a, at, to_sts) = r.unwrap();
        assert_eq!(a.status, 504, "{a:?}");
        assert!(
            at - a.sent < Duration::from_millis(2500),
            "504 after {:?}",
            at - a.sent
        );
        // Only the STS server audits logins; the authenticator has no store.
        if to_sts {
            slow_answers.push(a);
        }
    }
    let slow_ended = Instant::now();

    // Down: codes obtained before, redeemed while the IdP is gone: 502 at both roles.
    let mut pending = Vec::new();
    for _ in 0..4 {
        pending.push(code(&http, &issuer, "alice", None).await.unwrap());
    }
    let down_started = Instant::now();
    idp.shut_down().await;
    let mut down_answers = Vec::new();
    for (i, body) in pending.iter().enumerate() {
        let base = if i % 2 == 0 { &sts } else { &authn };
        let a = post_login(&http, base, body).await.unwrap();
        assert_eq!(a.status, 502, "{a:?}");
        down_answers.push(a);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down_ended = Instant::now();

    // Back: the same IdP (same keys) on the same port; lakests was never restarted.
    let idp = start_idp(&idp_dir, idp_port).await;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(10);
    loop {
        let body = code(&http, &issuer, "alice", None).await.unwrap();
        let a = post_login(&http, &sts, &body).await.unwrap();
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery within 10 s: {a:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_after = back.elapsed();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (answers, no_code, no_answer) = load.finish().await;
    assert_eq!(no_answer, 0, "every login got an answer");

    // Before the slow phase and after the IdP came back, every background login succeeded;
    // during the slow phase they kept succeeding; while it was down they failed with 502.
    let in_window = |from: Instant, to: Instant| {
        answers
            .iter()
            .filter(move |a| a.sent >= from && a.received < to)
            .collect::<Vec<_>>()
    };
    let before = in_window(answers[0].sent, slow_started);
    assert!(before.len() >= 3, "load ran before the faults: {before:?}");
    assert!(before.iter().all(|a| a.status == 200), "{before:?}");
    let during_slow = in_window(slow_started, slow_ended);
    assert!(
        !during_slow.is_empty() && during_slow.iter().all(|a| a.status == 200),
        "other logins go on while one is slow: {during_slow:?}"
    );
    // Whenever it was sent, a background login either succeeded or got 502 (the IdP down).
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 502),
        "{:?}",
        statuses(&answers)
    );
    let down = answers
        .iter()
        .filter(|a| a.sent >= down_started && a.sent < down_ended)
        .count();
    let after: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent >= back + recovered_after)
        .collect();
    assert!(after.len() >= 3, "load ran after recovery: {after:?}");
    assert!(
        after.iter().all(|a| a.status == 200),
        "{:?}",
        statuses(&answers)
    );
    assert!(no_code > 0, "the IdP was really down for the clients too");

    let mut all = answers.clone();
    all.extend(slow_answers);
    all.extend(down_answers.into_iter().step_by(2)); // those sent to the STS server
    assert_audited(store.as_ref(), &all).await;
    eprintln!(
        "IdP faults under load: {} background logins {:?} ({down} sent while it was down), {no_code} codes refused while down, recovered {recovered_after:?} after the IdP came back",
        answers.len(),
        statuses(&answers)
    );

    idp.shut_down().await;
    let _ = stop_tx.send(());
    lakests.await.unwrap().unwrap();
}

// ---------------------------------------------------------------------------------------------
// (b) PostgreSQL restarted under load: a throwaway cluster of the test's own.

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster in a temporary directory on a loopback port, run as the `postgres` OS
/// user when the test runs as root. Stopped when dropped, whatever happened.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let bin = Path::new(PG_BIN).join(tool);
        assert!(
            bin.exists(),
            "{} is missing: this test needs PostgreSQL 15's server binaries \
             (apt-get install -y postgresql-15)",
            bin.display()
        );
        let mut cmd = if rustix::process::geteuid().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
    }

    fn pg_ok(&self, tool: &str, args: &[&str]) {
        let out = self.pg(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if rustix::process::geteuid().is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to the postgres user failed");
        }
        let c = Self {
            dir,
            port: lakests_testkit::port(),
        };
        let data = c.data();
        c.pg_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            c.port,
            c.dir.path().display()
        );
        c.pg_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                c.dir.path().join("server.log").to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        c
    }

    /// A crash-like restart: every connection is cut, the server recovers from its WAL.
    fn restart(&self) {
        let data = self.data();
        self.pg_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                self.dir.path().join("server.log").to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "restart",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lakests_recovers_from_a_postgres_restart_under_load_without_losing_audit_records() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    // Bound here and handed to the application: the issuer must name its port.
    let idp_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let idp_port = idp_listener.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let users: Vec<Value> = (0..400)
        .map(|i| {
            json!({"sub": format!("u{i:03}"), "email": format!("u{i:03}@example.com"),
                   "groups": ["readers", "writers"]})
        })
        .collect();
    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path(),
        "database": {"type": "postgres", "postgres": {
            "connection_string": cluster.url(), "connect_timeout": "3s"}},
        "auth": {
            "encrypt": {"secret_key": SECRET},
            "sts": {"rate_limit_per_second": 0, "auto_create_users": true},
            "cookie_auth_verification": {"initial_groups_claim_name": "groups"},
        },
        "authenticator": {
            "listen_address": "127.0.0.1:0",
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "users": users,
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let app = lakests_server::Application::build_with_listeners(
        config,
        std::sync::Arc::new(lakests_core::SystemClock),
        lakests_server::Listeners {
            idp: Some(idp_listener),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let store = app.store();
    let sts = format!("http://{}", app.sts_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lakests = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));

    // New users all along: every login before the last lap creates its user.
    let load = Load::start(4, &issuer, &sts, |n| format!("u{:03}", n % 400));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let restart_started = Instant::now();
    let c = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    });
    let cluster = c.await.unwrap();
    let restarted = Instant::now();
    // Recovery: a login that starts once PostgreSQL is back succeeds within a few seconds.
    let http = client();
    let deadline = restarted + Duration::from_secs(15);
    let recovered = loop {
        let body = code(&http, &issuer, "u399", None).await.unwrap();
        let a = post_login(&http, &sts, &body).await.unwrap();
        if a.status == 200 {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "no recovery within 15 s: {a:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (answers, no_code, no_answer) = load.finish().await;
    assert_eq!(
        (no_code, no_answer),
        (0, 0),
        "the IdP and lakests kept answering"
    );

    let before: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.received < restart_started)
        .collect();
    assert!(before.len() >= 5, "load ran before the restart");
    assert!(before.iter().all(|a| a.status == 200), "{before:?}");
    // While the database restarts a login may fail, cleanly: 500 with a generic message.
    for a in &answers {
        assert!(a.status == 200 || a.status == 500, "{a:?}");
    }
    let after: Vec<&Answer> = answers.iter().filter(|a| a.sent > recovered).collect();
    assert!(after.len() >= 5, "load ran after recovery: {}", after.len());
    assert!(
        after.iter().all(|a| a.status == 200),
        "{:?}",
        statuses(&after.iter().map(|a| (*a).clone()).collect::<Vec<_>>())
    );

    // Every login answered 200 has its audit record; and every user that exists is whole:
    // its external id, e-mail and both groups, created in one transaction.
    assert_audited(store.as_ref(), &answers).await;
    let users = store.list_users().await.unwrap();
    assert!(users.len() >= 10, "{} users created", users.len());
    for u in &users {
        assert_eq!(u.external_id.as_deref(), Some(u.username.as_str()), "{u:?}");
        assert_eq!(
            u.email.as_deref(),
            // The username is the namespaced sub (`auth.sts.username_claim_name: sub`).
            Some(format!("{}@example.com", u.username.trim_start_matches("dev:")).as_str())
        );
        assert_eq!(u.groups, vec!["readers", "writers"], "half-created: {u:?}");
    }
    for a in answers.iter().filter(|a| a.status == 200) {
        let token = a.body["token"].as_str().unwrap();
        assert!(!token.is_empty());
    }
    eprintln!(
        "PostgreSQL restart under load: {} logins {:?}, restart took {:?}, recovered {:?} after it, {} users, all whole",
        answers.len(),
        statuses(&answers),
        restarted - restart_started,
        recovered - restarted,
        users.len()
    );

    let _ = stop_tx.send(());
    lakests.await.unwrap().unwrap();
    drop(cluster);
}
