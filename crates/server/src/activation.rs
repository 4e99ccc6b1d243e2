//! Socket activation: listeners handed to `lakests serve` by whoever started it, in systemd's
//! protocol (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID`; the sockets are descriptors 3, 4,
//! ...). systemd socket units use it, and so do the tests that start `lakests serve` as a
//! process: a port they must know before writing the configuration (an issuer URL names the
//! IdP's) is bound by them and never free for another process to take.
//!
//! Each socket is named after the role it serves (`sts`, `authenticator`, `idp`,
//! `authorization`), in `LISTEN_FDNAMES` (colon-separated, as systemd's `FileDescriptorName=`
//! sets it); one unnamed socket serves the STS role.

use anyhow::{Context, bail};

use crate::Listeners;

/// The listeners of the environment's socket activation; all `None` when there is none.
pub fn listeners_from_env() -> anyhow::Result<Listeners> {
    let mut fds = listenfd::ListenFd::from_env();
    let count = fds.len();
    let mut listeners = Listeners::default();
    if count == 0 {
        return Ok(listeners);
    }
    let names: Vec<String> = match std::env::var("LISTEN_FDNAMES") {
        Ok(names) if !names.is_empty() => names.split(':').map(str::to_owned).collect(),
        _ if count == 1 => vec!["sts".to_owned()],
        _ => bail!(
            "{count} sockets were passed (LISTEN_FDS) without LISTEN_FDNAMES: name each after \
             its role (sts, authenticator, idp, authorization)"
        ),
    };
    if names.len() != count {
        bail!(
            "LISTEN_FDS passes {count} sockets but LISTEN_FDNAMES names {}",
            names.len()
        );
    }
    for (index, name) in names.iter().enumerate() {
        let listener = fds
            .take_tcp_listener(index)
            .with_context(|| format!("passed socket {name:?} is not a TCP listener"))?
            .with_context(|| format!("passed socket {name:?} is not a TCP listener"))?;
        let slot = match name.as_str() {
            "sts" => &mut listeners.sts,
            "authenticator" => &mut listeners.authenticator,
            "idp" => &mut listeners.idp,
            "authorization" => &mut listeners.authorization,
            other => bail!(
                "passed socket named {other:?}: the roles are sts, authenticator, idp and \
                 authorization"
            ),
        };
        if slot.replace(listener).is_some() {
            bail!("two passed sockets are named {name:?}");
        }
    }
    Ok(listeners)
}
