//! Issue 12, point 1: every role's server closes connections that never finish their headers,
//! idle connections and stalled requests, and sheds connections over its caps with a 503
//! instead of running out of file descriptors. Real server, raw TCP clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from `source` (a loopback address) to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection, at most `within`; returns what it sent and
/// how long it took, or `None` if it was still open.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = TestApp::spawn("http:\n  header_read_timeout: 1s\n").await;
    let mut stream = connect_from("127.0.0.1", app.addr).await;
    stream
        .write_all(b"GET /api/v1/healthcheck HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, took) = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes a connection whose head never ends");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_by_the_header_timeout_too() {
    let app = TestApp::spawn("http:\n  header_read_timeout: 1s\n").await;
    let mut stream = connect_from("127.0.0.1", app.addr).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection that sends nothing is closed"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = TestApp::spawn("http:\n  idle_timeout: 1s\n  header_read_timeout: 30s\n").await;
    let mut stream = connect_from("127.0.0.1", app.addr).await;
    stream
        .write_all(b"GET /api/v1/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 204"));
    let (_, took) = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
}

#[tokio::test]
async fn a_request_whose_body_stalls_is_answered_503_after_the_request_timeout() {
    // (The test server's authenticator timeout is 1 s; the request timeout must exceed it.)
    let app = TestApp::spawn("http:\n  request_timeout: 2s\n").await;
    let mut stream = connect_from("127.0.0.1", app.addr).await;
    stream
        .write_all(
            b"POST /api/v1/sts/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"code\":",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains(r#"{"message":"#), "{text}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    assert_eq!(app.standin.calls(), 0, "nothing reached the authenticator");
}

#[tokio::test]
async fn connections_over_the_per_client_cap_are_shed_and_other_clients_are_served() {
    let app =
        TestApp::spawn("http:\n  max_connections: 10\n  max_connections_per_client: 2\n").await;
    let _held: Vec<TcpStream> = vec![
        connect_from("127.0.0.2", app.addr).await,
        connect_from("127.0.0.2", app.addr).await,
    ];
    let mut third = connect_from("127.0.0.2", app.addr).await;
    let (answer, took) = closed_within(&mut third, Duration::from_secs(3))
        .await
        .expect("the connection over the cap is closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.ends_with("{\"message\":\"too many connections; try again shortly\"}\n"));
    assert!(took < Duration::from_secs(1), "shed after {took:?}");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lakests_http_connections_shed_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(shed >= 1, "{metrics}");

    // Another address is served.
    let resp = app
        .http
        .get(format!("{}/api/v1/healthcheck", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn connections_over_the_listener_cap_are_shed_until_one_closes() {
    let app =
        TestApp::spawn("http:\n  max_connections: 3\n  max_connections_per_client: 3\n").await;
    let mut held = vec![
        connect_from("127.0.0.2", app.addr).await,
        connect_from("127.0.0.3", app.addr).await,
        connect_from("127.0.0.4", app.addr).await,
    ];
    // Let the server accept the three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = connect_from("127.0.0.5", app.addr).await;
    let (answer, _) = closed_within(&mut fourth, Duration::from_secs(3))
        .await
        .expect("the connection over the listener cap is closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // One closes: the slot is free again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect_from("127.0.0.5", app.addr).await;
    fifth
        .write_all(b"GET /api/v1/healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = closed_within(&mut fifth, Duration::from_secs(3))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
}
