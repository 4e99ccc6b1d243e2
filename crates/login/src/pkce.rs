//! PKCE S256 (RFC 7636): a verifier of 32 random bytes and its SHA-256 challenge, both
//! base64url without padding, as lakeFS's documented client does (WIRE.md §6).

use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::LoginError;
use crate::secret::PkceVerifier;

/// A fresh verifier from the system's secure random generator.
pub fn new_verifier() -> Result<PkceVerifier, LoginError> {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).map_err(|_| LoginError::Random)?;
    Ok(PkceVerifier::new(URL_SAFE_NO_PAD.encode(bytes)))
}

/// The S256 challenge of a verifier.
pub fn challenge(verifier: &PkceVerifier) -> String {
    let d = digest::digest(&digest::SHA256, verifier.expose().as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
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
