//! OpenID Connect Discovery 1.0: the provider's metadata, checked before use.

use serde::Deserialize;
use url::Url;

use crate::jwks::Alg;

/// The parts of a discovery document lakests uses, validated.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    /// Where session-mode logins send the browser.
    pub authorization_endpoint: Option<Url>,
    /// Where codes are redeemed.
    pub token_endpoint: Url,
    /// The provider's signing keys.
    pub jwks_uri: Url,
    /// Where extra claims can be read with the access token.
    pub userinfo_endpoint: Option<Url>,
    /// ID-token algorithms both the provider advertises and lakests accepts.
    pub algs: Vec<Alg>,
    /// The provider's `token_endpoint_auth_methods_supported`, when it lists them.
    pub token_auth_methods: Option<Vec<String>>,
    /// RP-Initiated Logout 1.0: where the browser ends its session at the provider.
    pub end_session_endpoint: Option<Url>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    userinfo_endpoint: Option<String>,
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    end_session_endpoint: Option<String>,
}

/// `{issuer}/.well-known/openid-configuration`, the trailing `/` of the issuer removed first
/// (Discovery §4).
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, url::ParseError> {
    Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
}

/// Parses and checks a discovery document for `issuer`: its `issuer` must equal ours
/// exactly (Discovery §4.3), the endpoints must be absolute URLs that do not downgrade an
/// `https` issuer to `http`, and at least one advertised signing algorithm must be one
/// lakests accepts.
pub(crate) fn parse(issuer: &str, body: &[u8]) -> Result<Metadata, String> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|_| "the discovery document is not the expected JSON".to_owned())?;
    if doc.issuer != issuer {
        return Err("the discovery document's issuer is not the configured issuer (they must be equal, character for character)".into());
    }
    let https = issuer.starts_with("https://");
    let endpoint = |name: &str, v: Option<String>| -> Result<Option<Url>, String> {
        let Some(v) = v else { return Ok(None) };
        let u =
            Url::parse(&v).map_err(|_| format!("the discovery document's {name} is not a URL"))?;
        match u.scheme() {
            "https" => Ok(Some(u)),
            "http" if !https => Ok(Some(u)),
            _ => Err(format!(
                "the discovery document's {name} is not https (the issuer is)"
            )),
        }
    };
    let token_endpoint = endpoint("token_endpoint", doc.token_endpoint)?
        .ok_or("the discovery document has no token_endpoint")?;
    let jwks_uri =
        endpoint("jwks_uri", doc.jwks_uri)?.ok_or("the discovery document has no jwks_uri")?;
    let authorization_endpoint = endpoint("authorization_endpoint", doc.authorization_endpoint)?;
    let userinfo_endpoint = endpoint("userinfo_endpoint", doc.userinfo_endpoint)?;
    let end_session_endpoint = endpoint("end_session_endpoint", doc.end_session_endpoint)?;
    let advertised = doc
        .id_token_signing_alg_values_supported
        .ok_or("the discovery document has no id_token_signing_alg_values_supported")?;
    let mut algs = Vec::new();
    for a in advertised.iter().filter_map(|a| Alg::from_name(a)) {
        if !algs.contains(&a) {
            algs.push(a);
        }
    }
    if algs.is_empty() {
        return Err("the provider advertises no ID-token signing algorithm lakests accepts (RS256/384/512, PS256/384/512, ES256/384, EdDSA)".into());
    }
    Ok(Metadata {
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        userinfo_endpoint,
        algs,
        token_auth_methods: doc.token_endpoint_auth_methods_supported,
        end_session_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(issuer: &str, extra: serde_json::Value) -> Vec<u8> {
        let mut d = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["HS256", "none", "RS256", "ES256"],
        });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d.to_string().into_bytes()
    }

    #[test]
    fn the_discovery_url_drops_the_trailing_slash() {
        assert_eq!(
            discovery_url("https://idp.example/realms/x/")
                .unwrap()
                .as_str(),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_accepted_algorithms_are_kept() {
        let m = parse(
            "https://idp.example",
            &doc("https://idp.example", json!({})),
        )
        .unwrap();
        assert_eq!(m.algs, vec![Alg::Rs256, Alg::Es256]);
        let only_bad = json!({"id_token_signing_alg_values_supported": ["HS256", "none"]});
        assert!(parse("https://idp.example", &doc("https://idp.example", only_bad)).is_err());
    }

    #[test]
    fn the_issuer_must_match_character_for_character() {
        assert!(
            parse(
                "https://idp.example",
                &doc("https://idp.example/", json!({}))
            )
            .is_err()
        );
        assert!(
            parse(
                "https://idp.example/",
                &doc("https://idp.example", json!({}))
            )
            .is_err()
        );
    }

    #[test]
    fn an_https_issuer_cannot_point_to_http_endpoints() {
        let d = doc(
            "https://idp.example",
            json!({"token_endpoint": "http://idp.example/token"}),
        );
        assert!(parse("https://idp.example", &d).is_err());
        let d = doc("http://127.0.0.1:9", json!({}));
        assert!(parse("http://127.0.0.1:9", &d).is_ok());
    }

    #[test]
    fn required_fields_must_be_present() {
        for field in [
            "token_endpoint",
            "jwks_uri",
            "id_token_signing_alg_values_supported",
        ] {
            let mut d: serde_json::Value =
                serde_json::from_slice(&doc("https://idp.example", json!({}))).unwrap();
            d.as_object_mut().unwrap().remove(field);
            assert!(
                parse("https://idp.example", d.to_string().as_bytes()).is_err(),
                "{field}"
            );
        }
        assert!(parse("https://idp.example", b"<html>").is_err());
    }
}
