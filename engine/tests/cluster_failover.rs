//! A real three-zone cluster of six `squall-server` processes on loopback: writers and strongly
//! consistent readers go through several nodes while every process of one zone is killed with
//! SIGKILL. Writes must resume within a few seconds, no acknowledged write may be lost, no
//! strongly consistent read may return a value older than one already acknowledged, and the
//! killed zone, restarted, must catch up.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Loopback addresses of this test's nodes: 127.23.0.<id>.
const IP_PREFIX: &str = "127.23.0.";
const API_PORT: u16 = 8000;
const PEER_PORT: u16 = 9000;
const ZONES: u64 = 3;
const NODES: u64 = 6;
const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 16;
/// Load before the kill, and after it.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(2);
const LOAD_AFTER_KILL: Duration = Duration::from_secs(8);
/// Longest acceptable gap in successful writes around the kill.
const FAILOVER_MAX: Duration = Duration::from_secs(6);
/// Most operations per writer, so the load is bounded on a fast machine.
const OPS_PER_WRITER_MAX: usize = 20_000;
const READY_WAIT: Duration = Duration::from_secs(60);
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

fn api_addr(id: u64) -> SocketAddr {
    format!("{IP_PREFIX}{id}:{API_PORT}").parse().unwrap()
}

fn zone_of(id: u64) -> u64 {
    (id - 1) % ZONES
}

struct Node {
    child: Child,
}

