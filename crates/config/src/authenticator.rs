//! `authenticator.*`: the OpenID Connect relying party behind lakeFS's authentication API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Duration, Secret};

/// `authenticator.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticatorConfig {
    /// Address of the authenticator role (its own: it serves `/api/v1/sts/login` too).
    pub listen_address: String,
    /// Overall timeout of every outbound call (discovery, JWKS, token, userinfo).
    pub request_timeout: Duration,
    /// Largest response body accepted from an identity provider, in bytes.
    pub max_response_bytes: u64,
    /// Extra PEM CA bundle trusted for identity provider TLS, beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// How long a session-mode login may take, from `sts/authorize` to `sts/login`.
    pub session_ttl: Duration,
    /// How long a provider's discovery document and JWKS are used before they are fetched
    /// again (lazily, on the next login). A failed refresh keeps the cached copy.
    pub metadata_ttl: Duration,
    /// Shortest time between two JWKS fetches caused by an ID token whose `kid` is unknown:
    /// key rotation works without a restart, and a flood of bad `kid`s does not flood the IdP.
    pub jwks_refetch_interval: Duration,
    /// The identity providers.
    pub providers: Vec<ProviderConfig>,
    /// Single sign-on in the lakeFS web UI.
    pub ui_sso: crate::UiSsoConfig,
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        Self {
            listen_address: "127.0.0.1:8001".into(),
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            ca_file: None,
            session_ttl: Duration::from_secs(600),
            metadata_ttl: Duration::from_secs(3600),
            jwks_refetch_interval: Duration::from_secs(30),
            providers: Vec::new(),
            ui_sso: crate::UiSsoConfig::default(),
        }
    }
}

/// How the authenticator authenticates itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with client_id and client_secret.
    ClientSecretBasic,
    /// client_id and client_secret in the form body.
    ClientSecretPost,
    /// A public client: client_id only, PKCE protects the code.
    None,
}

/// Where the PKCE verifier lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceMode {
    /// lakeFS's documented flow: `code_verifier = state`.
    State,
    /// The authenticator starts the login (`POST /api/v1/sts/authorize`) and keeps the
    /// verifier and a nonce server-side.
    Session,
}

/// A required claim: one exact value, or one of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimRequirement {
    /// Exactly this value.
    Exact(String),
    /// Any one of these values.
    OneOf(Vec<String>),
}

/// One entry of `authenticator.providers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A short name for logs and metrics.
    pub name: String,
    /// The issuer; `{issuer}/.well-known/openid-configuration` is fetched.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret; absent for public clients.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Client authentication; default `client_secret_basic` with a secret, else `none`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Scopes requested in session mode.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Redirect URIs accepted for this provider, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Let a loopback redirect URI (`http://127.0.0.1`, `http://[::1]`, `http://localhost`)
    /// match with any port (RFC 8252 §7.3).
    #[serde(default)]
    pub allow_loopback_any_port: bool,
    /// Where the PKCE verifier lives.
    #[serde(default = "default_pkce")]
    pub pkce: PkceMode,
    /// Tolerance for `exp`, `iat` and `nbf`.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: i64,
    /// Claims the ID token must carry: name -> value or list of accepted values.
    #[serde(default)]
    pub required_claims: BTreeMap<String, ClaimRequirement>,
    /// Merge the userinfo endpoint's claims (same `sub` required).
    #[serde(default)]
    pub userinfo: bool,
    /// Namespace of this provider's external ids: a login's `sub` is returned, looked up and
    /// stored as `<namespace>:<sub>`. Default: the provider's name, so two providers never map
    /// to the same user by accident. Providers that set the same value explicitly share users
    /// on purpose; `""` (explicit, and only when no other provider is namespaced) keeps the
    /// bare `sub`, as lakeFS's own OIDC login stores it.
    #[serde(default)]
    pub external_id_namespace: Option<String>,
    /// Create the user at its first login and keep its e-mail, friendly name and (with
    /// `groups_claim`) memberships in sync at every login, so lakeFS finds it.
    #[serde(default)]
    pub provision_users: bool,
    /// Claim whose value names a provisioned user.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim with the user's groups (a JSON array or comma-separated); with
    /// `provision_users`, memberships are made exactly these at every login.
    #[serde(default)]
    pub groups_claim: Option<String>,
}

