//! The STS server's log lines during a login all carry the request id, and none carries the
//! code, the state or the minted token. A test binary of its own: the capturing subscriber is
//! this thread's default, so everything runs on a current-thread runtime.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};

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

#[tokio::test(flavor = "current_thread")]
async fn every_log_line_of_a_login_carries_the_request_id_and_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(buffer.clone())
        .with_env_filter("trace")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::spawn("").await;
    app.add_user("alice", "alice-ext").await;
    let code = "very-secret-code-4242";
    let state = "very-secret-state-4242";
    let mut tokens = Vec::new();
    for (i, behavior) in [
        Behavior::Claims(json!({"sub": "alice-ext"})),
        Behavior::Claims(json!({"sub": "unknown"})),
        Behavior::Status(500, "{}".into()),
    ]
    .into_iter()
    .enumerate()
    {
        app.standin.set(behavior);
        let resp = app
            .http
            .post(format!("{}/api/v1/sts/login", app.base))
            .header("x-request-id", format!("req-{i}"))
            .json(
                &json!({"code": code, "state": state, "redirect_uri": "http://127.0.0.1:8085/cb"}),
            )
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let body: Value = resp.json().await.unwrap();
            tokens.push(body["token"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(tokens.len(), 1);

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let mut request_lines = 0;
    for line in text.lines() {
        for secret in [code, state, tokens[0].as_str(), SECRET] {
            assert!(!line.contains(secret), "a secret reached the log: {line}");
        }
        let v: Value = serde_json::from_str(line).unwrap();
        // Lines of the code that runs inside a request must carry its id.
        let in_handler = v["target"].as_str().is_some_and(|t| {
            [
                "lakests_core",
                "lakests_http",
                "lakests_server::sts_routes",
                "lakests_server::remote",
            ]
            .iter()
            .any(|m| t.starts_with(m))
        });
        if in_handler {
            request_lines += 1;
            let id = v["span"]["request_id"].as_str().unwrap_or_default();
            assert!(
                id.starts_with("req-"),
                "a request's line without its id: {line}"
            );
        }
    }
    // The refusal's line is keyed on its stable reason code, as its audit record is.
    for needle in [
        "sts login succeeded",
        "request finished",
        r#""reason":"no_user_mapped""#,
        "sts login failed",
    ] {
        assert!(text.contains(needle), "{needle:?} was not logged:\n{text}");
    }
    assert!(
        request_lines >= 5,
        "expected the request lines to be captured:\n{text}"
    );
}