fn start_node(id: u64, spec: &Path, data: &Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall-server"))
        .arg("--cluster-file")
        .arg(spec)
        .args(["--node-id", &id.to_string(), "--partitions-per-table", "4", "--seed", &id.to_string()])
        .arg("--data-dir")
        .arg(data.join(format!("node-{id}")))
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn squall-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("squall-server listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(READY_WAIT).expect("node printed its ready line");
    Node { child }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(addr: SocketAddr, operation: &str, body: &Value) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let payload = body.to_string();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\n\
         Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated response"))?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Retries `operation` until it answers 200 or `wait` passes.
fn call_until_ok(addr: SocketAddr, operation: &str, body: &Value, wait: Duration) -> Value {
    let deadline = Instant::now() + wait;
    loop {
        match call(addr, operation, body) {
            Ok((200, response)) => return response,
            Ok((status, response)) if (400..500).contains(&status) && !response.to_string().contains("Throttl") => {
                panic!("{operation} refused: {status} {response}")
            }
            other => {
                assert!(Instant::now() < deadline, "{operation} never succeeded: {other:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn version_of(response: &Value) -> Option<u64> {
    response.pointer("/Item/v/N").and_then(Value::as_str).and_then(|v| v.parse().ok())
}

fn get(addr: SocketAddr, key: &str, consistent: bool) -> std::io::Result<(u16, Value)> {
    call(addr, "GetItem", &json!({"TableName": "kvtable", "Key": {"pk": {"S": key}}, "ConsistentRead": consistent}))
}

#[derive(Default)]
struct Observed {
    /// Highest acknowledged version per key.
    acknowledged: BTreeMap<String, u64>,
    /// Highest version attempted per key (acknowledged or not).
    attempted: BTreeMap<String, u64>,
    /// Writer and time of each acknowledged write.
    write_times: Vec<(usize, Instant)>,
    /// Stale strong reads: (key, read version, acknowledged before the read).
    stale_reads: Vec<(String, Option<u64>, u64)>,
    strong_reads_ok: usize,
}

#[test]
fn a_zone_outage_loses_nothing_and_the_zone_catches_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes_json: Vec<Value> = (1..=NODES)
        .map(|id| {
            json!({"id": id, "zone": format!("zone-{}", zone_of(id)),
                   "endpoint": format!("http://{IP_PREFIX}{id}:{API_PORT}"),
                   "peer": format!("{IP_PREFIX}{id}:{PEER_PORT}")})
        })
        .collect();
    let spec = dir.path().join("cluster.json");
    std::fs::write(&spec, json!({"nodes": nodes_json}).to_string()).unwrap();
    let mut nodes: BTreeMap<u64, Node> = (1..=NODES).map(|id| (id, start_node(id, &spec, dir.path()))).collect();

    call_until_ok(
        api_addr(2),
        "CreateTable",
        &json!({"TableName": "kvtable", "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}),
        READY_WAIT,
    );

    let observed = Arc::new(Mutex::new(Observed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let observed = observed.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Each writer owns its keys, so it knows the newest acknowledged version of each.
                let mut own: BTreeMap<String, u64> = BTreeMap::new();
                let mut via = writer as u64;
                for n in 0..OPS_PER_WRITER_MAX {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{writer}-k{}", n % KEYS_PER_WRITER);
                    let version = n as u64 + 1;
                    let write_node = via % NODES + 1;
                    let read_node = (via + 1) % NODES + 1;
                    observed.lock().unwrap().attempted.insert(key.clone(), version);
                    let put =
                        json!({"TableName": "kvtable", "Item": {"pk": {"S": key}, "v": {"N": version.to_string()}}});
                    match call(api_addr(write_node), "PutItem", &put) {
                        Ok((200, _)) => {
                            own.insert(key.clone(), version);
                            let mut o = observed.lock().unwrap();
                            o.acknowledged.insert(key.clone(), version);
                            o.write_times.push((writer, Instant::now()));
                        }
                        // A refused connection (a killed node) or an error: try another node.
                        _ => {
                            via += 1;
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                    // A strong read of one of this writer's keys through another node.
                    let read_key = format!("w{writer}-k{}", (n * 7) % KEYS_PER_WRITER);
                    let floor = own.get(&read_key).copied().unwrap_or(0);
                    if let Ok((200, response)) = get(api_addr(read_node), &read_key, true) {
                        let seen = version_of(&response);
                        let mut o = observed.lock().unwrap();
                        o.strong_reads_ok += 1;
                        if seen.unwrap_or(0) < floor {
                            o.stale_reads.push((read_key, seen, floor));
                        }
                    } else {
                        via += 1;
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(LOAD_BEFORE_KILL);
    let killed: Vec<u64> = (1..=NODES).filter(|id| zone_of(*id) == 0).collect();
    let kill_time = Instant::now();
    for id in &killed {
        let mut node = nodes.remove(id).unwrap();
        node.child.kill().expect("SIGKILL");
        node.child.wait().unwrap();
    }
    std::thread::sleep(LOAD_AFTER_KILL);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let observed = observed.lock().unwrap();
    assert!(observed.stale_reads.is_empty(), "stale strong reads: {:?}", observed.stale_reads);
    assert!(observed.strong_reads_ok > 0, "no strong read succeeded");
    let before = observed.write_times.iter().filter(|(_, t)| *t < kill_time).count();
    let after = observed.write_times.iter().filter(|(_, t)| *t >= kill_time).count();
    assert!(before > 0, "no write succeeded before the kill");
    assert!(after > 0, "no write succeeded after the zone was killed");
    // Failover time: the longest pause of any writer between two acknowledged writes around
    // and after the kill (a writer stalls while its partition has no leader).
    let mut longest_pause = Duration::ZERO;
    for writer in 0..WRITERS {
        let mut times: Vec<Instant> =
            observed.write_times.iter().filter(|(w, _)| *w == writer).map(|(_, t)| *t).collect();
        times.push(kill_time + LOAD_AFTER_KILL);
        for pair in times.windows(2).filter(|p| p[1] >= kill_time) {
            longest_pause = longest_pause.max(pair[1].duration_since(pair[0]));
        }
    }
    eprintln!(
        "writes before the kill {before}, after {after}; strong reads {}; longest writer pause {longest_pause:?}",
        observed.strong_reads_ok
    );
    assert!(longest_pause < FAILOVER_MAX, "a writer made no progress for {longest_pause:?}");

    // Every acknowledged write is there, read strongly through a surviving node.
    let survivor = api_addr(2);
    for (key, acked) in &observed.acknowledged {
        let response = call_until_ok(
            survivor,
            "GetItem",
            &json!({"TableName": "kvtable", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
            Duration::from_secs(10),
        );
        let seen = version_of(&response).unwrap_or(0);
        let attempted = observed.attempted[key];
        assert!(seen >= *acked && seen <= attempted, "{key}: read {seen}, acknowledged {acked}, attempted {attempted}");
    }

    // The killed zone restarts and catches up: its own replicas serve the latest values.
    for id in &killed {
        nodes.insert(*id, start_node(*id, &spec, dir.path()));
    }
    let deadline = Instant::now() + CATCH_UP_WAIT;
    for id in &killed {
        for (key, acked) in &observed.acknowledged {
            loop {
                let seen = get(api_addr(*id), key, false).ok().and_then(|(s, r)| (s == 200).then(|| version_of(&r)));
                if seen.flatten().unwrap_or(0) >= *acked {
                    break;
                }
                assert!(Instant::now() < deadline, "node {id} did not catch up on {key} (acknowledged {acked})");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
