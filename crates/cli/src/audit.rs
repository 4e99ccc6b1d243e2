//! `lakests audit ...`: the login attempts the STS server and the authenticator recorded.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::ConfigArg;
use crate::users::{Output, print_table, store};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest login attempts, newest first.
    List {
        /// How many records.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn run_audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::List {
        limit,
        output,
        config,
    } = cmd;
    let records = store(&config).await?.list_audit(limit).await?;
    match output {
        Output::Json => {
            let items: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "at": r.at, "outcome": r.outcome.as_str(), "reason": r.reason,
                        "external_id": r.external_id, "username": r.username,
                        "client_addr": r.client_addr, "request_id": r.request_id,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        Output::Table => {
            let rows: Vec<[String; 6]> = records
                .iter()
                .map(|r| {
                    [
                        r.at.to_string(),
                        r.outcome.as_str().to_owned(),
                        r.username.clone().unwrap_or_else(|| "-".into()),
                        r.external_id.clone().unwrap_or_else(|| "-".into()),
                        r.request_id.clone(),
                        r.reason.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "AT",
                    "OUTCOME",
                    "USER",
                    "EXTERNAL ID",
                    "REQUEST ID",
                    "REASON",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
