//! `lakests-bench`: the benchmark suite. Starts the real `lakests` binary (release build) as
//! three processes (development IdP, authenticator, STS server), drives them from loopback with
//! wrk and its own login load generator, reads CPU time and memory from /proc, and writes
//! `bench/RESULTS.md`. Every load loop is bounded in time and count. For comparison it also
//! runs the login with a Python authenticator (FastAPI + Authlib, `bench/python-authenticator`)
//! in place of lakests' own.
//!
//! Usage: `LAKESTS_BENCH_PYTHON=<venv python> lakests-bench RESULTS_PATH` (run by
//! `bench/run.sh`, which builds the virtual environment from the pinned requirements);
//! `lakests-bench soak RESULTS_PATH` runs only the soak (`./bench/run.sh soak`, see `soak.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SECRET: &str = "bench-secret-key-of-a-reasonable-length-0123456789";
/// Repetitions of each measurement; the median is reported.
const RUNS: usize = 3;
/// Length of one throughput measurement (4 s keeps `bench/run.sh` under six minutes).
const RUN_SECS: u64 = 4;
/// How long `bench/run.sh` may take, seconds (issue 14).
const SUITE_LIMIT_SECS: u64 = 360;
/// The share of lakests' saturated requests/s at which latency is measured below saturation.
const PACED_SHARE: f64 = 0.5;
/// Concurrent logins in flight.
const LOGIN_CONCURRENCY: usize = 16;
/// Upper bound of logins in one run, whatever the speed. The development IdP refuses new codes
/// beyond 10,000 outstanding (codes live 60 s, access tokens an hour): all runs of one process
/// together stay below that.
const MAX_LOGINS_PER_RUN: u64 = 3_000;

struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ctx {
    root: PathBuf,
    out: PathBuf,
    lakests: PathBuf,
    bare: PathBuf,
    /// The Python interpreter of the virtual environment with the Python authenticator's
    /// pinned requirements.
    python: PathBuf,
    http: reqwest::Client,
    clk_tck: f64,
}

/// Which authenticator the STS server calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Authn {
    /// `lakests serve` with the authenticator role.
    Lakests,
    /// `bench/python-authenticator` (FastAPI + Authlib) on uvicorn.
    Python,
}

impl Authn {
    fn label(self) -> &'static str {
        match self {
            Authn::Lakests => "lakests",
            Authn::Python => "Python (FastAPI + Authlib)",
        }
    }
}
mod paced;
mod replicas;
mod soak;

/// The runtime of every mode: two workers, as the machine has two cores.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The number of rounds of a partial run, the `n`th argument (3 when absent).
fn rounds_arg(n: usize) -> anyhow::Result<usize> {
    Ok(std::env::args()
        .nth(n)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(3))
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("soak") {
        return soak_main();
    }
    if std::env::args().nth(1).as_deref() == Some("authz") {
        return authz_main();
    }
    if std::env::args().nth(1).as_deref() == Some("login") {
        return login_main();
    }
    if std::env::args().nth(1).as_deref() == Some("hot") {
        return hot_main();
    }
    let results = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/RESULTS.md"));
    let rt = runtime()?;
    rt.block_on(run(results))
}

/// `lakests-bench authz [sqlite|postgres]`: section 7 alone, printed and not written anywhere: for
/// working on the authorization API's hot reads (the full suite is the record).
fn authz_main() -> anyhow::Result<()> {
    let store = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "sqlite".to_owned());
    let rt = runtime()?;
    rt.block_on(async {
        let ctx = Ctx::new(PathBuf::new())?;
        let bare = ctx.spawn_bare().await?;
        let (bare_here, results) = authz_hot_path(&ctx, &store, &bare.1).await?;
        println!("bare axum: {:.0} requests/s", bare_here.rps);
        for (call, w) in results {
            println!(
                "{call}: {:.0} requests/s, p99 {:.2} ms, {:.2}x",
                w.rps,
                w.p99_ms,
                w.rps / bare_here.rps
            );
        }
        Ok(())
    })
}

/// `lakests-bench login [ES256|RS256] [sqlite|postgres] [ROUNDS]`: the login rows of section 2
/// alone (lakests' authenticator), printed with each process's pid and CPU per login: for
/// profiling one process under the login load (`perf record -p PID`).
fn login_main() -> anyhow::Result<()> {
    let alg = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "ES256".to_owned());
    let store = std::env::args()
        .nth(3)
        .unwrap_or_else(|| "sqlite".to_owned());
    let rounds = rounds_arg(4)?;
    let rt = runtime()?;
    rt.block_on(async {
        let ctx = Ctx::new(PathBuf::new())?;
        let pg = (store == "postgres")
            .then(|| "postgres://postgres@127.0.0.1:5432/lakests_bench".to_string());
        let label = format!("{}-{store}", alg.to_lowercase());
        let system =
            System::start_with_issuer(&ctx, &label, &alg, pg, None, true, Authn::Lakests).await?;
        for p in &system.procs {
            println!("{}: pid {}", p.name, p.pid());
        }
        system.one_login(&ctx).await?;
        let bare = ctx.spawn_bare().await?;
        for _ in 0..rounds {
            let run = system.login_load(&ctx).await?;
            let crypto = crypto_floor_us(&alg)?;
            let rt = bare_round_trip(&ctx, &bare).await?;
            let floor = crypto + 4.0 * rt.server_us + 2.0 * rt.client_us;
            let total: f64 = run.cpu_us.iter().map(|(_, us)| us).sum();
            let cpu: Vec<String> = run
                .cpu_us
                .iter()
                .zip(&run.switches)
                .map(|((n, us), sw)| format!("{n} {us:.0} µs ({sw:.1} context switches)"))
                .collect();
            println!(
                "{:.0} logins/s; CPU per login: {}; total {total:.0} µs against a floor of {floor:.0} µs (crypto {crypto:.0}): {:.2}x; PostgreSQL {}",
                run.rate,
                cpu.join(", "),
                total / floor,
                postgres_cell(&run.postgres_us)
            );
        }
        Ok(())
    })
}

