//! Moving a partition's replica to another node under write load, on a real cluster of six
//! processes in three zones: every acknowledged write is read back, the moved replica holds
//! what the others hold, the old node no longer hosts it, the map shows the new voters, moves
//! that would put two replicas in one zone are refused, and the new placement survives
//! restarts.

mod cluster_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_common::{call, call_until_ok, create_table, number_of, BackgroundWriter, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const KEYS: u64 = 80;

/// The table's partitions as node `via` maps them: id to replica nodes.
fn partitions(cluster: &Cluster, via: u64) -> BTreeMap<u64, Vec<u64>> {
    let answer =
        call_until_ok(cluster.api(via), "SquallAdmin.DescribePartitions", &json!({"TableName": "items"}), WAIT);
    answer["Partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let replicas = p["Replicas"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
            (p["PartitionId"].as_u64().unwrap(), replicas)
        })
        .collect()
}

/// The replicas of `group` on every running node: node to (applied index, digest).
fn replicas_of(cluster: &Cluster, nodes: &[u64], group: u64) -> BTreeMap<u64, (u64, Value)> {
    let mut found = BTreeMap::new();
    for &node in nodes {
        let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), WAIT);
        for replica in answer["Replicas"].as_array().expect("replicas") {
            if replica["group"].as_u64() == Some(group) {
                found.insert(node, (replica["applied_index"].as_u64().unwrap(), replica["digest"].clone()));
            }
        }
    }
    found
}

fn put(cluster: &Cluster, via: u64, n: u64) {
    let item =
        json!({"TableName": "items", "Item": {"pk": {"S": format!("k{}", n % KEYS)}, "n": {"N": n.to_string()}}});
    call_until_ok(cluster.api(via), "PutItem", &item, WAIT);
}

/// Six nodes in three zones on `ip_prefix` with the table written once: the cluster, and the
/// first partition's group and replica nodes.
fn written_cluster(ip_prefix: &str) -> (Cluster, u64, Vec<u64>) {
    // Nodes 1..6 in zones 0, 1, 2, 0, 1, 2 (node id modulo three).
    // Balancing would move replicas back while the tests look at where they went.
    let cluster = Cluster::start_with(ip_prefix, 3, 6, 2, &["--no-balance"]);
    create_table(cluster.api(1), "items");
    for n in 0..KEYS {
        put(&cluster, 1 + n % 6, n);
    }
    let (group, replicas) = partitions(&cluster, 1).into_iter().next().expect("a partition");
    (cluster, group, replicas)
}

/// Waits until the replicas of `group` are on exactly the nodes `expected` (sorted), at one
/// applied index, and asserts they hold the same data there.
fn await_replicas_on(cluster: &Cluster, group: u64, expected: &[u64]) {
    let expected = BTreeMap::from([(group, expected.to_vec())]);
    cluster_common::await_replicas_agree(cluster, &[1, 2, 3, 4, 5, 6], &expected, WAIT);
}

