//! The soak (issue 12, "Faults and load"): 10,000 logins and 1,000,000 token verifications
//! (`GET /api/v1/user` with a bearer token, default configuration: one store read each)
//! against `lakests serve` (three processes: IdP, authenticator, STS server, SQLite), at the
//! same time, with 0 errors required and the resident memory of the authenticator and the STS
//! server sampled every second and required flat: no sample after the warm-up above 1.10x the
//! sample taken at its end.
//!
//! Run alone with `./bench/run.sh soak` (or `lakests-bench soak RESULTS_PATH`); it replaces its
//! own section of `bench/RESULTS.md` and leaves the rest alone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Ctx, Proc, REDIRECT, SECRET, free_port, login, rss_kb};

const SOAK_LOGINS: u64 = 10_000;
const SOAK_VERIFICATIONS: u64 = 1_000_000;
const WARMUP_LOGINS: u64 = 1_400;
const WARMUP_SECS: u64 = 10;
/// Logins per second. The development IdP keeps every code 60 s (to detect replays) and at
/// most 10,000 at once: 140/s stays below that. lakests itself is not the limit.
const LOGIN_RATE: u64 = 140;
const LOGIN_CONCURRENCY: usize = 8;
/// One wrk run; the verifications are wrk runs of this length until the count is reached.
const CHUNK_SECS: u64 = 5;
pub(crate) const BEGIN: &str = "<!-- soak: written by `./bench/run.sh soak` -->";
pub(crate) const END: &str = "<!-- /soak -->";

struct SoakSystem {
    procs: Vec<Proc>,
    sts: String,
    idp: String,
}

