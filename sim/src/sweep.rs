//! Sweeps: many seeds, each in a child process of its own (a simulation owns its process's
//! clock and randomness hooks, and a crash or hang of one seed must not take the others down).
//! Failing seeds keep their output and a replay command; passing seeds keep nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// How often running children are polled.
const POLL_MS: u64 = 20;
/// Most seeds one sweep runs.
pub const SEEDS_MAX: u64 = 1_000_000;

/// A range of seeds, `A..B` (B excluded) or `A..=B`, or one seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl std::str::FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{s:?} is not a seed number"));
        let range = if let Some((a, b)) = text.split_once("..=") {
            SeedRange { start: number(a)?, end: number(b)?.checked_add(1).ok_or("seed range too large")? }
        } else if let Some((a, b)) = text.split_once("..") {
            SeedRange { start: number(a)?, end: number(b)? }
        } else {
            let seed = number(text)?;
            SeedRange { start: seed, end: seed.checked_add(1).ok_or("seed too large")? }
        };
        if range.end <= range.start {
            return Err(format!("seed range {text:?} is empty"));
        }
        if range.end - range.start > SEEDS_MAX {
            return Err(format!("seed range {text:?} holds more than {SEEDS_MAX} seeds"));
        }
        Ok(range)
    }
}

/// What a child's output says about its run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildSummary {
    /// The `trace hash:` line.
    pub trace_hash: Option<String>,
    /// The `faults injected:` line.
    pub faults_injected: u64,
    /// Violation lines.
    pub violations: Vec<String>,
}

/// Reads the summary lines a `run` prints.
pub fn parse_output(output: &str) -> ChildSummary {
    let mut summary = ChildSummary::default();
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        // A panic inside the simulated cluster (an engine or raft invariant) ends the run: the
        // panic's message, on the line after its location, is the run's first violation.
        if let Some((_, location)) = line.split_once(" panicked at ") {
            let message = lines.next().unwrap_or_default().trim();
            summary.violations.push(format!("panic at {} {message}", location.trim_end_matches(':')));
        } else if let Some(hash) = line.strip_prefix("trace hash: ") {
            summary.trace_hash = Some(hash.trim().to_string());
        } else if let Some(count) = line.strip_prefix("faults injected: ") {
            summary.faults_injected = count.trim().parse().unwrap_or(0);
        } else if let Some(violation) = line.strip_prefix("violation: ") {
            summary.violations.push(violation.to_string());
        }
    }
    summary
}

/// Totals of a sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepTotals {
    /// Seeds run to the end.
    pub seeds_run: u64,
    /// Wall time from the start of the sweep to the end of its first failing seed.
    pub wall_ms_to_first_failure: Option<u64>,
    /// Wall time of the whole sweep.
    pub wall_ms: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds that failed, ascending.
    pub failed: Vec<u64>,
    /// The first failing seed to finish and the first violation it reported.
    pub first_failure: Option<(u64, String)>,
    /// Faults injected over every seed.
    pub faults_injected: u64,
}

struct Running {
    seed: u64,
    child: Child,
    log: PathBuf,
}