#[test]
fn a_replica_moves_under_load_and_nothing_is_lost() {
    let (mut cluster, group, replicas) = written_cluster("127.32.0.");
    let from = replicas[0];
    // The other node of `from`'s zone: the only place the replica may go.
    let to = (1..=6).find(|n| *n != from && cluster.zone_of(*n) == cluster.zone_of(from)).unwrap();
    let elsewhere = (1..=6).find(|n| !replicas.contains(n) && cluster.zone_of(*n) != cluster.zone_of(from)).unwrap();
    let refused = json!({"TableName": "items", "PartitionId": group, "FromNode": from, "ToNode": elsewhere});
    let (status, answer) = call(cluster.api(2), "SquallAdmin.MoveReplica", &refused).expect("call");
    assert_eq!(status, 400, "a move into a zone that holds a replica is refused: {answer}");

    // Writes go on through every node while the replica moves.
    let apis: Vec<_> = (1..=6).map(|n| cluster.api(n)).collect();
    let writer = BackgroundWriter::start(apis, KEYS, 1_000, 20_000, Duration::ZERO);
    let request = json!({"TableName": "items", "PartitionId": group, "FromNode": from, "ToNode": to});
    let moved = call_until_ok(cluster.api(2), "SquallAdmin.MoveReplica", &request, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    let mut voters: Vec<u64> = moved["Voters"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    voters.sort_unstable();
    let mut expected: Vec<u64> = replicas.iter().map(|r| if *r == from { to } else { *r }).collect();
    expected.sort_unstable();
    assert_eq!(voters, expected, "{moved}");

    // Every node's map shows the new replicas; the new replica agrees with the others and the
    // old node hosts the partition no more.
    let deadline = Instant::now() + WAIT;
    loop {
        let maps: Vec<BTreeMap<u64, Vec<u64>>> = (1..=6).map(|n| partitions(&cluster, n)).collect();
        let shown = maps.iter().all(|m| {
            let mut r = m[&group].clone();
            r.sort_unstable();
            r == expected
        });
        if shown {
            break;
        }
        assert!(Instant::now() < deadline, "the maps never showed the move: {maps:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    await_replicas_on(&cluster, group, &expected);

    // Every acknowledged write reads back; then the placement survives restarts of both nodes.
    let check = |cluster: &Cluster, acked: &BTreeMap<u64, u64>| {
        for (k, n) in acked {
            let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("k{k}")}}, "ConsistentRead": true});
            let answer = call_until_ok(cluster.api(to), "GetItem", &get, WAIT);
            assert!(number_of(&answer, "n").unwrap_or(-1) >= *n as i64, "k{k} lost write {n}: {answer}");
        }
    };
    assert!(!acked.is_empty(), "writes succeeded during the move");
    check(&cluster, &acked);
    for node in [from, to] {
        cluster.kill(node);
        cluster.start_node(node);
    }
    put(&cluster, from, 50_000);
    let deadline = Instant::now() + WAIT;
    loop {
        let found = replicas_of(&cluster, &[1, 2, 3, 4, 5, 6], group);
        if found.keys().copied().collect::<Vec<_>>() == expected {
            break;
        }
        assert!(Instant::now() < deadline, "after restarts the replicas are on {found:?}, not {expected:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    check(&cluster, &acked);
}

/// A replica on a node that is down moves to the other node of its zone (the replacement of a
/// lost replica, by hand): the group goes on with the new replica, and the old node, back,
/// does not take its old replica up again.
#[test]
fn a_replica_on_a_dead_node_moves_to_a_survivor_of_its_zone() {
    let (mut cluster, group, replicas) = written_cluster("127.33.0.");
    let dead = replicas[1];
    let to = (1..=6).find(|n| *n != dead && cluster.zone_of(*n) == cluster.zone_of(dead)).unwrap();
    let alive: Vec<u64> = (1..=6).filter(|n| *n != dead).collect();
    cluster.kill(dead);
    let request = json!({"TableName": "items", "PartitionId": group, "FromNode": dead, "ToNode": to});
    let via = *alive.iter().find(|n| **n != to).unwrap();
    call_until_ok(cluster.api(via), "SquallAdmin.MoveReplica", &request, WAIT);
    for n in KEYS..2 * KEYS {
        put(&cluster, alive[n as usize % alive.len()], n);
    }
    let mut expected: Vec<u64> = replicas.iter().map(|r| if *r == dead { to } else { *r }).collect();
    expected.sort_unstable();

    // The old node comes back: the group stays on the survivors and the new replica.
    cluster.start_node(dead);
    put(&cluster, dead, 3 * KEYS);
    await_replicas_on(&cluster, group, &expected);
    for n in KEYS..2 * KEYS {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("k{}", n % KEYS)}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(dead), "GetItem", &get, WAIT);
        assert!(number_of(&answer, "n").unwrap_or(-1) >= n as i64, "k{} lost write {n}: {answer}", n % KEYS);
    }
}
