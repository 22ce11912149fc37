//! Deterministic simulated benchmarks: a fixed set of seeded runs whose outputs — simulated
//! latency percentiles per operation, requests, syncs, disk commands, modelled CPU time and
//! network messages — are the same from run to run, so a difference between two commits is
//! the code's doing and not the machine's.
//!
//! `squall-sim bench` runs every case in a child process (as a sweep does), reads each run's
//! report, and writes the metrics as JSON; with a baseline it prints both side by side and fails
//! when a metric got worse by more than the threshold. Extraction and comparison are pure
//! functions of the JSON, tested without running anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One benchmark run: a seed and the options it runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Name in the results.
    pub name: &'static str,
    /// Seed.
    pub seed: u64,
    /// `squall-sim run` options.
    pub args: &'static [&'static str],
}

/// The benchmark's cases: a read-heavy and a write-heavy YCSB mix and the order system with no
/// faults, and YCSB-A through a zone outage.
pub const CASES: [Case; 4] = [
    Case {
        name: "ycsb-b-calm",
        seed: 1,
        args: &["--scenario", "calm", "--workload", "ycsb-b", "--rate", "1000", "--duration", "20s"],
    },
    Case {
        name: "ycsb-a-calm",
        seed: 2,
        args: &["--scenario", "calm", "--workload", "ycsb-a", "--rate", "1000", "--duration", "20s"],
    },
    Case {
        name: "orders-calm",
        seed: 3,
        args: &["--scenario", "calm", "--workload", "orders", "--rate", "300", "--duration", "20s"],
    },
    Case {
        name: "ycsb-a-zone-outage",
        seed: 4,
        args: &["--scenario", "zone-outage", "--workload", "ycsb-a", "--rate", "500", "--duration", "20s"],
    },
];

/// Options every case runs with besides its own.
const COMMON_ARGS: [&str; 6] = ["--heal-ops", "5", "--timeline", "none", "--clients", "1"];

/// Latency of one operation's successes, simulated microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationMetrics {
    /// Successes.
    pub ok: u64,
    /// Failures of any kind.
    pub failed: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
}

/// Everything one case measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseMetrics {
    /// The run's trace hash: equal hashes mean identical runs.
    pub trace_hash: String,
    /// Workload operations issued.
    pub issued: u64,
    /// Per operation.
    pub operations: BTreeMap<String, OperationMetrics>,
    /// Syncs over every node.
    pub syncs: u64,
    /// Disk commands over every node.
    pub disk_commands: u64,
    /// Modelled CPU busy time over every node, milliseconds.
    pub cpu_busy_ms: f64,
    /// Packets the simulated network carried.
    pub network_messages: u64,
    /// Bytes the nodes sent: peer transport batches and HTTP responses.
    #[serde(default)]
    pub network_sent_bytes: u64,
}

/// Reads a case's metrics from its report's `summary.json`.
pub fn metrics_from_summary(summary: &Value) -> anyhow::Result<CaseMetrics> {
    let simulation = &summary["simulation"];
    let mut metrics = CaseMetrics {
        trace_hash: simulation["trace_hash"].as_str().context("no trace hash in the summary")?.to_owned(),
        issued: summary["issued"].as_u64().unwrap_or(0),
        network_messages: simulation["network_messages"].as_u64().unwrap_or(0),
        ..CaseMetrics::default()
    };
    for node in simulation["nodes"].as_array().into_iter().flatten() {
        metrics.syncs += node["syncs"].as_u64().unwrap_or(0);
        metrics.disk_commands += node["disk_commands"].as_u64().unwrap_or(0);
        metrics.cpu_busy_ms += node["cpu_busy_ms"].as_f64().unwrap_or(0.0);
        metrics.network_sent_bytes += node["network_sent_bytes"].as_u64().unwrap_or(0);
    }
    let operations = summary["results"]["operations"].as_object().context("no per-operation results in the summary")?;
    for (name, operation) in operations {
        let mut entry = OperationMetrics::default();
        for (outcome, latency) in operation["outcomes"].as_object().into_iter().flatten() {
            let count = latency["count"].as_u64().unwrap_or(0);
            if outcome.eq_ignore_ascii_case("ok") {
                entry.ok = count;
                entry.p50_us = latency["p50_us"].as_u64().unwrap_or(0);
                entry.p99_us = latency["p99_us"].as_u64().unwrap_or(0);
                entry.p999_us = latency["p999_us"].as_u64().unwrap_or(0);
            } else {
                entry.failed += count;
            }
        }
        metrics.operations.insert(name.clone(), entry);
    }
    Ok(metrics)
}

