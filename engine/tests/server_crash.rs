//! Crash safety of the whole server: writers put items over HTTP while the server process is
//! killed with SIGKILL; after a restart on the same data directory every acknowledged write is
//! read back, and the table's indexes agree with it.

mod cluster_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_common::call;
use serde_json::{json, Value};

/// Writer threads driving the load.
const WRITERS: usize = 4;
/// Most writes per writer per round, so the load is bounded even on a fast machine.
const WRITES_PER_WRITER_MAX: usize = 3_000;
/// How long the load runs before the kill, at most.
const LOAD_MS_MAX: u64 = 1_500;
/// Kill-and-restart rounds.
const ROUNDS: usize = 3;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_squall-server"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn squall-server");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("squall-server listening on http://") {
                    let _ = tx.send(url.parse::<SocketAddr>().expect("ready line has an address"));
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server became ready");
        Server { child, addr }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(addr: SocketAddr, operation: &str, body: Value) -> Value {
    let (status, response) = call(addr, operation, &body).expect("request reaches the server");
    assert_eq!(status, 200, "{operation} failed: {response}");
    response
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    ok(
        server.addr,
        "CreateTable",
        json!({"TableName": "crash", "BillingMode": "PAY_PER_REQUEST",
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                        {"AttributeName": "writer", "AttributeType": "S"}],
               "GlobalSecondaryIndexes": [{"IndexName": "by_writer",
                   "KeySchema": [{"AttributeName": "writer", "KeyType": "HASH"}],
                   "Projection": {"ProjectionType": "KEYS_ONLY"}}]}),
    );
    // Every (key, value) whose PutItem was acknowledged with 200, across all rounds.
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr;
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let stop = stop.clone();
                let acknowledged = acknowledged.clone();
                std::thread::spawn(move || {
                    for n in 0..WRITES_PER_WRITER_MAX {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Overwrite a small key set too, so the last acknowledged value matters.
                        let key = format!("r{round}-w{writer}-k{}", n % 200);
                        let value = (round * 1_000_000 + n) as u64;
                        let item = json!({"TableName": "crash", "Item": {
                            "pk": {"S": key}, "writer": {"S": format!("w{writer}")}, "v": {"N": value.to_string()}}});
                        match call(addr, "PutItem", &item) {
                            Ok((200, _)) => acknowledged.lock().unwrap().push((key, value)),
                            // Requests in flight at the kill fail; they were never acknowledged.
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(LOAD_MS_MAX) && !writers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().expect("writer thread");
        }
        server = Server::start(&data);
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 100, "the load acknowledged too few writes to mean anything: {}", acknowledged.len());
    // The last acknowledged value of each key must be the one stored (a key is written by one
    // writer, in order, so the last acknowledgement is the newest write).
    let mut latest = std::collections::BTreeMap::new();
    for (key, value) in &acknowledged {
        latest.insert(key.clone(), *value);
    }
    for (key, value) in &latest {
        let response = ok(
            server.addr,
            "GetItem",
            json!({"TableName": "crash", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
        );
        let stored = response["Item"]["v"]["N"].as_str().unwrap_or_else(|| panic!("acknowledged key {key} lost"));
        let stored: u64 = stored.parse().expect("stored number");
        // A write in flight at the kill may have landed after the last acknowledged one.
        assert!(stored >= *value, "key {key}: stored {stored} older than acknowledged {value}");
    }
    // The index agrees with the table: every item is in it exactly once.
    let table = ok(server.addr, "Scan", json!({"TableName": "crash", "Select": "COUNT"}));
    let mut indexed = 0;
    for writer in 0..WRITERS {
        let mut start: Option<Value> = None;
        loop {
            let mut request = json!({"TableName": "crash", "IndexName": "by_writer", "Select": "COUNT",
                "KeyConditionExpression": "writer = :w", "ExpressionAttributeValues": {":w": {"S": format!("w{writer}")}}});
            if let Some(start) = &start {
                request["ExclusiveStartKey"] = start.clone();
            }
            let page = ok(server.addr, "Query", request);
            indexed += page["Count"].as_u64().unwrap();
            match page.get("LastEvaluatedKey") {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
    }
    assert_eq!(Some(indexed), table["Count"].as_u64(), "index entries must match table items after crashes");
    let described = ok(server.addr, "DescribeTable", json!({"TableName": "crash"}));
    assert_eq!(described["Table"]["ItemCount"].as_u64(), table["Count"].as_u64(), "item count rebuilt on restart");
}
