//! lakests configuration: one YAML file, every key overridable by an environment variable
//! (`LAKESTS_` + the upper-cased key path joined with `_`), unknown keys refused, and every
//! problem reported at once.
//!
//! Wherever lakeFS has a concept, the key is lakeFS's own (`auth.encrypt.secret_key`,
//! `auth.authentication_api.endpoint`, `auth.cookie_auth_verification.*`,
//! `database.postgres.connection_string`).

mod authenticator;
mod authorization;
mod idp;
mod load;
mod types;
mod ui_sso;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use authenticator::{
    AuthenticatorConfig, ClaimRequirement, ClientAuth, PkceMode, ProviderConfig,
    namespaced_external_id,
};
pub use authorization::AuthorizationConfig;
pub use idp::{
    IdpClient, IdpConfig, IdpFault, IdpUser, MAX_SLOW_TOKEN_MS, RESERVED_CLAIMS, SigningAlg,
};
pub use load::{ConfigErrors, ENV_PREFIX, RESERVED_ENV, env_var_name, known_keys};
pub use types::{Duration, Secret};
pub use ui_sso::{
    DEFAULT_UI_MAX_LOGINS_IN_FLIGHT, DEFAULT_UI_RATE_LIMIT_BURST, DEFAULT_UI_RATE_LIMIT_PER_SECOND,
    LAKEFS_LOGIN_DURATION_SECS, MAX_UI_TOKEN_TTL_SECS, UiSsoConfig, parse_base_url,
};

/// The commented example printed by `lakests config example`; a test parses it.
pub const EXAMPLE: &str = include_str!("../example.yaml");

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address of the STS server role (lakeFS's API paths).
    pub listen_address: String,
    /// Directory for state kept in files (SQLite database, development IdP keys).
    pub data_dir: PathBuf,
    /// Logging.
    pub logging: Logging,
    /// Storage.
    pub database: Database,
    /// The STS server role.
    pub auth: Auth,
    /// The remote authenticator role (on when it has providers).
    pub authenticator: AuthenticatorConfig,
    /// The development OpenID Provider role (on when `idp.enabled`).
    pub idp: IdpConfig,
    /// Limits of every role's HTTP server.
    pub http: HttpServer,
    /// The authorization service role, lakeFS's `auth.api.endpoint` (on when
    /// `authorization.enabled`).
    pub authorization: AuthorizationConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_address: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("lakests-data"),
            logging: Logging::default(),
            database: Database::default(),
            auth: Auth::default(),
            authenticator: AuthenticatorConfig::default(),
            idp: IdpConfig::default(),
            http: HttpServer::default(),
            authorization: AuthorizationConfig::default(),
        }
    }
}

/// `http.*`: limits every role's HTTP server applies, so that one client cannot exhaust the
/// process (see docs/security.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpServer {
    /// A request head must be complete within this time of the connection opening (or of the
    /// previous response on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no byte moving for this long is closed.
    pub idle_timeout: Duration,
    /// A request taking longer (its body included) is answered 503.
    pub request_timeout: Duration,
    /// Connections open at once on each role's listener; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections open at once from one client address on each listener.
    pub max_connections_per_client: usize,
}

impl Default for HttpServer {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 2048,
            max_connections_per_client: 256,
        }
    }
}

impl HttpServer {
    fn validate(&self, p: &mut Vec<String>) {
        for (key, value) in [
            ("http.header_read_timeout", self.header_read_timeout),
            ("http.idle_timeout", self.idle_timeout),
            ("http.request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                p.push(format!("{key}: must be more than zero"));
            }
        }
        if self.max_connections == 0 {
            p.push("http.max_connections: must be at least 1".into());
        }
        if self.max_connections_per_client == 0 {
            p.push("http.max_connections_per_client: must be at least 1".into());
        }
        if self.max_connections_per_client > self.max_connections {
            p.push("http.max_connections_per_client: must not exceed http.max_connections".into());
        }
    }
}