/// One metric of one case in a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `case / metric`.
    pub name: String,
    /// Baseline value.
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Relative change, percent (positive: more).
    pub change_pct: f64,
    /// Whether it got worse beyond the threshold.
    pub regressed: bool,
    /// Whether the metric rests on enough samples to be judged at all.
    pub judged: bool,
}

/// Latency changes smaller than this are not regressions: the simulator's timers tick in
/// milliseconds, so a latency percentile moves in whole ticks.
pub const LATENCY_FLOOR_US: f64 = 1_000.0;
/// Changes in successes or failures smaller than this share of an operation's attempts are not
/// regressions: under faults a few operations more or less fail as timing shifts.
pub const OUTCOME_FLOOR_FRACTION: f64 = 0.005;
/// A latency percentile is judged only when at least this many samples lie beyond it: a p99.9
/// of a thousand requests is a single request, which any change of course moves at random.
pub const TAIL_SAMPLES_MIN: f64 = 10.0;

/// The expected number of samples out of `count` beyond the percentile `quantile`.
fn samples_beyond(count: u64, quantile: f64) -> f64 {
    count as f64 * (1.0 - quantile)
}

/// Compares `current` with `baseline`, case by case: every metric where more is worse
/// (latencies, failures, syncs, disk commands, CPU, messages, bytes sent) regresses when it grew by more
/// than `threshold_pct` and by more than its floor (a timer tick for latencies, half a percent
/// of the attempts for outcomes); successes regress when they shrank by as much. A latency
/// percentile with fewer than [`TAIL_SAMPLES_MIN`] successes beyond it in either run is shown
/// but not judged. A case or operation missing from `current` is a regression too.
pub fn compare(
    baseline: &BTreeMap<String, CaseMetrics>,
    current: &BTreeMap<String, CaseMetrics>,
    threshold_pct: f64,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |name: String, base: f64, now: f64, more_is_worse: bool, floor: f64, judged: bool| {
        let change_pct = if base == 0.0 {
            if now == 0.0 {
                0.0
            } else {
                100.0
            }
        } else {
            (now - base) / base * 100.0
        };
        let beyond_floor = (now - base).abs() > floor;
        let regressed = judged
            && beyond_floor
            && if more_is_worse { change_pct > threshold_pct } else { change_pct < -threshold_pct };
        rows.push(Row { name, baseline: base, current: now, change_pct, regressed, judged });
    };
    for (case, base) in baseline {
        let Some(now) = current.get(case) else {
            row(format!("{case} (missing)"), 1.0, 0.0, false, 0.0, true);
            continue;
        };
        row(format!("{case} / syncs"), base.syncs as f64, now.syncs as f64, true, 0.0, true);
        row(format!("{case} / disk commands"), base.disk_commands as f64, now.disk_commands as f64, true, 0.0, true);
        row(format!("{case} / cpu busy ms"), base.cpu_busy_ms, now.cpu_busy_ms, true, 0.0, true);
        row(
            format!("{case} / network messages"),
            base.network_messages as f64,
            now.network_messages as f64,
            true,
            0.0,
            true,
        );
        let sent = (base.network_sent_bytes as f64, now.network_sent_bytes as f64);
        row(format!("{case} / network bytes sent"), sent.0, sent.1, true, 0.0, true);
        for (operation, b) in &base.operations {
            let n = now.operations.get(operation).cloned().unwrap_or_default();
            let outcomes_floor = (b.ok + b.failed) as f64 * OUTCOME_FLOOR_FRACTION;
            row(format!("{case} / {operation} ok"), b.ok as f64, n.ok as f64, false, outcomes_floor, true);
            row(format!("{case} / {operation} failed"), b.failed as f64, n.failed as f64, true, outcomes_floor, true);
            let latency = |name: &str, quantile: f64, base: u64, now: u64| {
                let judged = samples_beyond(b.ok.min(n.ok), quantile) >= TAIL_SAMPLES_MIN;
                (format!("{case} / {operation} {name}"), base as f64, now as f64, judged)
            };
            for (name, base, now, judged) in [
                latency("p50 us", 0.5, b.p50_us, n.p50_us),
                latency("p99 us", 0.99, b.p99_us, n.p99_us),
                latency("p99.9 us", 0.999, b.p999_us, n.p999_us),
            ] {
                row(name, base, now, true, LATENCY_FLOOR_US, judged);
            }
        }
    }
    rows
}

