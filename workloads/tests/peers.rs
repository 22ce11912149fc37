//! `squall-load` unchanged against two other DynamoDB-compatible implementations, dynalite (Node)
//! and moto (Python), started on loopback ports by `scripts/peers` (which installs them first
//! when they are missing, into `~/.cache/squall/peers`). YCSB A and the bank are run briefly
//! against each; the report and the invariant check must come out right, and a peer that lacks
//! transactions must make the bank fail with a message naming TransactWriteItems.
//!
//! The test installs packages from npm and PyPI, so it does not run with a plain `cargo test`:
//! `scripts/test` runs it with `cargo test -p squall-workloads --test peers -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Bound on `scripts/peers start`, which installs the peers the first time (about a minute).
const START_WAIT: Duration = Duration::from_secs(600);
/// Bound on one squall-load run or `scripts/peers stop`.
const RUN_WAIT: Duration = Duration::from_secs(120);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate is in the repository").to_path_buf()
}

/// Runs `command` to completion within `limit`, killing it past that; returns its output.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child: Child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    // Pipes are drained by threads so that a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output { status, stdout: out.join().expect("stdout reader"), stderr: err.join().expect("stderr reader") }
}

/// The peers `scripts/peers start` runs in a temporary directory; stopped on drop.
struct Peers {
    dir: tempfile::TempDir,
    endpoints: Vec<(String, String)>,
}

impl Peers {
    fn start(names: &str) -> Peers {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(repository().join("scripts/peers"));
        command.arg("start").arg(dir.path()).arg("--only").arg(names);
        let output = run_bounded(command, START_WAIT);
        assert!(
            output.status.success(),
            "scripts/peers start failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let description: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("peers.json")).unwrap()).unwrap();
        let endpoints = description["peers"]
            .as_array()
            .expect("a list of peers")
            .iter()
            .map(|peer| {
                let endpoint = peer["endpoint"].as_str().expect("an endpoint").to_owned();
                assert!(endpoint.starts_with("http://127.0.0.1:"), "loopback only: {endpoint}");
                (peer["name"].as_str().expect("a name").to_owned(), endpoint)
            })
            .collect();
        Peers { dir, endpoints }
    }

    fn endpoint(&self, name: &str) -> &str {
        &self.endpoints.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} was started")).1
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let mut command = Command::new(repository().join("scripts/peers"));
        command.arg("stop").arg(self.dir.path());
        let output = run_bounded(command, RUN_WAIT);
        assert!(output.status.success() || std::thread::panicking(), "scripts/peers stop failed");
    }
}

/// Runs squall-load with `args`; returns (success, stdout, stderr).
fn squall_load(args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_squall-load"));
    command.args(args);
    let output = run_bounded(command, RUN_WAIT);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read_summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("a count, not {value}"))
}

/// YCSB A on 500 records for 3 s at 100 operations per second: every call succeeds, the
/// numbers add up and the inserts are all there.
fn ycsb_a_runs_clean(peer: &str, endpoint: &str, out: &Path) {
    let properties = repository().join("workloads/scenarios/ycsb-small.properties");
    let dir = out.join(format!("{peer}-ycsb-a"));
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        endpoint,
        "--workload",
        "ycsb-a",
        "--ycsb-workload",
        properties.to_str().unwrap(),
        "--rate",
        "100",
        "--duration",
        "3s",
        "--clients",
        "4",
        "--seed",
        "5",
        "--out",
        dir.to_str().unwrap(),
        "--no-plots",
    ]);
    assert!(ok, "{peer}: squall-load failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("[ok] every acknowledged insert is in the table (500 acknowledged inserts, 500 items)"));
    let summary = read_summary(&dir);
    assert_eq!(summary["endpoint"], endpoint);
    assert_eq!(count(&summary["load"]["operations"]["LOAD"]["count"]), 500, "{peer}");
    assert_eq!(summary["errors"], serde_json::json!([]), "{peer}: no call failed");
    assert_eq!(summary["load_errors"], serde_json::json!([]), "{peer}: no load call failed");
    let operations = &summary["results"]["operations"];
    let mut measured = 0;
    for operation in ["READ", "UPDATE"] {
        let ok = &operations[operation]["outcomes"]["ok"];
        assert!(count(&ok["count"]) > 50, "{peer} {operation}: {ok}");
        assert!(count(&ok["p99_us"]) >= count(&ok["p50_us"]), "{peer} {operation}: {ok}");
        assert_eq!(count(&operations[operation]["errors"]), 0, "{peer} {operation}");
        measured += count(&operations[operation]["count"]);
    }
    // 3 s at 100/s: 300 arrivals, all answered.
    assert!((295..=300).contains(&measured), "{peer}: {measured} operations");
    assert_eq!(summary["invariants"]["checks"][0]["passed"], true, "{peer}");
}

#[test]
#[ignore = "installs dynalite (npm) and moto (PyPI); scripts/test runs it with --ignored"]
fn squall_load_runs_unchanged_against_dynalite_and_moto() {
    let started = Instant::now();
    let peers = Peers::start("dynalite,moto");
    let out = tempfile::tempdir().unwrap();
    for peer in ["dynalite", "moto"] {
        ycsb_a_runs_clean(peer, peers.endpoint(peer), out.path());
    }

    // dynalite has no transactions: the bank stops before loading, naming what is missing.
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        peers.endpoint("dynalite"),
        "--workload",
        "bank",
        "--duration",
        "2s",
        "--out",
        out.path().join("dynalite-bank").to_str().unwrap(),
    ]);
    assert!(!ok, "the bank cannot pass without transactions\n{stdout}");
    assert!(
        stderr.contains(
            "does not implement TransactWriteItems (it answers UnknownOperationException), which scenario bank needs"
        ),
        "{stderr}"
    );

    // moto has transactions. One client at a time (moto applies concurrent requests without
    // isolation), on accounts small enough that many transfers are refused, so both the
    // commits and moto's cancellation reasons are exercised; 300 transfers, or 10 s at most.
    let bank = out.path().join("bank.toml");
    std::fs::write(
        &bank,
        "scenario = \"bank\"\n[bank]\naccounts = 20\ninitial_balance = 100\namount_max = 80\n\
         [[phases]]\nkind = \"load\"\n[[phases]]\nkind = \"run\"\nduration = \"10s\"\n",
    )
    .unwrap();
    let dir = out.path().join("moto-bank");
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        peers.endpoint("moto"),
        "--workload",
        bank.to_str().unwrap(),
        "--mode",
        "closed",
        "--clients",
        "1",
        "--operations",
        "300",
        "--out",
        dir.to_str().unwrap(),
        "--no-plots",
    ]);
    assert!(ok, "moto: bank failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let summary = read_summary(&dir);
    assert_eq!(summary["errors"], serde_json::json!([]), "moto: no call failed");
    let counts = &summary["invariants"]["counts"];
    assert!(count(&counts["transfers_acknowledged"]) > 10, "{counts}");
    assert!(count(&counts["transfers_refused"]) > 10, "cancellations are read as refusals: {counts}");
    assert_eq!(count(&counts["transfers_uncertain"]), 0, "{counts}");
    assert_eq!(counts["transfers_recorded"], counts["transfers_acknowledged"]);
    let checks = summary["invariants"]["checks"].as_array().unwrap();
    assert!(checks.len() == 4 && checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    eprintln!("peers test took {:.1} s", started.elapsed().as_secs_f64());
}