/// Runs `exe run --seed S <run_args>` for every seed of `seeds`, `jobs` at a time, keeping the
/// output and replay command of each failing seed under `out`. With `until_failure`, no seed
/// starts after the first failure (the seeds already running finish).
pub fn sweep(
    exe: &Path,
    seeds: SeedRange,
    jobs: usize,
    run_args: &[String],
    out: &Path,
    until_failure: bool,
) -> anyhow::Result<SweepTotals> {
    let started = std::time::Instant::now();
    fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let total = seeds.end - seeds.start;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} [{elapsed_precise}, eta {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut totals = SweepTotals::default();
    let mut next = seeds.start;
    let mut running: Vec<Running> = Vec::new();
    while next < seeds.end || !running.is_empty() {
        let stop_starting = until_failure && !totals.failed.is_empty();
        while running.len() < jobs.max(1) && next < seeds.end && !stop_starting {
            running.push(spawn(exe, next, run_args, out)?);
            next += 1;
        }
        let mut index = 0;
        while index < running.len() {
            let Some(status) = running[index].child.try_wait().context("wait for a seed's process")? else {
                index += 1;
                continue;
            };
            let done = running.swap_remove(index);
            let output = fs::read_to_string(&done.log).unwrap_or_default();
            let summary = parse_output(&output);
            totals.seeds_run += 1;
            totals.faults_injected += summary.faults_injected;
            if status.success() && summary.trace_hash.is_some() {
                totals.passed += 1;
                let _ = fs::remove_file(&done.log);
            } else {
                totals.failed.push(done.seed);
                totals.wall_ms_to_first_failure.get_or_insert(started.elapsed().as_millis() as u64);
                let replay = replay_command(done.seed, run_args);
                fs::write(out.join(format!("seed-{}.replay", done.seed)), format!("{replay}\n"))
                    .context("write replay command")?;
                let first = summary.violations.first().cloned().unwrap_or_else(|| format!("exit {status}"));
                totals.first_failure.get_or_insert((done.seed, first.clone()));
                bar.println(format!("seed {} failed: {first}\n  replay: {replay}", done.seed));
            }
            bar.inc(1);
            bar.set_message(format!(
                "{} passed, {} failed, {} faults",
                totals.passed,
                totals.failed.len(),
                totals.faults_injected
            ));
        }
        if stop_starting && running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    bar.finish();
    totals.wall_ms = started.elapsed().as_millis() as u64;
    totals.failed.sort_unstable();
    Ok(totals)
}

fn spawn(exe: &Path, seed: u64, run_args: &[String], out: &Path) -> anyhow::Result<Running> {
    let log = out.join(format!("seed-{seed}.log"));
    let file = fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let stderr = file.try_clone().context("share the log with stderr")?;
    let child = Command::new(exe)
        .arg("run")
        .arg("--seed")
        .arg(seed.to_string())
        .args(run_args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("start {}", exe.display()))?;
    Ok(Running { seed, child, log })
}

/// The command that replays one seed of a sweep.
pub fn replay_command(seed: u64, run_args: &[String]) -> String {
    let mut command = format!("scripts/sim run --seed {seed}");
    for arg in run_args {
        command.push(' ');
        command.push_str(arg);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse() {
        assert_eq!("1..100".parse(), Ok(SeedRange { start: 1, end: 100 }));
        assert_eq!("1..=100".parse(), Ok(SeedRange { start: 1, end: 101 }));
        assert_eq!("7".parse(), Ok(SeedRange { start: 7, end: 8 }));
        assert!("5..5".parse::<SeedRange>().unwrap_err().contains("empty"));
        assert!("a..5".parse::<SeedRange>().is_err());
        assert!("0..2000000".parse::<SeedRange>().unwrap_err().contains("more than"));
    }

    #[test]
    fn child_output_is_summarised() {
        let output =
            "seed: 3\n[   0.000000] x\nviolation: no-lost-writes: k1: gone\nfaults injected: 4\ntrace hash: 00ff\n";
        let summary = parse_output(output);
        assert_eq!(summary.trace_hash.as_deref(), Some("00ff"));
        assert_eq!(summary.faults_injected, 4);
        assert_eq!(summary.violations, ["no-lost-writes: k1: gone"]);
        assert_eq!(parse_output("panicked").trace_hash, None);
    }

    #[test]
    fn a_panic_is_the_first_violation() {
        let output = "seed: 1\nthread 'main' (12) panicked at src/raft_log.rs:292:13:\nto_commit 462 is out of range\n";
        let summary = parse_output(output);
        assert_eq!(summary.violations, ["panic at src/raft_log.rs:292:13 to_commit 462 is out of range"]);
        assert_eq!(summary.trace_hash, None);
    }

    #[test]
    fn replay_commands_repeat_the_run_options() {
        let args = ["--storage".to_string(), "rocksdb".to_string()];
        assert_eq!(replay_command(9, &args), "scripts/sim run --seed 9 --storage rocksdb");
    }
}