/// `lakests-bench hot [rounds]`: section 1's default row alone (wrk, then the paced load at
/// half of lakests' requests/s), printed per round: for working on the hot path's latency.
fn hot_main() -> anyhow::Result<()> {
    let rounds = rounds_arg(2)?;
    let rt = runtime()?;
    rt.block_on(async {
        let ctx = Ctx::new(PathBuf::new())?;
        let system =
            System::start_with_issuer(&ctx, "hot-cache", "ES256", None, None, true, Authn::Lakests)
                .await?;
        for p in &system.procs {
            println!("{}: pid {}", p.name, p.pid());
        }
        let token = system.one_login(&ctx).await?;
        let bare = ctx.spawn_bare().await?;
        let user_url = format!("http://{}/api/v1/user", system.sts_addr);
        for _ in 0..rounds {
            let bare_wrk = wrk_once(&format!("http://{}/bare", bare.1), None, &ctx)?;
            let user_wrk = wrk_once(&user_url, Some(&token), &ctx)?;
            let rate = (user_wrk.rps * PACED_SHARE).floor();
            let paced_bare = paced::run(&bare.1, "/bare", None, rate, 64, RUN_SECS).await?;
            let paced_user = paced::run(
                &system.sts_addr,
                "/api/v1/user",
                Some(&token),
                rate,
                64,
                RUN_SECS,
            )
            .await?;
            println!(
                "wrk: bare {:.0}/s, lakests {:.0}/s ({:.2}x); paced at {rate:.0}/s: p99 bare {:.2} ms ({} late), lakests {:.2} ms ({} late); load {}",
                bare_wrk.rps,
                user_wrk.rps,
                user_wrk.rps / bare_wrk.rps,
                paced_bare.p99_ms,
                paced_bare.late_sends,
                paced_user.p99_ms,
                paced_user.late_sends,
                load_average()
            );
        }
        Ok(())
    })
}

impl Ctx {
    /// The context of a partial run: release binaries of `target/release`, output under
    /// `bench/out`; `python` only where the Python authenticator runs.
    fn new(python: PathBuf) -> anyhow::Result<Ctx> {
        let root = std::env::current_dir()?;
        let out = root.join("bench/out");
        std::fs::create_dir_all(&out)?;
        let release = root.join("target/release");
        let ctx = Ctx {
            lakests: release.join("lakests"),
            bare: release.join("bare-axum"),
            python,
            root,
            out,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                // As lakests' outbound client: no retries, so no copy of each request (the floor's
                // client side is priced with this client).
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(256)
                .build()?,
            clk_tck: clk_tck()?,
        };
        if !ctx.lakests.exists() {
            bail!(
                "{} is missing: build it with ./bench/run.sh",
                ctx.lakests.display()
            );
        }
        if Command::new("wrk").arg("--version").output().is_err() {
            bail!("wrk is missing: apt-get install -y wrk");
        }
        Ok(ctx)
    }
}

/// `lakests-bench soak [RESULTS_PATH]`: the soak alone, its section written into the results.
fn soak_main() -> anyhow::Result<()> {
    let results = std::env::args()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/RESULTS.md"));
    let rt = runtime()?;
    rt.block_on(async {
        // The soak runs no Python authenticator.
        let ctx = Ctx::new(PathBuf::new())?;
        soak::run(&ctx, &results).await
    })
}

