//! Capacity planning: the smallest cluster that serves a workload at a target rate within a p99
//! latency target, with headroom, and — when asked — still within the target with a zone down.
//!
//! `squall-sim plan` searches cluster sizes (nodes per zone, smallest first) and, for each size,
//! partition counts: DynamoDB's rule for the capacity the workload consumes (3,000 read and
//! 1,000 write units per partition) and the smallest multiple of the node count above it, so
//! that every node leads its share of partitions. Each candidate runs in simulation as a child
//! process (`squall-sim run --report`, as the benchmark's cases do): at the target rate with all
//! zones up, then with the last zone down for the whole run. The first size that passes both is
//! the recommendation. A candidate that falls short with operations throttled (a hot
//! partition's limit) is followed by one with twice its partitions. Every size tried is also
//! run at half and one and a half times the target for the latency-against-throughput curves
//! of the report; those two runs go at once, one process each.
//!
//! Reading a run's report, judging a measurement and choosing partition counts are pure
//! functions, tested without running anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Read capacity units one partition serves per second (DynamoDB's partition limit).
pub const PARTITION_READ_UNITS_PER_S: f64 = 3_000.0;
/// Write capacity units one partition serves per second.
pub const PARTITION_WRITE_UNITS_PER_S: f64 = 1_000.0;
/// Utilisation DynamoDB's auto scaling aims for by default: provisioned capacity is the
/// consumed capacity divided by this.
pub const PROVISIONED_TARGET_UTILISATION: f64 = 0.7;
/// Rates, as fractions of the target, each size tried is also run at for the report's curves.
pub const CURVE_RATE_FRACTIONS: [f64; 2] = [0.5, 1.5];
/// A run must complete at least this fraction of the offered rate to pass.
pub const ACHIEVED_FRACTION_MIN: f64 = 0.98;

/// What to plan for and how hard to look.
#[derive(Clone, Debug, Serialize)]
pub struct PlanSettings {
    /// Built-in workload name (`ycsb-b`, `orders`, ...) or a scenario file.
    pub workload: String,
    /// Requests (workload operations) per second to serve.
    pub target_rate: f64,
    /// Latency target: the worst operation's p99, milliseconds.
    pub p99_ms: f64,
    /// Whether the cluster must meet the target with a zone down.
    pub survive_zone: bool,
    /// Zones.
    pub zones: u32,
    /// Smallest size to try, in nodes per zone: a rate far beyond what small clusters serve
    /// need not spend runs on them.
    pub nodes_per_zone_min: u32,
    /// Largest size to try, in nodes per zone.
    pub nodes_per_zone_max: u32,
    /// Share of every node's CPU and disk left free at the target rate with all zones up.
    pub headroom_pct: f64,
    /// Failed operations (errors, throttling, timeouts) allowed, percent of those offered.
    pub failures_max_pct: f64,
    /// Simulated time each run measures, after its warm-up.
    pub measure: Duration,
    /// Simulated time before measuring: connections opening, a failover settling.
    pub warmup: Duration,
    /// Seed of every run.
    pub seed: u64,
    /// Resource profile of the nodes (default: the built-in one).
    pub profile: Option<PathBuf>,
    /// The per-table quota of read units per second the runs enforce.
    pub table_max_read_units: u64,
    /// The per-table quota of write units per second the runs enforce.
    pub table_max_write_units: u64,
}

/// The pass criteria of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    /// Worst operation's p99, milliseconds.
    pub p99_ms: f64,
    /// Failed operations allowed, percent.
    pub failures_max_pct: f64,
    /// Highest CPU or disk utilisation allowed on any node (1.0: no headroom asked).
    pub utilisation_max: f64,
}

