//! `squall-sim`'s command line: `run` one seed, `sweep` many.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{RunConfig, RunReport, Scenario, StorageKind};
use crate::nemesis::FaultSet;
use crate::sweep::{self, SeedRange};
use crate::trace::Echo;

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
        #[command(flatten)]
        options: RunOptions,
    },
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
    /// Length of the chaos phase in simulated time (`60s`, `500ms`, `2m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Store each node runs on.
    #[arg(long, value_enum, default_value_t = StorageKind::Memory)]
    storage: StorageKind,
    /// Fault kinds the nemesis may use: all, none, network, disk, process, or names
    /// (crash, pause, zone-crash, zone-cut, isolate, halves, loss, latency, disk-eio-write,
    /// disk-eio-sync, disk-corrupt, disk-slow, disk-full), comma-separated.
    #[arg(long, default_value = "all")]
    faults: FaultSet,
    /// Workload and fault shape.
    #[arg(long, value_enum, default_value_t = Scenario::Kv)]
    scenario: Scenario,
    /// Client hosts.
    #[arg(long, default_value_t = 3)]
    clients: u32,
    /// Operations each client runs after the heal, each of which must succeed in time.
    #[arg(long, default_value_t = 20)]
    heal_ops: u32,
    /// What the timeline prints: every event, or only faults and phases (all are hashed).
    #[arg(long, value_enum, default_value_t = TimelineEcho::All)]
    timeline: TimelineEcho,
    /// Print engine logs to stderr (filter from RUST_LOG, default `info`).
    #[arg(long)]
    log: bool,
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
            "--timeline".into(),
            value(&self.timeline),
        ];
        if self.log {
            args.push("--log".into());
        }
        args
    }

    fn config(&self, seed: u64) -> RunConfig {
        RunConfig {
            seed,
            zones: self.zones,
            nodes_per_zone: self.nodes_per_zone,
            chaos: self.duration,
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
        }
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
            let wall = std::time::Instant::now();
            let report = simulate(&options.config(seed))?;
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
            println!(
                "speed: {simulated_s:.1} simulated s in {wall_s:.2} wall s ({:.1} simulated s per wall s), \
                 {} requests ({:.0} requests per wall s)",
                simulated_s / wall_s,
                report.requests,
                report.requests as f64 / wall_s
            );
            println!("trace hash: {:016x}", report.trace_hash);
            Ok(if report.violations.is_empty() { 0 } else { 1 })
        }
        Command::Sweep { seeds, jobs, out, options } => {
            let exe = std::env::current_exe()?;
            let args = options.to_args();
            println!(
                "sweep: seeds {}..{} with {jobs} jobs, output of failing seeds in {}",
                seeds.start,
                seeds.end,
                out.display()
            );
            let totals = sweep::sweep(&exe, seeds, jobs, &args, &out)?;
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
