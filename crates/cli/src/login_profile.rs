//! Named login profiles: what a user sets once so that `lakests login --endpoint URL` (or
//! `lakests login --profile NAME`) works against a lakeFS server, which does not publish
//! lakests's login discovery document.
//!
//! The file is `$LAKESTS_LOGIN_CONFIG`, else `<config dir>/lakests/login.yaml`:
//!
//! ```yaml
//! profiles:
//!   prod:
//!     endpoint: https://lakefs.example.com              # the lakeFS server
//!     authenticator: https://lakests-auth.example.com   # its lakests authenticator
//!     # or, without a lakests authenticator (PKCE state mode):
//!     # issuer: https://idp.example.com
//!     # client_id: lakefs-cli
//!     # scopes: [openid, email]
//!     ttl: 8h
//!     lakectl_cache: true
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use lakests_login::Endpoint;
use serde::Deserialize;

/// Largest profile file read.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// One profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The lakeFS server.
    pub endpoint: String,
    /// The lakests authenticator whose discovery document describes the identity provider.
    #[serde(default)]
    pub authenticator: Option<String>,
    /// The identity provider's issuer (without an authenticator; with `client_id`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The client id at the identity provider (with `issuer`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Scopes (with `issuer`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Requested token lifetime, e.g. `8h`.
    #[serde(default)]
    pub ttl: Option<String>,
    /// Whether to write lakectl's token cache (default true).
    #[serde(default)]
    pub lakectl_cache: Option<bool>,
    /// Callback ports to try.
    #[serde(default)]
    pub ports: Vec<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The profile file's path.
pub fn path() -> Option<PathBuf> {
    match std::env::var_os("LAKESTS_LOGIN_CONFIG") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => dirs::config_dir().map(|d| d.join("lakests").join("login.yaml")),
    }
}

/// Every profile of the file; none when there is no file.
pub fn load() -> anyhow::Result<BTreeMap<String, Profile>> {
    let Some(path) = path() else {
        return Ok(BTreeMap::new());
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_BYTES), &mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let parsed: ProfileFile = serde_norway::from_str(&text)
        .with_context(|| format!("{} is not a valid login profile file", path.display()))?;
    for (name, p) in &parsed.profiles {
        Endpoint::parse(&p.endpoint)
            .with_context(|| format!("{}: profile {name}: endpoint", path.display()))?;
        if p.authenticator.is_some() && p.issuer.is_some() {
            anyhow::bail!(
                "{}: profile {name}: give authenticator or issuer, not both",
                path.display()
            );
        }
        if p.issuer.is_some() != p.client_id.is_some() {
            anyhow::bail!(
                "{}: profile {name}: issuer and client_id go together",
                path.display()
            );
        }
    }
    Ok(parsed.profiles)
}

/// The profile named `name`, or else the one whose endpoint is `endpoint`.
pub fn select(
    profiles: &BTreeMap<String, Profile>,
    name: Option<&str>,
    endpoint: Option<&Endpoint>,
) -> anyhow::Result<Option<(String, Profile)>> {
    if let Some(name) = name {
        return match profiles.get(name) {
            Some(p) => Ok(Some((name.to_owned(), p.clone()))),
            None => anyhow::bail!(
                "no login profile named {name:?} in {} (profiles: {})",
                path().map(|p| p.display().to_string()).unwrap_or_default(),
                if profiles.is_empty() {
                    "none".to_owned()
                } else {
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        };
    }
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    Ok(profiles
        .iter()
        .find(|(_, p)| Endpoint::parse(&p.endpoint).is_ok_and(|e| &e == endpoint))
        .map(|(n, p)| (n.clone(), p.clone())))
}
