//! The authorization service role: lakeFS's `auth.api.endpoint` (AUTHZ.md). lakeFS OSS pointed
//! at it gets lakests's users, groups, policies, credentials and external principals, evaluates
//! the policies itself, and its own `/api/v1/sts/login` works (it looks users up by
//! `external_id`).
//!
//! `caller` authenticates lakeFS, `policy` validates statements on write, `secrets` seals secret
//! access keys at rest, `keys` makes access keys shaped like lakeFS's, `service` holds the use
//! cases over the [`Directory`](lakests_core::directory::Directory), `router` the HTTP API.

pub mod caller;
pub mod keys;
pub mod policy;
pub mod router;
pub mod secrets;
pub mod service;

use std::sync::Arc;

use lakests_core::{Clock, Store};

pub use caller::CallerAuth;
pub use router::{AuthzState, router, routes};
pub use secrets::{SealError, SecretBox};
pub use service::{AuthzError, AuthzService};

/// Builds the role's state: `secret_key` is lakeFS's `auth.encrypt.secret_key` (JWT key and
/// the root of the key that seals secrets), `static_token` lakeFS's `auth.api.token`.
pub fn state(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    secret_key: &[u8],
    static_token: Option<&str>,
) -> Result<Arc<AuthzState>, SealError> {
    Ok(Arc::new(AuthzState {
        service: AuthzService::new(store, clock.clone(), SecretBox::new(secret_key)?),
        caller: CallerAuth::new(secret_key, static_token),
        clock,
    }))
}
