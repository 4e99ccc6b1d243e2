//! The domain of lakests, free of HTTP and SQL: the clock, lakeFS token minting and
//! verification, claim handling, the [`Store`](store::Store) and
//! [`Authenticator`](authenticator::Authenticator) traits, and the STS login use case.

pub mod authenticator;
pub mod cache;
pub mod claims;
pub mod clock;
pub mod directory;
pub mod pkce;
pub mod reason;
pub mod redirect;
pub mod store;
pub mod sts;
pub mod token;
pub mod ui_session;
pub mod user;

#[cfg(test)]
mod proptests;

pub use authenticator::{Authenticator, AuthenticatorError, NO_SESSION_MODE, RequestContext};
pub use claims::Claims;
pub use clock::{Clock, ManualClock, SystemClock};
pub use reason::{Reason, Refusal};
pub use store::{Grant, LoginAudit, LoginOutcome, RemovedIdentity, Store, StoreError, UserRecord};
