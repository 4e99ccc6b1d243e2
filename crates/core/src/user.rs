//! Usernames and external ids: what the directory accepts.

/// Longest username or external id accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Why a name was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Too long.
    #[error("{0} must be at most {MAX_NAME_LEN} bytes")]
    TooLong(&'static str),
    /// Has control characters or surrounding white space.
    #[error("{0} must not contain control characters or leading/trailing white space")]
    BadCharacters(&'static str),
}

/// Checks a username, external id or group name: 1 to [`MAX_NAME_LEN`] bytes, no control
/// characters, no leading or trailing white space.
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty(what));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(what));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(NameError::BadCharacters(what));
    }
    Ok(())
}

/// Whether `c` would steer a terminal or reorder text: control characters (C0, DEL, C1)
/// and the Unicode bidirectional overrides and isolates.
fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` safe to print on a terminal: every control character (and bidirectional override)
/// written as an escape (`\u{1b}`), the rest unchanged. For every human output of values that
/// came from outside (subjects, usernames, reasons).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unprintable) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_terminal_controls_and_keeps_the_rest() {
        assert_eq!(printable("alice@example.com"), "alice@example.com");
        assert_eq!(printable("Zoë 名前"), "Zoë 名前");
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("x\ny\r\u{7}"), "x\\u{a}y\\u{d}\\u{7}");
        assert_eq!(printable("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(printable("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert!(
            !printable("\u{1b}]0;title\u{7}")
                .chars()
                .any(char::is_control)
        );
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(check_name("username", "alice@example.com").is_ok());
        assert_eq!(
            check_name("username", ""),
            Err(NameError::Empty("username"))
        );
        assert_eq!(
            check_name("username", " a"),
            Err(NameError::BadCharacters("username"))
        );
        assert_eq!(
            check_name("username", "a\nb"),
            Err(NameError::BadCharacters("username"))
        );
        assert_eq!(
            check_name("username", &"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong("username"))
        );
    }
}
