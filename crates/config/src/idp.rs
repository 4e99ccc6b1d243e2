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
    /// Fault switches applied to every login (see docs/devidp.md), e.g. `[expired]` or
    /// `["missing_claim:email", "slow_token:2000"]`. Empty (the default) means honest tokens.
    pub faults: Vec<IdpFault>,
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
            faults: Vec::new(),
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
    /// The algorithm of this client's ID tokens (OIDC registration's
    /// `id_token_signed_response_alg`); default `idp.signing_alg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
}

/// Longest `slow_token` delay, in milliseconds.
pub const MAX_SLOW_TOKEN_MS: u64 = 60_000;

/// Longest claim name `missing_claim` accepts.
const MAX_CLAIM_NAME_LEN: usize = 128;

/// A fault switch of the development IdP: makes the ID token (or the token endpoint) wrong in
/// one promised way, so relying parties can be tested against it. Written as
/// `name` or `name:argument`, in `idp.faults` or the `lakests_fault` authorize parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdpFault {
    /// `expired`: `exp` five minutes in the past (and `iat` one TTL before it).
    Expired,
    /// `future_iat`: `iat` ten minutes in the future (and `exp` one TTL after it).
    FutureIat,
    /// `wrong_audience`: `aud` is not the client id.
    WrongAudience,
    /// `bad_signature`: the signature does not verify with the published key it names.
    BadSignature,
    /// `missing_claim:<name>`: the named claim is left out.
    MissingClaim(String),
    /// `unpublished_key`: signed by a real key whose `kid` is not (yet) in the JWKS.
    UnpublishedKey,
    /// `slow_token:<ms>`: the token endpoint waits this long (at most
    /// [`MAX_SLOW_TOKEN_MS`]) before answering.
    SlowToken(u64),
}

impl IdpFault {
    /// The names of every fault, for error messages and documentation.
    pub const NAMES: &'static [&'static str] = &[
        "expired",
        "future_iat",
        "wrong_audience",
        "bad_signature",
        "missing_claim:<name>",
        "unpublished_key",
        "slow_token:<ms>",
    ];
}

impl std::fmt::Display for IdpFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdpFault::Expired => f.write_str("expired"),
            IdpFault::FutureIat => f.write_str("future_iat"),
            IdpFault::WrongAudience => f.write_str("wrong_audience"),
            IdpFault::BadSignature => f.write_str("bad_signature"),
            IdpFault::MissingClaim(c) => write!(f, "missing_claim:{c}"),
            IdpFault::UnpublishedKey => f.write_str("unpublished_key"),
            IdpFault::SlowToken(ms) => write!(f, "slow_token:{ms}"),
        }
    }
}

impl std::str::FromStr for IdpFault {
    type Err = String;

    /// Parses `name` or `name:argument`; the error text is safe to show to the caller (it
    /// never echoes the input).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let no_arg = |fault: IdpFault| match arg {
            None => Ok(fault),
            Some(_) => Err(format!("fault {name} takes no argument")),
        };
        match name {
            "expired" => no_arg(IdpFault::Expired),
            "future_iat" => no_arg(IdpFault::FutureIat),
            "wrong_audience" => no_arg(IdpFault::WrongAudience),
            "bad_signature" => no_arg(IdpFault::BadSignature),
            "unpublished_key" => no_arg(IdpFault::UnpublishedKey),
            "missing_claim" => match arg {
                Some(c)
                    if !c.is_empty()
                        && c.len() <= MAX_CLAIM_NAME_LEN
                        && c.bytes().all(|b| b.is_ascii_graphic() && b != b',') =>
                {
                    Ok(IdpFault::MissingClaim(c.to_owned()))
                }
                _ => Err(format!(
                    "fault missing_claim needs a claim name of 1 to {MAX_CLAIM_NAME_LEN} printable characters \
                     (missing_claim:<name>)"
                )),
            },
            "slow_token" => match arg.and_then(|a| a.parse::<u64>().ok()) {
                Some(ms) if ms <= MAX_SLOW_TOKEN_MS => Ok(IdpFault::SlowToken(ms)),
                _ => Err(format!(
                    "fault slow_token needs a delay of 0 to {MAX_SLOW_TOKEN_MS} milliseconds (slow_token:<ms>)"
                )),
            },
            _ => Err(format!(
                "unknown fault; known faults: {}",
                IdpFault::NAMES.join(", ")
            )),
        }
    }
}

