//! `lakests tokens revoke`: revoke a user's tokens, or one token by its `jti`. Revocations are
//! kept in the store, so every replica sharing it refuses the tokens at once.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use lakests_core::user::check_name;
use lakests_core::{Clock, SystemClock};

use crate::ConfigArg;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Revoke every token of a user issued until now, or one token by its `jti`. Honoured by
    /// every lakests endpoint that verifies tokens, on every replica, at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "what")]
pub struct RevokeArgs {
    /// Revoke every token of this user issued until now (new logins still work).
    #[arg(long, group = "what")]
    user: Option<String>,
    /// Revoke the one token with this `jti` claim.
    #[arg(long, group = "what")]
    jti: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Longest `jti` accepted (ours are UUIDs).
const MAX_JTI_LEN: usize = 256;

pub async fn run_tokens(cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    let TokensCommand::Revoke(args) = cmd;
    let cfg = args.config.load_for_database()?;
    let store = lakests_store::open(&cfg.database, &cfg.sqlite_path()).await?;
    let now = SystemClock.now();
    if let Some(user) = args.user {
        check_name("username", &user)?;
        store.revoke_user_tokens(&user, now).await?;
        let known = store.get_user(&user).await?.is_some();
        println!(
            "revoked every token of {} issued until now{}",
            lakests_core::user::printable(&user),
            if known {
                ""
            } else {
                " (no such user today: tokens of a user re-created later are not affected)"
            }
        );
    } else if let Some(jti) = args.jti {
        if jti.is_empty()
            || jti.len() > MAX_JTI_LEN
            || jti.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            anyhow::bail!("--jti must be 1 to {MAX_JTI_LEN} bytes without white space");
        }
        if store.revoke_token(&jti, now).await? {
            println!("revoked token {jti}");
        } else {
            println!("token {jti} was already revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
