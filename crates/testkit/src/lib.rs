//! Helpers the workspace's test suites share. A dev-dependency only: nothing here reaches the
//! `lakests` binary.

use std::net::TcpListener;
use std::sync::Mutex;

/// Ports below this are left to well-known services.
const LOW: u16 = 10_000;

/// The next candidate, as an offset from [`LOW`]; `None` until the first call.
static NEXT: Mutex<Option<u32>> = Mutex::new(None);

/// The first port of the kernel's ephemeral range: `bind(0)` and outgoing connections take
/// their ports from there.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// A free loopback port for a server the test starts later, or stops and starts again on the
/// same port.
///
/// `bind(0)` would hand out a port of the ephemeral range, which the kernel may give to any
/// outgoing connection (a readiness poll, the load of a test running beside this one) before the
/// server binds it: CI once lost a PostgreSQL start that way, `initdb` having run for a second
/// in between. This port is below that range, so only an explicit bind can take it, and no
/// earlier call in this process gave it.
pub fn port() -> u16 {
    ports::<1>()[0]
}

/// `N` distinct ports, as [`port`].
pub fn ports<const N: usize>() -> [u16; N] {
    let start = ephemeral_start();
    assert!(
        start > LOW + 1_000,
        "the ephemeral port range starts at {start}: no room below it for test servers"
    );
    let span = u32::from(start - LOW);
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    // Test processes started together begin at different places.
    let offset = next.get_or_insert(std::process::id() % span);
    let mut found = [0u16; N];
    let mut taken = 0;
    for _ in 0..span {
        if taken == N {
            break;
        }
        let port = LOW + (*offset % span) as u16;
        *offset = (*offset + 1) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            found[taken] = port;
            taken += 1;
        }
    }
    assert_eq!(taken, N, "no {N} free loopback ports in {LOW}..{start}");
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let a: [u16; 3] = ports();
        let b = port();
        let all = [a[0], a[1], a[2], b];
        for (i, p) in all.iter().enumerate() {
            assert!((LOW..ephemeral_start()).contains(p), "{p}");
            assert!(!all[..i].contains(p), "{all:?} repeats a port");
            TcpListener::bind(("127.0.0.1", *p)).expect("the port is free");
        }
    }
}
