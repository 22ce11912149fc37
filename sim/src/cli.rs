//! `squall-sim`'s command line: `run` one seed, `sweep` many, `bench` the fixed cases, `plan`
//! a cluster's size.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{RunConfig, RunReport, Scenario, StorageKind};
use crate::load::LoadConfig;
use crate::nemesis::FaultSet;
use crate::resources::Profile;
use crate::sweep::{self, SeedRange};
use crate::trace::Echo;
use squall_engine::planted::{self, Bug};

/// Squall's deterministic simulator: a whole cluster inside one process under madsim, with
/// faults, a workload and checkers. Every choice derives from the seed; the same seed gives
/// the same trace hash.
///
/// Environment: RUST_LOG is read only with --log (engine logs go to stderr). Runs must be
/// built with RUSTFLAGS="--cfg madsim" (scripts/sim does it).
#[derive(Parser, Debug)]
#[command(name = "squall-sim", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one seed: prints the seed, the timeline, the checkers' verdict and the trace hash.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Runs many seeds in child processes and keeps the output of each failing one.
    Sweep {
        /// Seeds: `A..B` (B excluded), `A..=B` or one seed.
        #[arg(long, default_value = "1..100")]
        seeds: SeedRange,
        /// Seeds run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Where failing seeds' output and replay commands go.
        #[arg(long, default_value = "sim-results")]
        out: PathBuf,
        /// Start no seed after the first failure (hunting for a bug rather than counting).
        #[arg(long)]
        until_failure: bool,
        /// Also write the totals as JSON to this file (seeds run, failures, wall times).
        #[arg(long)]
        json: Option<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Runs the deterministic simulated benchmark (fixed seeds and workloads whose simulated
    /// latencies, syncs, disk commands, CPU time and messages repeat exactly) and writes its
    /// metrics; with a baseline, prints both side by side and fails on a regression.
    Bench {
        /// Where the metrics go (JSON).
        #[arg(long, default_value = "sim-results/bench.json")]
        out: PathBuf,
        /// A earlier result to compare with.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// How much worse, in percent, a metric may get before it counts as a regression.
        #[arg(long, default_value_t = 10.0)]
        threshold_pct: f64,
    },
    /// Plans a cluster: searches sizes and partition counts in simulation for the smallest
    /// cluster that serves a workload at a target rate within a p99 target, with headroom, and
    /// (with --survive zone) with a zone down; writes plan.json, summary.md and report.html.
    Plan(PlanArgs),
}

/// What `squall-sim plan` can lose and still meet its targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Survive {
    /// Every zone up.
    Nothing,
    /// Any one zone down.
    Zone,
}

#[derive(Args, Debug, Clone)]
struct PlanArgs {
    /// The workload: ycsb-a..ycsb-f, orders, sessions, feed, bank, or a scenario .toml file.
    #[arg(long)]
    workload: String,
    /// Workload operations per second the cluster must serve.
    #[arg(long)]
    target_rate: f64,
    /// Latency target: the worst operation's p99, in milliseconds.
    #[arg(long)]
    p99_ms: f64,
    /// What the cluster must survive while meeting the targets.
    #[arg(long, value_enum, default_value_t = Survive::Zone)]
    survive: Survive,
    /// Where the reports go.
    #[arg(long, default_value = "sim-results/plan")]
    out: PathBuf,
    /// Zones.
    #[arg(long, default_value_t = 3)]
    zones: u32,
    /// Smallest size to try, in nodes per zone.
    #[arg(long, default_value_t = 1)]
    min_nodes_per_zone: u32,
    /// Largest size to try, in nodes per zone.
    #[arg(long, default_value_t = 6)]
    max_nodes_per_zone: u32,
    /// Share of every node's CPU and disk to keep free at the target rate with all zones up.
    #[arg(long, default_value_t = 30.0)]
    headroom_pct: f64,
    /// Failed operations (errors, throttling, timeouts) allowed, percent.
    #[arg(long, default_value_t = 0.1)]
    failures_max_pct: f64,
    /// Simulated time each run measures.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    measure: Duration,
    /// Simulated time before each run measures (a failover settling with a zone down).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Seed of every run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Resource profile of the nodes (TOML; default: the built-in profile).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Read units per second one table may use at most: the account's per-table quota the
    /// planned cluster will have (DynamoDB's default 40,000; raised on request).
    #[arg(long, default_value_t = TABLE_MAX_UNITS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    table_max_read_units: u64,
    /// Write units per second one table may use at most (see `--table-max-read-units`).
    #[arg(long, default_value_t = TABLE_MAX_UNITS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    table_max_write_units: u64,
}

