//! `idp.*`: the development OpenID Provider.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Secret;

/// `idp.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IdpConfig {
    /// Run the development IdP in this process.
    pub enabled: bool,
    /// Its address; loopback by default.
    pub listen_address: String,
    /// The issuer URL; default `http://{listen_address}`.
    pub issuer: Option<String>,
    /// Show the sign-in page; when false, `login_hint=<sub>` signs in without a page.
    pub interactive: bool,
    /// Algorithm of the ID tokens it signs.
    pub signing_alg: SigningAlg,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl_seconds: i64,
    /// The users that can sign in.
    pub users: Vec<IdpUser>,
    /// The registered clients.
    pub clients: Vec<IdpClient>,
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen_address: "127.0.0.1:8002".into(),
            issuer: None,
            interactive: true,
            signing_alg: SigningAlg::RS256,
            id_token_ttl_seconds: 3600,
            users: Vec::new(),
            clients: Vec::new(),
        }
    }
}

/// ID-token signing algorithm of the development IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// One entry of `idp.users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpUser {
    /// The subject.
    pub sub: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Groups, sent as the `groups` claim (a JSON array).
    #[serde(default)]
    pub groups: Vec<String>,
    /// A password to type on the sign-in page; none means a click signs in.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Any extra claims, put in the ID token as they are.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// One entry of `idp.clients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpClient {
    /// The client id.
    pub client_id: String,
    /// The secret of a confidential client; public clients must use PKCE S256.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
}

impl IdpConfig {
    /// The issuer URL.
    pub fn issuer_url(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen_address))
    }

    pub(crate) fn validate(&self, p: &mut Vec<String>) {
        if let Some(iss) = &self.issuer {
            match url::Url::parse(iss) {
                Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.query().is_none() => {
                }
                _ => p.push(format!(
                    "idp.issuer: {iss:?} is not an http(s) URL without query"
                )),
            }
        }
        if self.id_token_ttl_seconds <= 0 {
            p.push("idp.id_token_ttl_seconds: must be positive".into());
        }
        let mut subs = std::collections::BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.sub.is_empty() {
                p.push(format!("idp.users[{i}].sub: must not be empty"));
            } else if !subs.insert(&u.sub) {
                p.push(format!("idp.users[{i}].sub: {:?} is used twice", u.sub));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.client_id.is_empty() {
                p.push(format!("idp.clients[{i}].client_id: must not be empty"));
            } else if !ids.insert(&c.client_id) {
                p.push(format!(
                    "idp.clients[{i}].client_id: {:?} is used twice",
                    c.client_id
                ));
            }
            if c.redirect_uris.is_empty() {
                p.push(format!(
                    "idp.clients[{i}].redirect_uris: at least one is required"
                ));
            }
        }
    }
}
