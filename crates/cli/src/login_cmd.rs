//! `lakests login`, `lakests logout`, `lakests whoami`: the terminal side of STS login for data
//! people. Only the requested output goes to stdout; every message goes to stderr, so
//! `eval "$(lakests login --endpoint ...)"` works.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lakests_core::SystemClock;
use lakests_login::flow::{describe_expiry, strip_controls};
use lakests_login::output::{format_code, format_token};
use lakests_login::{
    Browser, CachedToken, CallbackSettings, CommandBrowser, Endpoint, FileTokenCache, LakectlSync,
    LakectlTokenFile, Login, LoginOptions, NoBrowser, ObtainedToken, OutputFormat, ProviderSource,
    ServerClient, StderrReporter, SystemBrowser, TokenCache,
};

/// Overall timeout of one HTTP call to the server or the identity provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The lakeFS server.
#[derive(Debug, Clone, Args)]
pub struct EndpointArg {
    /// The lakeFS server, e.g. http://lakefs.example.com (the /api/v1 suffix is optional).
    #[arg(
        long,
        env = "LAKECTL_SERVER_ENDPOINT_URL",
        required_unless_present = "profile"
    )]
    endpoint: Option<String>,
    /// A named login profile: its endpoint.
    #[arg(long, env = "LAKESTS_PROFILE")]
    profile: Option<String>,
}

