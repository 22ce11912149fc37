//! Raft logs stay bounded on a real three-node cluster: with a small `--log-entries-max`, every
//! replica's log is compacted through what all of them hold while writes go on; a node killed
//! while the others compact past what it holds catches up from snapshots (of the partition and
//! of the metadata group), and the replicas still agree and serve every acknowledged write.

mod cluster_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_common::{call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const LOG_ENTRIES_MAX: u64 = 60;

/// Each replica of the table's partition (or, with `table` `None`, of the metadata group) on
/// every node that answers: (applied index, log first index, digest), by node.
fn replicas_of(cluster: &Cluster, nodes: &[u64], table: Option<&str>) -> BTreeMap<u64, (u64, u64, Value)> {
    let mut found = BTreeMap::new();
    for &node in nodes {
        let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), WAIT);
        for replica in answer["Replicas"].as_array().expect("replicas") {
            let matches = match table {
                Some(name) => replica.get("table").and_then(Value::as_str) == Some(name),
                None => replica["group"].as_u64() == Some(0),
            };
            if matches {
                let applied = replica["applied_index"].as_u64().unwrap();
                let first = replica["log_first_index"].as_u64().unwrap();
                found.insert(node, (applied, first, replica["digest"].clone()));
            }
        }
    }
    found
}

fn replicas(cluster: &Cluster) -> BTreeMap<u64, (u64, u64, Value)> {
    replicas_of(cluster, &[1, 2, 3], Some("logs"))
}

/// Waits until every node's replica (of the table's partition, or of the metadata group)
/// stands at one applied index, and asserts they hold the same data there.
fn assert_converged(cluster: &Cluster, table: Option<&str>) -> BTreeMap<u64, (u64, u64, Value)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = replicas_of(cluster, &[1, 2, 3], table);
        let indexes: Vec<u64> = found.values().map(|(applied, ..)| *applied).collect();
        if found.len() == 3 && indexes.iter().all(|i| *i == indexes[0]) {
            let digests: Vec<&Value> = found.values().map(|(_, _, d)| d).collect();
            assert!(digests.iter().all(|d| *d == digests[0]), "replicas at one index differ: {found:?}");
            return found;
        }
        assert!(Instant::now() < deadline, "the replicas never stood at one index: {found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
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
fn logs_are_compacted_and_a_replica_left_behind_catches_up_from_snapshots() {
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

    // A node killed while the others write and compact far past what it holds.
    let before = replicas(&cluster)[&3].0;
    let meta_before = replicas_of(&cluster, &[3], None)[&3].0;
    cluster.kill(3);
    let description = call_until_ok(cluster.api(1), "DescribeTable", &json!({"TableName": "logs"}), WAIT);
    let arn = description["Table"]["TableArn"].as_str().expect("TableArn").to_string();
    for n in 0..2 * LOG_ENTRIES_MAX {
        let tag = json!({"ResourceArn": arn, "Tags": [{"Key": format!("t{}", n % 5), "Value": n.to_string()}]});
        call_until_ok(cluster.api(1 + n % 2), "TagResource", &tag, WAIT);
    }
    write(&cluster, 1_000, 1_100, &[1, 2]);
    let deadline = Instant::now() + WAIT;
    let mut extra = 1_100;
    loop {
        let partition = replicas_of(&cluster, &[1, 2], Some("logs"));
        let meta = replicas_of(&cluster, &[1, 2], None);
        let past = |found: &BTreeMap<u64, (u64, u64, Value)>, held: u64| {
            found.len() == 2 && found.values().all(|(_, first, _)| *first > held + 1)
        };
        if past(&partition, before) && past(&meta, meta_before) {
            break;
        }
        assert!(Instant::now() < deadline, "logs not compacted past the node that is away: {partition:?} {meta:?}");
        // The partition leader checks its log every few seconds; more writes keep it over the limit.
        write(&cluster, extra, extra + 2, &[1, 2]);
        extra += 2;
        std::thread::sleep(Duration::from_millis(300));
    }

    // Back, it can only catch up from snapshots: its logs start after what it held.
    cluster.start_node(3);
    write(&cluster, 2_000, 2_010, &[1, 2, 3]);
    let found = assert_converged(&cluster, Some("logs"));
    assert!(found[&3].1 > before + 1, "the partition replica did not restore a snapshot: {found:?}");
    let meta = assert_converged(&cluster, None);
    assert!(meta[&3].1 > meta_before + 1, "the metadata replica did not restore a snapshot: {meta:?}");
    let tags = call_until_ok(cluster.api(3), "ListTagsOfResource", &json!({"ResourceArn": arn}), WAIT);
    assert_eq!(tags["Tags"].as_array().map(Vec::len), Some(5), "{tags}");
    // The last write of each key reads back from the restarted node.
    for k in 0..50u64 {
        let last = (2_000..2_010).chain(1_000..extra).filter(|n| n % 50 == k).max().unwrap_or(0);
        let get = json!({"TableName": "logs", "Key": {"pk": {"S": format!("k{k}")}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(3), "GetItem", &get, WAIT);
        let read = number_of(&answer, "n").unwrap_or(-1);
        if last > 0 {
            assert_eq!(read, last as i64, "k{k}: {answer}");
        }
    }
}
