//! Results: per-workload throughput and latency percentiles, memory, start time, budgets,
//! as a text table or JSON; and the quick mode's pass/fail decision.

use crate::workloads::{Outcome, Workload};
use crate::{BUDGET_IDLE_MIB, BUDGET_P99_MS, BUDGET_PEAK_MIB, BUDGET_READY_MS, BUDGET_W1, BUDGET_W2, BUDGET_W3, QUICK_DEBUG_SLOWDOWN};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

/// The `p`-quantile (0..=1) of sorted µs values, in ms.
fn quantile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut us: Vec<u32>) -> Latency {
        us.sort_unstable();
        Latency {
            p50_ms: quantile_ms(&us, 0.50),
            p90_ms: quantile_ms(&us, 0.90),
            p99_ms: quantile_ms(&us, 0.99),
            max_ms: us.last().map_or(0.0, |v| *v as f64 / 1000.0),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({ "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms })
    }
}

pub struct WorkloadReport {
    pub name: String,
    pub workload: Workload,
    pub ops: u64,
    pub ops_per_s: f64,
    pub requests_per_s: f64,
    pub latency: Latency,
    pub requests: Vec<(&'static str, Latency)>,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Server CPU time over the window, as a share of one core.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// CPU 0 busy time not spent by the server (other processes on the server's core), as a
    /// share of the window: near 0 on a quiet machine.
    pub other_cpu0: f64,
    pub rss_after_kib: u64,
    /// With `--postgres`: how many instances served the run (`None` on SQLite).
    pub instances: Option<usize>,
    /// Each instance's CPU time, as a share of one core.
    pub instance_cpu: Vec<f64>,
    /// All PostgreSQL processes' CPU time, as a share of one core (with `--postgres`).
    pub db_cpu: Option<f64>,
    /// Busy time of CPU 0 over the window, whoever used it, as a share of the window.
    pub cpu0_busy: f64,
}

impl WorkloadReport {
    pub fn new(name: &str, workload: Workload, out: Outcome, rss_after_kib: u64, instances: Option<usize>) -> WorkloadReport {
        let secs = out.window.as_secs_f64();
        let db = out.db_cpu.map_or(0.0, |d| d.as_secs_f64());
        let n_requests: usize = out.request_latencies.iter().map(Vec::len).sum();
        WorkloadReport {
            name: name.to_owned(),
            workload,
            ops: out.ops,
            ops_per_s: out.ops as f64 / secs,
            requests_per_s: n_requests as f64 / secs,
            latency: Latency::of(out.op_latencies),
            requests: workload.requests().iter().copied().zip(out.request_latencies.into_iter().map(Latency::of)).collect(),
            errors: out.errors,
            error_samples: out.error_samples,
            server_cpu: out.server_cpu.as_secs_f64() / secs,
            client_cpu: out.client_cpu.as_secs_f64() / secs,
            other_cpu0: (out.cpu0_busy.as_secs_f64() - out.server_cpu.as_secs_f64() - db).max(0.0) / secs,
            rss_after_kib,
            instances,
            instance_cpu: out.instance_cpu.iter().map(|d| d.as_secs_f64() / secs).collect(),
            db_cpu: out.db_cpu.map(|d| d.as_secs_f64() / secs),
            cpu0_busy: out.cpu0_busy.as_secs_f64() / secs,
        }
    }

    /// The issue 7 budget (SQLite, one instance): none for `--postgres` runs.
    pub fn budget(&self) -> Option<f64> {
        if self.instances.is_some() {
            return None;
        }
        match (self.workload, self.name.contains("RS256")) {
            (Workload::W1, false) => Some(BUDGET_W1),
            (Workload::W2, _) => Some(BUDGET_W2),
            (Workload::W3, _) => Some(BUDGET_W3),
            _ => None,
        }
    }

    pub fn line(&self) -> String {
        let mut line = format!(
            "{:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, server CPU {:.0}%",
            self.ops_per_s,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.errors,
            self.server_cpu * 100.0,
        );
        if self.instance_cpu.len() > 1 {
            let _ = write!(line, " ({})", self.keyward_cpu());
        }
        if let Some(db) = self.db_cpu {
            let _ = write!(line, ", PostgreSQL CPU {:.0}%", db * 100.0);
        }
        let _ = write!(line, ", load generator CPU {:.0}%, others on CPU 0 {:.0}%", self.client_cpu * 100.0, self.other_cpu0 * 100.0);
        line
    }

    /// Each instance's CPU share: "48% + 47%".
    fn keyward_cpu(&self) -> String {
        self.instance_cpu.iter().map(|c| format!("{:.0}%", c * 100.0)).collect::<Vec<_>>().join(" + ")
    }

    /// What bounds the run, from the CPU shares: CPU 0 (Keyward and PostgreSQL) saturated, the
    /// load generator's CPU saturated, or neither (then waits: locks, pool, round trips).
    pub fn bound(&self, pinned: bool) -> String {
        let db = self.db_cpu.map_or(String::new(), |d| format!(", PostgreSQL {:.0}%", d * 100.0));
        let shares = format!("Keyward {}{db}, others {:.0}%", self.keyward_cpu(), self.other_cpu0 * 100.0);
        if !pinned {
            format!("not pinned, so not attributable to a core: {shares}, load generator {:.0}%", self.client_cpu * 100.0)
        } else if self.cpu0_busy >= SATURATED {
            format!("CPU 0 saturated ({:.0}% busy): {shares}", self.cpu0_busy * 100.0)
        } else if self.client_cpu >= SATURATED {
            format!(
                "the load generator (CPU 1, {:.0}%) saturated; CPU 0 {:.0}% busy: {shares}",
                self.client_cpu * 100.0,
                self.cpu0_busy * 100.0
            )
        } else {
            format!(
                "neither core saturated (CPU 0 {:.0}% busy: {shares}; load generator {:.0}%): waits, not CPU",
                self.cpu0_busy * 100.0,
                self.client_cpu * 100.0
            )
        }
    }
}

/// A core busier than this over a window counts as saturated.
const SATURATED: f64 = 0.9;

pub struct Guard {
    pub passed: bool,
    pub summary: String,
}

pub struct Report {
    pub binary: String,
    pub debug_build: bool,
    pub pinned: bool,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub families: usize,
    pub ready_ms: Option<u64>,
    pub ready_fresh_ms: Option<u64>,
    pub ready_wall: Duration,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// `openssl speed` on the server's core: (RSA-2048 signs/s, ECDSA P-256 signs/s).
    pub openssl: Option<(f64, f64)>,
    pub workloads: Vec<WorkloadReport>,
    pub guard: Option<Guard>,
    /// `--postgres`: the workloads ran on a throwaway PostgreSQL, with one and then two instances.
    pub postgres: bool,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}

impl Report {
    fn rs256_fraction(&self) -> Option<f64> {
        let (rsa, _) = self.openssl?;
        let w = self.workloads.iter().find(|w| w.workload == Workload::W1 && w.name.contains("RS256"))?;
        Some(w.ops_per_s / rsa)
    }

    /// (1 instance, 2 instances) rows of the same workload, with `--postgres`.
    pub fn scale_out(&self) -> Vec<(&WorkloadReport, &WorkloadReport)> {
        self.workloads
            .iter()
            .filter(|w| w.instances == Some(1))
            .filter_map(|one| self.workloads.iter().find(|w| w.instances == Some(2) && w.name == one.name).map(|two| (one, two)))
            .collect()
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let (database, placement) = if self.postgres {
            (
                "PostgreSQL (throwaway: fsync=off, synchronous_commit=off), 1 then 2 instances",
                "Keyward instance(s) and PostgreSQL on CPU 0, load generator on CPU 1",
            )
        } else {
            ("SQLite", "server on CPU 0, load generator on CPU 1")
        };
        let _ = writeln!(
            s,
            "\nKeyward {} build, {database}, {}; {} connections, {:.1} s per workload after {:.1} s warm-up; {} token families",
            if self.debug_build { "DEBUG" } else { "release" },
            if self.pinned { placement } else { "NOT pinned" },
            self.concurrency,
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.families
        );
        let _ = writeln!(s, "binary: {}\n", self.binary);
        let width = if self.postgres { 27 } else { 24 };
        let _ = writeln!(
            s,
            "{:<width$} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9}  budget",
            "workload", "ops/s", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "srv CPU", "gen CPU", "others", "RSS MiB"
        );
        for w in &self.workloads {
            let budget = match w.budget() {
                Some(b) => format!("≥ {b:.0}/s: {} ({:.0}%)", verdict(w.ops_per_s >= b), 100.0 * w.ops_per_s / b),
                None => "-".into(),
            };
            let name = match w.instances {
                Some(n) => format!("{} ×{n}", w.name),
                None => w.name.clone(),
            };
            let _ = writeln!(
                s,
                "{:<width$} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7.0}% {:>7.0}% {:>7.0}% {:>9.1}  {budget}",
                name,
                w.ops_per_s,
                w.requests_per_s,
                w.latency.p50_ms,
                w.latency.p90_ms,
                w.latency.p99_ms,
                w.errors,
                w.server_cpu * 100.0,
                w.client_cpu * 100.0,
                w.other_cpu0 * 100.0,
                mib(w.rss_after_kib)
            );
            if w.requests.len() > 1 {
                for (name, l) in &w.requests {
                    let _ = writeln!(
                        s,
                        "  {:<w$} {:>10} {:>10} {:>9.2} {:>9.2} {:>9.2}",
                        name,
                        "",
                        "",
                        l.p50_ms,
                        l.p90_ms,
                        l.p99_ms,
                        w = width - 2
                    );
                }
            }
            for e in &w.error_samples {
                let _ = writeln!(s, "  error: {e}");
            }
        }
        let _ = writeln!(
            s,
            "(srv CPU: the server's CPU time as a share of one core; gen CPU: this load generator's; others: CPU 0 busy time used by\n other processes, which should be near 0%: a busy machine makes every number here lower)"
        );
        if self.postgres {
            let _ = writeln!(
                s,
                "(×n: n Keyward instances on one PostgreSQL database; srv CPU is all instances together; others excludes PostgreSQL)"
            );
            s.push_str(&self.scale_out_text());
        }
        let _ = writeln!(s);
        let p99_worst = self.workloads.iter().map(|w| w.latency.p99_ms).fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "p99 (per operation; W1 = authorize + token) worst {:.2} ms: {} (≤ {BUDGET_P99_MS} ms at 32 connections)",
            p99_worst,
            verdict(p99_worst <= BUDGET_P99_MS)
        );
        let _ = writeln!(
            s,
            "idle RSS {:.1} MiB: {} (≤ {BUDGET_IDLE_MIB} MiB)",
            mib(self.idle_rss_kib),
            verdict(mib(self.idle_rss_kib) <= BUDGET_IDLE_MIB)
        );
        let _ = writeln!(
            s,
            "peak RSS (VmHWM) {:.1} MiB: {} (≤ {BUDGET_PEAK_MIB} MiB)",
            mib(self.peak_rss_kib),
            verdict(mib(self.peak_rss_kib) <= BUDGET_PEAK_MIB)
        );
        match self.ready_ms {
            Some(ms) => {
                let _ = writeln!(
                    s,
                    "ready on the existing database: {ms} ms (log ready_ms; /readyz answered {:.0} ms after spawn): {} (< {BUDGET_READY_MS} ms); first start on an empty database: {} ms",
                    self.ready_wall.as_secs_f64() * 1000.0,
                    verdict((ms as f64) < BUDGET_READY_MS),
                    self.ready_fresh_ms.map_or("?".into(), |v| v.to_string())
                );
            }
            None => {
                let _ = writeln!(s, "ready: no ready_ms in the log");
            }
        }
        if let Some((rsa, ec)) = self.openssl {
            let _ = writeln!(s, "openssl speed on the server's CPU: RSA-2048 {rsa:.0} signs/s, ECDSA P-256 {ec:.0} signs/s");
            if let Some(f) = self.rs256_fraction() {
                let _ = writeln!(s, "W1 with RS256: {:.0}% of openssl's RSA-2048 signs/s", f * 100.0);
            }
        }
        s
    }

    fn scale_out_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nScale-out on one PostgreSQL: the same workload against 1 and 2 Keyward instances (worker i talks to instance i % n)"
        );
        let _ = writeln!(
            s,
            "{:<24} {:>4} {:>10} {:>9} {:>9} {:>7} {:>14} {:>7} {:>10}",
            "workload", "inst", "ops/s", "p50 ms", "p99 ms", "errors", "Keyward CPU", "PG CPU", "CPU 0 busy"
        );
        for (one, two) in self.scale_out() {
            for (i, w) in [one, two].into_iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{:<24} {:>4} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>14} {:>6.0}% {:>9.0}%",
                    if i == 0 { one.name.as_str() } else { "" },
                    w.instance_cpu.len(),
                    w.ops_per_s,
                    w.latency.p50_ms,
                    w.latency.p99_ms,
                    w.errors,
                    w.keyward_cpu(),
                    w.db_cpu.unwrap_or(0.0) * 100.0,
                    w.cpu0_busy * 100.0
                );
            }
            let _ = writeln!(s, "  2 instances / 1: {:.2}× ops/s", ratio(two.ops_per_s, one.ops_per_s));
            let _ = writeln!(s, "  bound, 1 instance:  {}", one.bound(self.pinned));
            let _ = writeln!(s, "  bound, 2 instances: {}", two.bound(self.pinned));
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let workloads: Vec<serde_json::Value> = self
            .workloads
            .iter()
            .map(|w| {
                let mut j = json!({
                    "name": w.name,
                    "workload": format!("{:?}", w.workload),
                    "ops": w.ops,
                    "ops_per_s": w.ops_per_s,
                    "requests_per_s": w.requests_per_s,
                    "latency": w.latency.json(),
                    "requests": w.requests.iter().map(|(n, l)| (n.to_string(), l.json())).collect::<serde_json::Map<_, _>>(),
                    "errors": w.errors,
                    "error_samples": w.error_samples,
                    "server_cpu_share": w.server_cpu,
                    "load_generator_cpu_share": w.client_cpu,
                    "other_processes_on_server_cpu_share": w.other_cpu0,
                    "rss_after_kib": w.rss_after_kib,
                    "budget_ops_per_s": w.budget(),
                });
                if let (Some(n), Some(o)) = (w.instances, j.as_object_mut()) {
                    o.insert("instances".into(), json!(n));
                    o.insert("instance_cpu_shares".into(), json!(w.instance_cpu));
                    o.insert("postgres_cpu_share".into(), json!(w.db_cpu));
                    o.insert("cpu0_busy_share".into(), json!(w.cpu0_busy));
                }
                j
            })
            .collect();
        let mut out = json!({
            "binary": self.binary,
            "build": if self.debug_build { "debug" } else { "release" },
            "pinned": self.pinned,
            "concurrency": self.concurrency,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "families": self.families,
            "ready_ms": self.ready_ms,
            "ready_first_start_ms": self.ready_fresh_ms,
            "ready_wall_ms": self.ready_wall.as_secs_f64() * 1000.0,
            "idle_rss_kib": self.idle_rss_kib,
            "peak_rss_kib": self.peak_rss_kib,
            "openssl": self.openssl.map(|(rsa, ec)| json!({ "rsa2048_signs_per_s": rsa, "ecdsap256_signs_per_s": ec })),
            "rs256_w1_fraction_of_rsa_signs": self.rs256_fraction(),
            "workloads": workloads,
            "guard": self.guard.as_ref().map(|g| json!({ "passed": g.passed, "summary": g.summary })),
        });
        if self.postgres
            && let Some(o) = out.as_object_mut()
        {
            let side = |w: &WorkloadReport| {
                json!({
                    "instances": w.instance_cpu.len(),
                    "ops_per_s": w.ops_per_s,
                    "p50_ms": w.latency.p50_ms,
                    "p99_ms": w.latency.p99_ms,
                    "errors": w.errors,
                    "instance_cpu_shares": w.instance_cpu,
                    "postgres_cpu_share": w.db_cpu,
                    "cpu0_busy_share": w.cpu0_busy,
                    "load_generator_cpu_share": w.client_cpu,
                    "bound": w.bound(self.pinned),
                })
            };
            let rows: Vec<serde_json::Value> = self
                .scale_out()
                .into_iter()
                .map(|(one, two)| {
                    json!({
                        "name": one.name,
                        "one_instance": side(one),
                        "two_instances": side(two),
                        "ratio_ops_per_s": ratio(two.ops_per_s, one.ops_per_s),
                    })
                })
                .collect();
            o.insert("database".into(), json!("postgresql"));
            o.insert("scale_out".into(), json!(rows));
        }
        out
    }
}