impl EndpointArg {
    /// The endpoint: the named profile's, else the one given.
    fn resolve(&self) -> anyhow::Result<Endpoint> {
        if let Some(name) = &self.profile {
            let profiles = crate::login_profile::load()?;
            if let Some((_, p)) = crate::login_profile::select(&profiles, Some(name), None)? {
                return Ok(Endpoint::parse(&p.endpoint)?);
            }
        }
        match &self.endpoint {
            Some(e) => Ok(Endpoint::parse(e)?),
            None => anyhow::bail!("no lakeFS endpoint: pass --endpoint URL or --profile NAME"),
        }
    }
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
    /// The lakeFS server, e.g. https://lakefs.example.com (the /api/v1 suffix is optional).
    /// Default: the endpoint of --profile.
    #[arg(long, env = "LAKECTL_SERVER_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// A named profile of the login profile file ($LAKESTS_LOGIN_CONFIG, else
    /// <config dir>/lakests/login.yaml). Without it, the profile whose endpoint is --endpoint,
    /// if any.
    #[arg(long, env = "LAKESTS_PROFILE")]
    profile: Option<String>,
    /// The lakests authenticator of a lakeFS endpoint: its /.well-known/lakests-login describes
    /// the identity provider, and session-mode logins start there.
    #[arg(long, conflicts_with = "issuer")]
    authenticator: Option<String>,
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
    /// Default: 8085,18000,28000.
    #[arg(long = "port", value_delimiter = ',')]
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
    /// Reuse a cached token only while it has at least this long to live; closer to its expiry,
    /// sign in again.
    #[arg(long, default_value = "5m", value_parser = parse_min_validity)]
    min_validity: i64,
    /// Run CMD (given after --) with LAKECTL_SERVER_ENDPOINT_URL and
    /// LAKECTL_CREDENTIALS_SESSION_TOKEN set, instead of printing them; exit with its status.
    #[arg(long, requires = "command", conflicts_with = "print_code")]
    exec: bool,
    /// The command --exec runs, and its arguments.
    #[arg(last = true, value_name = "CMD", requires = "exec")]
    command: Vec<String>,
    /// Do not write the token to lakectl's token cache (~/.lakectl/cache/lakectl_token_cache.json).
    #[arg(long, env = "LAKESTS_NO_LAKECTL_CACHE")]
    no_lakectl_cache: bool,
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

fn parse_min_validity(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > Duration::from_secs(24 * 3600) {
        return Err("must be at most 24h".into());
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

fn use_case(browser: Arc<dyn Browser>, cache: Arc<FileTokenCache>) -> anyhow::Result<Login> {
    Ok(Login::new(
        ServerClient::new(REQUEST_TIMEOUT)?,
        browser,
        cache,
        Arc::new(SystemClock),
        Arc::new(StderrReporter),
    ))
}

/// Puts the token in lakectl's token cache, so that lakectl works with no access key
/// configured, and says when that replaced another server's token (the file holds one token
/// for all servers). A failure here does not undo the login: it is reported.
fn write_lakectl_cache(t: &CachedToken, cache: &FileTokenCache, replaced: Option<&str>) {
    let file = match LakectlTokenFile::in_home() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("note: lakectl's token cache was not written: {e}");
            return;
        }
    };
    let shown = file.path().display();
    match file.sync(t, cache, replaced, now()) {
        Ok(LakectlSync::Unchanged | LakectlSync::Written) => {}
        Ok(LakectlSync::Replaced {
            previous_endpoint: Some(prev),
        }) => eprintln!(
            "lakectl's token cache ({shown}) held the token for {prev}; it now holds the token \
             for {}. lakectl keeps one token for all servers: run lakests login again to switch \
             back.",
            t.endpoint
        ),
        Ok(LakectlSync::Replaced {
            previous_endpoint: None,
        }) => eprintln!(
            "lakectl's token cache ({shown}) held an unexpired token that lakests did not write \
             (from lakectl login?); it now holds the token for {}.",
            t.endpoint
        ),
        Err(e) => eprintln!("note: lakectl's token cache was not written: {e}"),
    }
}

fn now() -> i64 {
    use lakests_core::Clock as _;
    SystemClock.now()
}

/// Default callback ports.
const DEFAULT_PORTS: [u16; 3] = [8085, 18000, 28000];

/// Runs `lakests login`.
pub async fn login(mut args: LoginArgs) -> anyhow::Result<ExitCode> {
    let given = args.endpoint.as_deref().map(Endpoint::parse).transpose()?;
    let profiles = crate::login_profile::load()?;
    let profile = crate::login_profile::select(&profiles, args.profile.as_deref(), given.as_ref())?;
    let endpoint = match (&profile, given) {
        // A profile named on the command line brings its endpoint.
        (Some((_, p)), _) if args.profile.is_some() => Endpoint::parse(&p.endpoint)?,
        (_, Some(e)) => e,
        (_, None) => anyhow::bail!(
            "no lakeFS endpoint: pass --endpoint URL or --profile NAME (or set \
             LAKECTL_SERVER_ENDPOINT_URL)"
        ),
    };
    // The profile fills in what the command line leaves out.
    if let Some((_, p)) = &profile {
        if args.authenticator.is_none() && args.issuer.is_none() {
            args.authenticator.clone_from(&p.authenticator);
            if args.authenticator.is_none() {
                args.issuer.clone_from(&p.issuer);
                args.client_id.clone_from(&p.client_id);
                if args.scopes.is_empty() {
                    args.scopes.clone_from(&p.scopes);
                }
            }
        }
        if args.ttl.is_none()
            && let Some(t) = &p.ttl
        {
            args.ttl = Some(parse_ttl(t).map_err(|e| anyhow::anyhow!("profile ttl {t:?}: {e}"))?);
        }
        if args.ports.is_empty() {
            args.ports.clone_from(&p.ports);
        }
        if p.lakectl_cache == Some(false) {
            args.no_lakectl_cache = true;
        }
    }
    if args.ports.is_empty() {
        args.ports = DEFAULT_PORTS.to_vec();
    }
    let browser: Arc<dyn Browser> = match (&args.browser_command, args.no_browser) {
        (_, true) => Arc::new(NoBrowser),
        (Some(cmd), false) => Arc::new(CommandBrowser::new(cmd.clone())),
        (None, false) => Arc::new(SystemBrowser),
    };
    let provider = match (args.issuer, args.client_id, &args.authenticator) {
        (Some(issuer), Some(client_id), _) => ProviderSource::Given {
            issuer,
            client_id,
            scopes: args.scopes,
        },
        (_, _, Some(a)) => ProviderSource::Authenticator(Endpoint::parse(a)?),
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
        min_validity_seconds: args.min_validity,
    };
    let format = match args.output {
        OutputArg::Env => OutputFormat::Env,
        OutputArg::Json => OutputFormat::Json,
        OutputArg::Token => OutputFormat::Token,
    };
    let cache = Arc::new(FileTokenCache::in_config_dir()?);
    let login = use_case(browser, cache.clone())?;
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
    let before = FileTokenCache::in_config_dir()
        .ok()
        .and_then(|c| c.load(&endpoint).ok().flatten());
    let previous = before.as_ref().and_then(|t| t.username.clone());
    let outcome = login.login(&opts).await?;
    let t = outcome.token();
    let who = t
        .username
        .as_deref()
        .map(|u| format!(" as {}", strip_controls(u)))
        .unwrap_or_default();
    if let (ObtainedToken::New(_), Some(before), Some(now_user)) =
        (&outcome, &previous, &t.username)
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
        ObtainedToken::Cached(_) => eprintln!(
            "Using the cached token for {endpoint}{who}; it expires {expiry}. (--force logs in again)"
        ),
        ObtainedToken::New(_) => {
            eprintln!("Logged in to {endpoint}{who}; the token expires {expiry}.")
        }
    }
    if !args.no_lakectl_cache {
        write_lakectl_cache(t, &cache, before.as_ref().map(|b| b.token.expose()));
    }
    if args.exec {
        return exec(&args.command, t).await;
    }
    print!("{}", format_token(t, format));
    Ok(ExitCode::SUCCESS)
}

