//! `authenticator.ui_sso.*`: single sign-on in the lakeFS web UI (docs/lakefs-ui-sso.md).

use serde::{Deserialize, Serialize};

use crate::Duration;

/// lakeFS's `auth.login_duration`: the lifetime of the tokens lakeFS's own UI login mints.
pub const LAKEFS_LOGIN_DURATION_SECS: u64 = 168 * 3600;
/// gorilla/securecookie's max age, which lakeFS keeps: a session cookie older than this is
/// ignored by lakeFS, so a longer token would never be used.
pub const MAX_UI_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;
/// Default of `authenticator.ui_sso.rate_limit_per_second`.
pub const DEFAULT_UI_RATE_LIMIT_PER_SECOND: u32 = 5;
/// Default of `authenticator.ui_sso.rate_limit_burst`.
pub const DEFAULT_UI_RATE_LIMIT_BURST: u32 = 30;
/// Default of `authenticator.ui_sso.max_logins_in_flight`.
pub const DEFAULT_UI_MAX_LOGINS_IN_FLIGHT: usize = 10_000;

/// `authenticator.ui_sso`: the authenticator's listener logs browsers in to the lakeFS UI
/// through an OpenID Provider and sets lakeFS's own session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiSsoConfig {
    /// Serve the UI login routes (`/lakests/ui/login`, `/lakests/ui/callback`,
    /// `/lakests/ui/logout`) on the authenticator's listener.
    pub enabled: bool,
    /// The lakeFS UI's base URL as the browser reaches it (`https://lakefs.example.com`).
    /// Return URLs are only paths under it; the session cookie is set for its host.
    pub lakefs_url: Option<String>,
    /// The authenticator's listener as the browser reaches it (`https://lakefs.example.com`
    /// behind one ingress, or `http://lakefs.example.com:8001`); the callback is
    /// `{public_url}/lakests/ui/callback`.
    pub public_url: Option<String>,
    /// Names of the `authenticator.providers` offered; empty: all of them.
    pub providers: Vec<String>,
    /// Lifetime of the lakeFS login token in the session cookie (lakeFS's `login_duration`).
    pub token_ttl: Duration,
    /// A parent domain to set the cookie for (`Domain=`), when lakests and lakeFS are sibling
    /// hosts. Every host under it then receives the token: see the docs before using it.
    pub cookie_domain: Option<String>,
    /// Sustained requests per second to `/lakests/ui/login` and `/lakests/ui/callback` (together)
    /// allowed from one client address; `0` turns the limit off.
    pub rate_limit_per_second: u32,
    /// Requests one client address may make at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// Web-UI logins started by this replica and not yet finished or expired; beyond it a new
    /// login is refused with 503 (a flood of `/lakests/ui/login` cannot fill the store).
    pub max_logins_in_flight: usize,
}

impl Default for UiSsoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            lakefs_url: None,
            public_url: None,
            providers: Vec::new(),
            token_ttl: Duration::from_secs(LAKEFS_LOGIN_DURATION_SECS),
            cookie_domain: None,
            rate_limit_per_second: DEFAULT_UI_RATE_LIMIT_PER_SECOND,
            rate_limit_burst: DEFAULT_UI_RATE_LIMIT_BURST,
            max_logins_in_flight: DEFAULT_UI_MAX_LOGINS_IN_FLIGHT,
        }
    }
}

/// A base URL the UI login accepts: absolute http(s), no query, fragment or credentials.
pub fn parse_base_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|_| "is not an absolute URL".to_owned())?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("must be an http or https URL".into());
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("must have no query or fragment".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(u)
}

