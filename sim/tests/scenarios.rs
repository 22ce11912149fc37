//! Every named scenario passes its checkers for a bounded set of seeds, with the faults it is
//! named for actually injected.

#![cfg(madsim)]

use std::process::Command;

/// Seeds per scenario: enough to exercise each, few enough for CI.
const SEEDS: [u64; 2] = [1, 2];

/// Runs `squall-sim run --seed SEED ARGS --duration DURATION --heal-ops 5 --timeline faults`
/// and returns its output, failing the test (with the output) when the run fails.
fn run_passing(seed: u64, args: &[&str], duration: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["run", "--seed", &seed.to_string()])
        .args(args)
        .args(["--duration", duration, "--heal-ops", "5", "--timeline", "faults"])
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{args:?} seed {seed} failed:\n{stdout}");
    stdout
}

#[test]
fn every_scenario_passes_for_a_few_seeds() {
    let scenarios = [
        "kv",
        "hot-key",
        "calm",
        "zone-outage",
        "rolling-restarts",
        "zone-partition",
        "flaky-disks",
        "swarm",
        "split-under-load",
    ];
    for scenario in scenarios {
        for seed in SEEDS {
            let stdout = run_passing(seed, &["--scenario", scenario], "8s");
            let faults: u64 = stdout
                .lines()
                .find_map(|l| l.strip_prefix("faults injected: "))
                .and_then(|n| n.trim().parse().ok())
                .expect("a fault count");
            if scenario == "calm" {
                assert_eq!(faults, 0, "calm injects nothing");
            } else {
                assert!(faults > 0, "{scenario} seed {seed} injected no fault:\n{stdout}");
            }
            if scenario == "zone-outage" {
                assert!(stdout.contains("crash zone"), "zone-outage without a zone crash:\n{stdout}");
            }
            // Every run ends by comparing every partition's replicas.
            assert!(
                stdout.contains("replicas: every replica of"),
                "{scenario} seed {seed}: replicas not compared:\n{stdout}"
            );
        }
    }
}

/// The split scenario splits partitions and moves replicas for real while its load runs, and
/// the split and moved partitions' replicas are compared with the rest.
#[test]
fn the_split_scenario_splits_partitions_under_load() {
    let (mut splits, mut moves) = (0, 0);
    for seed in SEEDS {
        let stdout = run_passing(seed, &["--scenario", "split-under-load"], "30s");
        splits += stdout.lines().filter(|l| l.contains(" split into 0x")).count();
        moves += stdout.lines().filter(|l| l.contains(" replica moved from node ")).count();
        let compared = stdout
            .lines()
            .find_map(|l| l.split_once("replicas: every replica of ").map(|(_, rest)| rest.to_string()))
            .and_then(|rest| rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .expect("the replicas were compared");
        // The checked clients' table and the workload's start with four partitions each (and the
        // metadata group is compared too).
        assert!(compared >= 8, "seed {seed}: only {compared} partitions compared");
    }
    assert!(splits > 0, "no seed split a partition");
    assert!(moves > 0, "no seed moved a replica");
}

/// Nodes whose disks are replaced rejoin every group under load: the runs pass every checker
/// (no acknowledged write lost, reads linearizable, the rejoined replicas agree with the rest).
#[test]
fn nodes_with_replaced_disks_rejoin_under_load() {
    for seed in [3u64, 11] {
        let stdout = run_passing(seed, &["--faults", "wipe"], "60s");
        assert!(stdout.contains("starts on an empty disk and rejoins"), "seed {seed}: no disk replaced:\n{stdout}");
        assert!(stdout.contains("replicas: every replica of"), "seed {seed}: replicas not compared:\n{stdout}");
    }
}

/// Items a node stores damaged (`disk-rot`) stay damaged after the fault heals: the node's
/// scrubber finds them and the replica is rebuilt from a healthy one, so every replica agrees
/// at the end (with the scrubber off, these seeds end with a replica that never catches up).
#[test]
fn items_damaged_on_disk_are_repaired_from_healthy_replicas() {
    for seed in [1u64, 2, 3] {
        let stdout = run_passing(seed, &["--faults", "disk-rot"], "60s");
        let damaged: u64 = stdout
            .lines()
            .filter_map(|l| l.split("has stored ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(damaged > 0, "seed {seed}: nothing was stored damaged:\n{stdout}");
        assert!(stdout.contains("replicas: every replica of"), "seed {seed}: replicas not compared:\n{stdout}");
    }
}
