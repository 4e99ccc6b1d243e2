//! `lakests users ...`: the directory, without SQL.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use lakests_core::user::{check_name, printable};
use lakests_core::{Clock, StoreError, SystemClock, UserRecord};
use serde_json::json;

use crate::ConfigArg;

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user, optionally mapped to an identity provider subject.
    Add {
        /// The lakeFS username.
        username: String,
        /// The external id that logs in as this user: `<provider name>:<sub>` for a provider
        /// of this lakests's authenticator (its `external_id_namespace` when set).
        #[arg(long)]
        external_id: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        friendly_name: Option<String>,
        /// A group (repeat, or separate with commas).
        #[arg(long = "group", value_delimiter = ',')]
        groups: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List users.
    List {
        /// Output format.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show one user.
    Show {
        /// The username.
        username: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a user; its tokens stop working at once, and a user it had an external id of is
    /// not created again at login (see `users removed` and `users readmit`).
    Remove {
        /// The username.
        username: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the identities of removed users, which automatic user creation refuses.
    Removed {
        /// Output format.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Let a removed user's identity be created again at its next login.
    Readmit {
        /// The external id (as `users removed` lists it).
        external_id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub(crate) async fn store(
    config: &ConfigArg,
) -> anyhow::Result<std::sync::Arc<dyn lakests_core::Store>> {
    let cfg = config.load_for_database()?;
    Ok(lakests_store::open(&cfg.database, &cfg.sqlite_path()).await?)
}

fn user_json(u: &UserRecord) -> serde_json::Value {
    json!({
        "username": u.username,
        "external_id": u.external_id,
        "email": u.email,
        "friendly_name": u.friendly_name,
        "groups": u.groups,
        "created_at": u.created_at,
    })
}

fn print_users(users: &[UserRecord], output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&users.iter().map(user_json).collect::<Vec<_>>())?
        ),
        Output::Table => {
            let rows: Vec<[String; 5]> = users
                .iter()
                .map(|u| {
                    [
                        u.username.clone(),
                        u.external_id.clone().unwrap_or_else(|| "-".into()),
                        u.email.clone().unwrap_or_else(|| "-".into()),
                        u.friendly_name.clone().unwrap_or_else(|| "-".into()),
                        if u.groups.is_empty() {
                            "-".into()
                        } else {
                            u.groups.join(",")
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "USERNAME",
                    "EXTERNAL ID",
                    "EMAIL",
                    "FRIENDLY NAME",
                    "GROUPS",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

/// Prints aligned columns. Every cell is escaped with [`printable`]: values come from identity
/// providers and clients, and must not steer the operator's terminal.
pub(crate) fn print_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| row.clone().map(|cell| printable(&cell).into_owned()))
        .collect();
    let rows = rows.as_slice();
    let mut widths = headers.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub async fn run_users(cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Add {
            username,
            external_id,
            email,
            friendly_name,
            groups,
            config,
        } => {
            check_name("username", &username)?;
            if let Some(x) = &external_id {
                check_name("external id", x)?;
            }
            let mut groups: Vec<String> = groups
                .into_iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
            for g in &groups {
                check_name("group", g)?;
            }
            groups.sort();
            groups.dedup();
            let store = store(&config).await?;
            // Adding a user for an identity is the administrator's explicit decision: it
            // readmits an identity whose user was removed.
            if let Some(x) = &external_id
                && store.readmit_identity(x).await?
            {
                println!(
                    "readmitted identity {} (its user had been removed)",
                    printable(x)
                );
            }
            let user = UserRecord {
                username,
                external_id,
                email,
                friendly_name,
                groups,
                created_at: SystemClock.now(),
            };
            match store.create_user(&user).await {
                Ok(()) => {
                    match &user.external_id {
                        Some(x) => println!(
                            "created user {} (external id {})",
                            printable(&user.username),
                            printable(x)
                        ),
                        None => println!(
                            "created user {} (no external id: STS login cannot reach it until one is set)",
                            printable(&user.username)
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::AlreadyExists(what)) => {
                    eprintln!("error: {} already exists", printable(&what));
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        UsersCommand::List { output, config } => {
            let users = store(&config).await?.list_users().await?;
            print_users(&users, output)?;
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Show {
            username,
            output,
            config,
        } => match store(&config).await?.get_user(&username).await? {
            Some(u) => {
                match output {
                    Output::Json => println!("{}", serde_json::to_string_pretty(&user_json(&u))?),
                    Output::Table => {
                        let show = |v: Option<&str>| printable(v.unwrap_or("-")).into_owned();
                        println!("username:      {}", printable(&u.username));
                        println!("external id:   {}", show(u.external_id.as_deref()));
                        println!("email:         {}", show(u.email.as_deref()));
                        println!("friendly name: {}", show(u.friendly_name.as_deref()));
                        println!(
                            "groups:        {}",
                            if u.groups.is_empty() {
                                "-".into()
                            } else {
                                printable(&u.groups.join(",")).into_owned()
                            }
                        );
                        println!("created at:    {}", u.created_at);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("error: no user named \"{}\"", printable(&username));
                Ok(ExitCode::FAILURE)
            }
        },
        UsersCommand::Remove { username, config } => {
            let store = store(&config).await?;
            let external_id = store.get_user(&username).await?.and_then(|u| u.external_id);
            if store.delete_user(&username).await? {
                match external_id {
                    Some(x) => println!(
                        "removed user {}; identity {} will not be created again at login \
                         (lakests users readmit {} undoes that)",
                        printable(&username),
                        printable(&x),
                        printable(&x)
                    ),
                    None => println!("removed user {}", printable(&username)),
                }
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no user named \"{}\"", printable(&username));
                Ok(ExitCode::FAILURE)
            }
        }
        UsersCommand::Removed { output, config } => {
            let removed = store(&config).await?.list_removed_identities().await?;
            match output {
                Output::Json => {
                    let items: Vec<_> = removed
                        .iter()
                        .map(|r| {
                            json!({
                                "external_id": r.external_id,
                                "username": r.username,
                                "removed_at": r.removed_at,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&items)?);
                }
                Output::Table => {
                    let rows: Vec<[String; 3]> = removed
                        .iter()
                        .map(|r| {
                            [
                                r.external_id.clone(),
                                r.username.clone(),
                                r.removed_at.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["EXTERNAL ID", "USERNAME", "REMOVED AT"], &rows);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Readmit {
            external_id,
            config,
        } => {
            if store(&config).await?.readmit_identity(&external_id).await? {
                println!(
                    "readmitted identity {}: its next login may create a user again",
                    printable(&external_id)
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: identity \"{}\" is not among the removed ones (lakests users removed lists them)",
                    printable(&external_id)
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