fn plan(args: &PlanArgs) -> anyhow::Result<i32> {
    // A workload or profile that cannot be read fails here, once, not in every run.
    LoadConfig::resolve(&args.workload, args.target_rate)?;
    if let Some(path) = &args.profile {
        Profile::read(path).map_err(anyhow::Error::msg)?;
    }
    let settings = crate::plan::PlanSettings {
        workload: args.workload.clone(),
        target_rate: args.target_rate,
        p99_ms: args.p99_ms,
        survive_zone: args.survive == Survive::Zone,
        zones: args.zones,
        nodes_per_zone_min: args.min_nodes_per_zone,
        nodes_per_zone_max: args.max_nodes_per_zone,
        headroom_pct: args.headroom_pct,
        failures_max_pct: args.failures_max_pct,
        measure: args.measure,
        warmup: args.warmup,
        seed: args.seed,
        profile: args.profile.clone(),
        table_max_read_units: args.table_max_read_units,
        table_max_write_units: args.table_max_write_units,
    };
    println!(
        "plan: {} at {} operations/s, p99 at most {} ms{}; sizes {}..={} nodes per zone",
        settings.workload,
        settings.target_rate,
        settings.p99_ms,
        if settings.survive_zone { ", surviving a zone" } else { "" },
        settings.nodes_per_zone_min,
        settings.nodes_per_zone_max
    );
    let found = crate::plan::search(&std::env::current_exe()?, &settings, &args.out)?;
    let written = crate::plan_report::write(&found, &args.out)?;
    match found.recommendation() {
        Some(size) => println!(
            "plan: recommended {} zones x {} nodes per zone, {} partitions per table ({} runs, {:.0} wall s)",
            settings.zones,
            size.nodes_per_zone,
            size.partitions,
            found.sizes.iter().map(|s| s.runs.len()).sum::<usize>(),
            found.wall_s
        ),
        None => println!(
            "plan: no size from {} to {} nodes per zone meets the targets",
            settings.nodes_per_zone_min, settings.nodes_per_zone_max
        ),
    }
    for path in written {
        println!("plan: wrote {}", path.display());
    }
    Ok(if found.recommended.is_some() { 0 } else { 1 })
}

