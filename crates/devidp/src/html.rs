//! The sign-in and error pages: small, self-contained (no external assets), every value
//! escaped, and plain about being for development only.

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::Response;

pub(crate) use lakests_http::html::escape;

const STYLE: &str = "\
:root{color-scheme:light dark;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.45}\
body{margin:0;background:Canvas;color:CanvasText}\
main{max-width:34rem;margin:2rem auto;padding:0 1rem}\
.dev{border:2px solid #b45309;background:#fef3c7;color:#451a03;padding:.75rem 1rem;border-radius:.5rem}\
.err{border:2px solid #b91c1c;background:#fee2e2;color:#450a0a;padding:.75rem 1rem;border-radius:.5rem}\
h1{font-size:1.4rem;margin:1.25rem 0 .5rem}\
ul{list-style:none;padding:0;margin:1rem 0}\
li{border:1px solid #9ca3af;border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0}\
.who{display:block;font-weight:600}.meta{display:block;font-size:.9rem;opacity:.8}\
label{display:block;margin:.5rem 0 .25rem;font-size:.95rem}\
input[type=password]{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}\
button{font:inherit;margin-top:.6rem;padding:.45rem 1rem;border-radius:.4rem;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:transparent;color:inherit;border-color:#9ca3af}\
button:focus-visible,input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
code{word-break:break-all}footer{margin-top:2rem;font-size:.85rem;opacity:.75}";

const DEV_NOTICE: &str = "<p class=\"dev\" role=\"note\"><strong>Development only.</strong> \
This is the lakests development OpenID Provider: test users from a configuration file, no real \
accounts, no real security. Never use it in production.</p>";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{} · lakests development IdP</title><style>{STYLE}</style></head>\
<body><main>{DEV_NOTICE}{body}</main></body></html>\n",
        escape(title)
    )
}

/// An HTML response with headers that keep the page out of frames and caches.
pub(crate) fn respond(status: StatusCode, html: String) -> Response {
    lakests_http::html::page(status, html, lakests_http::html::CSP_WITH_FORMS)
}

/// A page for a sign-in request that cannot be sent back to the client.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in request refused</h1><p class=\"err\" role=\"alert\">{}</p>\
<p>The request cannot be sent back to the application, so it stops here.</p>",
        escape(message)
    );
    respond(status, page("Sign-in request refused", &body))
}

/// One user as the sign-in page lists it.
pub(crate) struct PageUser<'a> {
    pub(crate) sub: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) email: Option<&'a str>,
    pub(crate) groups: &'a [String],
    pub(crate) has_password: bool,
}

/// What the sign-in page shows.
pub(crate) struct SignInPage<'a> {
    /// Where the forms post to.
    pub(crate) action: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) issuer: &'a str,
    /// The authorize parameters to carry through the form, as (name, value).
    pub(crate) hidden: &'a [(&'static str, &'a str)],
    pub(crate) users: Vec<PageUser<'a>>,
    /// A user to focus first (from `login_hint`).
    pub(crate) hint: Option<&'a str>,
    /// A problem with the last attempt.
    pub(crate) error: Option<&'a str>,
    /// Fault switches this login will apply.
    pub(crate) faults: &'a [String],
}

fn hidden_fields(hidden: &[(&'static str, &str)]) -> String {
    let mut s = String::new();
    for (name, value) in hidden {
        let _ = write!(
            s,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    s
}

/// The sign-in page: one form per user (with a password field where one is configured) and a
/// cancel button.
pub(crate) fn sign_in_page(p: &SignInPage<'_>) -> String {
    let hidden = hidden_fields(p.hidden);
    let mut body = format!(
        "<h1>Sign in to <code>{}</code></h1><p>Pick a user. You will be sent back to <code>{}</code>.</p>",
        escape(p.client_id),
        escape(p.redirect_uri)
    );
    if let Some(err) = p.error {
        let _ = write!(
            body,
            "<p class=\"err\" role=\"alert\" id=\"error\">{}</p>",
            escape(err)
        );
    }
    if !p.faults.is_empty() {
        let _ = write!(
            body,
            "<p class=\"err\" role=\"note\">Fault switches on for this login: <code>{}</code>. \
The ID token will be wrong on purpose.</p>",
            escape(&p.faults.join(", "))
        );
    }
    if p.users.is_empty() {
        body.push_str("<p>No users are configured. Add some under <code>idp.users</code>.</p>");
    } else {
        body.push_str("<ul aria-label=\"Users\">");
        for (i, u) in p.users.iter().enumerate() {
            let display = u.name.unwrap_or(u.sub);
            let focus = if p.hint == Some(u.sub) || (p.hint.is_none() && i == 0) {
                " autofocus"
            } else {
                ""
            };
            let _ = write!(
                body,
                "<li><form method=\"post\" action=\"{}\">{hidden}\
<input type=\"hidden\" name=\"sub\" value=\"{}\">\
<span class=\"who\">{}</span><span class=\"meta\">sub: <code>{}</code>",
                escape(p.action),
                escape(u.sub),
                escape(display),
                escape(u.sub)
            );
            if let Some(email) = u.email {
                let _ = write!(body, " · {}", escape(email));
            }
            if !u.groups.is_empty() {
                let _ = write!(body, " · groups: {}", escape(&u.groups.join(", ")));
            }
            body.push_str("</span>");
            let mut button_focus = focus;
            if u.has_password {
                let pw_focus = focus;
                button_focus = "";
                let _ = write!(
                    body,
                    "<label for=\"pw-{i}\">Password for {}</label>\
<input id=\"pw-{i}\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{pw_focus}>",
                    escape(display)
                );
            }
            let _ = write!(
                body,
                "<button type=\"submit\" name=\"action\" value=\"signin\"{button_focus}>Sign in as {}</button></form></li>",
                escape(display)
            );
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{}\">{hidden}\
<button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\">Cancel and return to the application</button></form>\
<footer>Issuer <code>{}</code></footer>",
        escape(p.action),
        escape(p.issuer)
    );
    page("Sign in", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_on_the_page_is_escaped() {
        let evil = "<script>alert('x')</script>\"&";
        let groups = vec![evil.to_owned()];
        let html = sign_in_page(&SignInPage {
            action: "http://127.0.0.1/authorize",
            client_id: evil,
            redirect_uri: evil,
            issuer: evil,
            hidden: &[("state", evil)],
            users: vec![PageUser {
                sub: evil,
                name: Some(evil),
                email: Some(evil),
                groups: &groups,
                has_password: true,
            }],
            hint: None,
            error: Some(evil),
            faults: &[evil.to_owned()],
        });
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("alert('x')"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
        assert!(html.contains("Development only."));
        assert!(
            !html.contains("src=") && !html.contains("<link"),
            "no external assets"
        );
    }
}
