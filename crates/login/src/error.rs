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
         it is a lakeFS, or its authenticator is remote; pass --authenticator URL (the lakests \
         authenticator, which publishes it) or --profile NAME, or pass --issuer and --client-id \
         (and --scope) to log in against it"
    )]
    NoDiscovery {
        /// The endpoint.
        endpoint: String,
    },
    /// `--authenticator URL` names a server without the discovery document.
    #[error(
        "the authenticator at {authenticator} publishes no login discovery document \
         (/.well-known/lakests-login): give the URL of the lakests authenticator role \
         (authenticator.listen_address), not of lakeFS"
    )]
    NoAuthenticatorDiscovery {
        /// The authenticator URL.
        authenticator: String,
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
    /// `POST /api/v1/sts/login`: no user has the identity's external id (reason
    /// `no_user_mapped`).
    #[error(
        "no lakeFS user is mapped to your identity (the server answered 401: {message}): ask your \
         lakeFS administrator to create one for you (lakests users add NAME --external-id \
         <your sub>) or to turn on automatic user creation"
    )]
    NoUserMapped {
        /// The server's message.
        message: String,
    },
    /// The identity provider refused the code (reason `code_rejected`): a replay, an expired
    /// code, or one issued for another redirect URI or verifier.
    #[error(
        "the identity provider refused the sign-in code ({message}): it was already used, had \
         expired, or was issued for another redirect; run lakests login again. If this keeps \
         happening, something else redeems your codes first: check the browser extensions and \
         proxies that can see the callback URL"
    )]
    CodeRejected {
        /// The server's message.
        message: String,
    },
    /// A session-mode login the server no longer knows (reason `session_unknown`).
    #[error(
        "the server no longer knows this login session ({message}): it expired or was already \
         used; run lakests login again and finish the sign-in sooner"
    )]
    SessionUnknown {
        /// The server's message.
        message: String,
    },
    /// The ID token failed validation (reason `id_token_invalid`).
    #[error(
        "the identity provider's ID token was refused ({message}): the authenticator and the \
         identity provider disagree (issuer, client id, signing keys or clocks); ask your lakeFS \
         administrator to check the authenticator's provider settings and log"
    )]
    IdTokenInvalid {
        /// The server's message.
        message: String,
    },
    /// A claim rule refused the identity (reason `claim_rule`).
    #[error(
        "your identity does not meet the server's claim rules ({message}): you signed in, but \
         this lakeFS admits only identities with that claim; ask your lakeFS administrator for \
         access (or sign in as another identity with lakests login --force)"
    )]
    ClaimRule {
        /// The server's message.
        message: String,
    },
    /// The ID token has no `sub` (reason `subject_missing`).
    #[error(
        "the identity provider's ID token has no sub claim ({message}), so it names nobody; ask \
         your lakeFS administrator to check the identity provider's client settings"
    )]
    SubjectMissing {
        /// The server's message.
        message: String,
    },
    /// Automatic user creation failed (reason `cannot_provision`).
    #[error(
        "you have no lakeFS user yet and the server could not create one ({message}); ask your \
         lakeFS administrator to create it"
    )]
    CannotProvision {
        /// The server's message.
        message: String,
    },
    /// The user of this identity was removed, and automatic creation does not bring it back
    /// (reason `identity_removed`).
    #[error(
        "your lakeFS user was removed ({message}), so signing in does not create it again; if \
         you should have access, ask your lakeFS administrator to readmit your identity \
         (lakests users readmit)"
    )]
    IdentityRemoved {
        /// The server's message.
        message: String,
    },
    /// A 401 that names no reason: a lakeFS server (or an authenticator that is not lakests)
    /// does not say why.
    #[error(
        "the lakeFS server at {endpoint} refused the login (401: {message}) without saying why: \
         the identity provider may have refused the code (e.g. already used), the ID token may be \
         invalid, or your identity may not meet lakeFS's validate_id_token_claims. Run lakests \
         login again; if it fails again, ask your lakeFS administrator to check the logs of lakeFS \
         and of its authenticator"
    )]
    LoginRefused {
        /// The endpoint.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// lakeFS answered 404 to `sts/login`: what lakeFS says when no user has the external id,
    /// and also what any server says without that route.
    #[error(
        "the lakeFS server at {endpoint} answered 404 to the login ({message}): lakeFS answers \
         this when no lakeFS user has your identity's external id (ask your lakeFS administrator \
         to create one), or the URL does not serve lakeFS's API (check --endpoint)"
    )]
    LoginNotFound {
        /// The endpoint.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// lakeFS answered 501 to `sts/login`: it cannot look users up by external id.
    #[error(
        "the lakeFS server at {endpoint} cannot map identities to users (501: {message}): lakeFS \
         needs an authorization service that answers external-id lookups (auth.api.endpoint, \
         with auth.ui_config.rbac simplified or external); ask your lakeFS administrator"
    )]
    LoginNotImplemented {
        /// The endpoint.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// lakeFS answered 500 to `sts/login`.
    #[error(
        "the lakeFS server at {endpoint} failed to complete the login (500: {message}): lakeFS \
         answers this when its authenticator is unreachable or refuses a code as already used; \
         run lakests login again, and if it persists ask your lakeFS administrator to check \
         lakeFS's log"
    )]
    LoginFailed {
        /// The endpoint.
        endpoint: String,
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