/// `logging.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `lakests=debug,info`.
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `database.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    /// `sqlite` (embedded, the default) or `postgres`.
    #[serde(rename = "type")]
    pub kind: DatabaseKind,
    /// `database.sqlite.*`
    pub sqlite: SqliteConfig,
    /// `database.postgres.*`
    pub postgres: PostgresConfig,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            kind: DatabaseKind::Sqlite,
            sqlite: SqliteConfig::default(),
            postgres: PostgresConfig::default(),
        }
    }
}

/// Which storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL, for several replicas sharing state.
    Postgres,
}

/// `database.sqlite.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteConfig {
    /// Database file; default `<data_dir>/lakests.db`. Created on first run.
    pub path: Option<PathBuf>,
    /// How long a writer waits for a lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: None,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// `database.postgres.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresConfig {
    /// A libpq-style URL, e.g. `postgres://user@127.0.0.1:5432/lakests`. A secret: it may carry
    /// a password.
    pub connection_string: Option<Secret>,
    /// Largest pool size.
    pub max_open_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            max_open_connections: 10,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// `auth.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Auth {
    /// `auth.encrypt.*`
    pub encrypt: Encrypt,
    /// `auth.authentication_api.*`
    pub authentication_api: AuthenticationApi,
    /// `auth.cookie_auth_verification.*`
    pub cookie_auth_verification: CookieAuthVerification,
    /// `auth.sts.*`
    pub sts: Sts,
    /// `auth.cache.*`
    pub cache: Cache,
    /// `auth.audit.*`
    pub audit: Audit,
}

/// `auth.audit.*`: how long login audit records are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Audit {
    /// Records older than this are removed.
    pub retention: Duration,
    /// How often old records (and expired single-use grants) are removed.
    pub purge_interval: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 24 * 3600),
            purge_interval: Duration::from_secs(3600),
        }
    }
}

/// `auth.cache.*`: lakeFS's cache of users for token verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Cache {
    /// Cache the hot reads (bearer tokens and their users, revocations, the authorization
    /// API's reads), invalidated by the store's change feed: a change is seen on the next
    /// request either way. On by default.
    pub enabled: bool,
    /// How long a value is cached at most (a bound on memory, not on staleness).
    pub ttl: Duration,
    /// How many users are cached at most.
    pub size: usize,
    /// Up to this much is added at random to each entry's `ttl` (lakeFS's `auth.cache.jitter`),
    /// so that entries read together do not all expire together.
    pub jitter: Duration,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(20),
            size: 1024,
            jitter: Duration::from_secs(3),
        }
    }
}

/// `auth.encrypt.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Encrypt {
    /// The key lakeFS signs its tokens with (HS256 over its raw bytes). Required by the STS
    /// server role.
    pub secret_key: Option<Secret>,
}

/// `auth.authentication_api.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticationApi {
    /// Base URL of the remote authenticator, normally ending in `/api/v1`. When unset and the
    /// authenticator role runs in this process, it is called directly.
    pub endpoint: Option<String>,
    /// Overall timeout of one call to the authenticator.
    pub request_timeout: Duration,
}

impl Default for AuthenticationApi {
    fn default() -> Self {
        Self {
            endpoint: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// `auth.cookie_auth_verification.*`: lakeFS's rules for ID-token claims and provisioning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CookieAuthVerification {
    /// Claim name -> exact value every login's claims must have.
    pub validate_id_token_claims: BTreeMap<String, String>,
    /// The claim whose value is the external user id users are found by (lakeFS's key; `sub`
    /// by default, as lakeFS's STS login uses).
    pub external_user_id_claim_name: String,
    /// Groups of a provisioned user when the groups claim is absent.
    pub default_initial_groups: Vec<String>,
    /// Claim with comma-separated groups for a provisioned user.
    pub initial_groups_claim_name: Option<String>,
    /// Claim with the friendly name of a provisioned user.
    pub friendly_name_claim_name: Option<String>,
    /// Update the stored friendly name from the claim on every login.
    pub persist_friendly_name: bool,
}

impl Default for CookieAuthVerification {
    fn default() -> Self {
        Self {
            validate_id_token_claims: BTreeMap::new(),
            external_user_id_claim_name: "sub".into(),
            default_initial_groups: Vec::new(),
            initial_groups_claim_name: None,
            friendly_name_claim_name: None,
            persist_friendly_name: false,
        }
    }
}

/// `auth.sts.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Sts {
    /// Run the STS server role when `auth.encrypt.secret_key` is set. Off for a lakests that
    /// only serves a lakeFS OSS (lakeFS's own `/api/v1/sts/login` then does the login).
    pub enabled: bool,
    /// TTL of a token when the request names none.
    pub default_ttl_seconds: i64,
    /// Largest TTL granted; larger requests are clamped.
    pub max_ttl_seconds: i64,
    /// Create a user on the first login of an unknown identity.
    pub auto_create_users: bool,
    /// Claim whose value becomes the username of a provisioned user.
    pub username_claim_name: String,
    /// Name of the `authenticator.providers` entry that `GET /.well-known/lakests-login`
    /// describes to `lakests login`; default: the first provider.
    pub login_provider: Option<String>,
    /// Most logins (and session-mode authorizations) in flight at once; more are answered 429
    /// at once instead of piling up behind a slow authenticator.
    pub max_concurrent_logins: usize,
    /// Sustained `sts/login` + `sts/authorize` requests per second allowed from one client
    /// address (per replica); more are answered 429 with `Retry-After`. 0 turns it off.
    pub rate_limit_per_second: u32,
    /// Requests one client address may make at once above the sustained rate.
    pub rate_limit_burst: u32,
}

impl Default for Sts {
    fn default() -> Self {
        Self {
            enabled: true,
            default_ttl_seconds: 3600,
            max_ttl_seconds: 43_200,
            auto_create_users: false,
            username_claim_name: "sub".into(),
            login_provider: None,
            max_concurrent_logins: 256,
            rate_limit_per_second: 5,
            rate_limit_burst: 30,
        }
    }
}

impl Config {
    /// Path of the SQLite database: `database.sqlite.path` or `<data_dir>/lakests.db`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.database
            .sqlite
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lakests.db"))
    }