/// The quick mode's decision: fail on any error, or when W1 is below a tenth of its budget
/// (divided by [`QUICK_DEBUG_SLOWDOWN`] for a debug build).
pub fn guard(r: &Report) -> Guard {
    let mut problems = Vec::new();
    for w in &r.workloads {
        if w.errors > 0 {
            problems.push(format!("{}: {} errors ({})", w.name, w.errors, w.error_samples.first().map_or("", String::as_str)));
        }
        if w.ops == 0 {
            problems.push(format!("{}: no operation completed", w.name));
        }
    }
    let floor = BUDGET_W1 / 10.0 / if r.debug_build { QUICK_DEBUG_SLOWDOWN } else { 1.0 };
    match r.workloads.iter().find(|w| w.workload == Workload::W1 && !w.name.contains("RS256")) {
        Some(w1) if w1.ops_per_s < floor => problems.push(format!("W1 {:.0} flows/s is below the floor of {floor:.0}", w1.ops_per_s)),
        Some(_) => {}
        None => problems.push("W1 did not run".into()),
    }
    let w1 = r.workloads.iter().find(|w| w.workload == Workload::W1).map_or(0.0, |w| w.ops_per_s);
    if problems.is_empty() {
        Guard {
            passed: true,
            summary: format!(
                "keyward-bench --quick: PASS (no errors; W1 {w1:.0} flows/s ≥ floor {floor:.0} for a {} build)",
                if r.debug_build { "debug" } else { "release" }
            ),
        }
    } else {
        Guard { passed: false, summary: format!("keyward-bench --quick: FAIL\n  {}", problems.join("\n  ")) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(super::quantile_ms(&v, 0.5), 50.0);
        assert_eq!(super::quantile_ms(&v, 0.99), 99.0);
        assert_eq!(super::quantile_ms(&v, 1.0), 100.0);
        assert_eq!(super::quantile_ms(&[], 0.5), 0.0);
        assert_eq!(super::quantile_ms(&[7000], 0.99), 7.0);
    }
}
