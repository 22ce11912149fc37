//! Every named scenario passes its checkers for a bounded set of seeds, with the faults it is
//! named for actually injected.

#![cfg(madsim)]

use std::process::Command;

/// Seeds per scenario: enough to exercise each, few enough for CI.
const SEEDS: [u64; 2] = [1, 2];

#[test]
fn every_scenario_passes_for_a_few_seeds() {
    let scenarios =
        ["kv", "hot-key", "calm", "zone-outage", "rolling-restarts", "zone-partition", "flaky-disks", "swarm"];
    for scenario in scenarios {
        for seed in SEEDS {
            let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
                .args(["run", "--seed", &seed.to_string(), "--scenario", scenario])
                .args(["--duration", "8s", "--heal-ops", "5", "--timeline", "faults"])
                .output()
                .expect("start squall-sim");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{scenario} seed {seed} failed:\n{stdout}");
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
        }
    }
}
