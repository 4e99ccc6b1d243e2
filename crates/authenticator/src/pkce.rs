//! PKCE (RFC 7636) with S256 and the random values of a login: lakests_core::pkce, plus the
//! key a session-mode grant is stored under.

pub(crate) use lakests_core::pkce::{is_valid_verifier, random_token, s256_challenge};

/// The store key of a session-mode grant: the S256 of its state, so the store never holds the
/// state itself.
pub(crate) fn session_key(state: &str) -> String {
    s256_challenge(state)
}