/// One node's load during a run's measured window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Node number (zone-major: node `z * nodes_per_zone + i` is in zone `z`).
    pub node: u32,
    /// Share of the node's cores busy.
    pub cpu: f64,
    /// Share of the node's disk queue busy.
    pub disk: f64,
    /// Share of the node's network link busy, in its busier direction.
    #[serde(default)]
    pub network: f64,
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Nodes per zone.
    pub nodes_per_zone: u32,
    /// Partitions per table.
    pub partitions: u64,
    /// Whether the last zone was down.
    pub zone_down: bool,
    /// Offered operations per second.
    pub offered_rate: f64,
    /// Successful operations per second.
    pub achieved_rate: f64,
    /// Worst operation's median latency of successes, milliseconds.
    pub p50_ms: f64,
    /// Worst operation's p99 latency of successes, milliseconds.
    pub p99_ms: f64,
    /// Worst operation's p99.9 latency of successes, milliseconds.
    pub p999_ms: f64,
    /// Operations measured.
    pub operations: u64,
    /// Operations refused for capacity (a hot partition or the table's limit).
    pub throttled: u64,
    /// Operations that timed out.
    pub timeouts: u64,
    /// Operations that failed otherwise.
    pub errors: u64,
    /// Each node's utilisation.
    pub nodes: Vec<NodeLoad>,
    /// Messages the network carried per second.
    pub network_messages_per_s: f64,
    /// Read capacity units consumed per second.
    pub read_units_per_s: f64,
    /// Write capacity units consumed per second.
    pub write_units_per_s: f64,
    /// Whether the workload's invariant held.
    pub invariants_hold: bool,
    /// Where the run's report is.
    pub report: String,
}

impl Measurement {
    /// Read and write units per second the workload asks for at the offered rate: what was
    /// consumed, scaled up by the operations that did not succeed. A run on too few partitions
    /// throttles much of its load, so what it consumed understates what it needs.
    pub fn demanded_units_per_s(&self) -> (f64, f64) {
        let scale = if self.achieved_rate > 0.0 { (self.offered_rate / self.achieved_rate).max(1.0) } else { 1.0 };
        (self.read_units_per_s * scale, self.write_units_per_s * scale)
    }

    /// Failed operations, percent of those measured.
    pub fn failed_pct(&self) -> f64 {
        let failed = self.throttled + self.timeouts + self.errors;
        if self.operations == 0 {
            100.0
        } else {
            failed as f64 * 100.0 / self.operations as f64
        }
    }

    /// The busiest node's CPU utilisation.
    pub fn cpu_max(&self) -> f64 {
        self.nodes.iter().map(|n| n.cpu).fold(0.0, f64::max)
    }

    /// The busiest node's disk utilisation.
    pub fn disk_max(&self) -> f64 {
        self.nodes.iter().map(|n| n.disk).fold(0.0, f64::max)
    }

    /// The busiest node's network utilisation.
    pub fn network_max(&self) -> f64 {
        self.nodes.iter().map(|n| n.network).fold(0.0, f64::max)
    }

    /// Why this run misses `criteria`; empty when it meets them.
    pub fn shortfalls(&self, criteria: &Criteria) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.operations == 0 {
            reasons.push("no operation was measured".to_string());
            return reasons;
        }
        if self.p99_ms > criteria.p99_ms {
            reasons.push(format!("p99 {:.1} ms is over the {:.1} ms target", self.p99_ms, criteria.p99_ms));
        }
        if self.failed_pct() > criteria.failures_max_pct {
            reasons.push(format!(
                "{:.2}% of operations failed ({} throttled, {} timed out, {} errors; at most {}% allowed)",
                self.failed_pct(),
                self.throttled,
                self.timeouts,
                self.errors,
                criteria.failures_max_pct
            ));
        }
        if self.achieved_rate < self.offered_rate * ACHIEVED_FRACTION_MIN {
            reasons
                .push(format!("served {:.0} of the {:.0} operations/s offered", self.achieved_rate, self.offered_rate));
        }
        for (what, busiest) in [("CPU", self.cpu_max()), ("disk", self.disk_max()), ("network", self.network_max())] {
            if busiest > criteria.utilisation_max {
                reasons.push(format!(
                    "the busiest node's {what} is {:.0}% busy (at most {:.0}% leaves the headroom asked for)",
                    busiest * 100.0,
                    criteria.utilisation_max * 100.0
                ));
            }
        }
        if !self.invariants_hold {
            reasons.push("the workload's invariant did not hold".to_string());
        }
        reasons
    }
}

