//! The simulator offers the workloads crate's scenarios to the cluster under faults, checks
//! their invariants after the heal, and writes the same report files `squall-load` writes, with
//! the fault windows of the run.

#![cfg(madsim)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> (bool, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_squall-sim")).arg("run").args(args).output().expect("start squall-sim");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}\n{stderr}"))
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json written");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

#[test]
fn a_scenario_runs_under_faults_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("orders");
    let (ok, output) = run(&[
        "--seed",
        "4",
        "--scenario",
        "rolling-restarts",
        "--duration",
        "8s",
        "--heal-ops",
        "5",
        "--rate",
        "100",
        "--timeline",
        "faults",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(ok, "rolling-restarts with its orders workload failed:\n{output}");
    assert!(output.contains("load: orders issued"), "no load summary in the timeline:\n{output}");
    assert!(output.contains("invariants hold"), "{output}");
    assert!(output.contains(&format!("report: {}", report.display())), "{output}");

    let summary = summary(&report);
    assert_eq!(summary["scenario"], "orders");
    assert_eq!(summary["simulation"]["seed"], 4);
    assert_eq!(summary["simulation"]["scenario"], "RollingRestarts");
    // About 100 operations a second for 8 simulated seconds were offered.
    let issued = summary["issued"].as_u64().unwrap();
    assert!((600..=1000).contains(&issued), "issued {issued}");
    let operations = summary["results"]["operations"].as_object().expect("per-operation results");
    assert!(operations.contains_key("place_order"), "{operations:?}");
    let invariants = &summary["invariants"]["checks"];
    assert!(invariants.as_array().is_some_and(|c| !c.is_empty()), "{invariants}");
    assert!(invariants.as_array().unwrap().iter().all(|c| c["passed"] == true), "{invariants}");
    // Every crash of the plan is a window on the timeline, labelled with the fault.
    let windows = summary["fault_windows"].as_array().expect("fault windows");
    assert!(!windows.is_empty(), "a rolling restart without fault windows");
    assert!(windows.iter().all(|w| w["label"].as_str().is_some_and(|l| l.contains("crash"))), "{windows:?}");
    assert!(summary["series"].as_array().is_some_and(|s| s.len() >= 7), "a per-second series over the run");

    let names: Vec<String> =
        std::fs::read_dir(&report).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for wanted in ["series.csv", "place_order.ok.hgrm", "place_order.ok.uncorrected.hgrm", "place_order.ok.histogram"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
    }
    let hgrm = std::fs::read_to_string(report.join("place_order.ok.hgrm")).unwrap();
    assert!(hgrm.contains("Value     Percentile TotalCount"), "not an .hgrm: {hgrm}");
}

#[test]
fn a_workload_run_replays_to_the_same_hash_and_none_turns_it_off() {
    let args = ["--seed", "9", "--workload", "bank", "--duration", "5s", "--heal-ops", "3", "--timeline", "none"];
    let (ok, first) = run(&args);
    assert!(ok, "{first}");
    let (ok, second) = run(&args);
    assert!(ok, "{second}");
    let hash = |text: &str| text.lines().find(|l| l.starts_with("trace hash: ")).map(str::to_owned);
    assert!(hash(&first).is_some(), "{first}");
    assert_eq!(hash(&first), hash(&second), "the same seed gave two hashes");

    let (ok, without) = run(&["--seed", "9", "--scenario", "zone-outage", "--workload", "none", "--duration", "5s"]);
    assert!(ok, "{without}");
    assert!(!without.contains("load: "), "--workload none still ran a workload:\n{without}");
}

#[test]
fn a_bad_workload_is_refused_before_the_run() {
    let (ok, output) = run(&["--seed", "1", "--workload", "no-such-scenario"]);
    assert!(!ok, "an unknown workload was accepted:\n{output}");
    assert!(output.contains("no-such-scenario"), "{output}");
}