impl Serialize for IdpFault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdpFault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Claims the IdP sets itself; a user's extra `claims` may not name them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "azp",
    "nonce",
    "auth_time",
    "jti",
    "at_hash",
    "c_hash",
    "email",
    "name",
    "groups",
];

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
            if u.sub.len() > 255 {
                p.push(format!("idp.users[{i}].sub: longer than 255 bytes"));
            }
            for name in u.claims.keys() {
                if RESERVED_CLAIMS.contains(&name.as_str()) {
                    p.push(format!(
                        "idp.users[{i}].claims.{name}: set by the IdP itself (use the user's own field, or a fault switch)"
                    ));
                }
            }
            if u.password.as_ref().is_some_and(|pw| pw.expose().is_empty()) {
                p.push(format!(
                    "idp.users[{i}].password: must not be empty (leave it out for no password)"
                ));
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
            for (j, uri) in c.redirect_uris.iter().enumerate() {
                match url::Url::parse(uri) {
                    Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => {}
                    _ => p.push(format!(
                        "idp.clients[{i}].redirect_uris[{j}]: {uri:?} is not an absolute URL without fragment"
                    )),
                }
            }
            if c.client_secret
                .as_ref()
                .is_some_and(|s| s.expose().is_empty())
            {
                p.push(format!(
                    "idp.clients[{i}].client_secret: must not be empty (leave it out for a public client)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_parses_and_prints_back_the_same() {
        for text in [
            "expired",
            "future_iat",
            "wrong_audience",
            "bad_signature",
            "missing_claim:email",
            "unpublished_key",
            "slow_token:0",
            "slow_token:60000",
        ] {
            let fault: IdpFault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
        }
    }

    #[test]
    fn malformed_faults_are_refused_without_echoing_the_input() {
        for text in [
            "",
            "expired:1",
            "missing_claim",
            "missing_claim:",
            "missing_claim:a,b",
            "slow_token",
            "slow_token:60001",
            "slow_token:-1",
            "slow_token:abc",
        ] {
            assert!(text.parse::<IdpFault>().is_err(), "{text:?} was accepted");
        }
        let err = "secret-looking-value".parse::<IdpFault>().unwrap_err();
        assert!(!err.contains("secret-looking-value"), "{err}");
        assert!(err.contains("missing_claim:<name>"), "{err}");
        let err = "missing_claim:a b".parse::<IdpFault>().unwrap_err();
        assert!(!err.contains("a b"), "{err}");
    }

    #[test]
    fn faults_and_client_algorithms_load_from_yaml() {
        let yaml = "enabled: true\nfaults: [expired, \"slow_token:250\"]\nclients:\n  - client_id: c\n    redirect_uris: [\"http://127.0.0.1:1/cb\"]\n    id_token_signed_response_alg: ES256\n";
        let cfg: IdpConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            cfg.faults,
            vec![IdpFault::Expired, IdpFault::SlowToken(250)]
        );
        assert_eq!(
            cfg.clients[0].id_token_signed_response_alg,
            Some(SigningAlg::ES256)
        );
        let bad: Result<IdpConfig, _> = serde_norway::from_str("faults: [sometimes]\n");
        assert!(bad.unwrap_err().to_string().contains("unknown fault"));
    }

    #[test]
    fn validation_refuses_reserved_claims_bad_redirects_and_empty_secrets() {
        let yaml = "users:\n  - sub: a\n    claims: {aud: x, department: d}\n    password: \"\"\nclients:\n  - client_id: c\n    client_secret: \"\"\n    redirect_uris: [\"not a url\", \"http://127.0.0.1/cb#frag\", \"http://127.0.0.1/ok\"]\n";
        let cfg: IdpConfig = serde_norway::from_str(yaml).unwrap();
        let mut p = Vec::new();
        cfg.validate(&mut p);
        let text = p.join("\n");
        for needle in [
            "idp.users[0].claims.aud",
            "idp.users[0].password",
            "idp.clients[0].client_secret",
            "idp.clients[0].redirect_uris[0]",
            "idp.clients[0].redirect_uris[1]",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(!text.contains("department"), "{text}");
        assert!(!text.contains("redirect_uris[2]"), "{text}");
    }
}
