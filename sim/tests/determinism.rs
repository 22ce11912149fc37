//! The same seed gives the same trace hash in two separate processes, with either store, and
//! different seeds give different hashes. Separate processes matter: madsim's own determinism
//! check runs twice in one process and cannot see randomness that leaks in from outside it.

#![cfg(madsim)]

use std::collections::BTreeMap;
use std::process::Command;

/// Seeds checked; short runs keep the test quick while still crossing faults.
const SEEDS: [u64; 3] = [1, 2, 3];

fn trace_hash(seed: u64, storage: &str) -> String {
    trace_hash_with(seed, storage, &[])
}

fn trace_hash_with(seed: u64, storage: &str, args: &[&str]) -> String {
    trace_hash_logged(seed, storage, args, "")
}

/// The trace hash of a run with RUST_LOG set to `filter` (read only with `--log`).
fn trace_hash_logged(seed: u64, storage: &str, args: &[&str], filter: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["run", "--seed", &seed.to_string(), "--storage", storage])
        .args(args)
        .args(["--duration", "6s", "--heal-ops", "5", "--timeline", "none"])
        .env("RUST_LOG", filter)
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "seed {seed} ({storage}) failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().next(), Some(format!("seed: {seed}").as_str()), "the seed is printed first");
    let last = stdout.lines().last().unwrap_or_default();
    last.strip_prefix("trace hash: ").unwrap_or_else(|| panic!("the trace hash is printed last: {last:?}")).to_string()
}

#[test]
fn same_seed_same_hash_across_processes_and_different_seeds_differ() {
    for storage in ["memory", "rocksdb"] {
        let mut hashes: BTreeMap<String, u64> = BTreeMap::new();
        for seed in SEEDS {
            let first = trace_hash(seed, storage);
            let second = trace_hash(seed, storage);
            assert_eq!(first, second, "seed {seed} with {storage} storage gave two hashes");
            if let Some(other) = hashes.insert(first.clone(), seed) {
                panic!("seeds {other} and {seed} with {storage} storage gave the same hash {first}");
            }
        }
    }
}

/// Partitions split under load (their children elected, the map recorded, the split point
/// chosen from the data) replay exactly as well.
#[test]
fn splits_under_load_replay_exactly() {
    let args = ["--scenario", "split-under-load", "--workload", "none"];
    for storage in ["memory", "rocksdb"] {
        let first = trace_hash_with(4, storage, &args);
        assert_eq!(
            first,
            trace_hash_with(4, storage, &args),
            "split-under-load with {storage} storage gave two hashes"
        );
    }
}

/// A node whose disk is replaced rejoins (removed, taken back as a learner, caught up from a
/// snapshot, promoted) the same way in every replay, with both stores.
#[test]
fn replaced_disks_replay_exactly() {
    let args = ["--faults", "wipe", "--workload", "none"];
    for storage in ["memory", "rocksdb"] {
        let first = trace_hash_with(3, storage, &args);
        assert_eq!(first, trace_hash_with(3, storage, &args), "wipe with {storage} storage gave two hashes");
    }
}

/// Engine logs do not change the run: a failing seed replayed with `--log` shows the same
/// course of events, so its logs explain the failure that was seen.
#[test]
fn runs_with_logs_replay_the_run_without_them() {
    let swarm = ["--scenario", "swarm"];
    let without = trace_hash_with(5, "memory", &swarm);
    for filter in ["info", "debug"] {
        let with_logs = trace_hash_logged(5, "memory", &[&swarm[..], &["--log"]].concat(), filter);
        assert_eq!(with_logs, without, "a run with {filter} logs took another course");
    }
}
