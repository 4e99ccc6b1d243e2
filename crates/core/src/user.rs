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

#[cfg(test)]
mod tests {
    use super::*;

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
