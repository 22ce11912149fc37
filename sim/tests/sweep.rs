//! A sweep runs each seed in a child process, counts passes and faults, and keeps nothing for
//! passing seeds.

#![cfg(madsim)]

use std::process::Command;

#[test]
fn a_sweep_of_passing_seeds_reports_them_and_keeps_no_output() {
    let out = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_squall-sim"))
        .args(["sweep", "--seeds", "1..=3", "--jobs", "2", "--duration", "3s", "--heal-ops", "3"])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary = stdout.lines().find(|l| l.starts_with("passed: ")).expect("a summary line");
    assert!(summary.starts_with("passed: 3, failed: 0, faults injected: "), "{summary}");
    let faults: u64 = summary.rsplit(' ').next().unwrap().parse().expect("a fault count");
    assert!(faults >= 3, "every seed injects at least one fault: {summary}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "passing seeds leave nothing behind");
}
