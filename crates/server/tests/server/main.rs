//! The server's integration tests, one binary: linking is most of a test build on two cores,
//! so the suites share one. Two stay apart on purpose: `connection_flood.rs` lowers its own
//! process's open-file limit, and `faults_load.rs` loads the machine for minutes and measures
//! under that load.

mod support;

mod authz_api;
mod faults;
mod hardening;
mod http_limits;
mod lakefs_sts_login;
mod logging;
mod request_bodies;
mod sts;
mod ui_sso;
