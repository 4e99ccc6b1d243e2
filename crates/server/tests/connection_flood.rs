//! Issue 12, point 1: one client opening connections that never finish their headers must not
//! stop any role. Reproduces the attack as it was observed (an open-file limit of 1,024, every
//! role in one process, a separate attacking process on loopback) and checks that every role's
//! health check still answers within a second while 2,000 such connections are open.
//!
//! This file holds one test on purpose: it lowers its own process's open-file limit.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lakests_config::Config;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde_json::json;

const ATTACKER: &str = r#"
import socket, sys, time
# Started before the server lowers its limits (a child inherits them): waits for its target.
first = sys.stdin.readline().split()
ports = [int(p) for p in first[0].split(",")]
total = int(first[1])
socks = []
failures_in_a_row = 0
def connect(port):
    # On a loaded machine the listen backlog can overflow for a moment: retry twice.
    for attempt in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        try:
            # A request head that never ends.
            s.sendall(b"GET /api/v1/healthcheck HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            pass  # already shed by the server: counted as closed below
        return s
    return None

for i in range(total):
    s = connect(ports[i % len(ports)])
    if s is None:
        failures_in_a_row += 1
        if failures_in_a_row >= 5:
            break  # the server stopped accepting
        continue
    failures_in_a_row = 0
    socks.append(s)
print("ready", len(socks), flush=True)
sys.stdin.readline()
# How many the server closed (shed or timed out) and how many it still holds.
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        data = s.recv(4096)
        closed += 1  # EOF or the 503 of a shed connection
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print("closed", closed, "open", len(socks) - closed, flush=True)
sys.stdin.readline()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_from_one_address_leave_every_role_answering() {
    // At start the process raises its soft open-file limit to the hard limit.
    let before = getrlimit(Resource::Nofile);
    let hard = before.maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(256.min(hard.unwrap_or(256))),
            maximum: hard,
        },
    )
    .expect("lower the soft limit");
    assert_eq!(
        lakests_http::raise_fd_limit(),
        hard,
        "soft limit raised to hard"
    );

    // The attacker: another process (its sockets do not count against our limit), from
    // 127.0.0.2, 2,000 connections spread over the three roles. Started now, before the
    // limit is lowered, since a child inherits it.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("attacker.py");
    std::fs::write(&script, ATTACKER).unwrap();
    let mut attacker = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the attacker");
    let mut stdin = attacker.stdin.take().unwrap();

    // The conditions of the review: a hard limit of 1,024 open files for the whole server.
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(1024),
            maximum: Some(1024),
        },
    )
    .expect("lower the hard limit to 1024");

    let idp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let redirect = "http://127.0.0.1:8085/callback";
    // Every limit at its default.
    let doc = json!({
        "listen_address": "127.0.0.1:0",
        "data_dir": dir.path(),
        "auth": {"encrypt": {"secret_key": "flood-test-secret-key-0123456789abcdef"}},
        "authenticator": {
            "listen_address": "127.0.0.1:0",
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [redirect]}],
        },
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "users": [{"sub": "alice"}],
            "clients": [{"client_id": "lakests", "redirect_uris": [redirect]}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new()).unwrap();
    let app = lakests_server::Application::build(config).await.unwrap();
    let sts = app.sts_addr().unwrap();
    let authn = app.authenticator_addr().unwrap();
    let idp = app.idp_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let health = [
        format!("http://{sts}/api/v1/healthcheck"),
        format!("http://{authn}/api/v1/healthcheck"),
        format!("http://{idp}/healthcheck"),
    ];

    // Built before the attack; no pooling, so every check is a fresh connection.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    writeln!(stdin, "{},{},{} 2000", sts.port(), authn.port(), idp.port()).unwrap();
    let mut lines = BufReader::new(attacker.stdout.take().unwrap()).lines();
    let ready = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line.starts_with("ready");
            seen.push(line);
            if done {
                break;
            }
        }
        (seen, lines)
    });
    let (seen, mut lines) = tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("the attacker connects within a minute")
        .unwrap();
    let last = seen.last().cloned().unwrap_or_default();
    let connected: usize = last
        .strip_prefix("ready ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("attacker output: {seen:?}"));

    // While the connections are held: every role answers its health check within a second,
    // from another loopback address, on a fresh connection each time.
    for round in 0..5 {
        for url in &health {
            let started = Instant::now();
            let resp = http.get(url).send().await;
            let took = started.elapsed();
            let resp = resp.unwrap_or_else(|e| panic!("round {round}: {url} failed: {e}"));
            assert!(
                resp.status().is_success(),
                "round {round}: {url} answered {}",
                resp.status()
            );
            assert!(
                took < Duration::from_secs(1),
                "round {round}: {url} took {took:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every connection was accepted (the accept loop never stalled)...
    assert_eq!(connected, 2000, "attacker output: {seen:?}");
    // ...and the server shed what was over the per-client cap (256 per listener) at once.
    writeln!(stdin, "count").unwrap();
    let counts = tokio::task::spawn_blocking(move || {
        let line = lines.next().unwrap().unwrap();
        (line, lines)
    })
    .await
    .unwrap()
    .0;
    let words: Vec<&str> = counts.split_whitespace().collect();
    let open: usize = words[3].parse().unwrap();
    let closed: usize = words[1].parse().unwrap();
    assert!(open <= 3 * 256, "connections held: {counts}");
    assert!(closed >= 2000 - 3 * 256, "connections shed: {counts}");

    writeln!(stdin, "bye").unwrap();
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || attacker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
