//! `lakests quickstart`: the STS server, the authenticator and the development IdP in one
//! process on 127.0.0.1 with SQLite, demo users already mapped. Development only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use lakests_config::{Config, Secret};
use lakests_core::{Clock, StoreError, SystemClock, UserRecord};
use serde_json::json;

/// Options of `lakests quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where the SQLite database, the IdP's keys and the generated secret key live; kept
    /// across restarts.
    #[arg(long, default_value = "lakests-quickstart")]
    data_dir: PathBuf,
    /// Port of the STS server; the authenticator uses the next one and the IdP the one after.
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..=65533))]
    port: u16,
    /// Sign in without the IdP's page: `/authorize?...&login_hint=<sub>` redirects straight
    /// back with a code (for scripts and CI).
    #[arg(long)]
    non_interactive: bool,
}

/// The demo users: (sub and username, group, display name).
pub const DEMO_USERS: [(&str, &str, &str); 2] =
    [("alice", "admins", "Alice"), ("bob", "developers", "Bob")];

/// The redirect URI `lakests login` registers by default; any loopback port is accepted.
const CALLBACK: &str = "http://127.0.0.1:8085/callback";

pub async fn run(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", data_dir.display()))?;
    let secret = secret_key(&data_dir.join("secret_key"))?;

    let (sts_port, authn_port, idp_port) = (args.port, args.port + 1, args.port + 2);
    let issuer = format!("http://127.0.0.1:{idp_port}");
    // The quickstart configuration goes through the same loader as a user's file (but not the
    // environment, so a stray LAKESTS_* variable cannot change it).
    let users: Vec<serde_json::Value> = DEMO_USERS
        .iter()
        .map(|(sub, group, name)| {
            json!({"sub": sub, "email": format!("{sub}@example.com"), "name": name, "groups": [group]})
        })
        .collect();
    let redirect_uris = json!([CALLBACK, "http://localhost:8085/callback"]);
    let doc = json!({
        "listen_address": format!("127.0.0.1:{sts_port}"),
        "data_dir": data_dir,
        "auth": {"encrypt": {"secret_key": secret.expose()}},
        "authenticator": {
            "listen_address": format!("127.0.0.1:{authn_port}"),
            "providers": [{
                "name": "quickstart", "issuer": issuer, "client_id": "lakests",
                "redirect_uris": redirect_uris, "allow_loopback_any_port": true, "pkce": "state",
            }],
        },
        // lakeFS's auth.api.endpoint, on the authenticator's listener: one base URL for lakeFS.
        "authorization": {"enabled": true},
        "idp": {
            "enabled": true,
            "listen_address": format!("127.0.0.1:{idp_port}"),
            "issuer": issuer,
            "interactive": !args.non_interactive,
            "users": users,
            "clients": [{"client_id": "lakests", "redirect_uris": redirect_uris}],
        },
    });
    let config = Config::from_sources(Some(&doc.to_string()), Vec::new())?;
    let lakefs_yaml = crate::directory_cmd::lakefs_yaml(&config, None, false)?;
    lakests_server::telemetry::init(&config.logging)?;

    // Users are stored under the external id the authenticator returns: <provider>:<sub>.
    let provider = config.authenticator.providers[0].clone();
    let app = lakests_server::Application::build(config).await?;
    let store = app.store();
    for (sub, group, name) in DEMO_USERS {
        let user = UserRecord {
            username: sub.into(),
            external_id: Some(provider.external_id(sub)),
            email: Some(format!("{sub}@example.com")),
            friendly_name: Some(name.into()),
            groups: vec![group.into()],
            created_at: SystemClock.now(),
        };
        match store.create_user(&user).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    print_lakefs_config(&lakefs_yaml, &data_dir);
    print_next_steps(sts_port, authn_port, &issuer, &data_dir);
    app.run_until(lakests_http::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the persisted secret key, or generates 32 random bytes (base64url) into a 0600 file.
/// The key is never printed.
fn secret_key(path: &Path) -> anyhow::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(Secret::new(s.trim())),
        Ok(_) => anyhow::bail!(
            "{} is empty: remove it to generate a new key",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    Ok(Secret::new(key))
}

/// The lakeFS OSS configuration that uses this quickstart (users, groups, policies and access
/// keys from lakests; lakeFS's own STS login through the authenticator).
fn print_lakefs_config(yaml: &str, data_dir: &Path) {
    println!(
        "\nTo point a lakeFS OSS at this quickstart, add to its configuration:\n\n{}\nwith LAKEFS_AUTH_ENCRYPT_SECRET_KEY set to the contents of {} (never printed here).\n",
        yaml.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        data_dir.join("secret_key").display()
    );
}

fn print_next_steps(sts_port: u16, authn_port: u16, issuer: &str, data_dir: &Path) {
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "lakests".into());
    let sts = format!("http://127.0.0.1:{sts_port}");
    println!(
        r#"
lakests quickstart is running. DEVELOPMENT ONLY: its IdP signs in the demo users below.

  STS server (lakeFS API)  {sts}
  authenticator            http://127.0.0.1:{authn_port}/api/v1
  development IdP          {issuer}   users: alice (group admins), bob (group developers)
  data                     {data}  (SQLite, IdP keys, secret key; kept across restarts)

Log in from another terminal (a browser opens at the development IdP):

  eval "$({exe} login --endpoint {sts})"

Then use the token from Python with the official lakeFS SDK:

  import lakefs
  client = lakefs.Client()  # reads LAKECTL_SERVER_ENDPOINT_URL and LAKECTL_CREDENTIALS_SESSION_TOKEN
  print(client.sdk_client.auth_api.get_current_user().user.id)

or call from_web_identity yourself with a code from the IdP:

  client = lakefs.client.from_web_identity(code, state, redirect_uri, ttl_seconds=3600, host="{sts}")

Press Ctrl-C to stop."#,
        data = data_dir.display(),
    );
}
