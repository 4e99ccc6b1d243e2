//! PKCE S256 (RFC 7636): a verifier of 32 random bytes and its SHA-256 challenge, both
//! base64url without padding, as lakeFS's documented client does (WIRE.md §6).

use crate::LoginError;
use crate::secret::PkceVerifier;

/// A fresh verifier from the system's secure random generator.
pub fn new_verifier() -> Result<PkceVerifier, LoginError> {
    lakests_core::pkce::random_token()
        .map(PkceVerifier::new)
        .map_err(|_| LoginError::Random)
}

/// The S256 challenge of a verifier.
pub fn challenge(verifier: &PkceVerifier) -> String {
    lakests_core::pkce::s256_challenge(verifier.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_matches_the_example_of_rfc_7636() {
        // RFC 7636 Appendix B.
        let v = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifiers_are_43_base64url_characters_and_never_repeat() {
        let a = new_verifier().unwrap();
        let b = new_verifier().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert_eq!(challenge(&a).len(), 43);
    }
}
