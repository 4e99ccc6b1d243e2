//! Runs the third-party OpenID Provider of `tests/oidc-provider` (panva's oidc-provider from
//! npm) as a child process, and stops it on drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The confidential client's secret, as `server.mjs` registers it.
pub const CONFIDENTIAL_SECRET: &str = "lakests-confidential-secret-for-tests-only";

pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `tests/oidc-provider/tls/ca.pem`: the CA of the HTTPS test certificate.
pub fn test_ca() -> PathBuf {
    fixture_dir().join("tls/ca.pem")
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

impl OidcProvider {
    /// Starts `node tests/oidc-provider/server.mjs 0` and waits (up to 3 tries of 20 s) for its
    /// `READY <issuer>` line. Fails loudly when the npm packages are not installed.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Like [`OidcProvider::start`], over HTTPS with the test certificate of
    /// `tests/oidc-provider/tls` when `tls` is set.
    pub async fn start_with(tls: bool) -> Self {
        Self::start_with_env(tls, &[]).await
    }

    /// Like [`OidcProvider::start_with`], with these environment variables set for
    /// `server.mjs` (e.g. `LAKESTS_UI_REDIRECT_URIS`).
    pub async fn start_with_env(tls: bool, env: &[(&str, &str)]) -> Self {
        // One start at a time: each start loads oidc-provider and generates an RSA key, and a
        // dozen of them at once on a 2-core CI machine can take longer than any sane timeout.
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = STARTING.lock().await;
        let dir = fixture_dir();
        let dir = dir.canonicalize().unwrap_or(dir);
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the oidc-provider npm package is missing: run `npm ci --prefix {}` (scripts/test.sh does it)",
            dir.display()
        );
        // A start normally takes about a second; a rare start that hangs (seen once on a loaded
        // CI machine) is killed and tried again, at most three times, never silently.
        for attempt in 1..=3 {
            if let Some(started) = Self::try_start(&dir, tls, env).await {
                return started;
            }
            eprintln!("oidc-provider did not print READY within 20 s (attempt {attempt} of 3)");
        }
        panic!("oidc-provider did not start in three attempts of 20 s each");
    }

    async fn try_start(dir: &std::path::Path, tls: bool, env: &[(&str, &str)]) -> Option<Self> {
        let mut child = Command::new("node")
            .envs(env.iter().copied())
            .arg("server.mjs")
            .arg("0")
            .args(tls.then_some("--tls"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (is Node.js installed?): {e}"));
        // Pass the provider's errors on to the test output, without its start-up warnings
        // (in-memory adapter, Node.js version) that every run repeats.
        let stderr = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("oidc-provider: {line}");
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return Some(issuer.trim().to_owned());
                }
            }
            None
        })
        .await;
        let issuer = match ready {
            Ok(Some(issuer)) => issuer,
            Ok(None) => panic!("oidc-provider exited before printing READY"),
            Err(_) => {
                let _ = child.kill().await;
                return None;
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self { issuer, child })
    }
}