async fn run(results: PathBuf) -> anyhow::Result<()> {
    let root = std::env::current_dir()?;
    // A full run starts from an empty output directory.
    let _ = std::fs::remove_dir_all(root.join("bench/out"));
    let python = std::env::var_os("LAKESTS_BENCH_PYTHON")
        .map(PathBuf::from)
        .context("LAKESTS_BENCH_PYTHON is not set: run bench/run.sh (it builds the Python authenticator's virtual environment)")?;
    let ctx = Ctx::new(python)?;
    for p in [&ctx.bare, &ctx.python] {
        if !p.exists() {
            bail!(
                "{} is missing: run bench/run.sh (it builds the release binaries)",
                p.display()
            );
        }
    }

    let mut report = String::new();
    writeln!(report, "# lakests benchmark results\n")?;
    writeln!(
        report,
        "Written by `bench/run.sh` (`lakests-bench`); every figure is the median of {RUNS} runs (each {RUN_SECS} s, or {MAX_LOGINS_PER_RUN} logins for the login runs, whichever comes first) unless said otherwise.\n"
    )?;
    writeln!(report, "{}", machine()?)?;
    writeln!(
        report,
        "Every lakests process logs as it does by default (`logging.level: info`: a line per login in each role, a line per failed request); each section names what else it sets.\n"
    )?;
    let load_at_start = load_average();

    // 1. Hot path: GET /api/v1/user against a bare axum endpoint, in the same run.
    let system =
        System::start_with_issuer(&ctx, "hot-cache", "ES256", None, None, true, Authn::Lakests)
            .await?;
    let token = system.one_login(&ctx).await?;
    let bare = ctx.spawn_bare().await?;
    let [wrk_bare, wrk_jwt, wrk_user]: [Wrk; 3] = interleaved_wrk(
        &[
            (&format!("http://{}/bare", bare.1), None),
            (&format!("http://{}/jwt", bare.1), Some(&token)),
            (
                &format!("http://{}/api/v1/user", system.sts_addr),
                Some(&token),
            ),
        ],
        &ctx,
    )?
    .try_into()
    .map_err(|_| anyhow::anyhow!("three targets, three results"))?;
    // Latency below saturation: half the requests/s lakests reached, same 64 connections.
    let paced_rate = (wrk_user.rps * PACED_SHARE).floor();
    let paced_bare = paced::run(&bare.1, "/bare", None, paced_rate, 64, RUN_SECS).await?;
    let paced_user = paced::run(
        &system.sts_addr,
        "/api/v1/user",
        Some(&token),
        paced_rate,
        64,
        RUN_SECS,
    )
    .await?;
    drop(system);
    let system = System::start_with_issuer(
        &ctx,
        "hot-nocache",
        "ES256",
        None,
        None,
        false,
        Authn::Lakests,
    )
    .await?;
    let token = system.one_login(&ctx).await?;
    let wrk_user_default = median_wrk(
        &format!("http://{}/api/v1/user", system.sts_addr),
        Some(&token),
        &ctx,
    )?;
    drop(bare);
    writeln!(
        report,
        "## 1. `GET /api/v1/user`, the per-request hot path\n"
    )?;
    writeln!(
        report,
        "`wrk -t1 -c64 -d{RUN_SECS}s --latency`, interleaved: {RUNS} rounds, each running every endpoint once (the `auth.cache.enabled: false` row: its own server, measured afterwards); medians.\n"
    )?;
    writeln!(
        report,
        "| endpoint | requests/s | p50 | p99 |\n| --- | ---: | ---: | ---: |"
    )?;
    for (name, w) in [
        ("bare axum (baseline)", &wrk_bare),
        ("bare axum + HS256 verify (reference)", &wrk_jwt),
        (
            "lakests `GET /api/v1/user`, default (`auth.cache` on, invalidated by the store's generation)",
            &wrk_user,
        ),
        (
            "lakests `GET /api/v1/user`, `auth.cache.enabled: false` (token check and store reads per request)",
            &wrk_user_default,
        ),
    ] {
        writeln!(
            report,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms |",
            w.rps, w.p50_ms, w.p99_ms
        )?;
    }
    writeln!(
        report,
        "\nBelow saturation: {:.0} requests/s ({:.0}% of what lakests reached above) spread evenly over 64 connections for {RUN_SECS} s (open loop: a pacer thread hands each slot to the next connection; `bench` crate's `paced` module, as Debian's wrk has no fixed-rate mode); latency from send to complete answer; a send is late when it left more than 1 ms after its slot (its connection still busy, or the scheduler).\n",
        paced_rate,
        PACED_SHARE * 100.0
    )?;
    writeln!(
        report,
        "| endpoint | requests/s answered | p50 | p99 | sends late by > 1 ms |\n| --- | ---: | ---: | ---: | ---: |"
    )?;
    for (name, p) in [
        ("bare axum (baseline)", &paced_bare),
        ("lakests `GET /api/v1/user`, default", &paced_user),
    ] {
        writeln!(
            report,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} of {} |",
            p.achieved, p.p50_ms, p.p99_ms, p.late_sends, p.requests
        )?;
    }
    let ratio = wrk_user.rps / wrk_bare.rps;
    writeln!(
        report,
        "\nTarget >= 0.70x the bare endpoint's requests/s: **{ratio:.2}x** ({}); p99 <= 2 ms below saturation: **{:.2} ms** ({}).\n",
        verdict(ratio >= 0.7),
        paced_user.p99_ms,
        verdict(paced_user.p99_ms <= 2.0)
    )?;

    // 2. and 3. Full login, ES256 and RS256 ID tokens, SQLite and PostgreSQL.
    let mut startup = Vec::new();
    let mut memory = Vec::new();
    writeln!(report, "## 2-3. Full STS login on loopback\n")?;
    writeln!(
        report,
        "Client -> STS server -> authenticator -> development IdP, three `lakests serve` processes; the client first gets a code from the IdP (`login_hint`, non-interactive), then calls `POST /api/v1/sts/login`. {LOGIN_CONCURRENCY} logins in flight. CPU is user+system time from /proc per process (IdP, authenticator, STS; not the load generator), divided by logins; on PostgreSQL, the database server's CPU per login (every `postgres` process visible in /proc, with the backends that ended) is given beside it, not in the total.\n\n\
         **The floor** of a login, measured in the same run right after each row's logins, has two parts:\n\
         - *crypto*: one IdP signature with an aws-lc-rs private key parsed beforehand (as the development IdP signs), one ID-token signature verification with an aws-lc-rs public key parsed beforehand (as the authenticator verifies), and one HS256 signature (the lakeFS token, jsonwebtoken, as the STS server mints), timed in the thread's CPU time (`/proc/thread-self/schedstat`) in-process;\n\
         - *HTTP*: the bare HTTP round trips of a login, priced with a bare axum endpoint (`GET /bare`, keep-alive, same concurrency) driven by reqwest configured as lakests' outbound client (no redirects, no retries): a login has four exchanges (client -> IdP `/authorize`, client -> STS `/sts/login`, STS -> authenticator, authenticator -> IdP `/token`), so it counts the server side of four round trips and the client side of the two whose client is a measured process (STS and authenticator; the load generator's own CPU is not in the total either).\n"
    )?;
    writeln!(
        report,
        "| ID token | store | authenticator | logins/s | p50 | p99 | CPU µs/login: IdP | authenticator | STS | total | PostgreSQL | floor: crypto | HTTP (4 server + 2 client sides) | floor | total / floor |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let mut sqlite_rate = BTreeMap::new();
    let mut pg_ratio = BTreeMap::new();
    let mut floor_ratios = Vec::new();
    // (alg, authenticator) -> (logins/s, authenticator CPU µs/login, total CPU µs/login)
    let mut versus: BTreeMap<(&str, &str), (f64, f64, f64)> = BTreeMap::new();
    drop(system);
    let bare = ctx.spawn_bare().await?;
    for (alg, store, authn) in [
        ("ES256", "sqlite", Authn::Lakests),
        ("ES256", "sqlite", Authn::Python),
        ("RS256", "sqlite", Authn::Lakests),
        ("RS256", "sqlite", Authn::Python),
        ("ES256", "postgres", Authn::Lakests),
        ("RS256", "postgres", Authn::Lakests),
    ] {
        let label = match authn {
            Authn::Lakests => format!("{}-{store}", alg.to_lowercase()),
            Authn::Python => format!("{}-{store}-python", alg.to_lowercase()),
        };
        let pg = (store == "postgres")
            .then(|| "postgres://postgres@127.0.0.1:5432/lakests_bench".to_string());
        let system = System::start_with_issuer(&ctx, &label, alg, pg, None, true, authn).await?;
        if authn == Authn::Lakests {
            startup.extend(
                system
                    .startup
                    .iter()
                    .map(|(n, d)| (format!("{label} {n}"), *d)),
            );
        }
        let idle: Vec<(String, u64)> = system
            .procs
            .iter()
            .map(|p| (p.name.clone(), rss_kb(p.pid()).0))
            .collect();
        system.one_login(&ctx).await?;
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(system.login_load(&ctx).await?);
        }
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let m = &runs[RUNS / 2];
        let crypto = crypto_floor_us(alg)?;
        let rt = bare_round_trip(&ctx, &bare).await?;
        let http = 4.0 * rt.server_us + 2.0 * rt.client_us;
        let floor = crypto + http;
        let total = m.cpu_us.iter().map(|(_, v)| v).sum::<f64>();
        let cpu = |n: &str| {
            m.cpu_us
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| *v)
                .unwrap_or(0.0)
        };
        writeln!(
            report,
            "| {alg} | {store} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.2}x |",
            authn.label(),
            m.rate,
            m.p50_ms,
            m.p99_ms,
            cpu("idp"),
            cpu("authenticator"),
            cpu("sts"),
            total,
            postgres_cell(&m.postgres_us),
            crypto,
            http,
            floor,
            total / floor
        )?;
        if store == "sqlite" {
            versus.insert((alg, authn.label()), (m.rate, cpu("authenticator"), total));
        }
        if authn == Authn::Python {
            continue;
        }
        floor_ratios.push(format!(
            "{alg} {store} **{:.2}x** ({})",
            total / floor,
            verdict(total / floor <= 2.0)
        ));
        if store == "sqlite" {
            sqlite_rate.insert(alg, m.rate);
        } else if let Some(s) = sqlite_rate.get(alg) {
            pg_ratio.insert(alg, m.rate / s);
        }
        for p in &system.procs {
            let (_, peak) = rss_kb(p.pid());
            let idle_kb = idle
                .iter()
                .find(|(n, _)| n == &p.name)
                .map(|(_, v)| *v)
                .unwrap_or(0);
            memory.push((format!("{label} {}", p.name), idle_kb, peak));
        }
    }
    drop(bare);
    writeln!(
        report,
        "\nTarget: lakests' CPU per login <= 2x the floor: {}. PostgreSQL >= 0.8x SQLite: {}.\n",
        floor_ratios.join(", "),
        pg_ratio
            .iter()
            .map(|(a, r)| format!("{a} **{r:.2}x** ({})", verdict(*r >= 0.8)))
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    // 6 (issue 14). What a user would write instead: the Python authenticator, same run.
    writeln!(
        report,
        "### What a user would write instead\n\nThe same login (SQLite), with the authenticator replaced by `bench/python-authenticator/authenticator.py`: FastAPI on uvicorn (uvloop, httptools) with httpx and Authlib, the versions pinned in `bench/python-authenticator/requirements.txt`, one process, discovery and JWKS fetched once at start-up. Rows from the table above:\n"
    )?;
    writeln!(
        report,
        "| ID token | authenticator | logins/s | authenticator CPU µs/login | total CPU µs/login |\n| --- | --- | ---: | ---: | ---: |"
    )?;
    for ((alg, who), (rate, authn_us, total_us)) in &versus {
        writeln!(
            report,
            "| {alg} | {who} | {rate:.0} | {authn_us:.0} | {total_us:.0} |"
        )?;
    }
    let mut lines = Vec::new();
    for alg in ["ES256", "RS256"] {
        if let (Some(l), Some(p)) = (
            versus.get(&(alg, Authn::Lakests.label())),
            versus.get(&(alg, Authn::Python.label())),
        ) {
            lines.push(format!(
                "{alg}: lakests **{:.2}x** the logins/s, its authenticator **{:.2}x** less CPU per login ({:.0} against {:.0} µs)",
                l.0 / p.0,
                p.1 / l.1,
                l.1,
                p.1
            ));
        }
    }
    writeln!(report, "\n{}.\n", lines.join("; "))?;

    // 4. Memory and start-up.
    writeln!(report, "## 4. Memory and start-up\n")?;
    writeln!(
        report,
        "| process | RSS idle | RSS peak (VmHWM) |\n| --- | ---: | ---: |"
    )?;
    for (name, idle, peak) in &memory {
        writeln!(
            report,
            "| {name} | {:.1} MB | {:.1} MB |",
            *idle as f64 / 1024.0,
            *peak as f64 / 1024.0
        )?;
    }
    let max_idle = memory.iter().map(|m| m.1).max().unwrap_or(0) as f64 / 1024.0;
    let max_peak = memory.iter().map(|m| m.2).max().unwrap_or(0) as f64 / 1024.0;
    writeln!(
        report,
        "\nTargets: idle <= 30 MB: **{max_idle:.1} MB** max ({}); peak <= 100 MB: **{max_peak:.1} MB** max ({}).\n",
        verdict(max_idle <= 30.0),
        verdict(max_peak <= 100.0)
    )?;
    writeln!(
        report,
        "| process | spawn -> first 204 of /api/v1/healthcheck |\n| --- | ---: |"
    )?;
    for (name, d) in &startup {
        writeln!(report, "| {name} | {:.1} ms |", d.as_secs_f64() * 1000.0)?;
    }
    let slowest = startup
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    writeln!(
        report,
        "\nTarget <= 100 ms: slowest **{slowest:.1} ms** ({}).\n",
        verdict(slowest <= 100.0)
    )?;

    // 5. Outbound calls per login, counted at the IdP (through a counting proxy).
    let counts = outbound_calls(&ctx).await?;
    writeln!(report, "## 5. Outbound calls per login at steady state\n")?;
    writeln!(
        report,
        "A counting proxy stands in front of the IdP (its issuer URL); after one warm-up login, 100 logins:\n"
    )?;
    writeln!(report, "| IdP path | requests |\n| --- | ---: |")?;
    for (path, n) in &counts {
        writeln!(report, "| `{path}` | {n} |")?;
    }
    let token_calls = counts.get("/token").copied().unwrap_or(0);
    let meta_calls: u64 = counts
        .iter()
        .filter(|(p, _)| p.contains("well-known") || p.contains("jwks"))
        .map(|(_, n)| n)
        .sum();
    writeln!(
        report,
        "\nTarget: exactly one token request per login, no discovery or JWKS fetch: {token_calls} token requests, {meta_calls} discovery/JWKS requests ({}).\n",
        verdict(token_calls == 100 && meta_calls == 0)
    )?;

    writeln!(
        report,
        "## 6. Hot functions\n\n`cargo bench -p lakests-bench` (criterion) measures token mint and verify, claims flattening and ID-token validation with cached keys; its output is in `bench/out/criterion.txt` when run by `bench/run.sh`.\n"
    )?;
    // 7. The authorization API on lakeFS's request path, with lakeFS's service JWT.
    writeln!(
        report,
        "## 7. Authorization API (lakeFS's `auth.api.endpoint`) on lakeFS's request path\n\n`wrk -t1 -c64 -d{RUN_SECS}s --latency` with lakeFS's service JWT (HS256, audience `auth-client`) on every request; one user in two groups with four policies and one access key. Interleaved with a bare axum endpoint: {RUNS} rounds, each running the bare endpoint and the three calls once; medians; ratios against that bare endpoint.\n\n| store | call | requests/s | p50 | p99 | vs bare |\n| --- | --- | ---: | ---: | ---: | ---: |"
    )?;
    let mut worst_sqlite = f64::MAX;
    let bare = ctx.spawn_bare().await?;
    for store in ["sqlite", "postgres"] {
        let (bare_here, results) = authz_hot_path(&ctx, store, &bare.1).await?;
        writeln!(
            report,
            "| {store} | bare axum (baseline, interleaved with the rows below) | {:.0} | {:.2} ms | {:.2} ms | 1.00x |",
            bare_here.rps, bare_here.p50_ms, bare_here.p99_ms
        )?;
        for (call, w) in results {
            let ratio = w.rps / bare_here.rps;
            if store == "sqlite" {
                worst_sqlite = worst_sqlite.min(ratio);
            }
            writeln!(
                report,
                "| {store} | {call} | {:.0} | {:.2} ms | {:.2} ms | {ratio:.2}x |",
                w.rps, w.p50_ms, w.p99_ms
            )?;
        }
    }
    writeln!(
        report,
        "\nTarget on SQLite: each >= 0.5x the bare endpoint: **{worst_sqlite:.2}x** at worst ({}).\n",
        verdict(worst_sqlite >= 0.5)
    )?;

    // 9. Two replicas on one PostgreSQL (issue 14, target 5); 8 is the soak, run on its own.
    report.push_str(&replicas::section(&ctx).await?);

    writeln!(
        report,
        "## Machine load\n\nOther work shares the machine: its 1-, 5- and 15-minute load averages were {load_at_start} when the run started and {} when it ended (2 cores). With a load above 2 every figure above is depressed and noisy; only the ratios measured in the same run are comparable.\n",
        load_average()
    )?;
    writeln!(report, "{}\n", suite_duration())?;
    if let Ok(notes) = std::fs::read_to_string(ctx.root.join("bench/NOTES.md")) {
        report.push('\n');
        report.push_str(&notes);
    }
    // The soak's section is written by `./bench/run.sh soak` alone: kept as it was.
    if let Ok(previous) = std::fs::read_to_string(&results)
        && let (Some(b), Some(e)) = (previous.find(soak::BEGIN), previous.find(soak::END))
        && e > b
    {
        report.push('\n');
        report.push_str(&previous[b..e + soak::END.len()]);
        report.push('\n');
    }
    std::fs::write(&results, &report)
        .with_context(|| format!("cannot write {}", results.display()))?;
    println!("{report}");
    Ok(())
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|| "unknown".into())
}

