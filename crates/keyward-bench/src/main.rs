//! `keyward-bench`: starts a real Keyward (release build by default) on SQLite, signs a user
//! in once through the hosted login, and drives W1–W4 over loopback HTTP with the server
//! pinned to CPU 0 and this load generator to CPU 1. With `--postgres`, the scale-out
//! figure: W1 and W2 on a throwaway PostgreSQL, each against one instance and then two
//! instances on the same database (Keyward and PostgreSQL on CPU 0). See docs/performance.md.
//!
//! ```sh
//! cargo run --release -p keyward-bench -- --duration 10 --concurrency 32
//! cargo run --release -p keyward-bench -- --duration 10 --concurrency 32 --postgres
//! ```

mod http;
mod report;
mod server;
mod workloads;

use anyhow::Context as _;
use clap::Parser;
use report::{Report, WorkloadReport};
use server::{ES_CLIENT, RS_CLIENT, Setup};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use workloads::{Family, Target, Workload};

#[derive(Parser, Debug)]
#[command(name = "keyward-bench", about = "Benchmark Keyward over real HTTP: SSO code flow, refresh, JWKS/discovery, userinfo")]
struct Args {
    /// Seconds measured per workload (after the warm-up). Default 10; 1.5 with --quick.
    #[arg(long)]
    duration: Option<f64>,
    /// Concurrent connections (one worker each). Default 32; 8 with --quick.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Warm-up seconds before each workload's window. Default 1; 0.3 with --quick.
    #[arg(long)]
    warmup: Option<f64>,
    /// Refresh-token families created for W2 (and whose access tokens W4 uses). Default 256; 32 with --quick.
    #[arg(long)]
    families: Option<usize>,
    /// The keyward binary. Default: target/release/keyward, built first with `cargo build --release -p keyward`.
    #[arg(long)]
    keyward: Option<PathBuf>,
    /// Do not run `cargo build --release -p keyward` before using target/release/keyward.
    #[arg(long)]
    no_build: bool,
    /// Do not pin the server to CPU 0 and the load generator to CPU 1.
    #[arg(long)]
    no_pin: bool,
    /// Also measure `openssl speed rsa2048` / `ecdsap256` on the server's core and run W1 with an RS256 client.
    #[arg(long)]
    rsa: bool,
    /// Regression guard: a few seconds in all; exits 1 on errors or when W1 is far below its budget.
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Which workloads to run, comma-separated (w1,w2,w3,w4). Default: all four; w1,w2 with --postgres.
    #[arg(long, value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// Scale-out: run on a throwaway PostgreSQL (testkit: initdb + pg_ctl in a temp dir), each
    /// workload against one Keyward instance, then against two on the same database; PostgreSQL
    /// is pinned to CPU 0 with the instances (unless --no-pin).
    #[arg(long)]
    postgres: bool,
    /// A command put in front of the server, for profiling (e.g. "valgrind --tool=callgrind").
    #[arg(long)]
    wrap: Option<String>,
    /// The server's `database.pool_size` (default: Keyward's own default: the CPU cores on SQLite).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Keep the temp dir with the config, database and server logs.
    #[arg(long)]
    keep: bool,
    /// Treat the binary as a debug build (default: when its path has a `debug` directory).
    #[arg(long)]
    debug_build: bool,
}

