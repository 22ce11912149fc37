//! The engine's fault points under simulation: with `--buggify` the seed activates some of
//! them, they fire, the cluster survives them (every checker passes), and the run still
//! repeats exactly from its seed.

#![cfg(madsim)]

use std::process::Command;

/// Runs one calm seed (no nemesis faults, so whatever happens is the fault points' doing) with
/// the checked clients and a small workload; returns stdout.
fn run(seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["run", "--seed", &seed.to_string(), "--scenario", "calm", "--buggify"])
        .args(["--duration", "8s", "--workload", "ycsb-a", "--rate", "200", "--heal-ops", "5", "--timeline", "faults"])
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "seed {seed} with --buggify failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `(site, fired)` from the `buggify:` summary line.
fn fired(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("buggify: ")).expect("a buggify summary line");
    line.trim_start_matches("buggify: ")
        .split(", ")
        .filter_map(|part| {
            let (site, count) = part.split_once(" fired ")?;
            Some((site.to_string(), count.parse().ok()?))
        })
        .collect()
}

#[test]
fn fault_points_fire_the_cluster_survives_and_runs_repeat() {
    let mut sites_fired = std::collections::BTreeSet::new();
    for seed in 1..=4 {
        let stdout = run(seed);
        for (site, count) in fired(&stdout) {
            if count > 0 {
                sites_fired.insert(site);
            }
        }
        if seed == 1 {
            let hash = |out: &str| out.lines().last().unwrap_or_default().to_string();
            assert!(hash(&stdout).starts_with("trace hash: "));
            assert_eq!(hash(&stdout), hash(&run(seed)), "a buggified seed must repeat exactly");
        }
    }
    assert!(sites_fired.len() >= 2, "four seeds should fire at least two distinct fault points: {sites_fired:?}");
}

#[test]
fn fault_points_are_off_without_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["run", "--seed", "1", "--scenario", "calm", "--duration", "3s", "--heal-ops", "3", "--timeline", "none"])
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("buggify"), "no fault point may be on unless asked: {stdout}");
}