/// How long `bench/run.sh` took (criterion, then this program, up to this line), from the
/// start it passes in `LAKESTS_BENCH_STARTED` (unix seconds), with its verdict.
fn suite_duration() -> String {
    let started = std::env::var("LAKESTS_BENCH_STARTED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match started {
        Some(started) => {
            let took = now.saturating_sub(started);
            format!(
                "The suite (`bench/run.sh`: criterion, then every section above; the soak is its own command) took **{took} s**; target under {SUITE_LIMIT_SECS} s: {}.",
                verdict(took < SUITE_LIMIT_SECS)
            )
        }
        None => "The suite's duration is not known: `lakests-bench` was run without `bench/run.sh` (no LAKESTS_BENCH_STARTED).".to_owned(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn machine() -> anyhow::Result<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(format!(
        "Machine: {model}, {cores} cores, {:.0} GiB; all servers and load generators share it, on loopback.\n",
        mem as f64 / 1024.0 / 1024.0
    ))
}

fn clk_tck() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .unwrap_or(100.0))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime and stime: fields 14 and 15.
    stat_after_comm(&stat)
        .get(11..13)
        .map_or(0, |v| v.iter().sum())
}

/// The numeric fields of a `/proc/PID/stat` line after the parenthesised command name (field 3
/// onwards; anything not a number reads as 0).
fn stat_after_comm(stat: &str) -> Vec<u64> {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect()
}

