//! The lakests server: builds every configured role (STS server, remote authenticator,
//! development IdP) from [`lakests_config::Config`], binds each to its own address, and serves
//! them until shutdown.

pub mod activation;
mod app;
mod rate_limit;
pub mod remote;
mod sts_routes;
pub mod telemetry;

pub use app::{Application, GRANTED_TTL_HEADER, Listeners};