    /// Whether the authenticator role runs in this process.
    pub fn authenticator_enabled(&self) -> bool {
        !self.authenticator.providers.is_empty()
    }

    /// Whether the STS server role runs: it does when `auth.encrypt.secret_key` is set, unless
    /// `auth.sts.enabled` is false (a lakests serving only a lakeFS OSS, whose own STS endpoint
    /// does the login).
    pub fn sts_enabled(&self) -> bool {
        self.auth.encrypt.secret_key.is_some() && self.auth.sts.enabled
    }

    /// Problems of the `database.*` section alone (enough for the admin commands).
    pub fn validate_database(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.database.kind {
            DatabaseKind::Sqlite => {}
            DatabaseKind::Postgres => match &self.database.postgres.connection_string {
                None => p.push(
                    "database.postgres.connection_string: required when database.type is postgres \
                     (or set LAKESTS_DATABASE_POSTGRES_CONNECTION_STRING)"
                        .into(),
                ),
                Some(s)
                    if !(s.expose().starts_with("postgres://")
                        || s.expose().starts_with("postgresql://")) =>
                {
                    p.push(
                        "database.postgres.connection_string: must start with postgres:// or \
                         postgresql://"
                            .into(),
                    )
                }
                Some(_) => {}
            },
        }
        if self.database.postgres.max_open_connections == 0 {
            p.push("database.postgres.max_open_connections: must be at least 1".into());
        }
        p
    }

