//! The caller's X-Request-ID is on every log line of a login, and no secret, code or token is
//! on any.
//!
//! A test binary of its own: the capturing subscriber is a thread-local default, and
//! tracing's per-callsite interest cache can miss spans when other tests on other threads
//! register the same callsites at the same moment.

#[path = "authenticator/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use lakests_config::PkceMode;
use lakests_core::ManualClock;
use serde_json::json;

use support::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// A current-thread runtime: the server, the provider and the client all run on this thread,
// where the capturing subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn every_log_line_carries_the_request_id_and_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_env_filter("lakests=trace,lakests_authenticator=trace,lakests_http=trace")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let idp = HostileIdp::start().await;
    let p = provider("hostile", &idp.issuer, &[REDIRECT], PkceMode::State);
    let a = Authn::start(base_config(vec![p]), ManualClock::new(T0)).await;
    let claims =
        json!({"iss": idp.issuer, "aud": CLIENT_ID, "sub": "alice", "exp": T0 + 300, "iat": T0});
    let good = keys().rs256.sign(&claims, json!({}));
    let state = verifier(5);
    let code = "secret-code-0042";

    let mut sent = Vec::new();
    for (i, reply) in [
        TokenReply::IdToken(good.clone()),
        TokenReply::Json(401, json!({"error": "invalid_client"})),
        TokenReply::Json(400, json!({"error": "invalid_grant"})),
        TokenReply::IdToken(keys().attacker.sign(&claims, json!({}))),
        TokenReply::Raw(500, "text/plain", b"oops".to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        idp.reply(reply);
        let id = format!("req-{i}-abc");
        let resp = a
            .http
            .post(format!("{}/api/v1/sts/login", a.base))
            .header("x-request-id", &id)
            .json(&json!({"code": code, "state": state, "redirect_uri": REDIRECT}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-request-id"], id.as_str());
        sent.push(id);
    }

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 10, "expected log lines, got:\n{text}");
    for line in &lines {
        assert!(
            sent.iter().any(|id| line.contains(id.as_str())),
            "a line without a request id: {line}"
        );
        for secret in [
            code,
            state.as_str(),
            CLIENT_SECRET,
            &good,
            "hostile-access-token-never-in-logs",
        ] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    // The misconfigured client is explained.
    assert!(text.contains("refused our client"), "{text}");
    assert!(text.contains("client_secret"), "{text}");
}