async fn start(ctx: &Ctx) -> anyhow::Result<SoakSystem> {
    let dir = ctx.out.join("soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (idp_port, authn_port, sts_port) = (free_port()?, free_port()?, free_port()?);
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let common = |data: &str| json!({"data_dir": dir.join(data)});
    let mut idp = common("idp");
    // ID tokens (and the IdP's access tokens) live 60 s so that the IdP's own table of access
    // tokens (10,000 at most) empties as the soak goes.
    idp["idp"] = json!({
        "enabled": true, "listen_address": format!("127.0.0.1:{idp_port}"), "interactive": false,
        "signing_alg": "ES256", "id_token_ttl_seconds": 60,
        "users": [{"sub": "alice", "email": "alice@example.com", "groups": ["admins"]}],
        "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
    });
    let mut authn = common("authn");
    authn["authenticator"] = json!({
        "listen_address": format!("127.0.0.1:{authn_port}"),
        "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
    });
    let mut sts = common("sts");
    sts["listen_address"] = json!(format!("127.0.0.1:{sts_port}"));
    // One client address drives the whole load: the per-client login rate limit is off.
    sts["auth"] = json!({"encrypt": {"secret_key": SECRET},
        "authentication_api": {"endpoint": format!("http://127.0.0.1:{authn_port}/api/v1")},
        "sts": {"rate_limit_per_second": 0}});
    let write = |name: &str, v: &Value| -> anyhow::Result<PathBuf> {
        let p = dir.join(format!("{name}.yaml"));
        std::fs::write(&p, v.to_string())?;
        Ok(p)
    };
    let sts_cfg = write("sts", &sts)?;
    let add = ctx
        .lakests(
            &[
                "users",
                "add",
                "alice",
                "--external-id",
                // The authenticator namespaces external ids by provider name ("dev").
                "dev:alice",
                "--config",
                &sts_cfg.to_string_lossy(),
            ],
            &dir.join("users.log"),
        )?
        .wait()?;
    if !add.success() {
        bail!(
            "lakests users add failed: see {}",
            dir.join("users.log").display()
        );
    }
    let mut procs = Vec::new();
    for (name, cfg, health) in [
        ("idp", write("idp", &idp)?, format!("{issuer}/healthcheck")),
        (
            "authenticator",
            write("authn", &authn)?,
            format!("http://127.0.0.1:{authn_port}/api/v1/healthcheck"),
        ),
        (
            "sts",
            sts_cfg.clone(),
            format!("http://127.0.0.1:{sts_port}/api/v1/healthcheck"),
        ),
    ] {
        let child = ctx.lakests(
            &["serve", "--config", &cfg.to_string_lossy()],
            &dir.join(format!("{name}.log")),
        )?;
        procs.push(Proc {
            name: name.into(),
            child,
        });
        ctx.wait_healthy(&health, Instant::now())
            .await
            .with_context(|| format!("{name} did not start; see {}", dir.display()))?;
    }
    Ok(SoakSystem {
        procs,
        sts: format!("127.0.0.1:{sts_port}"),
        idp: issuer,
    })
}

/// `count` logins at about `LOGIN_RATE` per second; returns (successes, errors, the first
/// error seen).
async fn paced_logins(ctx: &Ctx, sys: &SoakSystem, count: u64) -> (u64, u64, Option<String>) {
    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..LOGIN_CONCURRENCY {
        let (http, idp, sts) = (ctx.http.clone(), sys.idp.clone(), sys.sts.clone());
        let (next, ok, failed, first_error) = (
            next.clone(),
            ok.clone(),
            failed.clone(),
            first_error.clone(),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    break;
                }
                // Login n starts no earlier than n / LOGIN_RATE seconds after the start.
                let due = started + Duration::from_micros(n * 1_000_000 / LOGIN_RATE);
                tokio::time::sleep_until(due.into()).await;
                match login(&http, &idp, &sts).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        first.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let first = first_error.lock().unwrap_or_else(|e| e.into_inner()).take();
    (
        ok.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
        first,
    )
}

/// What wrk did in one run.
#[derive(Default, Debug)]
struct WrkCount {
    requests: u64,
    errors: u64,
}

/// One wrk run against `GET /api/v1/user`; counts requests and every kind of error wrk reports
/// (non-2xx answers, connect, read, write and timeout errors).
fn wrk_chunk(
    out_dir: &Path,
    url: &str,
    token: &str,
    secs: u64,
    n: usize,
) -> anyhow::Result<WrkCount> {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{secs}s")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(url)
        .output()
        .context("wrk failed to run")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(out_dir.join(format!("soak/wrk-{n:03}.txt")), &text)?;
    parse_wrk_count(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk_count(text: &str) -> Option<WrkCount> {
    // "  123456 requests in 5.00s, 12.34MB read"
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut errors = 0u64;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += rest.trim().parse::<u64>().ok()?;
        }
        // "Socket errors: connect 0, read 0, write 0, timeout 0"
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                errors += part.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        }
    }
    Some(WrkCount { requests, errors })
}

/// Runs the soak and writes its section into `results`.
pub async fn run(ctx: &Ctx, results: &Path) -> anyhow::Result<()> {
    let sys = start(ctx).await?;
    let url = format!("http://{}/api/v1/user", sys.sts);
    let judged: Vec<(String, u32)> = sys
        .procs
        .iter()
        .filter(|p| p.name != "idp")
        .map(|p| (p.name.clone(), p.pid()))
        .collect();
    let idp_pid = sys.procs.iter().find(|p| p.name == "idp").map(Proc::pid);

    // Warm-up: caches, pools, allocator arenas, with the same mix as the soak (logins and
    // verifications at once, as many connections), so that what the soak judges is growth
    // under that load and not the first minute of it.
    let token = super::login(&ctx.http, &sys.idp, &sys.sts).await?.0;
    let warm_verifications = {
        let (out, url, token) = (ctx.out.clone(), url.clone(), token.clone());
        tokio::task::spawn_blocking(move || wrk_chunk(&out, &url, &token, WARMUP_SECS, 0))
    };
    let ((_, warm_failed, warm_error), warm) =
        tokio::join!(paced_logins(ctx, &sys, WARMUP_LOGINS), warm_verifications);
    if warm_failed > 0 {
        bail!("{warm_failed} warm-up logins failed: {warm_error:?}");
    }
    let warm = warm??;
    if warm.errors > 0 {
        bail!("wrk saw {} errors during the warm-up", warm.errors);
    }
    let baseline: Vec<u64> = judged.iter().map(|(_, pid)| rss_kb(*pid).0).collect();

    // The soak: logins and verifications at the same time, memory sampled every second.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pids) = (stop.clone(), judged.clone());
        tokio::spawn(async move {
            let mut samples: Vec<Vec<u64>> = Vec::new();
            let mut idp_samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.push(pids.iter().map(|(_, pid)| rss_kb(*pid).0).collect());
                if let Some(pid) = idp_pid {
                    idp_samples.push(rss_kb(pid).0);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (samples, idp_samples)
        })
    };
    let started = Instant::now();
    let (login_ok, login_failed, login_error, verif, verif_secs) = {
        let logins = paced_logins(ctx, &sys, SOAK_LOGINS);
        let verifications = async {
            let mut total = WrkCount::default();
            let mut n = 1;
            while total.requests < SOAK_VERIFICATIONS {
                let (out, url, token) = (ctx.out.clone(), url.clone(), token.clone());
                let chunk = tokio::task::spawn_blocking(move || {
                    wrk_chunk(&out, &url, &token, CHUNK_SECS, n)
                })
                .await??;
                total.requests += chunk.requests;
                total.errors += chunk.errors;
                n += 1;
            }
            anyhow::Ok((total, started.elapsed()))
        };
        let ((ok, failed, first), verified) = tokio::join!(logins, verifications);
        let (verif, secs) = verified?;
        (ok, failed, first, verif, secs)
    };
    let elapsed = started.elapsed();
    // One last sample after both loads have ended.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut samples, idp_samples) = sampler.await?;
    samples.push(judged.iter().map(|(_, pid)| rss_kb(*pid).0).collect());
    // The whole series, one line per second, for a look at its shape.
    let mut csv = format!(
        "second,{}\n",
        judged
            .iter()
            .map(|(n, _)| format!("{n}_rss_kb"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (i, v) in samples.iter().enumerate() {
        let row: Vec<String> = v.iter().map(u64::to_string).collect();
        writeln!(csv, "{i},{}", row.join(","))?;
    }
    std::fs::write(ctx.out.join("soak/rss.csv"), csv)?;

    let mut s = String::new();
    writeln!(s, "{BEGIN}")?;
    writeln!(s, "## 8. Soak\n")?;
    writeln!(
        s,
        "`./bench/run.sh soak`: three `lakests serve` processes (IdP ES256, authenticator, STS server on SQLite, default configuration: `auth.cache` on, invalidated by the store's generation, which login audit records, kept in a file of their own, do not move). After a warm-up with the same mix ({WARMUP_LOGINS} logins paced as below while `wrk` verifies for {WARMUP_SECS} s), {SOAK_LOGINS} logins ({LOGIN_CONCURRENCY} in flight, paced at {LOGIN_RATE}/s: the development IdP holds at most 10,000 codes, each for 60 s) and at least {SOAK_VERIFICATIONS} `GET /api/v1/user` with a bearer token (`wrk -t1 -c32`, {CHUNK_SECS} s runs until the count is reached) run at the same time. Resident memory (VmRSS) of the authenticator and the STS server is sampled every second (series in `bench/out/soak/rss.csv`).\n"
    )?;
    writeln!(
        s,
        "| what | count | errors | time |\n| --- | ---: | ---: | ---: |"
    )?;
    writeln!(
        s,
        "| logins | {} | {login_failed} | {:.1} s |",
        login_ok + login_failed,
        elapsed.as_secs_f64()
    )?;
    writeln!(
        s,
        "| verifications | {} | {} | {:.1} s ({:.0}/s) |",
        verif.requests,
        verif.errors,
        verif_secs.as_secs_f64(),
        verif.requests as f64 / verif_secs.as_secs_f64()
    )?;
    if let Some(e) = &login_error {
        writeln!(s, "\nFirst login error: `{}`", e.replace('`', "'"))?;
    }
    writeln!(
        s,
        "\n| process | RSS after warm-up | min | max | last | max / after warm-up |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let mut flat = true;
    for (i, (name, _)) in judged.iter().enumerate() {
        let series: Vec<u64> = samples.iter().map(|v| v[i]).collect();
        let (min, max) = (
            *series.iter().min().unwrap_or(&0),
            *series.iter().max().unwrap_or(&0),
        );
        let last = *series.last().unwrap_or(&0);
        let ratio = max as f64 / baseline[i].max(1) as f64;
        flat &= ratio <= 1.10;
        writeln!(
            s,
            "| {name} | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB | {ratio:.3}x |",
            baseline[i] as f64 / 1024.0,
            min as f64 / 1024.0,
            max as f64 / 1024.0,
            last as f64 / 1024.0
        )?;
    }
    if let (Some(first), Some(max)) = (idp_samples.first(), idp_samples.iter().max()) {
        writeln!(
            s,
            "\n(The development IdP, not judged: it keeps up to 10,000 codes and access tokens by design; {:.1} MB at the start of the soak, {:.1} MB at most.)",
            *first as f64 / 1024.0,
            *max as f64 / 1024.0
        )?;
    }
    let errors_ok = login_failed == 0 && verif.errors == 0;
    let counts_ok = login_ok == SOAK_LOGINS && verif.requests >= SOAK_VERIFICATIONS;
    writeln!(
        s,
        "\nTargets: 0 errors: **{}** ({}); {SOAK_LOGINS} logins and {SOAK_VERIFICATIONS} verifications done ({}); resident memory flat within 10% after warm-up, {} samples ({}).\n",
        login_failed + verif.errors,
        super::verdict(errors_ok),
        super::verdict(counts_ok),
        samples.len(),
        super::verdict(flat)
    )?;
    writeln!(
        s,
        "Verdict: **{}**.",
        if errors_ok && counts_ok && flat {
            "soak passed"
        } else {
            "soak FAILED"
        }
    )?;
    writeln!(s, "{END}")?;

    let old = std::fs::read_to_string(results).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{}{}",
                &old[..b],
                s,
                &old[e + END.len()..].trim_start_matches('\n')
            )
        }
        _ if old.is_empty() => s.clone(),
        _ => format!("{}\n{}", old.trim_end_matches('\n').to_owned() + "\n", s),
    };
    std::fs::write(results, new).with_context(|| format!("cannot write {}", results.display()))?;
    println!("{s}");
    if !(errors_ok && counts_ok && flat) {
        bail!("the soak failed; see {}", results.display());
    }
    Ok(())
}
