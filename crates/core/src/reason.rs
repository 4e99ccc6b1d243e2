//! Why a login was refused, as a stable code: the STS server and the authenticator put it in
//! the `reason` field of their error body (a lakests extension of lakeFS's `{"message"}`), and
//! `lakests login` turns it into a message that says what to do next.

/// A stable reason code. The strings never change once published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The request is malformed (400).
    InvalidRequest,
    /// The identity provider refused the code: already used (a replay), expired, or issued for
    /// another redirect URI or PKCE verifier.
    CodeRejected,
    /// A session-mode login whose session is unknown, already used, expired, or was started
    /// with another redirect URI.
    SessionUnknown,
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce, ...).
    IdTokenInvalid,
    /// A claim rule refused the identity (`required_claims` of the provider, or
    /// `validate_id_token_claims`).
    ClaimRule,
    /// The ID token has no `sub`.
    SubjectMissing,
    /// No lakeFS user has this external id (and automatic creation is off).
    NoUserMapped,
    /// Automatic user creation was on but could not create one.
    CannotProvision,
    /// The identity's user was removed, and automatic creation does not bring it back until
    /// an administrator readmits the identity (`lakests users readmit`).
    IdentityRemoved,
    /// The authenticator refused for a reason it did not name (a remote authenticator that is
    /// not lakests).
    Refused,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Reason; 10] = [
        Reason::InvalidRequest,
        Reason::CodeRejected,
        Reason::SessionUnknown,
        Reason::IdTokenInvalid,
        Reason::ClaimRule,
        Reason::SubjectMissing,
        Reason::NoUserMapped,
        Reason::CannotProvision,
        Reason::IdentityRemoved,
        Reason::Refused,
    ];

    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidRequest => "invalid_request",
            Reason::CodeRejected => "code_rejected",
            Reason::SessionUnknown => "session_unknown",
            Reason::IdTokenInvalid => "id_token_invalid",
            Reason::ClaimRule => "claim_rule",
            Reason::SubjectMissing => "subject_missing",
            Reason::NoUserMapped => "no_user_mapped",
            Reason::CannotProvision => "cannot_provision",
            Reason::IdentityRemoved => "identity_removed",
            Reason::Refused => "refused",
        }
    }

    /// The reason of a wire code; `None` for codes this version does not know.
    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused login: its reason and a client-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable reason.
    pub reason: Reason,
    /// The message for the client.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert!(seen.insert(r.as_str()));
        }
        assert_eq!(Reason::parse("nope"), None);
    }
}