/// The comparison as a table, regressions marked.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<56} {:>14} {:>14} {:>9}", "metric", "baseline", "current", "change");
    for row in rows {
        let mark = match (row.regressed, row.judged) {
            (true, _) => "  REGRESSED",
            (false, false) => "  (too few samples to judge)",
            (false, true) => "",
        };
        let _ = writeln!(
            out,
            "{:<56} {:>14.1} {:>14.1} {:>8.1}%{mark}",
            row.name, row.baseline, row.current, row.change_pct
        );
    }
    out
}

/// A benchmark result file: the commit and machine it was measured on, and every case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchFile {
    /// What this is.
    pub what: String,
    /// The commit measured (`git rev-parse --short HEAD`, or `unknown`).
    pub commit: String,
    /// The machine (simulated outputs do not depend on it; wall time does).
    pub machine: String,
    /// Wall seconds the whole benchmark took.
    pub wall_s: f64,
    /// Each case's exact options.
    pub settings: BTreeMap<String, Vec<String>>,
    /// Each case's metrics.
    pub cases: BTreeMap<String, CaseMetrics>,
}

/// The arguments of `case`'s run, without the report directory.
pub fn case_args(case: &Case) -> Vec<String> {
    let mut args = vec!["--seed".to_string(), case.seed.to_string()];
    args.extend(case.args.iter().map(|a| a.to_string()));
    args.extend(COMMON_ARGS.iter().map(|a| a.to_string()));
    args
}

