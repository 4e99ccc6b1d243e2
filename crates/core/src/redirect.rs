//! Redirect-URI matching, one rule for every role: exactly, or, for a loopback URI when the
//! client may use any port, in everything but the port (RFC 8252 §7.3, for native apps such as
//! `lakests login`, which listens on whichever port is free).

/// For a loopback redirect URI (`http` to `127.0.0.1`, `[::1]` or `localhost`, no user
/// information, no fragment), everything but the port: the part that must match when any port
/// is allowed. `None` for any other URI.
pub fn loopback_key(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    if u.scheme() != "http"
        || u.fragment().is_some()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return None;
    }
    let host = u.host_str()?;
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return None;
    }
    Some(format!(
        "http://{host}{}?{}",
        u.path(),
        u.query().unwrap_or("")
    ))
}

/// Whether `requested` matches `registered`: the same string, or, with `loopback_any_port`,
/// two loopback URIs that differ at most in their port.
pub fn redirect_matches(registered: &str, requested: &str, loopback_any_port: bool) -> bool {
    registered == requested
        || (loopback_any_port
            && loopback_key(registered).is_some_and(|k| loopback_key(requested) == Some(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_keys_keep_everything_but_the_port() {
        assert_eq!(
            loopback_key("http://127.0.0.1:8085/cb?x=1").as_deref(),
            Some("http://127.0.0.1/cb?x=1")
        );
        assert_eq!(
            loopback_key("http://[::1]:1/cb").as_deref(),
            Some("http://[::1]/cb?")
        );
        assert_eq!(
            loopback_key("http://LOCALHOST:9/cb").as_deref(),
            Some("http://localhost/cb?")
        );
        for not in [
            "https://127.0.0.1:8085/cb",
            "http://127.0.0.2:8085/cb",
            "http://example.com:8085/cb",
            "http://user@127.0.0.1:8085/cb",
            "http://127.0.0.1:8085/cb#f",
            "not a url",
        ] {
            assert_eq!(loopback_key(not), None, "{not}");
        }
    }

    #[test]
    fn any_port_applies_only_to_loopback_and_only_when_allowed() {
        let reg = "http://127.0.0.1:8085/callback";
        assert!(redirect_matches(reg, reg, false));
        assert!(!redirect_matches(
            reg,
            "http://127.0.0.1:9999/callback",
            false
        ));
        assert!(redirect_matches(
            reg,
            "http://127.0.0.1:9999/callback",
            true
        ));
        assert!(!redirect_matches(reg, "http://127.0.0.1:9999/other", true));
        assert!(!redirect_matches(
            reg,
            "http://localhost:9999/callback",
            true
        ));
        let web = "https://app.example/cb";
        assert!(!redirect_matches(web, "https://app.example:444/cb", true));
    }
}
