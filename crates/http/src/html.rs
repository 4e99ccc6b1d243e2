//! The small HTML pages lakests serves to browsers (the development IdP's sign-in page, the web-UI
//! login pages of the authenticator, the `lakests login` callback page): one escaping function
//! and one set of headers, so that no page forgets one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Content-Security-Policy of a page without forms: nothing loads but its inline style, it
/// submits nothing, and nobody frames it.
pub const CSP_NO_FORMS: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; \
frame-ancestors 'none'; base-uri 'none'";

/// Content-Security-Policy of a page whose form must be able to end in a redirect to another
/// origin (the development IdP's sign-in form answers with a redirect to the client; browsers
/// apply `form-action` to that redirect too, so it is left unset).
pub const CSP_WITH_FORMS: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// Puts the headers every page and browser redirect of lakests carries: never cached, never
/// framed, never sniffed, no referrer (URLs around a login hold codes), and `csp`.
pub fn harden(resp: &mut Response, csp: &'static str) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
}

/// An HTML page with `status`, hardened with `csp`.
pub fn page(status: StatusCode, html: String, csp: &'static str) -> Response {
    let mut resp = (status, html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    harden(&mut resp, csp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn a_page_carries_every_header() {
        let resp = page(StatusCode::BAD_REQUEST, "<p>x</p>".into(), CSP_NO_FORMS);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP_NO_FORMS);
    }
}
