//! Latency below saturation: an open-loop load at a fixed rate over a fixed number of
//! connections (what wrk2's `-R` does; Debian's wrk has no fixed-rate mode). wrk's own p99 is
//! taken at saturation, where it measures the queue the load generator builds, not the server.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a paced run saw.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    /// Requests per second answered.
    pub achieved: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Sends that left more than 1 ms after their slot because the connection's previous
    /// answer came late: near zero below saturation.
    pub late_sends: u64,
    pub requests: u64,
}

/// `rate` requests per second spread evenly over `connections` keep-alive connections (request
/// k on connection k mod n), for `secs` seconds. Latency is timed from the
/// moment a request is written to its complete answer. Every answer must be 200. The client is
/// a plain HTTP/1.1 exchange over a `TcpStream` (a fixed request, the answer read by its
/// `Content-Length`), so that the generator, which shares the two cores with the server, costs
/// little more than wrk does.
pub async fn run(
    addr: &str,
    path: &str,
    token: Option<&str>,
    rate: f64,
    connections: usize,
    secs: u64,
) -> anyhow::Result<Paced> {
    if rate <= 0.0 || connections == 0 {
        bail!("a paced run needs a positive rate and connections");
    }
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    let request: std::sync::Arc<[u8]> = request.into_bytes().into();
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(secs);
    let mut slots = Vec::with_capacity(connections);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let request = request.clone();
        let (slot_tx, mut slot_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        slots.push(slot_tx);
        tasks.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            let mut late = 0u64;
            let mut buf = Vec::with_capacity(4096);
            while let Some(slot) = slot_rx.recv().await {
                let sent = Instant::now();
                if sent > slot + Duration::from_millis(1) {
                    // The previous answer on this connection, or the scheduler, held it up.
                    late += 1;
                }
                stream.write_all(&request).await.context("paced request")?;
                let status = read_answer(&mut stream, &mut buf).await?;
                if status != 200 {
                    bail!("the server answered {status}");
                }
                latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok::<_, anyhow::Error>((latencies_us, late))
        }));
    }
    // The pacer: a thread of its own with the OS's sleep (tens of microseconds of precision;
    // tokio's timers have a millisecond, which would send the requests of each millisecond in
    // one burst), handing slot k to connection k mod n.
    let pacer = std::thread::spawn(move || {
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut k: u32 = 0;
        loop {
            let slot = start + interval * k;
            if slot >= end {
                break;
            }
            let now = Instant::now();
            if slot > now {
                std::thread::sleep(slot - now);
            }
            let _ = slots[k as usize % slots.len()].send(slot);
            k += 1;
        }
    });
    tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacer panicked"))?;
    let mut all = Vec::new();
    let mut late_sends = 0;
    for t in tasks {
        let (l, late) = t.await??;
        all.extend(l);
        late_sends += late;
    }
    if all.is_empty() {
        bail!("a paced run sent nothing");
    }
    all.sort_unstable();
    let pick = |q: f64| f64::from(all[((all.len() - 1) as f64 * q).round() as usize]) / 1000.0;
    Ok(Paced {
        achieved: all.len() as f64 / secs as f64,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        late_sends,
        requests: all.len() as u64,
    })
}

/// Reads one HTTP/1.1 answer with a `Content-Length` body; returns its status.
async fn read_answer(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    buf.clear();
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..head_end]).context("answer head")?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("status line: {head}"))?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .with_context(|| format!("no Content-Length: {head}"))?;
            let total = head_end + 4 + length;
            while buf.len() < total {
                if stream.read_buf(buf).await? == 0 {
                    bail!("the server closed the connection");
                }
            }
            return Ok(status);
        }
        if buf.len() > 64 * 1024 {
            bail!("an answer head over 64 KiB");
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("the server closed the connection");
        }
    }
}
