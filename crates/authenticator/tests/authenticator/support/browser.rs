//! A scripted browser: follows redirects from an authorization URL, keeping cookies, until
//! the provider redirects to the client's redirect URI, and returns its `code` and `state`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use url::Url;

/// What the provider sent to the redirect URI.
#[derive(Debug)]
pub struct Callback {
    pub code: String,
    pub state: String,
    /// RFC 9207 `iss`, when the provider sends it.
    pub iss: Option<String>,
}

/// Follows the login from `authorization_url` to a URL starting with `redirect_prefix`.
pub async fn complete_login(authorization_url: &str, redirect_prefix: &str) -> Callback {
    complete_login_trusting(authorization_url, redirect_prefix, None).await
}

/// Like [`complete_login`], trusting the PEM CA at `ca` too.
pub async fn complete_login_trusting(
    authorization_url: &str,
    redirect_prefix: &str,
    ca: Option<&Path>,
) -> Callback {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
    }
    let client = builder.build().unwrap();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = Url::parse(authorization_url).unwrap();
    for _ in 0..12 {
        let cookie_header = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = client.get(url.clone());
        if !cookie_header.is_empty() {
            req = req.header("cookie", cookie_header);
        }
        let resp = req.send().await.unwrap();
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let pair = sc.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || sc.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") {
                    cookies.remove(k.trim());
                } else {
                    cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        let status = resp.status();
        if !status.is_redirection() {
            let body = resp.text().await.unwrap_or_default();
            panic!("the provider answered {status} at {url} instead of redirecting: {body}");
        }
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let next = url.join(&location).unwrap();
        if next.as_str().starts_with(redirect_prefix) {
            let q: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
            if let Some(e) = q.get("error") {
                panic!(
                    "the provider answered error {e}: {:?}",
                    q.get("error_description")
                );
            }
            return Callback {
                code: q.get("code").cloned().expect("a code"),
                state: q.get("state").cloned().expect("a state"),
                iss: q.get("iss").cloned(),
            };
        }
        url = next;
    }
    panic!("the login did not reach {redirect_prefix} within 12 redirects");
}