/// Reads a run's measurement from its report's `summary.json`.
pub fn measurement_from_summary(summary: &Value) -> anyhow::Result<Measurement> {
    let simulation = &summary["simulation"];
    let chaos = &simulation["chaos"];
    let measured_s = chaos["measured_ms"].as_f64().context("no measured window in the summary")? / 1000.0;
    anyhow::ensure!(measured_s > 0.0, "the summary's measured window is empty");
    let mut m = Measurement {
        nodes_per_zone: simulation["nodes_per_zone"].as_u64().unwrap_or(0) as u32,
        partitions: simulation["partitions_per_table"].as_u64().unwrap_or(0),
        zone_down: simulation["scenario"].as_str() == Some("ZoneDown"),
        offered_rate: summary["settings"]["rate"].as_f64().unwrap_or(0.0),
        network_messages_per_s: chaos["network_messages"].as_f64().unwrap_or(0.0) / measured_s,
        read_units_per_s: summary["consumed_capacity"]["read_units_per_s"].as_f64().unwrap_or(0.0),
        write_units_per_s: summary["consumed_capacity"]["write_units_per_s"].as_f64().unwrap_or(0.0),
        invariants_hold: summary["invariants"]["checks"]
            .as_array()
            .is_some_and(|checks| checks.iter().all(|c| c["passed"].as_bool() == Some(true))),
        ..Measurement::default()
    };
    for (index, node) in chaos["nodes"].as_array().into_iter().flatten().enumerate() {
        m.nodes.push(NodeLoad {
            node: node["node"].as_u64().unwrap_or(index as u64) as u32,
            cpu: node["cpu_utilisation"].as_f64().unwrap_or(0.0),
            disk: node["disk_utilisation"].as_f64().unwrap_or(0.0),
            network: node["network_utilisation"].as_f64().unwrap_or(0.0),
        });
    }
    let operations = summary["results"]["operations"].as_object().context("no per-operation results in the summary")?;
    let mut ok = 0;
    for operation in operations.values() {
        for (outcome, latency) in operation["outcomes"].as_object().into_iter().flatten() {
            let count = latency["count"].as_u64().unwrap_or(0);
            m.operations += count;
            match outcome.as_str() {
                "ok" => {
                    ok += count;
                    let ms = |field: &str| latency[field].as_f64().unwrap_or(0.0) / 1000.0;
                    m.p50_ms = m.p50_ms.max(ms("p50_us"));
                    m.p99_ms = m.p99_ms.max(ms("p99_us"));
                    m.p999_ms = m.p999_ms.max(ms("p999_us"));
                }
                "throttled" => m.throttled += count,
                "timeout" => m.timeouts += count,
                _ => m.errors += count,
            }
        }
    }
    let window_s = summary["results"]["measured_seconds"].as_f64().filter(|s| *s > 0.0).unwrap_or(measured_s);
    m.achieved_rate = ok as f64 / window_s;
    Ok(m)
}

/// Partitions DynamoDB's rule gives a table consuming these units per second.
pub fn partitions_for_capacity(read_units_per_s: f64, write_units_per_s: f64) -> u64 {
    let by_reads = (read_units_per_s / PARTITION_READ_UNITS_PER_S).ceil();
    let by_writes = (write_units_per_s / PARTITION_WRITE_UNITS_PER_S).ceil();
    (by_reads.max(by_writes) as u64).max(1)
}

/// Partition counts to try for a cluster of `nodes` nodes: first the smallest multiple of the
/// node count at least as large as the capacity rule's count (every node then leads its share
/// of partitions), then the rule's count itself.
pub fn partition_candidates(rule: u64, nodes: u64) -> Vec<u64> {
    let cap = crate::cluster::PARTITIONS_PER_TABLE_MAX;
    let rule = rule.clamp(1, cap);
    let balanced = (rule.div_ceil(nodes.max(1)) * nodes.max(1)).min(cap);
    let mut candidates = vec![balanced, rule];
    candidates.dedup();
    candidates
}

/// Partition counts one size may try at most.
pub const PARTITION_CANDIDATES_MAX: usize = 3;