/// CPU ticks (user and system) of every `postgres` process visible in /proc so far, with those
/// of its children that ended (the postmaster's `cutime`/`cstime`: backends of closed
/// connections); `None` when none is visible (a server in another PID namespace or machine).
fn postgres_ticks() -> Option<u64> {
    let mut total = 0;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, _)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        seen = true;
        // utime, stime, cutime, cstime: fields 14 to 17.
        total += stat_after_comm(&stat)
            .get(11..15)
            .map_or(0, |v| v.iter().sum::<u64>());
    }
    seen.then_some(total)
}

/// The PostgreSQL column of a login row.
fn postgres_cell(us: &Result<Option<f64>, String>) -> String {
    match us {
        Ok(Some(us)) => format!("{us:.0}"),
        Ok(None) => "-".to_owned(),
        Err(why) => format!("not measured: {why}"),
    }
}

/// Context switches of every thread of a process so far (`voluntary_ctxt_switches` and
/// `nonvoluntary_ctxt_switches` of each `/proc/PID/task/TID/status`); threads that ended are
/// not counted.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn median_wrk(url: &str, token: Option<&str>, ctx: &Ctx) -> anyhow::Result<Wrk> {
    let mut medians = interleaved_wrk(&[(url, token)], ctx)?;
    Ok(medians.swap_remove(0))
}

/// `RUNS` rounds, each running wrk once against every target in turn; the median of each
/// target's runs. Interleaved, so that a change in the machine's load during the measurement
/// weighs on every target alike and the ratios between them stay comparable.
fn interleaved_wrk(targets: &[(&str, Option<&str>)], ctx: &Ctx) -> anyhow::Result<Vec<Wrk>> {
    let mut runs: Vec<Vec<Wrk>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for (i, (url, token)) in targets.iter().enumerate() {
            runs[i].push(wrk_once(url, *token, ctx)?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            r.swap_remove(RUNS / 2)
        })
        .collect())
}

fn wrk_once(url: &str, token: Option<&str>, ctx: &Ctx) -> anyhow::Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c64", &format!("-d{RUN_SECS}s"), "--latency"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.arg(url).output().context("wrk failed to run")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(
        ctx.out
            .join(format!("wrk-{}.txt", url.replace(['/', ':'], "_"))),
        &text,
    )?;
    if text.contains("Non-2xx") {
        bail!("wrk saw errors from {url}:\n{text}");
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Wrk> {
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let pct = |p: &str| -> Option<f64> {
        let v = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))?
            .split_whitespace()
            .nth(1)?
            .to_owned();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    Some(Wrk {
        rps,
        p50_ms: pct("50%")?,
        p99_ms: pct("99%")?,
    })
}

impl Ctx {
    async fn spawn_bare(&self) -> anyhow::Result<(Proc, String)> {
        let mut child = Command::new(&self.bare)
            .args(["127.0.0.1:0", SECRET])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        Ok((
            Proc {
                name: "bare".into(),
                child,
            },
            line.trim().to_owned(),
        ))
    }

    fn lakests(&self, args: &[&str], log: &Path) -> anyhow::Result<Child> {
        let log = std::fs::File::create(log)?;
        let mut cmd = Command::new(&self.lakests);
        cmd.args(args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .current_dir(&self.root);
        for (k, _) in std::env::vars() {
            if k.starts_with("LAKESTS_") {
                cmd.env_remove(k);
            }
        }
        Ok(cmd.spawn()?)
    }

    /// Starts `bench/python-authenticator` on uvicorn (one process) for the provider `issuer`.
    fn python_authenticator(&self, issuer: &str, port: u16, log: &Path) -> anyhow::Result<Child> {
        let log = std::fs::File::create(log)?;
        let port = port.to_string();
        Ok(Command::new(&self.python)
            .args([
                "-m",
                "uvicorn",
                "authenticator:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--no-access-log",
            ])
            .current_dir(self.root.join("bench/python-authenticator"))
            .env("ISSUER", issuer)
            .env("CLIENT_ID", "lakests")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?)
    }

    /// Polls `url` every millisecond until it answers 204; returns the time since `started`.
    async fn wait_healthy(&self, url: &str, started: Instant) -> anyhow::Result<Duration> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500))
            .build()?;
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = client.get(url).send().await
                && r.status() == 204
            {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bail!("{url} did not answer 204 within 30 s")
    }
}