/// Options of a run, shared by `run` and `sweep` (which passes them to every seed).
#[derive(Args, Debug, Clone)]
struct RunOptions {
    /// Zones.
    #[arg(long, default_value_t = 3)]
    zones: u32,
    /// Nodes in each zone.
    #[arg(long, default_value_t = 3)]
    nodes_per_zone: u32,
    /// Partitions of every table (each a raft group of three replicas in three zones).
    #[arg(long, default_value_t = crate::cluster::PARTITIONS_PER_TABLE_DEFAULT)]
    partitions: u64,
    /// Length of the chaos phase in simulated time (`60s`, `500ms`, `2m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Store each node runs on.
    #[arg(long, value_enum, default_value_t = StorageKind::Memory)]
    storage: StorageKind,
    /// Fault kinds the nemesis may use: all, none, network, disk, process, or names
    /// (crash, pause, zone-crash, zone-cut, isolate, halves, loss, latency, disk-eio-write,
    /// disk-eio-sync, disk-corrupt, disk-rot, disk-slow, disk-full, swizzle-clog, split, wipe,
    /// move), comma-separated.
    #[arg(long, default_value = "all")]
    faults: FaultSet,
    /// Workload and fault shape.
    #[arg(long, value_enum, default_value_t = Scenario::Kv)]
    scenario: Scenario,
    /// A workload offered during the chaos phase besides the checked clients, with its invariant
    /// checked after the heal: ycsb-a..ycsb-f, orders, sessions, feed, bank, a scenario .toml
    /// file, or none. Default: the scenario's own (zone-outage ycsb-b, rolling-restarts orders,
    /// zone-partition bank, flaky-disks sessions, swarm drawn from the seed; none otherwise).
    #[arg(long)]
    workload: Option<String>,
    /// Open-loop arrivals per simulated second of the workload.
    #[arg(long, default_value_t = crate::load::RATE_DEFAULT)]
    rate: f64,
    /// First part of the chaos phase whose workload latencies and node utilisation are left
    /// out of the report (connections opening, a failover settling).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Directory for the workload's report: summary.json, series.csv, .hgrm files, histograms
    /// and plots with the fault windows shaded (run only).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Resource profile of the nodes' CPU and disk and of the network (TOML; default: the
    /// built-in profile, sim/profiles/default.toml, which documents every field).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Client hosts.
    #[arg(long, default_value_t = 3)]
    clients: u32,
    /// Operations each client runs after the heal, each of which must succeed in time.
    #[arg(long, default_value_t = 20)]
    heal_ops: u32,
    /// What the timeline prints: every event, or only faults and phases (all are hashed).
    #[arg(long, value_enum, default_value_t = TimelineEcho::All)]
    timeline: TimelineEcho,
    /// Print engine logs to stderr (filter from RUST_LOG, default `info`). The run follows the
    /// same course, and ends with the same trace hash, as without logs.
    #[arg(long)]
    log: bool,
    /// Plant a bug that exists only in simulation builds, to see the checkers catch it:
    /// ack-before-quorum, stale-leader-reads, skip-log-fsync, ignore-checksums (repeatable).
    #[arg(long = "plant", value_parser = parse_bug)]
    planted: Vec<Bug>,
    /// Switch on the engine's fault points (dropped raft messages, broken peer links, slow
    /// answers, refused proposals, late raft messages, forgotten leader hints): the seed picks
    /// which are active. The swarm scenario switches them on for half its seeds by itself.
    #[arg(long)]
    buggify: bool,
    /// Read units per second one table may use at most (the account's per-table quota;
    /// DynamoDB's default 40,000).
    #[arg(long, default_value_t = TABLE_MAX_UNITS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    table_max_read_units: u64,
    /// Write units per second one table may use at most (see `--table-max-read-units`).
    #[arg(long, default_value_t = TABLE_MAX_UNITS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    table_max_write_units: u64,
}

/// DynamoDB's default per-table quota, read and write units per second alike.
const TABLE_MAX_UNITS_DEFAULT: u64 = squall_engine::capacity::ON_DEMAND_TABLE_READ_UNITS_PER_S as u64;

