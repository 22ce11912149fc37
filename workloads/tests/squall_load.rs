//! `squall-load` against a real `squall-server` process on a loopback port: the built-in YCSB
//! workload and a scenario file, then the report files. The server binary comes from
//! `cargo build -p squall-engine --bin squall-server` (the workspace test run builds it); set
//! `SQUALL_SERVER_BIN` to use another.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Bound on the server's start and on one squall-load run.
const START_WAIT: Duration = Duration::from_secs(30);
const RUN_WAIT: Duration = Duration::from_secs(180);
const READY_PREFIX: &str = "squall-server listening on ";

fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SQUALL_SERVER_BIN") {
        return PathBuf::from(path);
    }
    // squall-load and squall-server are built into the same target directory.
    let load = Path::new(env!("CARGO_BIN_EXE_squall-load"));
    let server = load.with_file_name(format!("squall-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        server.exists(),
        "{} is missing: build it with `cargo build -p squall-engine --bin squall-server` or set SQUALL_SERVER_BIN",
        server.display()
    );
    server
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(server_binary())
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn squall-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(START_WAIT).expect("squall-server says it is listening");
        Server { child, url, _dir: dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs squall-load with `args`, bounded by RUN_WAIT; returns (success, stdout, stderr).
fn squall_load(args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall-load"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn squall-load");
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if started.elapsed() > RUN_WAIT {
            let _ = child.kill();
            panic!("squall-load did not finish within {RUN_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read_summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn ycsb_a_run_writes_every_report_file() {
    let server = Server::start();
    let out = tempfile::tempdir().unwrap();
    let out_path = out.path().join("ycsb-a");
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        &server.url,
        "--workload",
        "ycsb-a",
        "--rate",
        "300",
        "--duration",
        "3s",
        "--warmup",
        "500ms",
        "--clients",
        "8",
        "--seed",
        "7",
        "--out",
        out_path.to_str().unwrap(),
        "--fault-window",
        "1:2:pause",
    ]);
    assert!(ok, "squall-load failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("with seed 7"), "{stdout}");
    assert!(stdout.contains("p99.9 ms"), "the final table is printed: {stdout}");
    assert!(stdout.contains("[ok] every acknowledged insert is in the table"), "{stdout}");
    assert!(stdout.contains(&format!("report written to {}", out_path.display())), "{stdout}");

    let summary = read_summary(&out_path);
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["scenario"], "ycsb-a");
    assert_eq!(summary["settings"]["rate"], 300.0);
    assert_eq!(summary["settings"]["run"]["mode"]["kind"], "open");
    let operations = &summary["results"]["operations"];
    for operation in ["READ", "UPDATE"] {
        let ok = &operations[operation]["outcomes"]["ok"];
        assert!(ok["count"].as_u64().unwrap() > 100, "{operation}: {ok}");
        assert!(ok["p99_us"].as_u64().unwrap() >= ok["p50_us"].as_u64().unwrap());
        assert_eq!(operations[operation]["errors"], 0, "{operation}");
    }
    // 3 s at 300/s less the 0.5 s warm-up: about 750 measured operations.
    let measured: u64 = ["READ", "UPDATE"].iter().map(|o| operations[o]["count"].as_u64().unwrap()).sum();
    assert!((650..=800).contains(&measured), "{measured}");
    assert!(summary["results"]["warmup_excluded"].as_u64().unwrap() >= 100);
    assert_eq!(summary["invariants"]["checks"][0]["passed"], true);
    assert_eq!(summary["load"]["operations"]["LOAD"]["count"], 1000);

    let series = std::fs::read_to_string(out_path.join("series.csv")).unwrap();
    assert!(series.starts_with("second,ok,error,throttled,timeout,p50_us,p99_us\n"));
    assert!(series.lines().count() >= 3, "{series}");
    for file in [
        "READ.ok.hgrm",
        "UPDATE.ok.hgrm",
        "READ.ok.uncorrected.hgrm",
        "READ.ok.histogram",
        "latency-percentiles.png",
        "latency-percentiles.svg",
        "timeline.png",
        "timeline.svg",
    ] {
        let path = out_path.join(file);
        assert!(path.exists() && std::fs::metadata(&path).unwrap().len() > 100, "{file} is written");
    }
    let hgrm = std::fs::read_to_string(out_path.join("READ.ok.hgrm")).unwrap();
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(std::fs::read_to_string(out_path.join("timeline.svg")).unwrap().contains("pause"));

    // Two runs compared on one chart.
    let chart = out.path().join("compare.svg");
    let (ok, stdout, stderr) = squall_load(&[
        "compare",
        out_path.to_str().unwrap(),
        out_path.to_str().unwrap(),
        "--plot",
        chart.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("comparison of 4 curves"), "{stdout}");
    assert!(chart.exists());
}

#[test]
fn scenario_files_and_ycsb_property_files_run_and_bad_input_is_refused() {
    let server = Server::start();
    let out = tempfile::tempdir().unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let bank = out.path().join("bank");
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        &server.url,
        "--workload",
        scenarios.join("bank.toml").to_str().unwrap(),
        "--duration",
        "2s",
        "--rate",
        "200",
        "--out",
        bank.to_str().unwrap(),
        "--no-plots",
    ]);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("[ok] the total balance never changes"), "{stdout}");
    let summary = read_summary(&bank);
    assert_eq!(summary["scenario"], "bank");
    assert!(summary["results"]["operations"]["transfer"]["count"].as_u64().unwrap() > 100);
    assert_eq!(summary["settings"]["run"]["mode"]["arrivals"], "poisson", "the file's [run] applies");

    // The same tables again: refused unless --recreate.
    let again = out.path().join("again");
    let args = [
        "--endpoint",
        &server.url,
        "--workload",
        "bank",
        "--duration",
        "1s",
        "--rate",
        "50",
        "--mode",
        "closed",
        "--clients",
        "2",
        "--out",
        again.to_str().unwrap(),
        "--no-plots",
    ];
    let (ok, _, stderr) = squall_load(&args);
    assert!(!ok && stderr.contains("table bank already exists"), "{stderr}");
    let mut recreate = args.to_vec();
    recreate.push("--recreate");
    let (ok, stdout, stderr) = squall_load(&recreate);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(read_summary(&again)["settings"]["run"]["mode"]["kind"], "closed");

    let ycsb = out.path().join("ycsb-file");
    let (ok, stdout, stderr) = squall_load(&[
        "--endpoint",
        &server.url,
        "--workload",
        "ycsb-a",
        "--ycsb-workload",
        scenarios.join("ycsb-small.properties").to_str().unwrap(),
        "--duration",
        "1s",
        "--rate",
        "100",
        "--out",
        ycsb.to_str().unwrap(),
        "--no-plots",
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(read_summary(&ycsb)["load"]["operations"]["LOAD"]["count"], 500);

    let bad = out.path().join("bad.toml");
    std::fs::write(&bad, "scenario = \"orders\"\n[orders]\ncustomer = 1\n").unwrap();
    let (ok, _, stderr) = squall_load(&["--endpoint", &server.url, "--workload", bad.to_str().unwrap()]);
    assert!(!ok && stderr.contains("unknown field `customer`") && stderr.contains("line 3"), "{stderr}");
    let (ok, _, stderr) = squall_load(&["--endpoint", &server.url, "--workload", "nope"]);
    assert!(!ok && stderr.contains("unknown scenario \"nope\""), "{stderr}");
}