/// Drops (if it exists) and creates a database on the PostgreSQL at 127.0.0.1:5432, with psql.
fn recreate_database(name: &str) -> anyhow::Result<()> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        let ok = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &sql,
            ])
            .status()?
            .success();
        if !ok {
            bail!("psql failed: {sql}");
        }
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct System {
    procs: Vec<Proc>,
    sts_addr: String,
    idp_url: String,
    startup: Vec<(String, Duration)>,
    /// Whether the STS server's store is PostgreSQL.
    postgres: bool,
}

struct LoginRun {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: Vec<(String, f64)>,
    /// Context switches (voluntary and not, every thread) per login, per process.
    switches: Vec<f64>,
    /// The PostgreSQL server's CPU per login, µs, on PostgreSQL rows where its processes are
    /// visible here: `Ok(None)` on SQLite, `Err` when it could not be measured (said so).
    postgres_us: Result<Option<f64>, String>,
}

impl System {
    /// Starts the IdP, the authenticator and the STS server as three processes. With
    /// `issuer_override`, the IdP announces that issuer (a proxy in front of it).
    async fn start_with_issuer(
        ctx: &Ctx,
        label: &str,
        alg: &str,
        pg: Option<String>,
        issuer_override: Option<(u16, String)>,
        user_cache: bool,
        authn_kind: Authn,
    ) -> anyhow::Result<Self> {
        let dir = ctx.out.join(label);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let (idp_port, authn_port, sts_port) = (free_port()?, free_port()?, free_port()?);
        let idp_addr = format!("127.0.0.1:{idp_port}");
        let issuer = issuer_override
            .map(|(_, i)| i)
            .unwrap_or_else(|| format!("http://{idp_addr}"));
        let write = |name: &str, v: Value| -> anyhow::Result<PathBuf> {
            let p = dir.join(format!("{name}.yaml"));
            std::fs::write(&p, v.to_string())?;
            Ok(p)
        };
        // Logging as configured by default (`info`: a line per login in each role), as a user
        // runs it.
        let common = |data: &str| json!({"data_dir": dir.join(data)});
        let mut idp = common("idp");
        idp["idp"] = json!({
            "enabled": true, "listen_address": idp_addr, "issuer": issuer, "interactive": false,
            "signing_alg": alg, "users": [{"sub": "alice", "email": "alice@example.com", "groups": ["admins"]}],
            "clients": [{"client_id": "lakests", "redirect_uris": [REDIRECT]}],
        });
        let mut authn = common("authn");
        authn["authenticator"] = json!({
            "listen_address": format!("127.0.0.1:{authn_port}"),
            "providers": [{"name": "dev", "issuer": issuer, "client_id": "lakests", "redirect_uris": [REDIRECT]}],
        });
        let mut sts = common("sts");
        sts["listen_address"] = json!(format!("127.0.0.1:{sts_port}"));

        // The load generator is one client address: the per-client rate limit is off here.
        sts["auth"] = json!({"encrypt": {"secret_key": SECRET},
            "authentication_api": {"endpoint": format!("http://127.0.0.1:{authn_port}/api/v1")},
            "sts": {"rate_limit_per_second": 0}});
        // `auth.cache` is on by default (invalidated by the store's generation); `false` turns
        // it off to show the cost of one store read per request.
        if !user_cache {
            sts["auth"]["cache"] = json!({"enabled": false});
        }
        let pg_store = pg.is_some();
        if let Some(url) = &pg {
            recreate_database("lakests_bench")?;
            sts["database"] = json!({"type": "postgres", "postgres": {"connection_string": url}});
        }
        let (idp_cfg, authn_cfg, sts_cfg) = (
            write("idp", idp)?,
            write("authn", authn)?,
            write("sts", sts)?,
        );
        let sts_str = sts_cfg.to_string_lossy().into_owned();
        let add = ctx
            .lakests(
                &[
                    "users",
                    "add",
                    "alice",
                    "--external-id",
                    // lakests's authenticator namespaces external ids by provider name; the
                    // Python one returns the bare sub, as lakeFS's docs imply.
                    if authn_kind == Authn::Python {
                        "alice"
                    } else {
                        "dev:alice"
                    },
                    "--config",
                    &sts_str,
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
        let mut startup = Vec::new();
        for (name, cfg, health) in [
            (
                "idp",
                &idp_cfg,
                format!("http://127.0.0.1:{idp_port}/healthcheck"),
            ),
            (
                "authenticator",
                &authn_cfg,
                format!("http://127.0.0.1:{authn_port}/api/v1/healthcheck"),
            ),
            (
                "sts",
                &sts_cfg,
                format!("http://127.0.0.1:{sts_port}/api/v1/healthcheck"),
            ),
        ] {
            let started = Instant::now();
            let log = dir.join(format!("{name}.log"));
            let child = if name == "authenticator" && authn_kind == Authn::Python {
                ctx.python_authenticator(&issuer, authn_port, &log)?
            } else {
                ctx.lakests(&["serve", "--config", &cfg.to_string_lossy()], &log)?
            };
            let proc = Proc {
                name: name.into(),
                child,
            };
            let took = ctx.wait_healthy(&health, started).await.with_context(|| {
                format!(
                    "{name} did not start; see {}",
                    dir.join(format!("{name}.log")).display()
                )
            })?;
            startup.push((name.to_owned(), took));
            procs.push(proc);
        }
        Ok(Self {
            procs,
            sts_addr: format!("127.0.0.1:{sts_port}"),
            idp_url: format!("http://{idp_addr}"),
            startup,
            postgres: pg_store,
        })
    }

    /// One login; returns the lakeFS token.
    async fn one_login(&self, ctx: &Ctx) -> anyhow::Result<String> {
        let (token, _) = login(&ctx.http, &self.idp_url, &self.sts_addr).await?;
        Ok(token)
    }

    async fn login_load(&self, ctx: &Ctx) -> anyhow::Result<LoginRun> {
        let postgres_before = self.postgres.then(postgres_ticks);
        let before: Vec<u64> = self.procs.iter().map(|p| cpu_ticks(p.pid())).collect();
        let switched: Vec<u64> = self
            .procs
            .iter()
            .map(|p| context_switches(p.pid()))
            .collect();
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(RUN_SECS);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..LOGIN_CONCURRENCY {
            let (http, idp, sts, count) = (
                ctx.http.clone(),
                self.idp_url.clone(),
                self.sts_addr.clone(),
                count.clone(),
            );
            tasks.spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline
                    && count.fetch_add(1, Ordering::SeqCst) < MAX_LOGINS_PER_RUN
                {
                    let (_, took) = login(&http, &idp, &sts).await?;
                    lat.push(took);
                }
                anyhow::Ok(lat)
            });
        }
        let mut lat = Vec::new();
        while let Some(r) = tasks.join_next().await {
            lat.extend(r??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after: Vec<u64> = self.procs.iter().map(|p| cpu_ticks(p.pid())).collect();
        let logins = lat.len().max(1) as f64;
        let postgres_us = match postgres_before {
            None => Ok(None),
            Some(Some(b)) => match postgres_ticks() {
                Some(a) => Ok(Some(
                    a.saturating_sub(b) as f64 / ctx.clk_tck * 1e6 / logins,
                )),
                None => Err("its processes went out of sight".to_owned()),
            },
            Some(None) => Err("no `postgres` process is visible in /proc here".to_owned()),
        };
        let switches = self
            .procs
            .iter()
            .zip(&switched)
            .map(|(p, b)| {
                context_switches(p.pid()).saturating_sub(*b) as f64 / lat.len().max(1) as f64
            })
            .collect();
        lat.sort();
        let n = lat.len().max(1);
        let pct = |q: f64| {
            lat.get(((n as f64 * q) as usize).min(n - 1))
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        let cpu_us = self
            .procs
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(p, (b, a))| {
                (
                    p.name.clone(),
                    (a - b) as f64 / ctx.clk_tck * 1e6 / n as f64,
                )
            })
            .collect();
        Ok(LoginRun {
            rate: lat.len() as f64 / elapsed,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            cpu_us,
            switches,
            postgres_us,
        })
    }
}

/// A code from the IdP (non-interactive), then `POST /api/v1/sts/login`; returns the token and
/// the latency of the STS login call.
async fn login(http: &reqwest::Client, idp: &str, sts: &str) -> anyhow::Result<(String, Duration)> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("rand failed"))?;
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let resp = http
        .get(format!("{idp}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "lakests"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", &verifier),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice"),
        ])
        .send()
        .await?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("the IdP answered {} without a redirect", resp.status()))?
        .to_owned();
    let url = url::Url::parse(&location)?;
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no code in the redirect: {location}"))?;
    let started = Instant::now();
    let resp = http
        .post(format!("http://{sts}/api/v1/sts/login"))
        .json(&json!({"code": code, "state": verifier, "redirect_uri": REDIRECT}))
        .send()
        .await?;
    let took = started.elapsed();
    let status = resp.status();
    let body: Value = resp.json().await?;
    if status != 200 {
        bail!("sts login answered {status}: {body}");
    }
    Ok((body["token"].as_str().context("no token")?.to_owned(), took))
}