/// The separator between an external id's namespace and the provider's `sub`.
pub const EXTERNAL_ID_SEPARATOR: char = ':';

/// The external id of `sub` in `namespace`: `namespace:sub`, or `sub` in the empty namespace.
pub fn namespaced_external_id(namespace: &str, sub: &str) -> String {
    match namespace {
        "" => sub.to_owned(),
        ns => format!("{ns}{EXTERNAL_ID_SEPARATOR}{sub}"),
    }
}

fn default_username_claim() -> String {
    "sub".into()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn default_pkce() -> PkceMode {
    PkceMode::State
}

fn default_skew() -> i64 {
    60
}

impl ProviderConfig {
    /// The namespace of this provider's external ids (see `external_id_namespace`).
    pub fn namespace(&self) -> &str {
        self.external_id_namespace.as_deref().unwrap_or(&self.name)
    }

    /// The external id a `sub` of this provider is stored under.
    pub fn external_id(&self, sub: &str) -> String {
        namespaced_external_id(self.namespace(), sub)
    }

    /// The effective client authentication.
    pub fn effective_client_auth(&self) -> ClientAuth {
        self.client_auth.unwrap_or(if self.client_secret.is_some() {
            ClientAuth::ClientSecretBasic
        } else {
            ClientAuth::None
        })
    }
}

impl AuthenticatorConfig {
    pub(crate) fn validate(&self, p: &mut Vec<String>) {
        if self.request_timeout.is_zero() {
            p.push("authenticator.request_timeout: must be more than zero".into());
        }
        if self.max_response_bytes == 0 {
            p.push("authenticator.max_response_bytes: must be more than zero".into());
        }
        if self.session_ttl.is_zero() {
            p.push("authenticator.session_ttl: must be more than zero".into());
        }
        if self.metadata_ttl.is_zero() {
            p.push("authenticator.metadata_ttl: must be more than zero".into());
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            p.push(format!(
                "authenticator.ca_file: {} is not a readable file",
                ca.display()
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, prov) in self.providers.iter().enumerate() {
            let at = format!("authenticator.providers[{i}]");
            if prov.name.is_empty() {
                p.push(format!("{at}.name: must not be empty"));
            } else if !names.insert(prov.name.clone()) {
                p.push(format!("{at}.name: {:?} is used twice", prov.name));
            }
            match url::Url::parse(&prov.issuer) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                _ => p.push(format!(
                    "{at}.issuer: {:?} is not an http(s) URL",
                    prov.issuer
                )),
            }
            if prov.client_id.is_empty() {
                p.push(format!("{at}.client_id: must not be empty"));
            }
            match (prov.effective_client_auth(), &prov.client_secret) {
                (ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost, None) => {
                    p.push(format!("{at}.client_secret: required by client_auth"));
                }
                (ClientAuth::None, Some(_)) => {
                    p.push(format!("{at}.client_secret: set, but client_auth is none"));
                }
                _ => {}
            }
            if prov.redirect_uris.is_empty() {
                p.push(format!("{at}.redirect_uris: at least one is required"));
            }
            for uri in &prov.redirect_uris {
                match url::Url::parse(uri) {
                    Ok(u) if u.fragment().is_none() => {}
                    _ => p.push(format!(
                        "{at}.redirect_uris: {uri:?} is not an absolute URL without fragment"
                    )),
                }
            }
            if !(0..=600).contains(&prov.clock_skew_seconds) {
                p.push(format!(
                    "{at}.clock_skew_seconds: must be between 0 and 600"
                ));
            }
            if !prov.scopes.iter().any(|s| s == "openid") {
                p.push(format!("{at}.scopes: must include openid"));
            }
        }
        self.validate_redirect_uris_are_unambiguous(p);
        self.validate_namespaces(p);
    }

    /// External ids never collide by accident: a namespace is letters, digits, `.`, `_` or
    /// `-` (so `<ns>:<sub>` cannot be read two ways), two providers share one only when both
    /// set it explicitly, and the bare `sub` (`""`) cannot sit beside namespaced providers.
    fn validate_namespaces(&self, p: &mut Vec<String>) {
        let mut seen: BTreeMap<&str, (&str, bool)> = BTreeMap::new();
        for (i, prov) in self.providers.iter().enumerate() {
            let ns = prov.namespace();
            let explicit = prov.external_id_namespace.is_some();
            let at = format!("authenticator.providers[{i}]");
            if !ns.is_empty()
                && !ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                if explicit {
                    p.push(format!(
                        "{at}.external_id_namespace: {ns:?} may only have letters, digits, '.', '_' and '-'"
                    ));
                } else {
                    p.push(format!(
                        "{at}.external_id_namespace: the provider name {ns:?} cannot be the namespace of its external ids (letters, digits, '.', '_' and '-' only); set external_id_namespace"
                    ));
                }
            }
            if let Some((other, other_explicit)) = seen.insert(ns, (prov.name.as_str(), explicit))
                && !(explicit && other_explicit)
            {
                p.push(format!(
                    "authenticator.providers: {other:?} and {:?} would map the same sub to the same user (external id namespace {ns:?}); set external_id_namespace to the same value on both to share users on purpose, or to different values",
                    prov.name
                ));
            }
            if prov.username_claim.is_empty() {
                p.push(format!("{at}.username_claim: must not be empty"));
            }
        }
        if seen.contains_key("") && seen.len() > 1 {
            p.push(
                "authenticator.providers: external_id_namespace \"\" (the bare sub) is ambiguous beside namespaced providers: a bare sub can look like <namespace>:<sub>"
                    .into(),
            );
        }
    }

    /// A redirect URI selects the provider, so no two providers may claim the same one: not
    /// the same exact string, and not the same loopback URI when both let its port vary.
    fn validate_redirect_uris_are_unambiguous(&self, p: &mut Vec<String>) {
        let mut exact: BTreeMap<&str, &str> = BTreeMap::new();
        let mut any_port: BTreeMap<String, &str> = BTreeMap::new();
        for prov in &self.providers {
            for uri in &prov.redirect_uris {
                if let Some(other) = exact.insert(uri.as_str(), prov.name.as_str())
                    && other != prov.name
                {
                    p.push(format!(
                        "authenticator.providers: redirect URI {uri:?} is listed by both {other:?} and {:?}; \
                         the redirect URI selects the provider, so it must be unique",
                        prov.name
                    ));
                }
                if prov.allow_loopback_any_port
                    && let Some(key) = loopback_key(uri)
                    && let Some(other) = any_port.insert(key, prov.name.as_str())
                    && other != prov.name
                {
                    p.push(format!(
                        "authenticator.providers: loopback redirect URI {uri:?} matches both {other:?} \
                         and {:?} when any port is allowed; make the paths differ",
                        prov.name
                    ));
                }
            }
        }
    }
}

impl ProviderConfig {
    /// For a loopback redirect URI (`http` to `127.0.0.1`, `[::1]` or `localhost`), everything
    /// but the port: the part that must match when `allow_loopback_any_port` is set (RFC 8252
    /// §7.3). `None` for any other URI.
    pub fn loopback_key(uri: &str) -> Option<String> {
        loopback_key(uri)
    }
}

fn loopback_key(uri: &str) -> Option<String> {
    lakests_core::redirect::loopback_key(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, uris: &[&str], any_port: bool) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            client_secret: None,
            client_auth: None,
            scopes: default_scopes(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            allow_loopback_any_port: any_port,
            pkce: PkceMode::State,
            clock_skew_seconds: 60,
            required_claims: BTreeMap::new(),
            userinfo: false,
            external_id_namespace: None,
            provision_users: false,
            username_claim: default_username_claim(),
            groups_claim: None,
        }
    }

    fn named(name: &str, uri: &str, namespace: Option<&str>) -> ProviderConfig {
        let mut p = provider(name, &[uri], false);
        p.external_id_namespace = namespace.map(Into::into);
        p
    }

    #[test]
    fn external_ids_are_namespaced_by_provider_by_default() {
        let p = named("corp", "https://a/cb", None);
        assert_eq!(p.external_id("alice"), "corp:alice");
        let p = named("corp", "https://a/cb", Some("shared"));
        assert_eq!(p.external_id("alice"), "shared:alice");
        let p = named("corp", "https://a/cb", Some(""));
        assert_eq!(p.external_id("alice"), "alice");
    }

    #[test]
    fn ambiguous_namespaces_are_refused_at_startup() {
        // Two providers, one namespace by accident.
        let p = problems(vec![
            named("a", "https://a/cb", None),
            named("b", "https://b/cb", Some("a")),
        ]);
        assert!(
            p.iter().any(|m| m.contains("would map the same sub")),
            "{p:?}"
        );
        // Explicitly shared on both: allowed.
        let p = problems(vec![
            named("a", "https://a/cb", Some("corp")),
            named("b", "https://b/cb", Some("corp")),
        ]);
        assert!(p.is_empty(), "{p:?}");
        // The separator cannot appear in a namespace.
        let p = problems(vec![named("a", "https://a/cb", Some("x:y"))]);
        assert!(p.iter().any(|m| m.contains("may only have")), "{p:?}");
        let p = problems(vec![named("my idp", "https://a/cb", None)]);
        assert!(
            p.iter().any(|m| m.contains("set external_id_namespace")),
            "{p:?}"
        );
        // The bare sub beside a namespace.
        let p = problems(vec![
            named("a", "https://a/cb", Some("")),
            named("b", "https://b/cb", None),
        ]);
        assert!(p.iter().any(|m| m.contains("bare sub")), "{p:?}");
        let p = problems(vec![named("a", "https://a/cb", Some(""))]);
        assert!(p.is_empty(), "{p:?}");
    }

    fn problems(providers: Vec<ProviderConfig>) -> Vec<String> {
        let cfg = AuthenticatorConfig {
            providers,
            ..AuthenticatorConfig::default()
        };
        let mut p = Vec::new();
        cfg.validate(&mut p);
        p
    }

    #[test]
    fn a_redirect_uri_listed_by_two_providers_is_refused() {
        let p = problems(vec![
            provider("a", &["https://app.example/cb"], false),
            provider("b", &["https://app.example/cb"], false),
        ]);
        assert!(p.iter().any(|m| m.contains("listed by both")), "{p:?}");
    }

    #[test]
    fn loopback_uris_that_differ_only_by_port_are_ambiguous_when_any_port_is_allowed() {
        let p = problems(vec![
            provider("a", &["http://127.0.0.1:8085/cb"], true),
            provider("b", &["http://127.0.0.1:9000/cb"], true),
        ]);
        assert!(p.iter().any(|m| m.contains("any port")), "{p:?}");
        let p = problems(vec![
            provider("a", &["http://127.0.0.1:8085/cb"], false),
            provider("b", &["http://127.0.0.1:9000/cb"], false),
        ]);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn loopback_key_keeps_everything_but_the_port() {
        assert_eq!(
            ProviderConfig::loopback_key("http://127.0.0.1:8085/cb?x=1").as_deref(),
            Some("http://127.0.0.1/cb?x=1")
        );
        assert_eq!(
            ProviderConfig::loopback_key("http://[::1]:1/cb").as_deref(),
            Some("http://[::1]/cb?")
        );
        assert_eq!(
            ProviderConfig::loopback_key("https://127.0.0.1:8085/cb"),
            None
        );
        assert_eq!(
            ProviderConfig::loopback_key("http://example.com:8085/cb"),
            None
        );
        assert_eq!(
            ProviderConfig::loopback_key("http://127.0.0.1:8085/cb#f"),
            None
        );
    }
}
