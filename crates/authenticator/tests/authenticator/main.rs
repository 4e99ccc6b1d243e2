//! Black-box tests of the authenticator role over real HTTP on 127.0.0.1: against a hostile
//! provider of our own making (every ID-token rule, every transport failure), against
//! panva's `oidc-provider` from npm (a certified third-party OpenID Provider), and with bad
//! input. The store is the real SQLite one.

mod support;

mod id_token_rules;
mod input;
mod oidc_provider;
mod providers;
mod session;
mod transport;
