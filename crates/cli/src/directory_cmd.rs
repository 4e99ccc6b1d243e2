//! `lakests groups|policies|credentials ...` and `lakests lakefs-config`: the directory that
//! lakeFS's authorization API serves, administered with the same rules as the API (the use
//! cases of `lakests-authz`), without SQL and without a running server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use lakests_api::authz::{GroupCreation, List, Policy};
use lakests_authz::service::PageQuery;
use lakests_authz::{AuthzError, AuthzService, SecretBox};
use lakests_config::Config;
use lakests_core::SystemClock;
use serde::Serialize;

use crate::ConfigArg;
use crate::users::Output;

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Add a group.
    Add {
        /// The group's name.
        name: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List groups.
    List(Common),
    /// Show a group with its members and policies.
    Show {
        /// The group's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a group (its memberships and policy attachments go with it).
    Remove {
        /// The group's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Add a user to a group.
    AddMember {
        /// The group.
        group: String,
        /// The username.
        user: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// The group.
        group: String,
        /// The username.
        user: String,
        #[command(flatten)]
        common: Common,
    },
    /// Attach a policy to a group.
    AttachPolicy {
        /// The group.
        group: String,
        /// The policy.
        policy: String,
        #[command(flatten)]
        common: Common,
    },
    /// Detach a policy from a group.
    DetachPolicy {
        /// The group.
        group: String,
        /// The policy.
        policy: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Add a policy in lakeFS's statement format (validated: a malformed one is refused).
    Add {
        /// The policy's name.
        name: String,
        /// The statements as JSON, e.g.
        /// '[{"effect":"allow","action":["fs:*"],"resource":"*"}]'.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        statement: Option<String>,
        /// A file with the statements (a JSON array, or a policy object with `statement`).
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// List policies.
    List(Common),
    /// Show a policy.
    Show {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a policy (its attachments go with it).
    Remove {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Attach a policy to a user.
    Attach {
        /// The policy.
        policy: String,
        /// The username.
        user: String,
        #[command(flatten)]
        common: Common,
    },
    /// Detach a policy from a user.
    Detach {
        /// The policy.
        policy: String,
        /// The username.
        user: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create an access key for a user (S3 gateway, lakectl). The secret is shown once.
    Create {
        /// The username.
        user: String,
        /// Use this access key id (with --secret-access-key) instead of a generated one.
        #[arg(long, requires = "secret_access_key")]
        access_key_id: Option<String>,
        /// Use this secret (with --access-key-id).
        #[arg(long, requires = "access_key_id")]
        secret_access_key: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List a user's access keys (never their secrets).
    List {
        /// The username.
        user: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a user's access key.
    Remove {
        /// The username.
        user: String,
        /// The access key id.
        access_key_id: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Output format and configuration of every directory command.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    config: ConfigArg,
}

/// The use cases over the configured store. Sealing secrets needs `auth.encrypt.secret_key`;
/// without it only commands that never touch a secret work.
async fn service(common: &Common, needs_key: bool) -> anyhow::Result<AuthzService> {
    let cfg = common.config.load_for_database()?;
    let key = match (&cfg.auth.encrypt.secret_key, needs_key) {
        (Some(k), _) => k.expose().as_bytes().to_vec(),
        (None, true) => anyhow::bail!(
            "auth.encrypt.secret_key is required: secret access keys are sealed with a key derived from it"
        ),
        (None, false) => {
            let mut random = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut random)
                .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
            random
        }
    };
    let store = lakests_store::open(&cfg.database, &cfg.sqlite_path()).await?;
    let secrets = SecretBox::new(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(AuthzService::new(store, Arc::new(SystemClock), secrets))
}

/// Prints `value` as JSON, or `human` for people; an error as `error: <message>` with exit 1.
fn report<T: Serialize>(
    output: Output,
    result: Result<T, AuthzError>,
    human: impl FnOnce(&T),
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(v) => {
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                Output::Table => human(&v),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(AuthzError::Internal(m)) => Err(anyhow::anyhow!(m)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn done(output: Output, result: Result<(), AuthzError>, what: String) -> anyhow::Result<ExitCode> {
    report(
        output,
        result.map(|()| serde_json::json!({"ok": true, "done": what.clone()})),
        |_| println!("{what}"),
    )
}

/// Every page of a list, following `next_offset`.
async fn all<T, F, Fut>(mut page: F) -> Result<Vec<T>, AuthzError>
where
    F: FnMut(PageQuery) -> Fut,
    Fut: std::future::Future<Output = Result<List<T>, AuthzError>>,
{
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let list = page(PageQuery {
            after: after.clone(),
            amount: Some("1000".into()),
            prefix: String::new(),
        })
        .await?;
        out.extend(list.results);
        if list.pagination.next_offset.is_empty() {
            return Ok(out);
        }
        after = list.pagination.next_offset;
    }
}

fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

pub async fn run_groups(cmd: GroupsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GroupsCommand::Add {
            name,
            description,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s
                .create_group(GroupCreation {
                    id: name,
                    description,
                })
                .await;
            report(common.output, r, |g| println!("created group {}", g.name))
        }
        GroupsCommand::List(common) => {
            let s = service(&common, false).await?;
            let r = all(|q| {
                let s = &s;
                async move { s.list_groups(&q).await }
            })
            .await;
            report(common.output, r, |groups| {
                for g in groups {
                    println!("{}  {}", g.name, dash(&g.description));
                }
            })
        }
        GroupsCommand::Show { name, common } => {
            let s = service(&common, false).await?;
            let r = async {
                let group = s.get_group(&name).await?;
                let members = all(|q| {
                    let (s, name) = (&s, &name);
                    async move { s.list_members(name, &q).await }
                })
                .await?;
                let policies = all(|q| {
                    let (s, name) = (&s, &name);
                    async move { s.list_group_policies(name, &q).await }
                })
                .await?;
                Ok(serde_json::json!({
                    "group": group,
                    "members": members.iter().map(|u| &u.username).collect::<Vec<_>>(),
                    "policies": policies.iter().map(|p| &p.name).collect::<Vec<_>>(),
                }))
            }
            .await;
            report(common.output, r, |v| {
                println!(
                    "group:       {}",
                    v["group"]["name"].as_str().unwrap_or("-")
                );
                println!(
                    "description: {}",
                    v["group"]["description"].as_str().unwrap_or("-")
                );
                println!("members:     {}", join(&v["members"]));
                println!("policies:    {}", join(&v["policies"]));
            })
        }
        GroupsCommand::Remove { name, common } => {
            let s = service(&common, false).await?;
            let r = s.delete_group(&name).await;
            done(common.output, r, format!("removed group {name}"))
        }
        GroupsCommand::AddMember {
            group,
            user,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.add_member(&group, &user).await;
            done(common.output, r, format!("added {user} to {group}"))
        }
        GroupsCommand::RemoveMember {
            group,
            user,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.remove_member(&group, &user).await;
            done(common.output, r, format!("removed {user} from {group}"))
        }
        GroupsCommand::AttachPolicy {
            group,
            policy,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.attach_group_policy(&group, &policy).await;
            done(
                common.output,
                r,
                format!("attached {policy} to group {group}"),
            )
        }
        GroupsCommand::DetachPolicy {
            group,
            policy,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.detach_group_policy(&group, &policy).await;
            done(
                common.output,
                r,
                format!("detached {policy} from group {group}"),
            )
        }
    }
}

fn join(v: &serde_json::Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

pub async fn run_policies(cmd: PoliciesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PoliciesCommand::Add {
            name,
            statement,
            file,
            common,
        } => {
            let text = match (statement, file) {
                (Some(s), _) => s,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?,
                (None, None) => anyhow::bail!("give --statement or --file"),
            };
            let value: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: the statement is not valid JSON: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let statement = match value {
                serde_json::Value::Object(mut o) if o.contains_key("statement") => {
                    o.remove("statement").unwrap_or_default()
                }
                other => other,
            };
            let s = service(&common, false).await?;
            let r = s
                .create_policy(Policy {
                    name,
                    creation_date: None,
                    statement,
                    acl: None,
                })
                .await;
            report(common.output, r, |p| println!("created policy {}", p.name))
        }
        PoliciesCommand::List(common) => {
            let s = service(&common, false).await?;
            let r = all(|q| {
                let s = &s;
                async move { s.list_policies(&q).await }
            })
            .await;
            report(common.output, r, |policies| {
                for p in policies {
                    println!("{}  {}", p.name, p.statement);
                }
            })
        }
        PoliciesCommand::Show { name, common } => {
            let s = service(&common, false).await?;
            let r = s.get_policy(&name).await;
            report(common.output, r, |p| {
                println!("policy:    {}", p.name);
                println!(
                    "statement: {}",
                    serde_json::from_str::<serde_json::Value>(p.statement.get())
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or_else(|_| p.statement.get().to_owned())
                );
            })
        }
        PoliciesCommand::Remove { name, common } => {
            let s = service(&common, false).await?;
            let r = s.delete_policy(&name).await;
            done(common.output, r, format!("removed policy {name}"))
        }
        PoliciesCommand::Attach {
            policy,
            user,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.attach_user_policy(&user, &policy).await;
            done(
                common.output,
                r,
                format!("attached {policy} to user {user}"),
            )
        }
        PoliciesCommand::Detach {
            policy,
            user,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.detach_user_policy(&user, &policy).await;
            done(
                common.output,
                r,
                format!("detached {policy} from user {user}"),
            )
        }
    }
}

pub async fn run_credentials(cmd: CredentialsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CredentialsCommand::Create {
            user,
            access_key_id,
            secret_access_key,
            common,
        } => {
            let s = service(&common, true).await?;
            let r = s
                .create_credentials(
                    &user,
                    access_key_id.as_deref(),
                    secret_access_key.as_deref(),
                )
                .await;
            report(common.output, r, |c| {
                println!("access key id:     {}", c.access_key_id);
                println!("secret access key: {}", c.secret_access_key);
                println!("(the secret is shown once; lakests keeps it sealed)");
            })
        }
        CredentialsCommand::List { user, common } => {
            let s = service(&common, false).await?;
            let r = all(|q| {
                let (s, user) = (&s, &user);
                async move { s.list_credentials(user, &q).await }
            })
            .await;
            report(common.output, r, |keys| {
                for k in keys {
                    println!("{}  created {}", k.access_key_id, k.creation_date);
                }
            })
        }
        CredentialsCommand::Remove {
            user,
            access_key_id,
            common,
        } => {
            let s = service(&common, false).await?;
            let r = s.delete_credentials(&user, &access_key_id).await;
            done(
                common.output,
                r,
                format!("removed access key {access_key_id} of {user}"),
            )
        }
    }
}

/// The `auth.ui_config` keys of the web-UI login (`authenticator.ui_sso`), as the browser
/// reaches lakests (`public_url`); a hint when it is off.
fn ui_config_keys(cfg: &Config) -> String {
    let ui = &cfg.authenticator.ui_sso;
    let public = ui.public_url.as_deref().filter(|_| ui.enabled);
    let Some(public) = public else {
        return "    # web-UI single sign-on: set authenticator.ui_sso (docs/lakefs-ui-sso.md) to get\n    # fallback_login_url, logout_url and login_cookie_names here\n".into();
    };
    let base = public.trim_end_matches('/');
    let login = format!("{base}{}", lakests_authenticator::LOGIN_PATH);
    let logout = format!("{base}{}", lakests_authenticator::LOGOUT_PATH);
    format!(
        "    # web-UI single sign-on through lakests (docs/lakefs-ui-sso.md). lakeFS v1.84's UI\n\
         \x20   # ignores login_url (set for older UIs); its login form's fallback button is the way in.\n\
         \x20   login_url: {login}\n\
         \x20   fallback_login_url: {login}\n\
         \x20   fallback_login_label: Sign in with single sign-on\n\
         \x20   logout_url: {logout}\n\
         \x20   login_cookie_names:\n\
         \x20     - {}\n",
        lakests_core::ui_session::COOKIE_NAME
    )
}

/// `lakests lakefs-config`: the lakeFS YAML that points a lakeFS at this lakests.
#[derive(Debug, Args)]
pub struct LakefsConfigArgs {
    /// The base URL lakeFS reaches lakests at (default: from the listen addresses).
    #[arg(long)]
    base_url: Option<String>,
    /// Print the shared secret in clear instead of a reference to it.
    #[arg(long)]
    show_secret: bool,
    #[command(flatten)]
    config: ConfigArg,
}

pub fn lakefs_config(args: LakefsConfigArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config.load()?;
    print!(
        "{}",
        lakefs_yaml(&cfg, args.base_url.as_deref(), args.show_secret)?
    );
    Ok(ExitCode::SUCCESS)
}

/// The lakeFS configuration for `cfg`: both endpoints, rbac, and the secret by reference
/// (`LAKEFS_AUTH_ENCRYPT_SECRET_KEY`) unless `show_secret`.
pub fn lakefs_yaml(
    cfg: &Config,
    base_url: Option<&str>,
    show_secret: bool,
) -> anyhow::Result<String> {
    if !cfg.authorization.enabled {
        anyhow::bail!("authorization.enabled is false: lakeFS OSS needs the authorization API");
    }
    let authz_addr = cfg
        .authorization
        .listen_address
        .clone()
        .unwrap_or_else(|| cfg.authenticator.listen_address.clone());
    let authz = match base_url {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None => format!("http://{authz_addr}/api/v1"),
    };
    let authn = match base_url {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None => format!("http://{}/api/v1", cfg.authenticator.listen_address),
    };
    let secret = match (&cfg.auth.encrypt.secret_key, show_secret) {
        (Some(k), true) => format!("    secret_key: {}\n", serde_json::to_string(k.expose())?),
        _ => "    # secret_key: the value of lakests's auth.encrypt.secret_key; set it as\n    # LAKEFS_AUTH_ENCRYPT_SECRET_KEY rather than in this file (lakests lakefs-config --show-secret prints it)\n".into(),
    };
    let token = if cfg.authorization.api_token.is_some() {
        "    # token: lakests's authorization.api_token (or omit it: lakeFS then signs a JWT with the secret key)\n"
    } else {
        ""
    };
    let mut out = String::new();
    out.push_str("# lakeFS configuration for lakests (lakests lakefs-config)\n");
    out.push_str("auth:\n  encrypt:\n");
    out.push_str(&secret);
    out.push_str(&format!("  api:\n    endpoint: {authz}\n"));
    out.push_str(token);
    out.push_str("  ui_config:\n    rbac: external\n");
    out.push_str(&ui_config_keys(cfg));
    if cfg.authenticator_enabled() {
        out.push_str(&format!(
            "  authentication_api:\n    endpoint: {authn}\n    external_principals_enabled: false\n"
        ));
    }
    Ok(out)
}
