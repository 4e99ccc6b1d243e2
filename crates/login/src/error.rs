//! Every way a login can fail, each with the one line a person reads. No variant ever holds a
//! token, code, state or verifier.

use std::path::PathBuf;
use std::time::Duration;

/// Why a login, `whoami` or `logout` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The endpoint given is not an http(s) URL.
    #[error("{endpoint:?} is not a usable lakeFS endpoint: {why}")]
    InvalidEndpoint {
        /// What was given (truncated).
        endpoint: String,
        /// Why it is refused.
        why: String,
    },
    /// The lakeFS server did not answer.
    #[error("cannot reach the lakeFS server at {endpoint}: {cause}")]
    ServerUnreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        cause: String,
    },
    /// The server answered with an error other than the ones below.
    #[error("the lakeFS server at {endpoint} refused {what} ({status}: {message})")]
    ServerRefused {
        /// The endpoint.
        endpoint: String,
        /// What was asked.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's `message`, or a description of its odd answer.
        message: String,
    },
    /// The server has no login discovery document and no flags describe the provider.
    #[error(
        "the server at {endpoint} publishes no login discovery document (/.well-known/lakests-login): \
         it is not a lakests server, or its authenticator is remote; pass --issuer and --client-id \
         (and --scope) to log in against it"
    )]
    NoDiscovery {
        /// The endpoint.
        endpoint: String,
    },
    /// Discovery asks for a PKCE mode this client does not know.
    #[error("the server asks for PKCE mode {0:?}, which this lakests does not support")]
    UnsupportedPkceMode(String),
    /// The identity provider's discovery document could not be read.
    #[error("cannot reach the identity provider at {issuer}: {cause}")]
    IdpUnreachable {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        cause: String,
    },
    /// None of the callback URLs this client can listen on is registered.
    #[error(
        "redirect URI {uri} is not registered for this client (registered: {registered}); \
         use --port/--callback-path/--listen-address to match one, or ask the administrator to \
         register it"
    )]
    RedirectNotRegistered {
        /// The first candidate.
        uri: String,
        /// The registered ones, comma-separated.
        registered: String,
    },
    /// No port of the list could be bound.
    #[error("cannot listen for the sign-in callback on {address} port(s) {ports}: {cause}")]
    CannotListen {
        /// The listen address.
        address: String,
        /// The ports tried.
        ports: String,
        /// The last bind error.
        cause: String,
    },
    /// The overall timeout passed before the browser came back.
    #[error(
        "login timed out after {}: the browser was closed or the sign-in was not finished",
        humantime::format_duration(*after)
    )]
    Timeout {
        /// The overall timeout.
        after: Duration,
    },
    /// Another login for the same endpoint did not finish in time.
    #[error(
        "timed out after {} waiting for another lakests login for {endpoint} to finish",
        humantime::format_duration(*after)
    )]
    LockTimeout {
        /// The overall timeout.
        after: Duration,
        /// The endpoint.
        endpoint: String,
    },
    /// The identity provider redirected back with `error=...`.
    #[error("the identity provider refused the login: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    IdpRefused {
        /// The OAuth error code, e.g. `access_denied`.
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
    },
    /// The authorization response names another issuer (RFC 9207 mix-up defence).
    #[error("the sign-in response came from issuer {got}, expected {expected}")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The `iss` of the response.
        got: String,
    },
    /// `POST /api/v1/sts/login` answered 401.
    #[error("no lakeFS user is mapped to your identity (the server answered 401: {message})")]
    NoUserMapped {
        /// The server's message.
        message: String,
    },
    /// `whoami` or `logout` without a cached token.
    #[error("not logged in to {endpoint}: run `lakests login --endpoint {endpoint}`")]
    NotLoggedIn {
        /// The endpoint.
        endpoint: String,
    },
    /// The cached token exists but is expired.
    #[error(
        "the cached token for {endpoint} expired at {at}: run `lakests login --endpoint {endpoint}`"
    )]
    Expired {
        /// The endpoint.
        endpoint: String,
        /// When it expired (RFC 3339).
        at: String,
    },
    /// The server refuses the cached token.
    #[error(
        "the lakeFS server at {endpoint} refused the cached token (401: {message}): run \
         `lakests login --force --endpoint {endpoint}`"
    )]
    TokenRefused {
        /// The endpoint.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// The token cache could not be read or written.
    #[error("token cache {}: {cause}", path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
    /// The system's random generator failed.
    #[error("the system's secure random generator failed")]
    Random,
    /// The server's session-mode answer points somewhere other than the identity provider's
    /// sign-in page: it is not opened.
    #[error(
        "the lakeFS server at {endpoint} sent a sign-in URL that is not on the identity provider's authorization endpoint ({why}); refusing to open it"
    )]
    UnsafeAuthorizationUrl {
        /// The lakeFS endpoint.
        endpoint: String,
        /// What is wrong with the URL (never the URL itself).
        why: &'static str,
    },
}
