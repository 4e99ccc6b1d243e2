//! The lakeFS endpoint a login is for, normalized so that every spelling of one server shares
//! one cache entry.

use aws_lc_rs::digest;
use url::Url;

use crate::LoginError;

/// A lakeFS server's base URL: `http(s)://host[:port][/prefix]`, without a trailing slash and
/// without the `/api/v1` suffix (both spellings are accepted and mean the same server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
}

impl Endpoint {
    /// Parses and normalizes an endpoint given by a person.
    pub fn parse(input: &str) -> Result<Self, LoginError> {
        let parsed = Url::parse(input.trim());
        // The message repeats the input, minus any password it might carry.
        let shown = match &parsed {
            Ok(u) => {
                let mut u = u.clone();
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            Err(_) if input.contains('@') => "(the given URL)".to_owned(),
            Err(_) => input.trim().to_owned(),
        };
        let invalid = |why: &str| LoginError::InvalidEndpoint {
            endpoint: shown.chars().take(200).collect(),
            why: why.to_owned(),
        };
        let url = parsed.map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the URL must not carry a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("the URL must not have a query or fragment"));
        }
        let mut path = url.path().trim_end_matches('/');
        if let Some(p) = path.strip_suffix("/api/v1") {
            path = p.trim_end_matches('/');
        }
        Ok(Self {
            base: format!("{}{path}", url.origin().ascii_serialization()),
        })
    }

    /// The normalized base URL, e.g. `http://lakefs.example.com`.
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// The URL of a lakeFS API path, e.g. `api("/sts/login")` is `<base>/api/v1/sts/login`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// The URL of lakests's login discovery document.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/lakests-login", self.base)
    }

    /// A file-name-safe key: the hex SHA-256 of the normalized URL.
    pub fn cache_key(&self) -> String {
        let d = digest::digest(&digest::SHA256, self.base.as_bytes());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_server_normalize_to_one_endpoint() {
        let a = Endpoint::parse("http://LakeFS.example.com").unwrap();
        for other in [
            "http://lakefs.example.com/",
            "http://lakefs.example.com:80",
            "http://lakefs.example.com/api/v1",
            "http://lakefs.example.com/api/v1/",
            " http://lakefs.example.com ",
        ] {
            assert_eq!(Endpoint::parse(other).unwrap(), a, "{other}");
        }
        assert_eq!(a.as_str(), "http://lakefs.example.com");
        assert_eq!(a.cache_key().len(), 64);
        assert_eq!(
            a.api("/sts/login"),
            "http://lakefs.example.com/api/v1/sts/login"
        );
        assert_eq!(
            a.discovery_url(),
            "http://lakefs.example.com/.well-known/lakests-login"
        );
    }

    #[test]
    fn a_path_prefix_and_a_port_are_kept_and_change_the_key() {
        let a = Endpoint::parse("https://example.com:8443/lakefs/api/v1").unwrap();
        assert_eq!(a.as_str(), "https://example.com:8443/lakefs");
        let b = Endpoint::parse("https://example.com/lakefs").unwrap();
        assert_ne!(a.cache_key(), b.cache_key());
    }

    #[test]
    fn endpoints_that_are_not_plain_http_urls_are_refused() {
        for bad in [
            "lakefs.example.com",
            "ftp://lakefs.example.com",
            "http://user:pw@lakefs.example.com",
            "http://lakefs.example.com/?x=1",
            "http://lakefs.example.com/#frag",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(e, LoginError::InvalidEndpoint { .. }), "{bad}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