/// `--exec -- CMD ARGS`: runs CMD with the token in its environment (as `aws-vault exec` and
/// kubelogin do), with this process's stdin, stdout and stderr, and returns its exit status
/// (128 + the signal number when a signal ended it). Ctrl-C reaches CMD, which decides.
async fn exec(command: &[String], t: &CachedToken) -> anyhow::Result<ExitCode> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("--exec needs a command after --"))?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env("LAKECTL_SERVER_ENDPOINT_URL", &t.endpoint)
        .env("LAKECTL_CREDENTIALS_SESSION_TOKEN", t.token.expose())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {program:?}: {e}"))?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            // The terminal sends SIGINT to the whole process group: the command gets it too;
            // this process keeps waiting for the command's own exit status.
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    if let Some(code) = status.code() {
        return Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return Ok(ExitCode::from(
                u8::try_from(128 + (sig & 0x7f)).unwrap_or(1),
            ));
        }
    }
    Ok(ExitCode::FAILURE)
}

/// Runs `lakests logout`.
pub async fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let endpoint = args.endpoint.resolve()?;
    let cache = Arc::new(FileTokenCache::in_config_dir()?);
    // lakectl's cache goes too, when it holds this server's token (and only then).
    let lakectl_removed = match cache.load(&endpoint)? {
        Some(t) => LakectlTokenFile::in_home()?.remove_if_holds(t.token.expose())?,
        None => false,
    };
    if use_case(Arc::new(NoBrowser), cache)?.logout(&endpoint)? {
        eprintln!("Logged out of {endpoint}: the cached token is removed.");
    } else {
        eprintln!("No cached token for {endpoint}: nothing to do.");
    }
    if lakectl_removed {
        eprintln!("lakectl's token cache held that token: it is removed too.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `lakests whoami`.
pub async fn whoami(args: WhoamiArgs) -> anyhow::Result<ExitCode> {
    let endpoint = args.endpoint.resolve()?;
    let cache = Arc::new(FileTokenCache::in_config_dir()?);
    let (t, user) = use_case(Arc::new(NoBrowser), cache)?
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