fn parse_bug(name: &str) -> Result<Bug, String> {
    Bug::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("no planted bug {name:?}; there are {}", names.join(", "))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TimelineEcho {
    All,
    Faults,
    None,
}

impl RunOptions {
    /// The options as command-line arguments, for child processes and replay commands.
    fn to_args(&self) -> Vec<String> {
        fn value(v: &impl clap::ValueEnum) -> String {
            v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
        }
        let faults: Vec<&str> = self.faults.0.iter().map(|k| k.name()).collect();
        let mut args = vec![
            "--zones".to_string(),
            self.zones.to_string(),
            "--nodes-per-zone".into(),
            self.nodes_per_zone.to_string(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--duration".into(),
            format!("{}ms", self.duration.as_millis()),
            "--storage".into(),
            value(&self.storage),
            "--faults".into(),
            if faults.is_empty() { "none".to_string() } else { faults.join(",") },
            "--scenario".into(),
            value(&self.scenario),
            "--clients".into(),
            self.clients.to_string(),
            "--heal-ops".into(),
            self.heal_ops.to_string(),
            "--rate".into(),
            self.rate.to_string(),
            "--timeline".into(),
            value(&self.timeline),
        ];
        if let Some(workload) = &self.workload {
            args.extend(["--workload".to_string(), workload.clone()]);
        }
        if !self.warmup.is_zero() {
            args.extend(["--warmup".to_string(), format!("{}ms", self.warmup.as_millis())]);
        }
        if let Some(profile) = &self.profile {
            args.extend(["--profile".to_string(), profile.display().to_string()]);
        }
        for bug in &self.planted {
            args.extend(["--plant".to_string(), bug.name().to_string()]);
        }
        if self.log {
            args.push("--log".into());
        }
        if self.buggify {
            args.push("--buggify".into());
        }
        if self.table_max_read_units != TABLE_MAX_UNITS_DEFAULT {
            args.extend(["--table-max-read-units".to_string(), self.table_max_read_units.to_string()]);
        }
        if self.table_max_write_units != TABLE_MAX_UNITS_DEFAULT {
            args.extend(["--table-max-write-units".to_string(), self.table_max_write_units.to_string()]);
        }
        args
    }

    fn config(&self, seed: u64) -> anyhow::Result<RunConfig> {
        let workload = match self.workload.as_deref() {
            Some("none") => None,
            Some(source) => Some(source),
            None => self.scenario.default_workload(seed),
        };
        let load = workload.map(|source| LoadConfig::resolve(source, self.rate)).transpose()?;
        anyhow::ensure!(self.warmup < self.duration, "--warmup must be shorter than --duration");
        let profile = match &self.profile {
            Some(path) => Profile::read(path).map_err(anyhow::Error::msg)?,
            None => Profile::builtin(),
        };
        Ok(RunConfig {
            seed,
            zones: self.zones,
            nodes_per_zone: self.nodes_per_zone,
            partitions: self.partitions,
            chaos: self.duration,
            warmup: self.warmup,
            storage: self.storage,
            faults: self.faults.clone(),
            scenario: self.scenario,
            clients: self.clients,
            heal_ops: self.heal_ops,
            echo: match self.timeline {
                TimelineEcho::All => Echo::All,
                TimelineEcho::Faults => Echo::Faults,
                TimelineEcho::None => Echo::Nothing,
            },
            load,
            report_dir: self.report.clone(),
            profile: std::sync::Arc::new(profile),
            buggify: self.buggify || self.scenario.buggify(seed),
            quota: squall_engine::capacity::Quota {
                table_read_units_per_s: self.table_max_read_units as f64,
                table_write_units_per_s: self.table_max_write_units as f64,
            },
        })
    }
}

/// The fault points' summary: each active site and how often it fired.
fn buggify_line(sites: &[squall_engine::buggify::SiteReport]) -> String {
    let active: Vec<String> =
        sites.iter().filter(|s| s.active).map(|s| format!("{} fired {}", s.site.name(), s.fired)).collect();
    if active.is_empty() {
        "buggify: on, no site active for this seed".to_string()
    } else {
        format!("buggify: {}", active.join(", "))
    }
}

/// `60s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        (text, 1_000)
    };
    let value: u64 = number.trim().parse().map_err(|_| format!("{text:?} is not a duration like 60s or 500ms"))?;
    value.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(madsim)]
fn simulate(config: &RunConfig) -> anyhow::Result<RunReport> {
    crate::run::run(config)
}

#[cfg(not(madsim))]
fn simulate(_config: &RunConfig) -> anyhow::Result<RunReport> {
    anyhow::bail!("squall-sim needs the simulator build: RUSTFLAGS=\"--cfg madsim\" (scripts/sim builds it)")
}

fn bench(out: &std::path::Path, baseline: Option<&std::path::Path>, threshold_pct: f64) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    anyhow::ensure!(threshold_pct.is_finite() && threshold_pct >= 0.0, "--threshold-pct must be at least 0");
    let baseline = baseline
        .map(|path| {
            let text = std::fs::read_to_string(path).with_context(|| format!("read baseline {}", path.display()))?;
            serde_json::from_str::<crate::bench::BenchFile>(&text).with_context(|| format!("parse {}", path.display()))
        })
        .transpose()?;
    let work = tempfile::Builder::new().prefix("squall-bench-").tempdir()?;
    println!("bench: {} cases", crate::bench::CASES.len());
    let current = crate::bench::run_cases(&std::env::current_exe()?, work.path())?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&current)? + "\n")
        .with_context(|| format!("write {}", out.display()))?;
    println!("bench: {:.1} wall s; metrics written to {}", current.wall_s, out.display());
    let Some(baseline) = baseline else {
        return Ok(0);
    };
    let rows = crate::bench::compare(&baseline.cases, &current.cases, threshold_pct);
    println!("compared with commit {} (threshold {threshold_pct}%):", baseline.commit);
    print!("{}", crate::bench::table(&rows));
    let regressions = rows.iter().filter(|r| r.regressed).count();
    if regressions > 0 {
        println!("{regressions} regression(s) beyond {threshold_pct}%");
        return Ok(1);
    }
    println!("no regression beyond {threshold_pct}%");
    Ok(0)
}

