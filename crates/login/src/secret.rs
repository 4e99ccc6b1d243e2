//! Credentials of a login as newtypes whose `Debug` never shows the value.

use serde::{Deserialize, Serialize};

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value itself, for the one place that must send or print it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// A lakeFS session token (a JWT): `Authorization: Bearer <token>`.
    AccessToken
);
secret_string!(
    /// An authorization code from the identity provider, a credential until redeemed.
    AuthCode
);
secret_string!(
    /// The OAuth `state` of one login. In `state` PKCE mode it is the PKCE verifier itself.
    OAuthState
);
secret_string!(
    /// A PKCE code verifier (RFC 7636): 43 base64url characters.
    PkceVerifier
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            AccessToken::new("tok-123"),
            AuthCode::new("code-123"),
            OAuthState::new("state-123"),
            PkceVerifier::new("verifier-123")
        );
        assert!(!shown.contains("123"), "{shown}");
        assert!(shown.contains("AccessToken([redacted])"), "{shown}");
    }

    #[test]
    fn tokens_serialize_as_plain_strings_for_the_cache_file() {
        let json = serde_json::to_string(&AccessToken::new("abc")).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), "abc");
    }
}
