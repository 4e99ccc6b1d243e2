//! PKCE (RFC 7636) and the random values around a login, in one place for every role: the
//! authenticator and the web-UI login (client side), `lakests login` (client side) and the
//! development IdP (server side).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The system's random generator failed (aws-lc's does not in practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomError;

/// 32 random bytes, base64url without padding: 43 characters, a valid PKCE verifier, `state`
/// or `nonce`.
pub fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// A verifier as RFC 7636 §4.1 allows it: 43 to 128 unreserved characters.
pub fn is_valid_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge's shape: 43 base64url characters.
pub fn is_valid_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_valid_challenge(&s256_challenge("anything")));
    }

    #[test]
    fn random_tokens_are_valid_verifiers_and_differ() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert!(is_valid_verifier(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn verifiers_must_have_the_rfc_length_and_alphabet() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!is_valid_verifier(&format!("{} ", "a".repeat(43))));
        assert!(is_valid_verifier(&format!("{}.~", "a".repeat(43))));
    }

    #[test]
    fn challenges_are_43_base64url_characters() {
        assert!(is_valid_challenge(&"A".repeat(43)));
        assert!(!is_valid_challenge(&"A".repeat(42)));
        assert!(!is_valid_challenge(&format!("{}=", "A".repeat(42))));
    }
}
