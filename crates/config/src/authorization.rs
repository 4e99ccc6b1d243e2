//! `authorization.*`: the authorization service role, lakeFS's `auth.api.endpoint`.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `authorization.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizationConfig {
    /// Run the role. It needs `auth.encrypt.secret_key`: lakeFS's service token is signed with
    /// it, and secret access keys are sealed with a key derived from it.
    pub enabled: bool,
    /// Its own address; unset, it shares the authenticator's listener, so lakeFS's
    /// `auth.api.endpoint` and `auth.authentication_api.endpoint` can be one base URL.
    pub listen_address: Option<String>,
    /// lakeFS's `auth.api.token`, when lakeFS is configured with one; lakeFS's own JWT (signed
    /// with `auth.encrypt.secret_key`) is accepted either way.
    pub api_token: Option<Secret>,
}

impl AuthorizationConfig {
    pub(crate) fn validate(&self, p: &mut Vec<String>, secret_key_set: bool, authenticator: bool) {
        if !self.enabled {
            return;
        }
        if !secret_key_set {
            p.push(
                "authorization.enabled: requires auth.encrypt.secret_key (lakeFS's key: it signs \
                 lakeFS's service token and seals secret access keys)"
                    .into(),
            );
        }
        match &self.listen_address {
            Some(addr) if addr.parse::<std::net::SocketAddr>().is_err() => p.push(format!(
                "authorization.listen_address: {addr:?} is not an address of the form IP:PORT"
            )),
            Some(_) => {}
            None if !authenticator => p.push(
                "authorization.listen_address: required unless the authenticator role runs in \
                 this process (the authorization API then shares its listener)"
                    .into(),
            ),
            None => {}
        }
        if let Some(t) = &self.api_token
            && t.expose().trim().is_empty()
        {
            p.push("authorization.api_token: must not be empty when set".into());
        }
    }
}
