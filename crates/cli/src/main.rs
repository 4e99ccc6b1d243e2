//! `lakests`: STS login for lakeFS. Runs the server roles, manages the user directory, and (for
//! data people) logs in from a terminal.

mod audit;
mod directory_cmd;
mod login_cmd;
mod login_profile;
mod quickstart;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lakests_config::Config;

/// Short-lived-token (STS) login for lakeFS.
#[derive(Debug, Parser)]
#[command(name = "lakests", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the configured roles: STS server, authenticator, development IdP.
    Serve(ConfigArg),
    /// Check or print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the user directory that STS login maps identities to.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Manage groups (lakeFS's authorization API).
    #[command(subcommand)]
    Groups(directory_cmd::GroupsCommand),
    /// Manage policies in lakeFS's statement format.
    #[command(subcommand)]
    Policies(directory_cmd::PoliciesCommand),
    /// Manage users' access keys (S3 gateway, lakectl).
    #[command(subcommand)]
    Credentials(directory_cmd::CredentialsCommand),
    /// Print the lakeFS configuration that points a lakeFS OSS at this lakests.
    LakefsConfig(directory_cmd::LakefsConfigArgs),
    /// Read the login audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Revoke issued tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Log in to a lakeFS server through the browser and print a session token.
    Login(login_cmd::LoginArgs),
    /// Remove the cached token of a lakeFS server.
    Logout(login_cmd::LogoutArgs),
    /// Show the cached identity and its expiry, confirmed by the server.
    Whoami(login_cmd::WhoamiArgs),
    /// Start the whole system on one laptop: STS server, authenticator and development IdP on
    /// 127.0.0.1 with SQLite and demo users. Development only.
    Quickstart(quickstart::QuickstartArgs),
    /// Development IdP administration.
    #[command(subcommand)]
    Idp(IdpCommand),
}

#[derive(Debug, Subcommand)]
enum IdpCommand {
    /// Make new RS256 and ES256 signing keys current; the previous ones stay published so
    /// tokens already issued still verify. Restart the server to use them.
    RotateKeys {
        /// The data directory (default: `data_dir` of the configuration).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// List every problem of a configuration (file and LAKESTS_* environment) at once.
    Check(ConfigArg),
    /// Print a commented example configuration.
    Example,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// YAML configuration file. Default: $LAKESTS_CONFIG, else ./lakests.yaml if it exists,
    /// else defaults and LAKESTS_* environment variables only.
    #[arg(long, short = 'c', env = "LAKESTS_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            let default = Path::new("lakests.yaml");
            default.is_file().then(|| default.to_path_buf())
        })
    }

    /// The validated configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.path().as_deref())?)
    }

    /// The configuration with only its database section validated.
    pub fn load_for_database(&self) -> anyhow::Result<Config> {
        let cfg = Config::load_unvalidated(self.path().as_deref())?;
        let problems = cfg.validate_database();
        if !problems.is_empty() {
            return Err(lakests_config::ConfigErrors(problems).into());
        }
        Ok(cfg)
    }
}

/// mimalloc instead of glibc's malloc: see the workspace's Cargo.toml (issue 14's profiles).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Errors can quote what a server or identity provider sent: no control characters.
            let text = format!("{e:#}");
            eprintln!("error: {}", lakests_login::flow::strip_controls(&text));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.load()?;
            lakests_server::telemetry::init(&config.logging)?;
            let listeners = lakests_server::activation::listeners_from_env()?;
            let app = lakests_server::Application::build_with_listeners(
                config,
                std::sync::Arc::new(lakests_core::SystemClock),
                listeners,
            )
            .await?;
            app.run_until(lakests_http::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", lakests_config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check(args)) => match Config::load(args.path().as_deref()) {
            Ok(cfg) => {
                let mut roles = Vec::new();
                if cfg.sts_enabled() {
                    roles.push(format!("sts on {}", cfg.listen_address));
                }
                if cfg.authenticator_enabled() {
                    roles.push(format!(
                        "authenticator on {}",
                        cfg.authenticator.listen_address
                    ));
                }
                if cfg.idp.enabled {
                    roles.push(format!("idp on {}", cfg.idp.listen_address));
                }
                if cfg.authorization.enabled {
                    roles.push(format!(
                        "authorization on {}",
                        cfg.authorization
                            .listen_address
                            .as_deref()
                            .unwrap_or(&cfg.authenticator.listen_address)
                    ));
                }
                println!("configuration is valid; roles: {}", roles.join(", "));
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprint!("{errors}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Users(cmd) => users::run_users(cmd).await,
        Command::Audit(cmd) => audit::run_audit(cmd).await,
        Command::Tokens(cmd) => tokens::run_tokens(cmd).await,
        Command::Groups(cmd) => directory_cmd::run_groups(cmd).await,
        Command::Policies(cmd) => directory_cmd::run_policies(cmd).await,
        Command::Credentials(cmd) => directory_cmd::run_credentials(cmd).await,
        Command::LakefsConfig(args) => directory_cmd::lakefs_config(args),
        Command::Login(args) => login_cmd::login(args).await,
        Command::Logout(args) => login_cmd::logout(args).await,
        Command::Whoami(args) => login_cmd::whoami(args).await,
        Command::Quickstart(args) => quickstart::run(args).await,
        Command::Idp(IdpCommand::RotateKeys { data_dir, config }) => {
            let dir = match data_dir {
                Some(d) => d,
                None => Config::load_unvalidated(config.path().as_deref())?.data_dir,
            };
            let kids = lakests_devidp::rotate_keys(&dir.join("idp-keys"))?;
            println!("new signing keys: {}", kids.join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}