/// Runs the command line; returns the process exit code.
pub fn main() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { seed, options } => {
            if options.log {
                tracing_subscriber::fmt()
                    .with_env_filter(
                        tracing_subscriber::EnvFilter::try_from_default_env()
                            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                    )
                    .with_writer(std::io::stderr)
                    .init();
            }
            println!("seed: {seed}");
            for bug in &options.planted {
                planted::plant(*bug).map_err(anyhow::Error::msg)?;
                println!("planted bug: {bug}");
            }
            let wall = std::time::Instant::now();
            let report = simulate(&options.config(seed)?)?;
            let wall_s = wall.elapsed().as_secs_f64().max(1e-9);
            let simulated_s = report.simulated.as_secs_f64();
            println!("checkers: {} violation(s)", report.violations.len());
            for violation in &report.violations {
                println!("violation: {violation}");
            }
            if !report.violations.is_empty() {
                println!("replay: {}", sweep::replay_command(seed, &options.to_args()));
            }
            println!("faults injected: {}", report.faults_injected);
            if !report.buggify.is_empty() {
                println!("{}", buggify_line(&report.buggify));
            }
            println!(
                "speed: {simulated_s:.1} simulated s in {wall_s:.2} wall s ({:.1} simulated s per wall s), \
                 {} requests ({:.0} requests per wall s)",
                simulated_s / wall_s,
                report.requests,
                report.requests as f64 / wall_s
            );
            if let Some(dir) = &report.report_written {
                println!("report: {}", dir.display());
            }
            println!("trace hash: {:016x}", report.trace_hash);
            Ok(if report.violations.is_empty() { 0 } else { 1 })
        }
        Command::Bench { out, baseline, threshold_pct } => bench(&out, baseline.as_deref(), threshold_pct),
        Command::Plan(args) => plan(&args),
        Command::Sweep { seeds, jobs, out, until_failure, json, options } => {
            // A workload that cannot be resolved fails here, once, not in every child.
            options.config(seeds.start)?;
            let exe = std::env::current_exe()?;
            let args = options.to_args();
            println!(
                "sweep: seeds {}..{} with {jobs} jobs, output of failing seeds in {}",
                seeds.start,
                seeds.end,
                out.display()
            );
            let totals = sweep::sweep(&exe, seeds, jobs, &args, &out, until_failure)?;
            if let Some(path) = &json {
                let summary = serde_json::json!({
                    "seeds": format!("{}..{}", seeds.start, seeds.end),
                    "jobs": jobs,
                    "run_args": args,
                    "totals": totals,
                });
                std::fs::write(path, serde_json::to_string_pretty(&summary)?)
                    .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
            }
            println!(
                "passed: {}, failed: {}, faults injected: {}",
                totals.passed,
                totals.failed.len(),
                totals.faults_injected
            );
            if !totals.failed.is_empty() {
                let failed: Vec<String> = totals.failed.iter().map(u64::to_string).collect();
                println!("failing seeds: {} (output and replay commands in {})", failed.join(" "), out.display());
            }
            Ok(if totals.failed.is_empty() { 0 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn options_round_trip_through_arguments() {
        let cli = Cli::parse_from([
            "squall-sim",
            "run",
            "--seed",
            "5",
            "--storage",
            "rocksdb",
            "--faults",
            "crash,loss",
            "--duration",
            "3s",
        ]);
        let Command::Run { options, .. } = cli.command else { panic!("not a run") };
        let args = options.to_args();
        let mut argv = vec!["squall-sim".to_string(), "run".into(), "--seed".into(), "5".into()];
        argv.extend(args.clone());
        let again = Cli::parse_from(argv);
        let Command::Run { options: reparsed, .. } = again.command else { panic!("not a run") };
        assert_eq!(reparsed.to_args(), args);
        assert_eq!(reparsed.duration, Duration::from_secs(3));
        assert_eq!(reparsed.storage, StorageKind::Rocksdb);
    }
}
