//! The checkers catch the bugs they claim to catch: with a planted bug, a short sweep over a
//! few seeds of the faults that expose it finds a failing seed, and the failure names a
//! checker; without the bug, the same seeds pass (tests/scenarios.rs and tests/sweep.rs).

#![cfg(madsim)]

use std::process::Command;

/// Each bug, the faults that expose it, and the seeds swept (bounded so CI stays quick).
const HUNTS: [(&str, &str, &str); 2] =
    [("ack-before-quorum", "crash,zone-crash", "1..=6"), ("skip-log-fsync", "crash,zone-crash", "1..=6")];

#[test]
fn planted_bugs_are_caught_within_a_few_seeds() {
    for (bug, faults, seeds) in HUNTS {
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
            .args(["sweep", "--seeds", seeds, "--jobs", "2", "--until-failure", "--plant", bug, "--faults", faults])
            .args(["--duration", "10s", "--heal-ops", "5", "--workload", "none", "--timeline", "none"])
            .arg("--out")
            .arg(out.path())
            .output()
            .expect("start squall-sim");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{bug} was not caught by seeds {seeds}:\n{stdout}");
        let failing = stdout.lines().find(|l| l.starts_with("failing seeds: ")).unwrap_or_else(|| panic!("{stdout}"));
        let seed: u64 = failing["failing seeds: ".len()..].split_whitespace().next().unwrap().parse().unwrap();
        let log = std::fs::read_to_string(out.path().join(format!("seed-{seed}.log"))).unwrap();
        assert!(log.contains(&format!("planted bug: {bug}")), "{log}");
        assert!(log.lines().any(|l| l.starts_with("violation: ")), "{bug}: the failure names no checker:\n{log}");
        let replay = std::fs::read_to_string(out.path().join(format!("seed-{seed}.replay"))).unwrap();
        assert!(replay.contains(&format!("--plant {bug}")), "the replay command plants the bug: {replay}");
    }
}
