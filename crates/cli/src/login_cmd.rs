//! `lakests login`, `lakests logout`, `lakests whoami`: the terminal side of STS login for data
//! people. Only the requested output goes to stdout; every message goes to stderr, so
//! `eval "$(lakests login --endpoint ...)"` works.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lakests_core::SystemClock;
use lakests_login::TokenCache as _;
use lakests_login::flow::{describe_expiry, strip_controls};
use lakests_login::output::{format_code, format_token};
use lakests_login::{
    Browser, CallbackSettings, CommandBrowser, Endpoint, FileTokenCache, Login, LoginOptions,
    LoginOutcome, NoBrowser, OutputFormat, ProviderSource, ServerClient, StderrReporter,
    SystemBrowser,
};

/// Overall timeout of one HTTP call to the server or the identity provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The lakeFS server.
#[derive(Debug, Clone, Args)]
pub struct EndpointArg {
    /// The lakeFS server, e.g. http://lakefs.example.com (the /api/v1 suffix is optional).
    #[arg(long, env = "LAKECTL_SERVER_ENDPOINT_URL")]
    endpoint: String,
}

/// What `lakests login` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputArg {
    /// `export LAKECTL_SERVER_ENDPOINT_URL=...` and `export LAKECTL_CREDENTIALS_SESSION_TOKEN=...`
    Env,
    /// One JSON object: endpoint, token, token_expiration, username.
    Json,
    /// The token alone.
    Token,
}

/// `lakests login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    endpoint: EndpointArg,
    /// Requested token lifetime, e.g. 8h or 90m (the server clamps it to its maximum).
    #[arg(long, value_parser = parse_ttl)]
    ttl: Option<i64>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "env")]
    output: OutputArg,
    /// Log in again even when a cached token is still valid.
    #[arg(long)]
    force: bool,
    /// Print the code, state and redirect URI (and the Python line that redeems them) instead
    /// of redeeming the code; nothing is cached.
    #[arg(long)]
    print_code: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long, conflicts_with = "browser_command")]
    no_browser: bool,
    /// Open the sign-in URL with this command (the URL is its last argument).
    #[arg(long, value_name = "CMD")]
    browser_command: Option<String>,
    /// Address the callback server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    listen_address: IpAddr,
    /// Callback port; repeat (or separate with commas) for fallbacks, tried in order. 0 lets
    /// the system choose (only useful when any loopback port is allowed).
    #[arg(long = "port", value_delimiter = ',', default_values_t = [8085u16, 18000, 28000])]
    ports: Vec<u16>,
    /// The callback path registered at the identity provider.
    #[arg(long, default_value = "/callback", value_parser = parse_callback_path)]
    callback_path: String,
    /// Host name in the redirect URI instead of the listen address (e.g. localhost).
    #[arg(long)]
    redirect_host: Option<String>,
    /// Overall timeout of the login, browser included.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    timeout: Duration,
    /// The identity provider's issuer, for a lakeFS without lakests's discovery document
    /// (PKCE state mode, lakeFS's documented flow).
    #[arg(long, requires = "client_id")]
    issuer: Option<String>,
    /// The client id registered at the identity provider (with --issuer).
    #[arg(long, requires = "issuer")]
    client_id: Option<String>,
    /// Scope to request (with --issuer); repeatable. Default: openid.
    #[arg(long = "scope", requires = "issuer", value_delimiter = ',')]
    scopes: Vec<String>,
}

/// `lakests logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    endpoint: EndpointArg,
}

/// `lakests whoami`
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    endpoint: EndpointArg,
    /// Output format: text or json.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: WhoamiOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WhoamiOutput {
    Text,
    Json,
}

fn parse_ttl(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.as_secs() == 0 {
        return Err("must be at least one second".into());
    }
    i64::try_from(d.as_secs()).map_err(|_| "too long".to_owned())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > Duration::from_secs(24 * 3600) {
        return Err("must be more than zero and at most 24h".into());
    }
    Ok(d)
}

fn parse_callback_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) || s.len() > 200 {
        return Err("must start with / and have no query, fragment or space".into());
    }
    Ok(s.to_owned())
}

fn use_case(browser: Arc<dyn Browser>) -> anyhow::Result<Login> {
    Ok(Login::new(
        ServerClient::new(REQUEST_TIMEOUT)?,
        browser,
        Arc::new(FileTokenCache::in_config_dir()?),
        Arc::new(SystemClock),
        Arc::new(StderrReporter),
    ))
}