    /// Every semantic problem, all at once. Empty means valid.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        check_addr(&mut p, "listen_address", &self.listen_address);
        if self.logging.level.trim().is_empty() {
            p.push("logging.level: must not be empty".into());
        }
        p.extend(self.validate_database());
        self.http.validate(&mut p);
        let sts = self.sts_enabled();
        self.authorization.validate(
            &mut p,
            self.auth.encrypt.secret_key.is_some(),
            self.authenticator_enabled(),
        );
        if !sts && !self.authenticator_enabled() && !self.idp.enabled && !self.authorization.enabled
        {
            p.push(
                "nothing to run: set auth.encrypt.secret_key (or LAKESTS_AUTH_ENCRYPT_SECRET_KEY) \
                 for the STS server, authenticator.providers for the authenticator, or \
                 idp.enabled for the development IdP; auth.encrypt.secret_key: required by the \
                 STS server"
                    .into(),
            );
        }
        if let Some(k) = &self.auth.encrypt.secret_key
            && let Some(problem) = secret_key_problem(k.expose())
        {
            p.push(format!("auth.encrypt.secret_key: {problem}"));
        }
        if let Some(endpoint) = &self.auth.authentication_api.endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => p.push(format!(
                    "auth.authentication_api.endpoint: {endpoint:?} is not an http(s) URL"
                )),
            }
        } else if sts && !self.authenticator_enabled() {
            p.push(
                "auth.authentication_api.endpoint: required unless the authenticator role runs \
                 in this process (authenticator.providers)"
                    .into(),
            );
        }
        if self.auth.authentication_api.request_timeout.is_zero() {
            p.push("auth.authentication_api.request_timeout: must be more than zero".into());
        }
        if self.sts_enabled()
            && self.http.request_timeout <= self.auth.authentication_api.request_timeout
        {
            p.push(
                "http.request_timeout: must be longer than auth.authentication_api.request_timeout \
                 (a login must end with its own answer and audit record, not be cut off)"
                    .into(),
            );
        }
        let sts = &self.auth.sts;
        if sts.default_ttl_seconds <= 0 {
            p.push("auth.sts.default_ttl_seconds: must be positive".into());
        }
        if sts.max_ttl_seconds <= 0 {
            p.push("auth.sts.max_ttl_seconds: must be positive".into());
        }
        if sts.default_ttl_seconds > sts.max_ttl_seconds {
            p.push("auth.sts.default_ttl_seconds: must not exceed auth.sts.max_ttl_seconds".into());
        }
        if let Some(name) = &sts.login_provider
            && !self.authenticator.providers.iter().any(|p| &p.name == name)
        {
            p.push(format!(
                    "auth.sts.login_provider: {name:?} is not the name of an authenticator.providers entry"
                ));
        }
        if sts.max_concurrent_logins == 0 {
            p.push(
                "auth.sts.max_concurrent_logins: must be at least 1 (0 would refuse every login)"
                    .into(),
            );
        }
        if self.auth.cache.enabled && self.auth.cache.ttl.get() < std::time::Duration::from_secs(1)
        {
            p.push(
                "auth.cache.ttl: must be at least 1s (the cache counts whole seconds; less would \
                 silently turn it off)"
                    .into(),
            );
        }
        if sts.rate_limit_per_second > 0 && sts.rate_limit_burst == 0 {
            p.push(
                "auth.sts.rate_limit_burst: must be at least 1 when the rate limit is on".into(),
            );
        }
        if self.auth.audit.retention.get() < std::time::Duration::from_secs(3600) {
            p.push("auth.audit.retention: must be at least 1h".into());
        }
        if self.auth.audit.purge_interval.get() < std::time::Duration::from_secs(1) {
            p.push("auth.audit.purge_interval: must be at least 1s".into());
        }
        if self
            .auth
            .cookie_auth_verification
            .external_user_id_claim_name
            .trim()
            .is_empty()
        {
            p.push(
                "auth.cookie_auth_verification.external_user_id_claim_name: must not be empty"
                    .into(),
            );
        }
        if sts.username_claim_name.is_empty() {
            p.push("auth.sts.username_claim_name: must not be empty".into());
        }
        if self.authenticator_enabled() {
            check_addr(
                &mut p,
                "authenticator.listen_address",
                &self.authenticator.listen_address,
            );
            self.authenticator.validate(&mut p);
        }
        let provider_names: Vec<&str> = self
            .authenticator
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        self.authenticator.ui_sso.validate(
            &mut p,
            &provider_names,
            self.auth.encrypt.secret_key.is_some(),
        );
        if self.idp.enabled {
            check_addr(&mut p, "idp.listen_address", &self.idp.listen_address);
            self.idp.validate(&mut p);
        }
        p
    }
}

/// Fewest bytes of `auth.encrypt.secret_key` accepted: HS256's key is the raw bytes, and a
/// short key falls to an offline search from a single token.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// Secret keys that are published (in our example and in lakeFS's local defaults): anyone
/// can forge tokens with them, so they are refused whatever their length.
pub const PUBLISHED_SECRET_KEYS: &[&str] = &[
    "change-me-to-a-long-random-value",
    "THIS_MUST_BE_CHANGED_IN_PRODUCTION",
];

/// How to make a good key, for the messages.
const GENERATE_KEY_HINT: &str = "generate one with `openssl rand -base64 32`";

/// Why `key` is not acceptable as `auth.encrypt.secret_key`, if it is not. The message never
/// contains the key.
pub fn secret_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some(format!("must not be empty; {GENERATE_KEY_HINT}"));
    }
    if key.trim().is_empty() {
        return Some(format!("must not be only white space; {GENERATE_KEY_HINT}"));
    }
    if PUBLISHED_SECRET_KEYS
        .iter()
        .any(|published| published.eq_ignore_ascii_case(key.trim()))
    {
        return Some(format!(
            "is a published example value that anyone can sign tokens with; {GENERATE_KEY_HINT}"
        ));
    }
    if key.len() < MIN_SECRET_KEY_BYTES {
        return Some(format!(
            "is shorter than {MIN_SECRET_KEY_BYTES} bytes, which makes tokens forgeable; \
             {GENERATE_KEY_HINT}"
        ));
    }
    None
}

fn check_addr(p: &mut Vec<String>, key: &str, value: &str) {
    if value.parse::<SocketAddr>().is_err() {
        p.push(format!(
            "{key}: {value:?} is not an address of the form IP:PORT"
        ));
    }
}
