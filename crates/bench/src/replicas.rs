//! Section 9 (issue 14, target 5): two `lakests serve` replicas on one PostgreSQL, with nothing
//! in front of them but the load generator spreading requests over both. A session-mode login
//! begun on one finishes on the other; a user removed through one is refused by the other on
//! the very next request; the pair's throughput is reported beside one node's.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{
    Ctx, Proc, REDIRECT, RUN_SECS, SECRET, Wrk, free_port, parse_wrk, recreate_database, verdict,
};

const API_TOKEN: &str = "bench-replicas-api-token";
const ROUNDS: usize = 50;
const CROSS_LOGINS: usize = 20;

struct Replica {
    sts: String,
    authz: String,
    _proc: Proc,
}

/// Runs the section and returns its Markdown.
pub async fn section(ctx: &Ctx) -> anyhow::Result<String> {
    let dir = ctx.out.join("replicas");
    std::fs::create_dir_all(&dir)?;
    let database = "lakests_bench_replicas";
    recreate_database(database)?;
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");

    let idp_port = free_port()?;
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let idp_cfg = json!({
        "data_dir": dir.join("idp"),
        "idp": {
            "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
            "signing_alg": "ES256",
            "users": [{"sub": "alice", "email": "alice@example.com"}],
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        },
    });
    let _idp = start(ctx, &dir, "idp", &idp_cfg, &format!("{issuer}/healthcheck")).await?;

    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let (sts_port, authn_port, authz_port) = (free_port()?, free_port()?, free_port()?);
        let cfg = json!({
            "listen_address": format!("127.0.0.1:{sts_port}"),
            "data_dir": dir.join(name),
            "database": {"type": "postgres", "postgres": {"connection_string": url}},
            "auth": {
                "encrypt": {"secret_key": SECRET},
                "sts": {"rate_limit_per_second": 0, "auto_create_users": true},
            },
            "authenticator": {
                "listen_address": format!("127.0.0.1:{authn_port}"),
                "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT], "pkce": "session"}],
            },
            "authorization": {
                "enabled": true,
                "listen_address": format!("127.0.0.1:{authz_port}"),
                "api_token": API_TOKEN,
            },
        });
        let sts = format!("127.0.0.1:{sts_port}");
        let proc = start(
            ctx,
            &dir,
            name,
            &cfg,
            &format!("http://{sts}/api/v1/healthcheck"),
        )
        .await?;
        replicas.push(Replica {
            sts,
            authz: format!("http://127.0.0.1:{authz_port}/api/v1"),
            _proc: proc,
        });
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    let http = &ctx.http;

    // Session-mode logins begun on one replica and finished on the other, both ways.
    let mut crossed = 0;
    let mut token = String::new();
    for i in 0..CROSS_LOGINS {
        let (begin, finish) = if i % 2 == 0 { (a, b) } else { (b, a) };
        token = session_login(http, &begin.sts, &finish.sts)
            .await
            .with_context(|| format!("cross-replica login {i}"))?;
        crossed += 1;
    }

    // Removal through A, refused by B on the next request.
    let mut refused_at_once = 0;
    for i in 0..ROUNDS {
        let user = format!("removed{i:02}");
        let resp = http
            .post(format!("{}/auth/users", a.authz))
            .bearer_auth(API_TOKEN)
            .json(&json!({"username": user}))
            .send()
            .await?;
        if resp.status() != 201 {
            bail!("creating {user} through A: {}", resp.status());
        }
        let t = user_token(&user)?;
        for _ in 0..2 {
            // Served (and cached) by B.
            let status = user_status(http, &b.sts, &t).await?;
            if status != 200 {
                bail!("{user} on B before its removal: {status}");
            }
        }
        let resp = http
            .delete(format!("{}/auth/users/{user}", a.authz))
            .bearer_auth(API_TOKEN)
            .send()
            .await?;
        if resp.status() != 204 {
            bail!("removing {user} through A: {}", resp.status());
        }
        if user_status(http, &b.sts, &t).await? == 401 {
            refused_at_once += 1;
        }
    }

    // Throughput: `GET /api/v1/user` and logins, one node against the pair.
    let one_user = wrk(&[(&a.sts, 64)], &token, ctx)?;
    let pair_user = wrk(&[(&a.sts, 32), (&b.sts, 32)], &token, ctx)?;
    let one_login = logins(ctx, &[&a.sts]).await?;
    let pair_login = logins(ctx, &[&a.sts, &b.sts]).await?;

    let mut md = String::new();
    writeln!(
        md,
        "## 9. Two replicas on one PostgreSQL\n\nTwo `lakests serve` processes (STS server with the authenticator in-process, session-mode PKCE, and the authorization API; `auth.cache` on, the default) on one PostgreSQL database, one development IdP (ES256). No proxy: the load generator addresses both.\n"
    )?;
    writeln!(
        md,
        "| check | result |\n| --- | ---: |\n| session-mode logins begun on one replica and finished on the other (alternating) | {crossed} of {CROSS_LOGINS} |\n| users removed through A (authorization API) and refused by B on the very next `GET /api/v1/user` (B had just served them from its cache) | {refused_at_once} of {ROUNDS} |\n"
    )?;
    writeln!(
        md,
        "| load | one node (A) | the pair (A and B) | pair / one |\n| --- | ---: | ---: | ---: |"
    )?;
    writeln!(
        md,
        "| `GET /api/v1/user`, requests/s (wrk, 64 connections: all on A, or 32 on each) | {:.0} | {:.0} | {:.2}x |",
        one_user,
        pair_user,
        pair_user / one_user
    )?;
    writeln!(
        md,
        "| session-mode logins/s ({} in flight: all on A, or each begun on one and finished on the other) | {:.0} | {:.0} | {:.2}x |\n",
        super::LOGIN_CONCURRENCY,
        one_login,
        pair_login,
        pair_login / one_login
    )?;
    writeln!(
        md,
        "Targets: a login crosses replicas: **{crossed} of {CROSS_LOGINS}** ({}); a removal is refused by the other replica within one request: **{refused_at_once} of {ROUNDS}** ({}). On two cores shared by both replicas, PostgreSQL, the IdP and the load generator the pair cannot double one node; the ratio above is what it does.\n",
        verdict(crossed == CROSS_LOGINS),
        verdict(refused_at_once == ROUNDS)
    )?;
    Ok(md)
}

