//! What the tests that start `lakests serve` as a process share: the child that is killed when
//! dropped, loopback listeners handed to it by socket activation, and an HTTP client.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::Duration;

/// A `lakests serve` child, killed when dropped.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Binds each role's listener on a loopback port of its own. The ports go into the
/// configuration, the listeners to `lakests serve` (socket activation, `serve` in each test): no port is
/// ever free between choosing it and serving on it.
pub fn bind_roles<const N: usize>(roles: [&'static str; N]) -> Vec<(&'static str, TcpListener)> {
    roles
        .into_iter()
        .map(|role| {
            (
                role,
                TcpListener::bind("127.0.0.1:0").expect("a loopback port"),
            )
        })
        .collect()
}

pub fn port_of(sockets: &[(&'static str, TcpListener)], role: &str) -> u16 {
    sockets
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, l)| l.local_addr().expect("local address").port())
        .unwrap_or_else(|| panic!("no listener for {role}"))
}

/// Hands `sockets` to the child as descriptors 3, 4, ... with their roles' names, as systemd
/// does (LISTEN_FDS, LISTEN_FDNAMES); they close here when the command is dropped.
pub fn pass_sockets(cmd: &mut Command, sockets: Vec<(&'static str, TcpListener)>) {
    use command_fds::{CommandFdExt, FdMapping};
    let names: Vec<&str> = sockets.iter().map(|(role, _)| *role).collect();
    let mappings = sockets
        .into_iter()
        .enumerate()
        .map(|(i, (_, listener))| FdMapping {
            parent_fd: listener.into(),
            child_fd: i32::try_from(3 + i).expect("a descriptor number"),
        })
        .collect();
    cmd.fd_mappings(mappings).expect("distinct descriptors");
    cmd.env("LISTEN_FDS", names.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env_remove("LISTEN_PID");
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}
