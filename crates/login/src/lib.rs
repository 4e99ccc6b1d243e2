//! `lakests login` as a library: one command instead of lakeFS's hand-written JavaScript
//! sample (WIRE.md §6).
//!
//! The flow: read the server's login discovery document (or take the provider from flags),
//! bind a loopback callback server, build the authorization request (PKCE S256; in `state`
//! mode the `state` is the verifier, lakeFS's documented and compatible flow; in `session`
//! mode the server starts the login and keeps the verifier, which is safer), open the browser
//! (or print the URL), accept the one valid response, redeem the code at
//! `POST /api/v1/sts/login`, and cache the token per endpoint. Everything is bounded by one
//! overall timeout.

pub mod browser;
pub mod cache;
pub mod callback;
pub mod client;
pub mod endpoint;
mod error;
pub mod flow;
pub mod lakectl;
pub mod output;
pub mod pkce;
#[cfg(test)]
mod proptests;
pub mod redirect;
pub mod secret;

pub use browser::{Browser, CommandBrowser, NoBrowser, SystemBrowser};
pub use cache::{CachedToken, FileTokenCache, TokenCache};
pub use callback::CallbackSettings;
pub use client::ServerClient;
pub use endpoint::Endpoint;
pub use error::LoginError;
pub use flow::{
    CodeGrant, DEFAULT_TIMEOUT, Login, LoginOptions, ObtainedToken, ProviderSource, Reporter,
    StderrReporter,
};
pub use lakectl::{LakectlSync, LakectlTokenFile};
pub use output::OutputFormat;