/// Microseconds of CPU of the login's crypto: one IdP signature with a private key parsed
/// beforehand (aws-lc-rs, as the development IdP signs since it keeps its keys parsed), one
/// signature verification with an aws-lc-rs public key parsed beforehand (as the authenticator
/// verifies since it keeps parsed keys per JWKS fetch), one HS256 lakeFS token (jsonwebtoken,
/// as the STS server mints).
fn crypto_floor_us(alg: &str) -> anyhow::Result<f64> {
    use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    fn failed<E>(what: &'static str) -> impl Fn(E) -> anyhow::Error + Copy {
        move |_| anyhow::anyhow!("the floor's {what} failed")
    }
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"typ":"JWT","alg":"{alg}","kid":"k"}}"#)),
        URL_SAFE_NO_PAD.encode(
            r#"{"iss":"http://127.0.0.1:1","sub":"alice","aud":"lakests","exp":4000000000,"iat":1,"nonce":"n","email":"alice@example.com"}"#
        )
    );
    let sign: Box<dyn Fn() -> anyhow::Result<Vec<u8>>>;
    let public = match alg {
        "ES256" => {
            let pkcs8 =
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(failed("key generation"))?;
            let kp = sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
            )
            .map_err(failed("key parse"))?;
            let public = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, kp.public_key())
                .map_err(failed("public key"))?;
            let (rng, message) = (rng.clone(), message.clone());
            sign = Box::new(move || {
                Ok(kp
                    .sign(&rng, message.as_bytes())
                    .map_err(failed("signature"))?
                    .as_ref()
                    .to_vec())
            });
            public
        }
        _ => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(failed("key generation"))?;
            let public =
                ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, kp.public_key().as_ref())
                    .map_err(failed("public key"))?;
            let (rng, message) = (rng.clone(), message.clone());
            sign = Box::new(move || {
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(&sig::RSA_PKCS1_SHA256, &rng, message.as_bytes(), &mut out)
                    .map_err(failed("signature"))?;
                Ok(out)
            });
            public
        }
    };
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let claims = json!({"sub": "alice", "exp": 4_000_000_000u64, "iat": 1, "jti": "j"});
    let iterations = 200;
    let started = thread_cpu_ns()?;
    for _ in 0..iterations {
        let signature = sign()?;
        public
            .verify_sig(message.as_bytes(), &signature)
            .map_err(|_| anyhow::anyhow!("the floor's own signature does not verify"))?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &hs)?;
    }
    Ok((thread_cpu_ns()? - started) as f64 / 1e3 / iterations as f64)
}

/// Nanoseconds this thread has run on a CPU (the first field of `/proc/thread-self/schedstat`):
/// the floor's crypto is timed in CPU time, so that other work on the machine, which preempts
/// the thread, does not inflate it (it did in wall-clock time: bench/NOTES.md).
fn thread_cpu_ns() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    text.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .context("/proc/thread-self/schedstat has no run time")
}

/// CPU of one bare HTTP round trip, each side.
struct RoundTrip {
    /// The bare axum server's CPU per request, µs.
    server_us: f64,
    /// The reqwest client's CPU per request (this process), µs.
    client_us: f64,
}

/// Prices a bare HTTP round trip: `LOGIN_CONCURRENCY` reqwest tasks (this process, keep-alive)
/// against the bare axum endpoint for one second, three times; the run with the median sum.
async fn bare_round_trip(ctx: &Ctx, bare: &(Proc, String)) -> anyhow::Result<RoundTrip> {
    let url = format!("http://{}/bare", bare.1);
    let me = std::process::id();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let (server0, client0) = (cpu_ticks(bare.0.pid()), cpu_ticks(me));
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..LOGIN_CONCURRENCY {
            let (http, url, count) = (ctx.http.clone(), url.clone(), count.clone());
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let r = http.get(&url).send().await?;
                    if r.status() != 200 {
                        bail!("the bare endpoint answered {}", r.status());
                    }
                    r.bytes().await?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let n = count.load(Ordering::Relaxed).max(1) as f64;
        let per = |ticks: u64| ticks as f64 / ctx.clk_tck * 1e6 / n;
        runs.push(RoundTrip {
            server_us: per(cpu_ticks(bare.0.pid()) - server0),
            client_us: per(cpu_ticks(me) - client0),
        });
    }
    runs.sort_by(|a, b| (a.server_us + a.client_us).total_cmp(&(b.server_us + b.client_us)));
    Ok(runs.swap_remove(RUNS / 2))
}

