//! What `lakests login` prints on stdout: the only thing it prints there, so that
//! `eval "$(lakests login ...)"` works.

use serde::Serialize;

use crate::cache::CachedToken;
use crate::flow::CodeGrant;

/// The output formats of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `export LAKECTL_SERVER_ENDPOINT_URL=...` and `export LAKECTL_CREDENTIALS_SESSION_TOKEN=...`
    /// (read by the `lakefs` Python SDK and lakefs-spec; lakectl reads only the endpoint, and
    /// takes its token from its own token cache).
    #[default]
    Env,
    /// One JSON object.
    Json,
    /// The token alone.
    Token,
}

/// Quotes a value for POSIX shells: single quotes, with embedded ones closed and escaped.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[derive(Serialize)]
struct JsonToken<'a> {
    endpoint: &'a str,
    token: &'a str,
    token_expiration: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
}

/// The stdout text for a token.
pub fn format_token(t: &CachedToken, format: OutputFormat) -> String {
    match format {
        OutputFormat::Env => format!(
            "export LAKECTL_SERVER_ENDPOINT_URL={}\nexport LAKECTL_CREDENTIALS_SESSION_TOKEN={}\n",
            shell_quote(&t.endpoint),
            shell_quote(t.token.expose())
        ),
        OutputFormat::Json => {
            let j = JsonToken {
                endpoint: &t.endpoint,
                token: t.token.expose(),
                token_expiration: t.token_expiration,
                username: t.username.as_deref(),
            };
            // Serializing plain strings and integers cannot fail.
            format!("{}\n", serde_json::to_string(&j).unwrap_or_default())
        }
        OutputFormat::Token => format!("{}\n", t.token.expose()),
    }
}

/// A Python string literal (JSON string syntax is valid Python).
fn py(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "''".into())
}

#[derive(Serialize)]
struct JsonCode<'a> {
    endpoint: &'a str,
    code: &'a str,
    state: &'a str,
    redirect_uri: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<i64>,
}

/// The stdout text of `--print-code`: the code, state and redirect URI, and the Python line
/// that redeems them with the `lakefs` SDK. `json` gives one object; `env` and `token` give
/// the text form.
pub fn format_code(g: &CodeGrant, format: OutputFormat) -> String {
    if format == OutputFormat::Json {
        let j = JsonCode {
            endpoint: &g.endpoint,
            code: g.code.expose(),
            state: g.state.expose(),
            redirect_uri: &g.redirect_uri,
            ttl_seconds: g.ttl_seconds,
        };
        return format!("{}\n", serde_json::to_string(&j).unwrap_or_default());
    }
    let ttl = g
        .ttl_seconds
        .map(|t| format!(", ttl_seconds={t}"))
        .unwrap_or_default();
    format!(
        "code: {code}\nstate: {state}\nredirect_uri: {uri}\n\n\
         import lakefs.client; client = lakefs.client.from_web_identity(code={pc}, state={ps}, redirect_uri={pu}{ttl}, host={ph})\n",
        code = g.code.expose(),
        state = g.state.expose(),
        uri = g.redirect_uri,
        pc = py(g.code.expose()),
        ps = py(g.state.expose()),
        pu = py(&g.redirect_uri),
        ph = py(&g.endpoint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, AuthCode, OAuthState};

    fn token() -> CachedToken {
        CachedToken {
            endpoint: "http://lakefs.example.com".into(),
            token: AccessToken::new("a.b'c"),
            token_expiration: 1_900_000_000,
            username: Some("alice".into()),
            obtained_at: 1_899_996_400,
        }
    }

    #[test]
    fn env_output_is_two_shell_quoted_exports() {
        assert_eq!(
            format_token(&token(), OutputFormat::Env),
            "export LAKECTL_SERVER_ENDPOINT_URL='http://lakefs.example.com'\n\
             export LAKECTL_CREDENTIALS_SESSION_TOKEN='a.b'\\''c'\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_shell_reads_back_exactly_the_quoted_value() {
        for value in ["plain", "it's", "$(rm -rf /)", "a\nb", "'", "`x` \"y\" \\z"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }

    #[test]
    fn json_and_token_outputs() {
        let j: serde_json::Value =
            serde_json::from_str(&format_token(&token(), OutputFormat::Json)).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"endpoint": "http://lakefs.example.com", "token": "a.b'c",
                "token_expiration": 1_900_000_000, "username": "alice"})
        );
        assert_eq!(format_token(&token(), OutputFormat::Token), "a.b'c\n");
    }

    #[test]
    fn print_code_gives_the_values_and_a_python_line() {
        let g = CodeGrant {
            endpoint: "http://lakefs.example.com".into(),
            code: AuthCode::new("the\"code"),
            state: OAuthState::new("st"),
            redirect_uri: "http://127.0.0.1:8085/callback".into(),
            ttl_seconds: Some(900),
        };
        let text = format_code(&g, OutputFormat::Env);
        assert!(
            text.starts_with(
                "code: the\"code\nstate: st\nredirect_uri: http://127.0.0.1:8085/callback\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"from_web_identity(code="the\"code", state="st", redirect_uri="http://127.0.0.1:8085/callback", ttl_seconds=900, host="http://lakefs.example.com")"#
        ), "{text}");
        let j: serde_json::Value =
            serde_json::from_str(&format_code(&g, OutputFormat::Json)).unwrap();
        assert_eq!(j["code"], "the\"code");
        assert_eq!(j["ttl_seconds"], 900);
    }
}
