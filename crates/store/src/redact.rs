//! Keeps the password of a PostgreSQL URL out of error messages. sqlx builds some messages
//! from its connect options; this makes sure none of them carries the password, whatever
//! sqlx does in a later version.

use lakests_core::store::StoreError;
use url::Url;

use crate::common::{backend, backend_msg};

const REDACTED: &str = "[redacted]";

/// The secrets of one connection URL: the password in the user-info part and in a
/// `password=` query parameter, both as written and percent-decoded.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor([redacted])")
    }
}

impl Redactor {
    /// The secrets of `url`.
    pub(crate) fn for_url(url: &Url) -> Self {
        let mut secrets = Vec::new();
        if let Some(password) = url.password() {
            secrets.push(password.to_owned());
            secrets.push(percent_decode(password));
        }
        // As sqlx reads it (decoded, `+` as space) and as written.
        for (key, value) in url.query_pairs() {
            if key == "password" {
                secrets.push(value.into_owned());
            }
        }
        for pair in url.query().unwrap_or_default().split('&') {
            if let Some(("password", value)) = pair.split_once('=') {
                secrets.push(value.to_owned());
                secrets.push(percent_decode(value));
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), REDACTED)
        })
    }

    /// A [`StoreError::Backend`] for `error`: the error itself when no secret appears in its
    /// message chain, otherwise its redacted text.
    pub(crate) fn backend(&self, error: sqlx::Error) -> StoreError {
        let text = chain(&error);
        if self.secrets.iter().any(|s| text.contains(s.as_str())) {
            backend_msg(self.redact(&text))
        } else {
            backend(error)
        }
    }
}

/// The error's message followed by each distinct message of its sources.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = e.source();
    }
    text
}

/// Percent-decodes `s` (invalid escapes are kept as written; invalid UTF-8 is replaced).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(url: &str) -> Redactor {
        Redactor::for_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_password_of_the_user_info_is_redacted_as_written_and_decoded() {
        let r = redactor("postgres://alice:p%40ss%2Fw0rd@db.example:5432/lakests");
        let text = r.redact("failed for postgres://alice:p%40ss%2Fw0rd@db.example with p@ss/w0rd");
        assert!(!text.contains("p%40ss%2Fw0rd"), "{text}");
        assert!(!text.contains("p@ss/w0rd"), "{text}");
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn a_password_query_parameter_is_redacted() {
        let r = redactor("postgres://alice@db/lakests?sslmode=disable&password=s3cr%3Dt+x");
        for leaked in ["s3cr%3Dt+x", "s3cr=t x", "s3cr=t+x"] {
            let text = r.redact(&format!("boom {leaked} boom"));
            assert_eq!(text, "boom [redacted] boom", "{leaked}");
        }
    }

    #[test]
    fn a_url_without_password_redacts_nothing() {
        let r = redactor("postgres://alice@db/lakests");
        assert_eq!(r.redact("alice at db"), "alice at db");
    }

    #[test]
    fn a_backend_error_carrying_the_password_is_replaced_by_its_redacted_text() {
        let r = redactor("postgres://u:hunter2@127.0.0.1/x");
        let error = sqlx::Error::Configuration("bad option hunter2".into());
        let text = r.backend(error).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("bad option [redacted]"), "{text}");
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%41%zz%4"), "aA%zz%4");
    }
}