/// Another partition count to try after `result` fell short, given the counts tried or queued:
/// twice its count when it fell short with operations throttled. A hot partition's limit is
/// relieved by more partitions and not by more nodes, so the size deserves that try before a
/// larger one is run.
pub fn more_partitions_for(result: &SizeResult, candidates: &[u64]) -> Option<u64> {
    let throttled = result.runs.iter().any(|run| run.throttled > 0);
    let more = (result.partitions * 2).min(crate::cluster::PARTITIONS_PER_TABLE_MAX);
    let fits = candidates.len() < PARTITION_CANDIDATES_MAX && !candidates.contains(&more);
    (!result.passes() && throttled && fits).then_some(more)
}

/// Provisioned units that serve `units_per_s` at DynamoDB auto scaling's target utilisation.
pub fn provisioned_units(units_per_s: f64) -> u64 {
    // The small allowance keeps a quotient like 700 / 0.7, a hair above 1000 in floating point,
    // from rounding up to 1001.
    (units_per_s / PROVISIONED_TARGET_UTILISATION - 1e-9).ceil().max(0.0) as u64
}

/// One size's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct SizeResult {
    /// Nodes per zone.
    pub nodes_per_zone: u32,
    /// Partitions per table of the runs that decided it.
    pub partitions: u64,
    /// Every run at this size: target rate (all up, zone down) and the curve's rates.
    pub runs: Vec<Measurement>,
    /// Why the size misses the targets; empty when it passes.
    pub shortfalls: Vec<String>,
}

impl SizeResult {
    /// Whether the size meets every target.
    pub fn passes(&self) -> bool {
        self.shortfalls.is_empty()
    }

    /// The run at the target rate with all zones up or with a zone down.
    pub fn at_target(&self, zone_down: bool, target_rate: f64) -> Option<&Measurement> {
        self.runs.iter().find(|m| m.zone_down == zone_down && (m.offered_rate - target_rate).abs() < 1e-6)
    }
}

/// A plan: every size tried, and the recommendation.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// What was asked.
    pub settings: PlanSettings,
    /// Sizes tried, smallest first.
    pub sizes: Vec<SizeResult>,
    /// Index in `sizes` of the recommended size, if any size passed.
    pub recommended: Option<usize>,
    /// The commit and machine the plan was made on.
    pub commit: String,
    /// The machine.
    pub machine: String,
    /// Wall seconds the search took.
    pub wall_s: f64,
}

impl Plan {
    /// The recommended size.
    pub fn recommendation(&self) -> Option<&SizeResult> {
        self.recommended.map(|i| &self.sizes[i])
    }
}

/// Runs `squall-sim run` as a child process and reads its measurement.
struct Runner<'a> {
    exe: &'a Path,
    settings: &'a PlanSettings,
    runs_dir: PathBuf,
    bar: indicatif::ProgressBar,
}

