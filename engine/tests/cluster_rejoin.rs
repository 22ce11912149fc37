//! A node whose store is lost comes back with `--rejoin` on a real three-node cluster: every
//! group removes its old replica and takes it back as a learner that catches up from a
//! snapshot, then as a voter; afterwards its replicas hold what the others hold, it serves
//! eventually consistent reads of every acknowledged write, and the cluster keeps a quorum with
//! it when another node dies.

mod cluster_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_common::{call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const KEYS: u64 = 60;

/// Writes `n` to key `k{n % KEYS}` for each `n` of `from..to` through the nodes `via` in turn,
/// and records the last value acknowledged per key.
fn write(cluster: &Cluster, from: u64, to: u64, via: &[u64], acked: &mut BTreeMap<u64, u64>) {
    for n in from..to {
        let k = n % KEYS;
        let item = json!({"TableName": "items", "Item": {"pk": {"S": format!("k{k}")}, "n": {"N": n.to_string()}}});
        call_until_ok(cluster.api(via[n as usize % via.len()]), "PutItem", &item, WAIT);
        acked.insert(k, n);
    }
}

/// Every replica (by group, then node) as DescribeReplicas reports it.
fn replicas(cluster: &Cluster, nodes: &[u64]) -> BTreeMap<u64, BTreeMap<u64, Value>> {
    let mut by_group: BTreeMap<u64, BTreeMap<u64, Value>> = BTreeMap::new();
    for &node in nodes {
        let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), WAIT);
        for replica in answer["Replicas"].as_array().expect("replicas") {
            by_group.entry(replica["group"].as_u64().unwrap()).or_default().insert(node, replica.clone());
        }
    }
    by_group
}

#[test]
fn a_node_that_lost_its_store_rejoins_as_a_learner_then_a_voter() {
    let mut cluster = Cluster::start_with("127.31.0.", 3, 3, 2, &["--log-entries-max", "50"]);
    create_table(cluster.api(1), "items");
    let mut acked = BTreeMap::new();
    write(&cluster, 0, 150, &[1, 2, 3], &mut acked);

    // Node 3's disk is replaced while writes go on.
    cluster.kill(3);
    cluster.wipe(3);
    write(&cluster, 150, 300, &[1, 2], &mut acked);
    cluster.start_node_with(3, &["--rejoin"]);
    write(&cluster, 300, 320, &[1, 2, 3], &mut acked);

    // Every group (the metadata group and both partitions) takes node 3 back as a voter, and
    // its replicas then stand where the others do, holding the same data.
    let deadline = Instant::now() + WAIT;
    loop {
        let found = replicas(&cluster, &[1, 2, 3]);
        let settled = found.len() == 3
            && found.values().all(|nodes| {
                let first = &nodes.values().next().unwrap()["applied_index"];
                nodes.len() == 3
                    && nodes.values().all(|r| r["applied_index"] == *first && r["rejoining"] == json!(false))
                    && nodes.values().all(|r| r["voters"] == json!([1, 2, 3]))
            });
        if settled {
            for (group, nodes) in &found {
                let digests: Vec<&Value> = nodes.values().map(|r| &r["digest"]).collect();
                assert!(digests.iter().all(|d| *d == digests[0]), "group {group}: replicas differ: {nodes:?}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "node 3 never rejoined every group: {found:?}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Node 3 serves every acknowledged write from its own replicas.
    for (k, n) in &acked {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("k{k}")}}});
        let answer = call_until_ok(cluster.api(3), "GetItem", &get, WAIT);
        assert_eq!(number_of(&answer, "n"), Some(*n as i64), "k{k} on node 3: {answer}");
    }

    // With node 1 gone, writes need node 3's vote and acknowledgement: it is a voter again.
    cluster.kill(1);
    write(&cluster, 400, 440, &[2, 3], &mut acked);
    for (k, n) in &acked {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("k{k}")}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(3), "GetItem", &get, WAIT);
        assert_eq!(number_of(&answer, "n"), Some(*n as i64), "k{k} after node 1 died: {answer}");
    }
}