impl UiSsoConfig {
    pub(crate) fn validate(
        &self,
        p: &mut Vec<String>,
        provider_names: &[&str],
        has_secret_key: bool,
    ) {
        if !self.enabled {
            return;
        }
        const AT: &str = "authenticator.ui_sso";
        if !has_secret_key {
            p.push(format!(
                "{AT}.enabled: requires auth.encrypt.secret_key (lakeFS's value): the session cookie and its token are signed with it"
            ));
        }
        if provider_names.is_empty() {
            p.push(format!(
                "{AT}.enabled: requires at least one authenticator.providers entry"
            ));
        }
        let lakefs = match &self.lakefs_url {
            None => {
                p.push(format!(
                    "{AT}.lakefs_url: required (the lakeFS UI's URL as browsers reach it)"
                ));
                None
            }
            Some(s) => match parse_base_url(s) {
                Ok(u) => Some(u),
                Err(e) => {
                    p.push(format!("{AT}.lakefs_url: {s:?} {e}"));
                    None
                }
            },
        };
        match &self.public_url {
            None => p.push(format!(
                "{AT}.public_url: required (the authenticator's URL as browsers reach it)"
            )),
            Some(s) => {
                if let Err(e) = parse_base_url(s) {
                    p.push(format!("{AT}.public_url: {s:?} {e}"));
                }
            }
        }
        for name in &self.providers {
            if !provider_names.contains(&name.as_str()) {
                p.push(format!(
                    "{AT}.providers: {name:?} is not the name of an authenticator.providers entry"
                ));
            }
        }
        let ttl = self.token_ttl.get().as_secs();
        if ttl == 0 || ttl > MAX_UI_TOKEN_TTL_SECS {
            p.push(format!(
                "{AT}.token_ttl: must be between 1s and 720h (lakeFS ignores session cookies older than 30 days)"
            ));
        }
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            p.push(format!(
                "{AT}.rate_limit_burst: must be at least 1 when the rate limit is on"
            ));
        }
        if self.max_logins_in_flight == 0 {
            p.push(format!(
                "{AT}.max_logins_in_flight: must be at least 1 (no login could start)"
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            let d = domain.trim_start_matches('.').to_ascii_lowercase();
            let valid = !d.is_empty()
                && d.contains('.')
                && d.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                && !d.chars().all(|c| c.is_ascii_digit() || c == '.');
            if !valid {
                p.push(format!(
                    "{AT}.cookie_domain: {domain:?} is not a domain name with at least two labels"
                ));
            } else if let Some(host) = lakefs.as_ref().and_then(|u| u.host_str()) {
                let host = host.to_ascii_lowercase();
                if host != d && !host.ends_with(&format!(".{d}")) {
                    p.push(format!(
                        "{AT}.cookie_domain: lakefs_url's host is not {d:?} or under it, so lakeFS would never receive the cookie"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &UiSsoConfig, secret: bool) -> Vec<String> {
        let mut p = Vec::new();
        c.validate(&mut p, &["corp"], secret);
        p
    }

    #[test]
    fn off_it_checks_nothing_and_on_it_reports_every_problem_at_once() {
        assert!(problems(&UiSsoConfig::default(), false).is_empty());
        let c = UiSsoConfig {
            enabled: true,
            lakefs_url: Some("ftp://lakefs".into()),
            public_url: None,
            providers: vec!["nope".into()],
            token_ttl: Duration::from_secs(31 * 24 * 3600),
            cookie_domain: Some("other.example".into()),
            rate_limit_per_second: 1,
            rate_limit_burst: 0,
            max_logins_in_flight: 0,
        };
        let p = problems(&c, false);
        for key in [
            "enabled: requires auth.encrypt.secret_key",
            "lakefs_url",
            "public_url: required",
            "providers: \"nope\"",
            "token_ttl",
            "rate_limit_burst: must be at least 1",
            "max_logins_in_flight: must be at least 1",
        ] {
            assert!(p.iter().any(|m| m.contains(key)), "{key} in {p:?}");
        }
    }

    #[test]
    fn a_good_configuration_passes_and_the_cookie_domain_must_cover_lakefs() {
        let mut c = UiSsoConfig {
            enabled: true,
            lakefs_url: Some("https://lakefs.corp.example".into()),
            public_url: Some("https://login.corp.example/".into()),
            ..UiSsoConfig::default()
        };
        assert!(problems(&c, true).is_empty(), "{:?}", problems(&c, true));
        c.cookie_domain = Some("corp.example".into());
        assert!(problems(&c, true).is_empty());
        c.cookie_domain = Some("evil.example".into());
        assert_eq!(problems(&c, true).len(), 1);
        c.cookie_domain = Some("example".into());
        assert_eq!(problems(&c, true).len(), 1);
        c.cookie_domain = None;
        c.lakefs_url = Some("https://lakefs.example/?next=x".into());
        assert_eq!(problems(&c, true).len(), 1);
    }
}