type ProxyState = (
    Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
    Arc<std::sync::Mutex<String>>,
    reqwest::Client,
);

/// Runs a login system whose IdP sits behind a counting proxy, and counts IdP requests by path
/// over 100 logins after one warm-up login.
async fn outbound_calls(ctx: &Ctx) -> anyhow::Result<BTreeMap<String, u64>> {
    use axum::extract::{Request, State};
    let proxy_port = free_port()?;
    let counts: Arc<std::sync::Mutex<BTreeMap<String, u64>>> = Arc::default();
    let upstream: Arc<std::sync::Mutex<String>> = Arc::default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let state = (counts.clone(), upstream.clone(), client);
    let app = axum::Router::new()
        .fallback(
            |State((counts, upstream, client)): State<ProxyState>, req: Request| async move {
                let path = req.uri().path().to_owned();
                *counts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(path)
                    .or_default() += 1;
                let base = upstream.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let url = format!(
                    "{base}{}",
                    req.uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/")
                );
                let method = req.method().clone();
                let headers = req.headers().clone();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let mut r = client.request(method, url);
                for (k, v) in &headers {
                    if k != "host" {
                        r = r.header(k, v);
                    }
                }
                match r.body(body).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let headers = resp.headers().clone();
                        let bytes = resp.bytes().await.unwrap_or_default();
                        let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
                        *out.status_mut() = status;
                        *out.headers_mut() = headers;
                        out
                    }
                    Err(_) => axum::response::Response::builder()
                        .status(502)
                        .body(axum::body::Body::empty())
                        .unwrap_or_default(),
                }
            },
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", proxy_port)).await?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let issuer = format!("http://127.0.0.1:{proxy_port}");
    let system = System::start_with_issuer(
        ctx,
        "count",
        "ES256",
        None,
        Some((proxy_port, issuer)),
        false,
        Authn::Lakests,
    )
    .await?;
    *upstream.lock().unwrap_or_else(|e| e.into_inner()) = system.idp_url.clone();
    system.one_login(ctx).await?;
    counts.lock().unwrap_or_else(|e| e.into_inner()).clear();
    for _ in 0..100 {
        system.one_login(ctx).await?;
    }
    let result = counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    drop(system);
    server.abort();
    Ok(result)
}

/// Starts `lakests serve` with only the authorization role on `store`, seeds a user as lakeFS's
/// UI would, and measures the three calls lakeFS makes per request (AUTHZ.md §7).
async fn authz_hot_path(
    ctx: &Ctx,
    store: &str,
    bare: &str,
) -> anyhow::Result<(Wrk, Vec<(&'static str, Wrk)>)> {
    let dir = ctx.out.join(format!("authz-{store}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let mut cfg = json!({
        "data_dir": dir.join("data"),
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": false}},
        "authorization": {"enabled": true, "listen_address": format!("127.0.0.1:{port}")},
    });
    if store == "postgres" {
        recreate_database("lakests_bench_authz")?;
        cfg["database"] = json!({"type": "postgres", "postgres": {"connection_string": "postgres://postgres@127.0.0.1:5432/lakests_bench_authz"}});
    }
    let cfg_path = dir.join("lakests.yaml");
    std::fs::write(&cfg_path, cfg.to_string())?;
    let c = cfg_path.to_string_lossy().into_owned();
    let stmt = r#"[{"effect":"allow","action":["fs:Read*","fs:List*"],"resource":"*"}]"#;
    let seed: Vec<Vec<&str>> = vec![
        vec!["users", "add", "bench"],
        vec!["groups", "add", "Readers"],
        vec!["groups", "add", "Writers"],
        vec!["policies", "add", "P1", "--statement", stmt],
        vec!["policies", "add", "P2", "--statement", stmt],
        vec!["policies", "add", "P3", "--statement", stmt],
        vec!["policies", "add", "P4", "--statement", stmt],
        vec!["groups", "attach-policy", "Readers", "P1"],
        vec!["groups", "attach-policy", "Readers", "P2"],
        vec!["groups", "attach-policy", "Writers", "P3"],
        vec!["policies", "attach", "P4", "bench"],
        vec!["groups", "add-member", "Readers", "bench"],
        vec!["groups", "add-member", "Writers", "bench"],
        vec![
            "credentials",
            "create",
            "bench",
            "--access-key-id",
            "AKIAJBENCHBENCHBENCQ",
            "--secret-access-key",
            "bench-secret-access-key",
        ],
    ];
    for (i, args) in seed.iter().enumerate() {
        let mut all = args.clone();
        all.extend(["--config", &c]);
        let status = ctx
            .lakests(&all, &dir.join(format!("seed-{i}.log")))?
            .wait()?;
        if !status.success() {
            bail!("seeding failed ({args:?}): see {}", dir.display());
        }
    }
    let started = Instant::now();
    let child = ctx.lakests(&["serve", "--config", &c], &dir.join("serve.log"))?;
    let _proc = Proc {
        name: format!("authz-{store}"),
        child,
    };
    let base = format!("http://127.0.0.1:{port}/api/v1");
    ctx.wait_healthy(&format!("{base}/healthcheck"), started)
        .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "_lakefs-internal", "aud": ["auth-client"], "iat": now, "exp": now + 315_360_000, "jti": "bench"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )?;
    let calls = [
        ("`GET /auth/users/{id}`", "/auth/users/bench".to_owned()),
        (
            "`GET /auth/credentials/{accessKeyId}`",
            "/auth/credentials/AKIAJBENCHBENCHBENCQ".to_owned(),
        ),
        (
            "`GET /auth/users/{id}/policies?effective=true`",
            "/auth/users/bench/policies?after=&amount=1000&effective=true&prefix=".to_owned(),
        ),
    ];
    let bare_url = format!("http://{bare}/bare");
    let urls: Vec<String> = calls.iter().map(|(_, p)| format!("{base}{p}")).collect();
    let mut targets: Vec<(&str, Option<&str>)> = vec![(&bare_url, None)];
    targets.extend(urls.iter().map(|u| (u.as_str(), Some(token.as_str()))));
    let mut medians = interleaved_wrk(&targets, ctx)?.into_iter();
    let bare_wrk = medians.next().context("the bare endpoint's result")?;
    Ok((
        bare_wrk,
        calls.iter().map(|(c, _)| *c).zip(medians).collect(),
    ))
}
