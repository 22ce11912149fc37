//! Bug-finding power: each planted bug is caught by the checkers within a few seeds of the faults
//! that expose it, and the failing seed passes once the bug is taken out again, so the failure
//! is the bug's doing and not the harness's.
//!
//! Planted bugs are process-wide, so every run here is a child process of `squall-sim`.

#![cfg(madsim)]

use std::path::Path;
use std::process::Command;

/// Seeds each sweep may try before the bug counts as missed.
const SEEDS: &str = "1..=24";

/// Options every run here shares: short runs of the checked clients only.
const RUN_ARGS: [&str; 6] = ["--duration", "20s", "--heal-ops", "10", "--workload", "none"];

/// Sweeps `SEEDS` with `bug` planted until a seed fails; returns that seed and its first
/// violation.
fn first_catch(bug: &str, faults: &str, out: &Path) -> (u64, String) {
    let json = out.join("sweep.json");
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["sweep", "--seeds", SEEDS, "--jobs", "2", "--until-failure", "--plant", bug, "--faults", faults])
        .args(RUN_ARGS)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "a sweep that catches the bug fails: {stdout}");
    let sweep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the sweep's json")).expect("valid json");
    let first = &sweep["totals"]["first_failure"];
    let seed = first[0].as_u64().unwrap_or_else(|| panic!("{bug} not caught in seeds {SEEDS}: {stdout}"));
    (seed, first[1].as_str().unwrap_or_default().to_string())
}

/// Runs `seed` with `faults` and no planted bug: true when every checker passes.
fn passes_unplanted(seed: u64, faults: &str) -> bool {
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["run", "--seed", &seed.to_string(), "--faults", faults, "--timeline", "none"])
        .args(RUN_ARGS)
        .output()
        .expect("start squall-sim");
    output.status.success()
}

fn assert_caught(bug: &str, faults: &str, expected: &[&str]) {
    let out = tempfile::tempdir().expect("temporary directory");
    let (seed, violation) = first_catch(bug, faults, out.path());
    assert!(
        expected.iter().any(|prefix| violation.starts_with(prefix)),
        "{bug} was caught by seed {seed} through an unexpected property: {violation}"
    );
    assert!(passes_unplanted(seed, faults), "seed {seed} fails without {bug} planted too");
}

#[test]
fn acknowledging_before_a_quorum_loses_writes_the_checkers_see() {
    assert_caught(
        "ack-before-quorum",
        "halves,crash,zone-crash",
        &["linearizable", "no-stale-reads", "no-lost-writes"],
    );
}

#[test]
fn strong_reads_from_a_deposed_leader_are_stale_reads() {
    assert_caught("stale-leader-reads", "isolate,zone-cut,halves", &["linearizable", "no-stale-reads"]);
}

#[test]
fn a_raft_log_without_fsync_loses_what_it_promised() {
    // Raft itself may notice first: a follower whose log vanished with a power failure is told
    // to commit entries it no longer has, and stops the run on its own invariant. When nothing
    // more is proposed to its group, the leader believes the follower holds what it promised and
    // never sends it again: the replicas then never agree, which the final check reports.
    assert_caught(
        "skip-log-fsync",
        "crash,zone-crash",
        &["panic at", "linearizable", "no-stale-reads", "no-lost-writes", "replicas-agree"],
    );
}

#[test]
fn reads_that_ignore_checksums_return_corrupt_items() {
    assert_caught(
        "ignore-checksums",
        "disk-corrupt",
        &["linearizable", "no-stale-reads", "no-lost-writes", "panic at"],
    );
}

#[test]
fn a_split_that_loses_its_boundary_key_loses_writes() {
    // The key lost is rewritten by the next unconditional write, so a read that falls between
    // the split and that write is what sees it gone.
    assert_caught("split-drops-boundary", "split", &["linearizable", "no-stale-reads", "no-lost-writes"]);
}
