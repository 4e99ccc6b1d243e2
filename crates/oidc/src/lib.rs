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
//! provider), `outbound` (the HTTP client), `service` (use cases) and `router` (HTTP).

mod discovery;
mod id_token;
mod jwks;
mod metrics;
mod outbound;
mod pkce;
mod provider;
mod router;
mod service;
mod token;

use std::path::PathBuf;

pub use metrics::Outcome;
pub use router::router;
pub use service::{AuthenticatorService, SESSION_GRANT_KIND};

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
    /// `authenticator.ca_file` cannot be read.
    #[error("cannot read authenticator.ca_file {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `authenticator.ca_file` holds no PEM certificate.
    #[error("authenticator.ca_file {} holds no usable PEM certificate", path.display())]
    CaBundle {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client could not be built (e.g. the TLS roots cannot be loaded).
    #[error("cannot build the HTTP client for identity providers: {0}")]
    Client(#[source] reqwest::Error),
}
