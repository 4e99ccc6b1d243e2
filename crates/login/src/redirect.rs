//! Whether a callback URL is one the authenticator (and so, presumably, the identity provider)
//! has registered: exactly, or with any port for a loopback URL when the discovery document
//! says so (RFC 8252 §7.3).

use url::{Host, Url};

/// Whether `candidate` matches one of `registered`.
pub fn is_registered(candidate: &Url, registered: &[String], loopback_any_port: bool) -> bool {
    registered.iter().any(|r| {
        // The same URL once parsed (a registered "http://host:1" is "http://host:1/"), or the
        // one matching rule of lakests_core::redirect.
        Url::parse(r).is_ok_and(|parsed| &parsed == candidate)
            || lakests_core::redirect::redirect_matches(r, candidate.as_str(), loopback_any_port)
    })
}

/// Whether the URL's host is one of the loopback hosts the authenticator treats as such:
/// `127.0.0.1`, `[::1]` or `localhost` (`ProviderConfig::loopback_key` of lakests-config).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn an_exact_match_is_registered() {
        let reg = vec!["http://127.0.0.1:8085/callback".to_owned()];
        assert!(is_registered(
            &u("http://127.0.0.1:8085/callback"),
            &reg,
            false
        ));
        assert!(!is_registered(
            &u("http://127.0.0.1:8086/callback"),
            &reg,
            false
        ));
        assert!(!is_registered(
            &u("http://127.0.0.1:8085/other"),
            &reg,
            false
        ));
        assert!(!is_registered(
            &u("http://localhost:8085/callback"),
            &reg,
            false
        ));
    }

    #[test]
    fn loopback_any_port_matches_only_host_scheme_and_path() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "http://[::1]:9/cb".to_owned(),
        ];
        assert!(is_registered(
            &u("http://127.0.0.1:40123/callback"),
            &reg,
            true
        ));
        assert!(is_registered(&u("http://[::1]:5555/cb"), &reg, true));
        assert!(!is_registered(
            &u("http://127.0.0.1:40123/other"),
            &reg,
            true
        ));
        assert!(!is_registered(
            &u("http://[::1]:40123/callback"),
            &reg,
            true
        ));
        assert!(!is_registered(
            &u("http://127.0.0.1:40123/callback"),
            &reg,
            false
        ));
    }

    #[test]
    fn any_port_never_extends_to_a_non_loopback_host() {
        let reg = vec!["http://127.0.0.2/callback".to_owned()];
        assert!(!is_registered(
            &u("http://127.0.0.2:8085/callback"),
            &reg,
            true
        ));
        let reg = vec!["http://example.com/callback".to_owned()];
        assert!(!is_registered(
            &u("http://example.com:8085/callback"),
            &reg,
            true
        ));
        let reg = vec!["https://127.0.0.1/callback".to_owned()];
        assert!(!is_registered(
            &u("https://127.0.0.1:8085/callback"),
            &reg,
            true
        ));
    }
}