/// Runs every case with `exe` (this binary) and collects their metrics.
pub fn run_cases(exe: &Path, work_dir: &Path) -> anyhow::Result<BenchFile> {
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(CASES.len() as u64);
    let mut file = BenchFile {
        what: "deterministic simulated benchmark: simulated latencies and work per case".into(),
        commit: git_commit(),
        machine: machine(),
        wall_s: 0.0,
        settings: BTreeMap::new(),
        cases: BTreeMap::new(),
    };
    for case in &CASES {
        bar.set_message(case.name);
        let report = work_dir.join(case.name);
        let args = case_args(case);
        let output = Command::new(exe)
            .arg("run")
            .args(&args)
            .arg("--report")
            .arg(&report)
            .output()
            .with_context(|| format!("start {}", exe.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "case {} failed:\n{}\n{}",
            case.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(report.join("summary.json"))
            .with_context(|| format!("read the report of case {}", case.name))?;
        let summary: Value = serde_json::from_str(&text).context("parse summary.json")?;
        file.cases.insert(case.name.to_owned(), metrics_from_summary(&summary)?);
        file.settings.insert(case.name.to_owned(), args);
        bar.inc(1);
    }
    bar.finish_and_clear();
    file.wall_s = started.elapsed().as_secs_f64();
    Ok(file)
}

/// The commit being measured (`git rev-parse --short HEAD`, or `unknown`).
pub(crate) fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// This machine in a line: cores, memory, operating system.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")))
        .unwrap_or_else(|| "unknown memory".into());
    format!("{cores} cores, {memory}, {}", std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(p99: u64, syncs: u64) -> Value {
        summary_of(20_000, p99, syncs)
    }

    fn summary_of(ok: u64, p99: u64, syncs: u64) -> Value {
        json!({
            "issued": 100,
            "simulation": {
                "trace_hash": "00ff",
                "network_messages": 5000,
                "nodes": [
                    {"syncs": syncs, "disk_commands": 10, "cpu_busy_ms": 1.5, "network_sent_bytes": 700},
                    {"syncs": syncs, "disk_commands": 10, "cpu_busy_ms": 0.5, "network_sent_bytes": 300},
                ],
            },
            "results": {"operations": {"read": {"outcomes": {
                "ok": {"count": ok, "p50_us": 900, "p99_us": p99, "p999_us": p99 * 2},
                "timeout": {"count": 10, "p50_us": 1, "p99_us": 1, "p999_us": 1},
            }}}},
        })
    }

    #[test]
    fn metrics_are_read_from_a_report() {
        let metrics = metrics_from_summary(&summary(2_000, 7)).unwrap();
        assert_eq!(metrics.trace_hash, "00ff");
        assert_eq!(metrics.syncs, 14);
        assert_eq!(metrics.disk_commands, 20);
        assert!((metrics.cpu_busy_ms - 2.0).abs() < 1e-9);
        assert_eq!(metrics.network_messages, 5000);
        assert_eq!(metrics.network_sent_bytes, 1000);
        let read = &metrics.operations["read"];
        assert_eq!((read.ok, read.failed, read.p50_us, read.p99_us, read.p999_us), (20_000, 10, 900, 2_000, 4_000));
        assert!(metrics_from_summary(&json!({})).is_err());
    }

    #[test]
    fn a_comparison_flags_what_got_worse_beyond_the_threshold() {
        let base: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary(2_000, 10)).unwrap())].into();
        let same = compare(&base, &base, 10.0);
        assert!(same.iter().all(|r| !r.regressed && r.change_pct == 0.0));

        let slower: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary(3_500, 10)).unwrap())].into();
        let rows = compare(&base, &slower, 10.0);
        let regressed: Vec<&str> = rows.iter().filter(|r| r.regressed).map(|r| r.name.as_str()).collect();
        assert_eq!(regressed, ["a / read p99 us", "a / read p99.9 us"]);
        assert!(table(&rows).contains("REGRESSED"));

        let better: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary(1_000, 5)).unwrap())].into();
        assert!(compare(&base, &better, 10.0).iter().all(|r| !r.regressed), "improvements are not regressions");
        assert!(compare(&base, &BTreeMap::new(), 10.0).iter().any(|r| r.regressed), "a missing case regresses");

        let one_tick_slower: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary(2_400, 10)).unwrap())].into();
        assert!(
            compare(&base, &one_tick_slower, 10.0).iter().all(|r| !r.regressed),
            "a change within one timer tick is not a regression"
        );
    }

    #[test]
    fn a_tail_percentile_of_too_few_samples_is_shown_but_not_judged() {
        // 2,000 successes: twenty beyond the p99, which is judged, but two beyond the p99.9.
        let base: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary_of(2_000, 2_000, 10)).unwrap())].into();
        let slower: BTreeMap<String, CaseMetrics> =
            [("a".to_string(), metrics_from_summary(&summary_of(2_000, 3_500, 10)).unwrap())].into();
        let rows = compare(&base, &slower, 10.0);
        let regressed: Vec<&str> = rows.iter().filter(|r| r.regressed).map(|r| r.name.as_str()).collect();
        assert_eq!(regressed, ["a / read p99 us"]);
        let tail = rows.iter().find(|r| r.name == "a / read p99.9 us").unwrap();
        assert!(!tail.judged && tail.change_pct > 10.0);
        assert!(table(&rows).contains("too few samples"));
    }

    #[test]
    fn case_arguments_are_complete() {
        let args = case_args(&CASES[0]);
        assert_eq!(&args[..2], ["--seed", "1"]);
        assert!(args.contains(&"--workload".to_string()));
        assert!(args.ends_with(&["--clients".to_string(), "1".to_string()]));
        let names: std::collections::BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), CASES.len(), "case names are unique");
    }
}
