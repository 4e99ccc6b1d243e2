//! The OpenID Connect relying party behind lakeFS's authentication API: the lakests
//! authenticator role.
//!
//! `POST /api/v1/sts/login` takes `{code, state, redirect_uri}`, selects the provider by the
//! redirect URI, redeems the code at the provider's token endpoint (with the provider's client
//! authentication and PKCE), validates the ID token to the letter of OpenID Connect Core 1.0
//! §3.1.3.7 and RFC 8725, and answers the claims as strings. See `docs/authenticator.md`.
//!
//! Modules follow the protocol: `discovery` (metadata), `jwks` (keys), `id_token`
//! (validation), `token` (code redemption, userinfo), `pkce`, `provider` (caching per
//! provider), `service` (use cases) and `router` (HTTP).

mod discovery;
mod id_token;
mod jwks;
mod metrics;
mod pkce;
#[cfg(test)]
mod proptests;
mod provider;
mod router;
mod service;
mod token;
mod ui_sso;

pub use metrics::Outcome;
pub use router::{router, router_with_discovery, routes};
pub use service::{AuthenticatorService, SESSION_GRANT_KIND};
pub use ui_sso::{
    BINDING_COOKIE, CALLBACK_PATH, LOGIN_PATH, LOGOUT_PATH, MAX_NEXT_LEN, MAX_QUERY_BYTES,
    NextRefused, PROVIDER_COOKIE, UI_GRANT_KIND, UiSso, check_next, ui_routes,
};

/// Why the authenticator could not be built. Only local problems: nothing is fetched at
/// construction.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A provider's configuration cannot be used.
    #[error("authenticator provider {provider:?}: {message}")]
    Config {
        /// The provider's name.
        provider: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client for identity providers cannot be built: `authenticator.ca_file` is
    /// unreadable or holds no certificate, or the TLS roots cannot be loaded.
    #[error("authenticator.ca_file or the HTTP client for identity providers: {0}")]
    Outbound(#[from] lakests_http::outbound::OutboundBuildError),
}

/// For the benchmark suite only (`crates/bench`): the ID-token validation of a login with the
/// provider's keys already cached, outside the HTTP and cache machinery. Not a public API.
#[doc(hidden)]
pub mod bench_support {
    use crate::id_token::{self, Expectations};
    use crate::jwks::{Alg, KeySet};

    /// A provider's parsed JWKS and the expectations of one client.
    pub struct CachedValidator {
        keys: KeySet,
        advertised: Vec<Alg>,
        issuer: String,
        client_id: String,
    }

    impl CachedValidator {
        /// Parses `jwks` (a JWKS document) once, as the cache does.
        pub fn new(
            jwks: &[u8],
            algs: &[&str],
            issuer: &str,
            client_id: &str,
        ) -> Result<Self, String> {
            Ok(Self {
                keys: KeySet::parse(jwks)?,
                advertised: algs.iter().filter_map(|a| Alg::from_name(a)).collect(),
                issuer: issuer.to_owned(),
                client_id: client_id.to_owned(),
            })
        }

        /// Parses, verifies and validates one ID token at `now`: what a login does.
        pub fn validate(&self, token: &str, now: i64) -> bool {
            let Ok(parsed) = id_token::parse(token) else {
                return false;
            };
            parsed
                .verify_signature(&self.keys, &self.advertised)
                .is_ok()
                && id_token::validate_claims(
                    &parsed.claims,
                    &Expectations {
                        issuer: &self.issuer,
                        client_id: &self.client_id,
                        now,
                        skew: 60,
                        nonce: None,
                    },
                )
                .is_ok()
        }
    }
}