fn now() -> i64 {
    use lakests_core::Clock as _;
    SystemClock.now()
}

/// Runs `lakests login`.
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::parse(&args.endpoint.endpoint)?;
    let browser: Arc<dyn Browser> = match (&args.browser_command, args.no_browser) {
        (_, true) => Arc::new(NoBrowser),
        (Some(cmd), false) => Arc::new(CommandBrowser::new(cmd.clone())),
        (None, false) => Arc::new(SystemBrowser),
    };
    let provider = match (args.issuer, args.client_id) {
        (Some(issuer), Some(client_id)) => ProviderSource::Given {
            issuer,
            client_id,
            scopes: args.scopes,
        },
        _ => ProviderSource::Discover,
    };
    let opts = LoginOptions {
        endpoint: endpoint.clone(),
        provider,
        callback: CallbackSettings {
            listen_address: args.listen_address,
            ports: args.ports,
            path: args.callback_path,
            redirect_host: args.redirect_host,
        },
        ttl_seconds: args.ttl,
        timeout: args.timeout,
        force: args.force,
    };
    let format = match args.output {
        OutputArg::Env => OutputFormat::Env,
        OutputArg::Json => OutputFormat::Json,
        OutputArg::Token => OutputFormat::Token,
    };
    let login = use_case(browser)?;
    if args.print_code {
        let grant = login.print_code(&opts).await?;
        eprintln!(
            "Got a code for {endpoint}; it is not redeemed. Redeem it within a minute or two: codes are short-lived and single-use."
        );
        print!("{}", format_code(&grant, format));
        return Ok(ExitCode::SUCCESS);
    }
    // Who this endpoint's cached token was for, to notice a server that now logs us in as
    // someone else.
    let previous = FileTokenCache::in_config_dir()
        .ok()
        .and_then(|c| c.load(&endpoint).ok().flatten())
        .and_then(|t| t.username);
    let outcome = login.login(&opts).await?;
    let t = outcome.token();
    let who = t
        .username
        .as_deref()
        .map(|u| format!(" as {}", strip_controls(u)))
        .unwrap_or_default();
    if let (LoginOutcome::New(_), Some(before), Some(now_user)) = (&outcome, &previous, &t.username)
        && before != now_user
    {
        eprintln!(
            "Warning: {endpoint} now logs you in as {}, but its previous token was for {}. \
             If you did not expect this, run `lakests logout --endpoint {endpoint}`.",
            strip_controls(now_user),
            strip_controls(before)
        );
    }
    let expiry = describe_expiry(t.token_expiration, now());
    match &outcome {
        LoginOutcome::Cached(_) => eprintln!(
            "Using the cached token for {endpoint}{who}; it expires {expiry}. (--force logs in again)"
        ),
        LoginOutcome::New(_) => {
            eprintln!("Logged in to {endpoint}{who}; the token expires {expiry}.")
        }
    }
    print!("{}", format_token(t, format));
    Ok(ExitCode::SUCCESS)
}

/// Runs `lakests logout`.
pub async fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::parse(&args.endpoint.endpoint)?;
    if use_case(Arc::new(NoBrowser))?.logout(&endpoint)? {
        eprintln!("Logged out of {endpoint}: the cached token is removed.");
    } else {
        eprintln!("No cached token for {endpoint}: nothing to do.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `lakests whoami`.
pub async fn whoami(args: WhoamiArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::parse(&args.endpoint.endpoint)?;
    let (t, user) = use_case(Arc::new(NoBrowser))?
        .whoami(&endpoint, REQUEST_TIMEOUT)
        .await?;
    match args.output {
        WhoamiOutput::Text => {
            let mut details = Vec::new();
            details.extend(user.friendly_name.as_deref());
            details.extend(user.email.as_deref());
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            println!(
                "{}{} at {endpoint}; the token expires {}",
                strip_controls(&user.id),
                strip_controls(&details),
                describe_expiry(t.token_expiration, now())
            );
        }
        WhoamiOutput::Json => println!(
            "{}",
            serde_json::json!({
                "endpoint": endpoint.as_str(),
                "username": user.id,
                "friendly_name": user.friendly_name,
                "email": user.email,
                "token_expiration": t.token_expiration,
            })
        ),
    }
    Ok(ExitCode::SUCCESS)
}