async fn start(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    cfg: &Value,
    health: &str,
) -> anyhow::Result<Proc> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, cfg.to_string())?;
    let started = Instant::now();
    let child = ctx.lakests(
        &["serve", "--config", &path.to_string_lossy()],
        &dir.join(format!("{name}.log")),
    )?;
    let proc = Proc {
        name: name.into(),
        child,
    };
    ctx.wait_healthy(health, started)
        .await
        .with_context(|| format!("{name} did not start; see {}", dir.display()))?;
    Ok(proc)
}

/// `POST /api/v1/sts/authorize` on `begin`, the IdP's non-interactive sign-in, then the
/// exchange and `POST /api/v1/sts/login` on `finish`; returns the lakeFS token.
async fn session_login(
    http: &reqwest::Client,
    begin: &str,
    finish: &str,
) -> anyhow::Result<String> {
    let started: Value = http
        .post(format!("http://{begin}/api/v1/sts/authorize"))
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await?
        .json()
        .await?;
    let mut authorize = url::Url::parse(
        started["authorization_url"]
            .as_str()
            .with_context(|| format!("no authorization_url: {started}"))?,
    )?;
    authorize
        .query_pairs_mut()
        .append_pair("login_hint", "alice");
    let resp = http.get(authorize).send().await?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("the IdP did not redirect")?
        .to_owned();
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no code: {location}"))?;
    let exchanged: Value = http
        .post(format!("http://{finish}/api/v1/sts/authorize/exchange"))
        .json(&json!({"state": started["state"], "redeem_secret": started["redeem_secret"]}))
        .send()
        .await?
        .json()
        .await?;
    let resp = http
        .post(format!("http://{finish}/api/v1/sts/login"))
        .json(&json!({"code": code, "state": exchanged["state"], "redirect_uri": REDIRECT}))
        .send()
        .await?;
    if resp.status() != 200 {
        bail!(
            "login on {finish}: {} {}",
            resp.status(),
            resp.text().await?
        );
    }
    let body: Value = resp.json().await?;
    Ok(body["token"].as_str().context("no token")?.to_owned())
}

/// A lakeFS login token for `user`, as the STS server mints them.
fn user_token(user: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "aud": "login", "iat": now, "exp": now + 600, "jti": format!("bench-{user}")}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

async fn user_status(http: &reqwest::Client, sts: &str, token: &str) -> anyhow::Result<u16> {
    Ok(http
        .get(format!("http://{sts}/api/v1/user"))
        .bearer_auth(token)
        .send()
        .await?
        .status()
        .as_u16())
}

/// Requests/s of one `wrk` per target, run at the same time, summed.
fn wrk(targets: &[(&str, u32)], token: &str, ctx: &Ctx) -> anyhow::Result<f64> {
    let mut children = Vec::new();
    for (i, (sts, connections)) in targets.iter().enumerate() {
        let out = std::fs::File::create(
            ctx.out
                .join(format!("replicas/wrk-{}-{i}.txt", targets.len())),
        )?;
        let child = Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{RUN_SECS}s"),
                "--latency",
                "-H",
                &format!("Authorization: Bearer {token}"),
                &format!("http://{sts}/api/v1/user"),
            ])
            .stdout(out)
            .spawn()
            .context("wrk failed to run")?;
        children.push(child);
    }
    let mut total = 0.0;
    for (i, mut child) in children.into_iter().enumerate() {
        child.wait()?;
        let path = ctx
            .out
            .join(format!("replicas/wrk-{}-{i}.txt", targets.len()));
        let text = std::fs::read_to_string(&path)?;
        if text.contains("Non-2xx") || text.contains("Socket errors") {
            bail!("wrk saw errors: {}", path.display());
        }
        let w: Wrk = parse_wrk(&text).with_context(|| format!("cannot read {}", path.display()))?;
        total += w.rps;
    }
    Ok(total)
}

/// Session-mode logins/s for [`RUN_SECS`] with [`super::LOGIN_CONCURRENCY`] in flight: with
/// one replica each login begins and ends on it; with two, task `i` begins on one and finishes
/// on the other, alternating.
async fn logins(ctx: &Ctx, sts: &[&str]) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(RUN_SECS);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..super::LOGIN_CONCURRENCY {
        let begin = sts[i % sts.len()].to_owned();
        let finish = sts[(i + 1) % sts.len()].to_owned();
        let (http, done) = (ctx.http.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline
                && done.load(Ordering::SeqCst) < super::MAX_LOGINS_PER_RUN
            {
                session_login(&http, &begin, &finish).await?;
                done.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(done.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64())
}
