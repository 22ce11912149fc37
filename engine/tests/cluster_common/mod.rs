//! A local cluster of `squall-server` processes for integration tests: node `n` listens on
//! `<prefix><n>:8000` (API) and `<prefix><n>:9000` (peers), in zone `(n - 1) % zones`, with its
//! data in a temporary directory, and a raw HTTP client for DynamoDB requests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const API_PORT: u16 = 8000;
const PEER_PORT: u16 = 9000;
const READY_WAIT: Duration = Duration::from_secs(60);

/// A running cluster; its processes are killed when it is dropped.
pub struct Cluster {
    ip_prefix: String,
    zones: u64,
    spec: PathBuf,
    dir: tempfile::TempDir,
    partitions_per_table: u64,
    /// More `squall-server` arguments for every node.
    extra_args: Vec<String>,
    nodes: BTreeMap<u64, Child>,
}

impl Cluster {
    /// Starts `count` nodes in `zones` zones on `ip_prefix` (for example `"127.23.0."`; each test
    /// uses its own prefix so tests can run at once).
    pub fn start(ip_prefix: &str, zones: u64, count: u64, partitions_per_table: u64) -> Cluster {
        Cluster::start_with(ip_prefix, zones, count, partitions_per_table, &[])
    }

    /// [`start`](Cluster::start) with more `squall-server` arguments for every node.
    pub fn start_with(ip_prefix: &str, zones: u64, count: u64, partitions_per_table: u64, args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes: Vec<Value> = (1..=count)
            .map(|id| {
                json!({"id": id, "zone": format!("zone-{}", (id - 1) % zones),
                       "endpoint": format!("http://{ip_prefix}{id}:{API_PORT}"),
                       "peer": format!("{ip_prefix}{id}:{PEER_PORT}")})
            })
            .collect();
        let spec = dir.path().join("cluster.json");
        std::fs::write(&spec, json!({"nodes": nodes}).to_string()).expect("write cluster file");
        let mut cluster = Cluster {
            ip_prefix: ip_prefix.to_string(),
            zones,
            spec,
            dir,
            partitions_per_table,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            nodes: BTreeMap::new(),
        };
        for id in 1..=count {
            cluster.start_node(id);
        }
        cluster
    }

    /// The zone of node `id`.
    pub fn zone_of(&self, id: u64) -> u64 {
        (id - 1) % self.zones
    }

    /// The API address of node `id`.
    pub fn api(&self, id: u64) -> SocketAddr {
        format!("{}{id}:{API_PORT}", self.ip_prefix).parse().expect("address")
    }

    /// Starts (or restarts, on its data directory) node `id` and waits for its ready line.
    pub fn start_node(&mut self, id: u64) {
        self.start_node_with(id, &[]);
    }

    /// Starts node `id` with `args` after the cluster's own.
    pub fn start_node_with(&mut self, id: u64, args: &[&str]) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_squall-server"))
            .arg("--cluster-file")
            .arg(&self.spec)
            .args(["--node-id", &id.to_string()])
            .args(["--partitions-per-table", &self.partitions_per_table.to_string()])
            .args(["--seed", &id.to_string()])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .args(["--log", "warn"])
            .args(&self.extra_args)
            .args(args)
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
        self.nodes.insert(id, child);
    }

    /// Removes node `id`'s store (the node must be stopped): its disk was replaced.
    pub fn wipe(&self, id: u64) {
        std::fs::remove_dir_all(self.dir.path().join(format!("node-{id}"))).expect("remove the node's store");
    }

    /// Kills node `id` with SIGKILL.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.remove(&id) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One DynamoDB request over a fresh connection: (HTTP status, JSON body).
pub fn call(addr: SocketAddr, operation: &str, body: &Value) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let payload = body.to_string();
    // Squall's administration operations carry their own target prefix.
    let target = if operation.starts_with("SquallAdmin.") {
        operation.to_string()
    } else {
        format!("DynamoDB_20120810.{operation}")
    };
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\n\
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

/// Retries `operation` until it answers 200 or `wait` passes; a client error fails at once.
pub fn call_until_ok(addr: SocketAddr, operation: &str, body: &Value, wait: Duration) -> Value {
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

/// Creates a table keyed by string `pk`, waiting for the cluster to accept it.
pub fn create_table(addr: SocketAddr, name: &str) {
    call_until_ok(
        addr,
        "CreateTable",
        &json!({"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}),
        READY_WAIT,
    );
}

/// The number attribute `name` of a GetItem response's item.
pub fn number_of(response: &Value, name: &str) -> Option<i64> {
    response.pointer(&format!("/Item/{name}/N")).and_then(Value::as_str).and_then(|v| v.parse().ok())
}

/// Waits until the replicas running on `nodes` are exactly those `expected` lists per group
/// (sorted node ids), each group's at one applied index, and asserts they hold the same data.
#[allow(dead_code)] // Not every test binary that includes this module waits for replicas.
pub fn await_replicas_agree(cluster: &Cluster, nodes: &[u64], expected: &BTreeMap<u64, Vec<u64>>, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let mut found: BTreeMap<u64, BTreeMap<u64, (u64, Value)>> = BTreeMap::new();
        for &node in nodes {
            let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), wait);
            for replica in answer["Replicas"].as_array().expect("replicas") {
                let group = replica["group"].as_u64().unwrap();
                if expected.contains_key(&group) {
                    let state = (replica["applied_index"].as_u64().unwrap(), replica["digest"].clone());
                    found.entry(group).or_default().insert(node, state);
                }
            }
        }
        let settled = expected.iter().all(|(group, replicas)| {
            let here = found.get(group).cloned().unwrap_or_default();
            let indexes: Vec<u64> = here.values().map(|(i, _)| *i).collect();
            here.keys().copied().collect::<Vec<_>>() == *replicas && indexes.iter().all(|i| *i == indexes[0])
        });
        if settled {
            for (group, here) in &found {
                let digests: Vec<&Value> = here.values().map(|(_, d)| d).collect();
                assert!(digests.iter().all(|d| *d == digests[0]), "replicas of {group} differ: {here:?}");
            }
            return;
        }
        assert!(Instant::now() < deadline, "replicas never settled on {expected:?}: {found:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// PutItems `k{n % keys}` = `n` for `n` in `from..to` in a background thread, spread over
/// `apis` with `pause` between them, remembering the newest acknowledged `n` per key.
#[allow(dead_code)] // Not every test binary that includes this module writes in the background.
pub struct BackgroundWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::Mutex<BTreeMap<u64, u64>>>,
    thread: std::thread::JoinHandle<()>,
}

#[allow(dead_code)]
impl BackgroundWriter {
    /// Starts writing to table `items`.
    pub fn start(apis: Vec<SocketAddr>, keys: u64, from: u64, to: u64, pause: Duration) -> BackgroundWriter {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let (stop_here, acked_here) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let mut n = from;
            while !stop_here.load(Ordering::Relaxed) && n < to {
                let item = json!({"TableName": "items",
                                  "Item": {"pk": {"S": format!("k{}", n % keys)}, "n": {"N": n.to_string()}}});
                if let Ok((200, _)) = call(apis[n as usize % apis.len()], "PutItem", &item) {
                    acked_here.lock().unwrap().insert(n % keys, n);
                }
                n += 1;
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
        });
        BackgroundWriter { stop, acked, thread }
    }

    /// Stops the writer and returns the newest acknowledged `n` per key.
    pub fn finish(self) -> BTreeMap<u64, u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("writer");
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}
