//! Raft logs stay bounded on a real three-node cluster: with a small `--log-entries-max`, every
//! replica's log is compacted through what all of them hold while writes go on, a node killed
//! and restarted catches up from the remaining log, and the replicas still agree and serve
//! every acknowledged write.

mod cluster_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_common::{call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const LOG_ENTRIES_MAX: u64 = 60;

/// Each replica of the table's partition on every node: (applied index, log first index,
/// digest), by node.
fn replicas(cluster: &Cluster) -> BTreeMap<u64, (u64, u64, Value)> {
    let mut found = BTreeMap::new();
    for node in 1..=3 {
        let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), WAIT);
        for replica in answer["Replicas"].as_array().expect("replicas") {
            if replica.get("table").and_then(Value::as_str) == Some("logs") {
                let applied = replica["applied_index"].as_u64().unwrap();
                let first = replica["log_first_index"].as_u64().unwrap();
                found.insert(node, (applied, first, replica["digest"].clone()));
            }
        }
    }
    found
}

/// Writes `n` to key `k{n % 50}` for each `n` of `from..to`, through the nodes `via` in turn.
fn write(cluster: &Cluster, from: u64, to: u64, via: &[u64]) {
    for n in from..to {
        let item =
            json!({"TableName": "logs", "Item": {"pk": {"S": format!("k{}", n % 50)}, "n": {"N": n.to_string()}}});
        call_until_ok(cluster.api(via[n as usize % via.len()]), "PutItem", &item, WAIT);
    }
}

#[test]
fn logs_are_compacted_through_what_every_replica_holds() {
    let max = LOG_ENTRIES_MAX.to_string();
    let mut cluster = Cluster::start_with("127.30.0.", 3, 3, 1, &["--log-entries-max", &max]);
    create_table(cluster.api(1), "logs");
    write(&cluster, 0, 400, &[1, 2, 3]);

    // Every replica's log has been cut well past its start (a leader checks every 5 s).
    let deadline = Instant::now() + WAIT;
    loop {
        let found = replicas(&cluster);
        if found.len() == 3 && found.values().all(|(_, first, _)| *first > 200) {
            break;
        }
        assert!(Instant::now() < deadline, "logs were never compacted: {found:?}");
        write(&cluster, 400, 403, &[1, 2, 3]);
        std::thread::sleep(Duration::from_millis(500));
    }

    // A node killed while writes go on catches up from the log the others kept.
    cluster.kill(3);
    write(&cluster, 1_000, 1_100, &[1, 2]);
    cluster.start_node(3);
    write(&cluster, 2_000, 2_010, &[1, 2, 3]);
    let deadline = Instant::now() + WAIT;
    loop {
        let found = replicas(&cluster);
        let indexes: Vec<u64> = found.values().map(|(applied, ..)| *applied).collect();
        if found.len() == 3 && indexes.iter().all(|i| *i == indexes[0]) {
            let digests: Vec<&Value> = found.values().map(|(_, _, d)| d).collect();
            assert!(digests.iter().all(|d| *d == digests[0]), "replicas at one index differ: {found:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node never caught up: {found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The last write of each key reads back from the restarted node.
    for k in 0..50u64 {
        let last = (2_000..2_010).chain(1_000..1_100).filter(|n| n % 50 == k).max().unwrap_or(0);
        let get = json!({"TableName": "logs", "Key": {"pk": {"S": format!("k{k}")}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(3), "GetItem", &get, WAIT);
        let read = number_of(&answer, "n").unwrap_or(-1);
        if last > 0 {
            assert_eq!(read, last as i64, "k{k}: {answer}");
        }
    }
}
