//! PKCE (RFC 7636) with S256, and the random values of a login.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// 32 random bytes, base64url without padding (43 characters): a PKCE verifier, a nonce or
/// a state.
pub(crate) fn random_token() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// `base64url(SHA-256(verifier))`, the S256 code challenge.
pub(crate) fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Whether `s` is a valid code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1).
pub(crate) fn is_valid_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The key a session-mode login is stored under: a digest of its state, so the store never
/// holds the state itself.
pub(crate) fn session_key(state: &str) -> String {
    s256_challenge(state)
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
    }
}