/// Budgets from issue 7 (release build, server on one core, ES256, SQLite).
pub const BUDGET_W1: f64 = 8_000.0;
pub const BUDGET_W2: f64 = 10_000.0;
pub const BUDGET_W3: f64 = 40_000.0;
pub const BUDGET_P99_MS: f64 = 10.0;
pub const BUDGET_IDLE_MIB: f64 = 15.0;
pub const BUDGET_PEAK_MIB: f64 = 40.0;
pub const BUDGET_READY_MS: f64 = 100.0;
/// The quick mode fails when W1 is below a tenth of its budget, divided by this for a debug
/// build. Measured on this machine (docs/performance.md): the debug build runs W1 at 250–280
/// flows/s in the quick mode against ~1,000 for release (4× slower: most of a flow is SQLite,
/// aws-lc and the kernel, which are optimised C either way). The floor, 800 / 40 = 20 flows/s,
/// is 12× below what the debug build does, so only a real breakage (a lock, a slow hash, a
/// per-request key parse, a sleep) trips it on a noisy CI machine.
pub const QUICK_DEBUG_SLOWDOWN: f64 = 40.0;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn release_binary(no_build: bool) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/keyward");
    if !no_build {
        eprintln!("keyward-bench: cargo build --release -p keyward (a first release build takes several minutes)");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        // Under `cargo run`, this process has the variables cargo sets for a package
        // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …). Build scripts (ring's, for one) rerun when
        // these change, so passing them on would rebuild half the tree on every run.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                build.env_remove(k);
            }
        }
        let status = build.args(["build", "--release", "-p", "keyward"]).current_dir(&root).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => anyhow::bail!("`cargo build --release -p keyward` failed ({s})"),
            Err(e) => anyhow::bail!("cannot run cargo ({e}); build the server with `cargo build --release -p keyward` and pass --no-build"),
        }
    }
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p keyward` (in {}), or pass --keyward PATH",
        bin.display(),
        root.display()
    );
    Ok(bin)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keyward-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<ExitCode> {
    let bin = match &args.keyward {
        Some(p) => p.canonicalize().with_context(|| format!("--keyward {}", p.display()))?,
        None => release_binary(args.no_build)?,
    };
    let debug_build = args.debug_build || bin.components().any(|c| c.as_os_str() == "debug");
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // Pin before the runtime starts threads, so every thread of this process stays on CPU 1.
    let pinned = !args.no_pin && cpus >= 2 && server::have_taskset() && server::pin_self(1);
    let why_not = if args.no_pin {
        "--no-pin"
    } else if cpus < 2 {
        "fewer than 2 CPUs"
    } else if !server::have_taskset() {
        "taskset not found"
    } else {
        "taskset failed"
    };
    eprintln!(
        "keyward-bench: {} ({} build); {}",
        bin.display(),
        if debug_build { "debug" } else { "release" },
        if pinned { "server pinned to CPU 0, load generator to CPU 1 (taskset)".to_owned() } else { format!("NOT pinned ({why_not})") }
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&rt, bench(&args, &bin, debug_build, pinned))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.text());
    }
    if let Some(guard) = &report.guard {
        eprintln!("{}", guard.summary);
        if !guard.passed {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench(args: &Args, bin: &Path, debug_build: bool, pinned: bool) -> anyhow::Result<Report> {
    let quick = args.quick;
    let duration = Duration::from_secs_f64(args.duration.unwrap_or(if quick { 1.5 } else { 10.0 }));
    let warmup = Duration::from_secs_f64(args.warmup.unwrap_or(if quick { 0.3 } else { 1.0 }));
    let concurrency = args.concurrency.unwrap_or(if quick { 8 } else { 32 }).max(1);
    let n_families = args.families.unwrap_or(if quick { 32 } else { 256 }).max(concurrency);
    let default_workloads: &[&str] = if args.postgres { &["w1", "w2"] } else { &["w1", "w2", "w3", "w4"] };
    let workloads: Vec<String> = args.workloads.clone().unwrap_or_else(|| default_workloads.iter().map(|w| w.to_string()).collect());
    let wanted = |name: &str| workloads.iter().any(|w| w.trim().eq_ignore_ascii_case(name));
    let wrap: Vec<String> = args.wrap.as_deref().map(|w| w.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let server_cpu = pinned.then_some(0);

    let pg = if args.postgres {
        eprintln!("keyward-bench: starting a throwaway PostgreSQL (initdb, pg_ctl)…");
        let pg = server::Postgres::start(server_cpu)?;
        eprintln!(
            "keyward-bench: PostgreSQL postmaster pid {}, {}; database {}",
            pg.postmaster,
            match pg.pinned_to {
                Some(cpu) => format!("pinned to CPU {cpu} with its processes (taskset -a -p; backends inherit it)"),
                None => "NOT pinned".to_owned(),
            },
            pg.url
        );
        Some(pg)
    } else {
        None
    };
    let n_instances = if pg.is_some() { 2 } else { 1 };
    let setup = Setup::new(bin, server_cpu, wrap, args.keep, args.pool_size, pg.as_ref().map(|p| p.url.clone()), n_instances).await?;
    // First start: empty database (migrations, key generation). Then a restart on the
    // existing database, which is the start the ready budget is about.
    let first = setup.start("keyward-first.log").await?;
    let ready_fresh = first.ready_ms();
    first.stop().await?;
    let server = setup.start("keyward.log").await?;
    let ready_ms = server.ready_ms();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.memory()?;
    eprintln!(
        "keyward-bench: ready in {} ms on the existing database (first start {} ms); idle RSS {:.1} MiB",
        ready_ms.map_or("?".into(), |v| v.to_string()),
        ready_fresh.map_or("?".into(), |v| v.to_string()),
        idle.rss_kib as f64 / 1024.0
    );

    let mut report = Report {
        binary: bin.display().to_string(),
        debug_build,
        pinned,
        concurrency,
        duration,
        warmup,
        families: n_families,
        ready_ms,
        ready_fresh_ms: ready_fresh,
        ready_wall: server.ready_wall,
        idle_rss_kib: idle.rss_kib,
        peak_rss_kib: 0,
        openssl: None,
        workloads: Vec::new(),
        guard: None,
        postgres: pg.is_some(),
    };

    if args.rsa {
        eprintln!("keyward-bench: openssl speed -seconds 3 rsa2048 / ecdsap256 on the server's CPU (server idle)…");
        let rsa = server::openssl_signs_per_second("rsa2048", server_cpu)?;
        let ec = server::openssl_signs_per_second("ecdsap256", server_cpu)?;
        report.openssl = Some((rsa, ec));
    }

    eprintln!("keyward-bench: signing in through the hosted login (email code from the SMTP sink)…");
    let cookie = workloads::sign_in(&setup, ES_CLIENT, "bench@example.com").await?;
    let es = Target::new(&setup, &cookie, ES_CLIENT, "ES256");
    let rs = Target::new(&setup, &cookie, RS_CLIENT, "RS256");
    let mut families: Vec<Family> = Vec::new();

    let mut plan: Vec<(&str, Workload, &Target)> = Vec::new();
    if wanted("w1") {
        plan.push(("W1 code flow (ES256)", Workload::W1, &es));
        if args.rsa {
            plan.push(("W1 code flow (RS256)", Workload::W1, &rs));
        }
    }
    if wanted("w2") {
        plan.push(("W2 refresh (rotation)", Workload::W2, &es));
    }
    if wanted("w3") {
        plan.push(("W3 JWKS + discovery", Workload::W3, &es));
    }
    if wanted("w4") {
        plan.push(("W4 userinfo (JWT)", Workload::W4, &es));
    }
    // SQLite: each workload once, on the one instance. PostgreSQL: each workload on one
    // instance and right after on two sharing the database, so both rows of a pair see about
    // the same database size (the second instance idles during the one-instance runs).
    let second = if n_instances > 1 {
        let s = setup.start_instance(1, "keyward-2.log").await?;
        eprintln!(
            "keyward-bench: second instance on port {} (metrics {}), same database and master key; ready in {} ms",
            setup.instances[1].0,
            setup.instances[1].1,
            s.ready_ms().map_or("?".into(), |v| v.to_string())
        );
        Some(s)
    } else {
        None
    };
    let servers: Vec<&server::Server> = std::iter::once(&server).chain(second.as_ref()).collect();
    for &(name, w, target) in &plan {
        for n in 1..=n_instances {
            if matches!(w, Workload::W2 | Workload::W4) && families.is_empty() {
                eprintln!("keyward-bench: creating {n_families} refresh-token families (code flows with offline_access)…");
                families = create_families(&es, n_families, concurrency).await?;
            }
            eprintln!(
                "keyward-bench: {name}{}: {concurrency} connections, {:.1} s warm-up + {:.1} s…",
                if pg.is_some() { format!(" on {n} instance(s)") } else { String::new() },
                warmup.as_secs_f64(),
                duration.as_secs_f64()
            );
            let targets: Vec<Target> = setup.instances[..n].iter().map(|&(port, _)| target.on_port(port)).collect();
            let out = workloads::run(w, &targets, &servers[..n], pg.as_ref(), concurrency, warmup, duration, &mut families).await?;
            let rss = server.memory()?;
            let r = WorkloadReport::new(name, w, out, rss.rss_kib, pg.as_ref().map(|_| n));
            eprintln!("keyward-bench:   {}", r.line());
            report.workloads.push(r);
        }
    }
    report.peak_rss_kib = server.memory()?.hwm_kib;
    // Both instances drain at once (shutdown_delay_seconds is 0 in the bench config).
    let (a, b) = tokio::join!(server.stop(), async {
        match second {
            Some(s) => s.stop().await,
            None => Ok(()),
        }
    });
    for e in [a.err(), b.err()].into_iter().flatten() {
        eprintln!("keyward-bench: warning: {e:#}");
    }
    if let Some(pg) = &pg
        && args.keep
    {
        let _ = std::fs::copy(pg.log_path(), setup.dir.join("postgresql.log"));
    }
    if quick {
        report.guard = Some(report::guard(&report));
    }
    Ok(report)
}

async fn create_families(t: &Target, n: usize, concurrency: usize) -> anyhow::Result<Vec<Family>> {
    let mut handles = Vec::new();
    for i in 0..concurrency {
        let t = t.clone();
        let count = n / concurrency + usize::from(i < n % concurrency);
        handles.push(tokio::task::spawn_local(async move {
            let mut conn = http::Conn::new(t.addr, &t.host);
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                out.push(workloads::new_family(&mut conn, &t).await?);
            }
            anyhow::Ok(out)
        }));
    }
    let mut families = Vec::with_capacity(n);
    for h in handles {
        families.extend(h.await??);
    }
    Ok(families)
}