impl Runner<'_> {
    fn run(&self, nodes_per_zone: u32, partitions: u64, zone_down: bool, rate: f64) -> anyhow::Result<Measurement> {
        let s = self.settings;
        let name =
            format!("n{nodes_per_zone}-p{partitions}-{}-r{rate:.0}", if zone_down { "zone-down" } else { "all-up" });
        self.bar.set_message(name.clone());
        let report = self.runs_dir.join(&name);
        let duration = s.warmup + s.measure;
        let mut command = Command::new(self.exe);
        command
            .arg("run")
            .args(["--seed", &s.seed.to_string(), "--zones", &s.zones.to_string()])
            .args(["--nodes-per-zone", &nodes_per_zone.to_string(), "--partitions", &partitions.to_string()])
            .args(["--scenario", if zone_down { "zone-down" } else { "calm" }])
            .args(["--workload", &s.workload, "--rate", &rate.to_string()])
            .args(["--duration", &format!("{}ms", duration.as_millis())])
            .args(["--warmup", &format!("{}ms", s.warmup.as_millis())])
            .args(["--clients", "1", "--heal-ops", "1", "--timeline", "none"])
            .arg("--report")
            .arg(&report);
        command.args(["--table-max-read-units", &s.table_max_read_units.to_string()]);
        command.args(["--table-max-write-units", &s.table_max_write_units.to_string()]);
        if let Some(profile) = &s.profile {
            command.arg("--profile").arg(profile);
        }
        let output = command.output().with_context(|| format!("start {}", self.exe.display()))?;
        // A run that misses its invariants still has a report worth judging; one without a
        // report failed to run at all.
        let text = std::fs::read_to_string(report.join("summary.json")).with_context(|| {
            format!(
                "run {name} wrote no report:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let summary: Value = serde_json::from_str(&text).context("parse summary.json")?;
        let mut measurement = measurement_from_summary(&summary)?;
        measurement.report = report.display().to_string();
        self.bar.inc(1);
        Ok(measurement)
    }
}

/// Searches sizes as the module documentation says, writing every run's report under
/// `out/runs/`.
pub fn search(exe: &Path, settings: &PlanSettings, out: &Path) -> anyhow::Result<Plan> {
    anyhow::ensure!(settings.target_rate > 0.0 && settings.target_rate.is_finite(), "--target-rate must be positive");
    anyhow::ensure!(settings.p99_ms > 0.0, "--p99-ms must be positive");
    anyhow::ensure!((0.0..100.0).contains(&settings.headroom_pct), "--headroom-pct must be at least 0 and below 100");
    anyhow::ensure!(settings.zones >= 3 || !settings.survive_zone, "surviving a zone needs at least 3 zones");
    anyhow::ensure!(settings.nodes_per_zone_min >= 1, "--min-nodes-per-zone must be at least 1");
    anyhow::ensure!(
        settings.nodes_per_zone_max >= settings.nodes_per_zone_min,
        "--max-nodes-per-zone must be at least --min-nodes-per-zone"
    );
    let started = std::time::Instant::now();
    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir).with_context(|| format!("create {}", runs_dir.display()))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} runs, {elapsed}: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let runner = Runner { exe, settings, runs_dir, bar };
    let target = settings.target_rate;
    let all_up = Criteria {
        p99_ms: settings.p99_ms,
        failures_max_pct: settings.failures_max_pct,
        utilisation_max: 1.0 - settings.headroom_pct / 100.0,
    };
    let zone_down = Criteria { utilisation_max: 1.0, ..all_up };

    // A first run on the smallest cluster tried tells what capacity the workload consumes, and
    // so the partition count DynamoDB's rule gives it.
    let probe_partitions = crate::cluster::PARTITIONS_PER_TABLE_DEFAULT;
    let probe = runner.run(settings.nodes_per_zone_min, probe_partitions, false, target)?;
    let (read_units, write_units) = probe.demanded_units_per_s();
    let rule = partitions_for_capacity(read_units, write_units);
    let mut probe = Some(probe);

    let mut sizes = Vec::new();
    let mut recommended = None;
    for nodes_per_zone in settings.nodes_per_zone_min..=settings.nodes_per_zone_max {
        let nodes = u64::from(nodes_per_zone * settings.zones);
        let mut best: Option<SizeResult> = None;
        let mut candidates = partition_candidates(rule, nodes);
        let mut next = 0;
        while let Some(&partitions) = candidates.get(next) {
            next += 1;
            let reuse = probe.take_if(|p| p.nodes_per_zone == nodes_per_zone && p.partitions == partitions);
            let up = match reuse {
                Some(measurement) => measurement,
                None => runner.run(nodes_per_zone, partitions, false, target)?,
            };
            let mut shortfalls: Vec<String> = up.shortfalls(&all_up);
            let mut runs = vec![up];
            if shortfalls.is_empty() && settings.survive_zone {
                let down = runner.run(nodes_per_zone, partitions, true, target)?;
                shortfalls.extend(down.shortfalls(&zone_down).into_iter().map(|r| format!("with a zone down, {r}")));
                runs.push(down);
            }
            let result = SizeResult { nodes_per_zone, partitions, runs, shortfalls };
            if let Some(more) = more_partitions_for(&result, &candidates) {
                candidates.push(more);
            }
            let better = best.as_ref().is_none_or(|b| !b.passes() && (result.passes() || fewer_misses(&result, b)));
            if better {
                best = Some(result);
            }
            if best.as_ref().is_some_and(SizeResult::passes) {
                break;
            }
        }
        let mut best = best.expect("every size has at least one partition candidate");
        // The curve's points are independent simulations: each runs in its own process at once.
        let partitions = best.partitions;
        let curve: Vec<anyhow::Result<Measurement>> = std::thread::scope(|scope| {
            let runner = &runner;
            let points: Vec<_> = CURVE_RATE_FRACTIONS
                .iter()
                .map(|fraction| scope.spawn(move || runner.run(nodes_per_zone, partitions, false, target * fraction)))
                .collect();
            points
                .into_iter()
                .map(|point| point.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a run panicked"))))
                .collect()
        });
        for point in curve {
            best.runs.push(point?);
        }
        let passes = best.passes();
        sizes.push(best);
        if passes {
            recommended = Some(sizes.len() - 1);
            break;
        }
    }
    runner.bar.finish_and_clear();
    Ok(Plan {
        settings: settings.clone(),
        sizes,
        recommended,
        commit: crate::bench::git_commit(),
        machine: crate::bench::machine(),
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Whether `a` misses its targets by less than `b` (fewer shortfalls, then a lower p99).
fn fewer_misses(a: &SizeResult, b: &SizeResult) -> bool {
    let p99 = |r: &SizeResult| r.runs.first().map_or(f64::INFINITY, |m| m.p99_ms);
    (a.shortfalls.len(), p99(a)) < (b.shortfalls.len(), p99(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(p99_us: u64, cpu: f64) -> Value {
        json!({
            "settings": {"rate": 1000.0},
            "simulation": {
                "nodes_per_zone": 2, "partitions_per_table": 6, "scenario": "ZoneDown",
                "chaos": {"measured_ms": 10000, "network_messages": 50000, "nodes": [
                    {"node": 0, "cpu_utilisation": cpu, "disk_utilisation": 0.2},
                    {"node": 1, "cpu_utilisation": 0.1, "disk_utilisation": 0.4, "network_utilisation": cpu / 3.0},
                ]},
            },
            "consumed_capacity": {"read_units_per_s": 900.0, "write_units_per_s": 150.0},
            "invariants": {"checks": [{"passed": true}]},
            "results": {"measured_seconds": 10.0, "operations": {
                "read": {"outcomes": {
                    "ok": {"count": 9_000, "p50_us": 800, "p99_us": p99_us, "p999_us": p99_us * 2},
                    "throttled": {"count": 5},
                }},
                "update": {"outcomes": {
                    "ok": {"count": 990, "p50_us": 1_500, "p99_us": 3_000, "p999_us": 4_000},
                    "timeout": {"count": 5},
                }},
            }},
        })
    }

    #[test]
    fn a_report_reads_as_a_measurement() {
        let m = measurement_from_summary(&summary(5_000, 0.5)).unwrap();
        assert_eq!((m.nodes_per_zone, m.partitions, m.zone_down), (2, 6, true));
        assert_eq!((m.operations, m.throttled, m.timeouts, m.errors), (10_000, 5, 5, 0));
        assert!((m.achieved_rate - 999.0).abs() < 1e-9);
        assert!((m.p99_ms - 5.0).abs() < 1e-9, "the worst operation's p99");
        assert!((m.p50_ms - 1.5).abs() < 1e-9);
        assert!((m.network_messages_per_s - 5_000.0).abs() < 1e-9);
        assert!((m.cpu_max() - 0.5).abs() < 1e-9 && (m.disk_max() - 0.4).abs() < 1e-9);
        assert!((m.network_max() - 0.5 / 3.0).abs() < 1e-9);
        assert!((m.failed_pct() - 0.1).abs() < 1e-9);
        assert!(m.invariants_hold);
        assert!(measurement_from_summary(&json!({})).is_err());
    }

    #[test]
    fn shortfalls_name_every_missed_target() {
        let criteria = Criteria { p99_ms: 10.0, failures_max_pct: 0.5, utilisation_max: 0.7 };
        assert!(measurement_from_summary(&summary(5_000, 0.5)).unwrap().shortfalls(&criteria).is_empty());
        let slow_and_busy = measurement_from_summary(&summary(25_000, 0.9)).unwrap().shortfalls(&criteria);
        assert_eq!(slow_and_busy.len(), 2, "{slow_and_busy:?}");
        assert!(slow_and_busy[0].contains("p99 25.0 ms is over the 10.0 ms target"));
        assert!(slow_and_busy[1].contains("CPU is 90% busy"));
        // A saturated link is a shortfall of its own (network at a third of the CPU figure).
        let saturated = measurement_from_summary(&summary(5_000, 2.4)).unwrap().shortfalls(&criteria);
        assert!(saturated.iter().any(|r| r.contains("network is 80% busy")), "{saturated:?}");
        let strict = Criteria { failures_max_pct: 0.01, ..criteria };
        let failing = measurement_from_summary(&summary(5_000, 0.5)).unwrap().shortfalls(&strict);
        assert!(failing[0].contains("5 throttled, 5 timed out"), "{failing:?}");
        let empty = Measurement::default().shortfalls(&criteria);
        assert_eq!(empty, ["no operation was measured"]);
    }

    #[test]
    fn a_throttled_probe_is_judged_by_what_it_was_asked_not_what_it_served() {
        let served = Measurement {
            offered_rate: 1000.0,
            achieved_rate: 1000.0,
            read_units_per_s: 900.0,
            write_units_per_s: 100.0,
            ..Measurement::default()
        };
        assert_eq!(served.demanded_units_per_s(), (900.0, 100.0));
        // Only a quarter succeeded: the workload asks four times what it consumed.
        let throttled =
            Measurement { achieved_rate: 250.0, read_units_per_s: 225.0, write_units_per_s: 25.0, ..served };
        assert_eq!(throttled.demanded_units_per_s(), (900.0, 100.0));
        let nothing = Measurement { achieved_rate: 0.0, ..throttled };
        assert_eq!(nothing.demanded_units_per_s(), (225.0, 25.0), "no success: nothing to scale by");
    }

    #[test]
    fn a_size_throttled_short_of_its_target_tries_twice_the_partitions_once() {
        let throttled = Measurement { throttled: 40, ..Measurement::default() };
        let short = SizeResult {
            nodes_per_zone: 3,
            partitions: 18,
            runs: vec![throttled.clone()],
            shortfalls: vec!["0.36% of operations failed".into()],
        };
        assert_eq!(more_partitions_for(&short, &[18, 12]), Some(36));
        assert_eq!(more_partitions_for(&short, &[18, 12, 24]), None, "a size tries at most three counts");
        assert_eq!(more_partitions_for(&short, &[36, 18]), None, "never the same count twice");
        let slow = SizeResult { runs: vec![Measurement::default()], ..short.clone() };
        assert_eq!(more_partitions_for(&slow, &[18, 12]), None, "no throttling: more partitions would not help");
        let passing = SizeResult { shortfalls: Vec::new(), ..short };
        assert_eq!(more_partitions_for(&passing, &[18, 12]), None);
    }

    #[test]
    fn partitions_follow_dynamodbs_rule_and_the_node_count() {
        assert_eq!(partitions_for_capacity(0.0, 0.0), 1);
        assert_eq!(partitions_for_capacity(9_000.0, 500.0), 3);
        assert_eq!(partitions_for_capacity(3_001.0, 4_500.0), 5);
        assert_eq!(partition_candidates(5, 6), [6, 5]);
        assert_eq!(partition_candidates(12, 6), [12]);
        assert_eq!(partition_candidates(13, 6), [18, 13]);
        assert_eq!(partition_candidates(5_000, 9), [crate::cluster::PARTITIONS_PER_TABLE_MAX]);
    }

    #[test]
    fn provisioned_capacity_leaves_auto_scalings_headroom() {
        assert_eq!(provisioned_units(700.0), 1_000);
        assert_eq!(provisioned_units(0.0), 0);
        assert_eq!(provisioned_units(1.0), 2);
    }
}
