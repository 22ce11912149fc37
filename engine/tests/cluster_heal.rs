//! The control plane heals a real cluster of six processes in three zones on its own: a node
//! killed for good has its replicas re-created on the other node of its zone while writes go
//! on, nothing acknowledged is lost, and when the node comes back the cluster moves replicas
//! to it until its zone is balanced again. No operator request is made.

mod cluster_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_common::{call_until_ok, create_table, number_of, BackgroundWriter, Cluster};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const KEYS: u64 = 60;
const NODES: [u64; 6] = [1, 2, 3, 4, 5, 6];

/// The table's partitions as node `via` maps them: id to sorted replica nodes.
fn partitions(cluster: &Cluster, via: u64) -> BTreeMap<u64, Vec<u64>> {
    let answer =
        call_until_ok(cluster.api(via), "SquallAdmin.DescribePartitions", &json!({"TableName": "items"}), WAIT);
    answer["Partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let mut replicas: Vec<u64> =
                p["Replicas"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
            replicas.sort_unstable();
            (p["PartitionId"].as_u64().unwrap(), replicas)
        })
        .collect()
}

/// Waits until `done` holds for node `via`'s map, and returns that map.
fn await_map(
    cluster: &Cluster,
    via: u64,
    what: &str,
    done: impl Fn(&BTreeMap<u64, Vec<u64>>) -> bool,
) -> BTreeMap<u64, Vec<u64>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let map = partitions(cluster, via);
        if done(&map) {
            return map;
        }
        assert!(Instant::now() < deadline, "{what} never happened: the map is {map:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until the replicas running on `nodes` are exactly those of `map` and agree.
fn await_replicas_agree(cluster: &Cluster, nodes: &[u64], map: &BTreeMap<u64, Vec<u64>>) {
    cluster_common::await_replicas_agree(cluster, nodes, map, WAIT);
}

#[test]
fn a_dead_node_is_replaced_in_its_zone_and_rebalanced_when_it_returns() {
    // Two partitions over six nodes (zones 0, 1, 2, 0, 1, 2): each node holds one replica.
    let mut cluster = Cluster::start_with("127.34.0.", 3, 6, 2, &["--replace-after-ms", "3000"]);
    create_table(cluster.api(1), "items");
    let before = partitions(&cluster, 1);
    let (&group, replicas) = before.iter().next().expect("a partition");
    let dead = replicas[0];
    let sibling = *NODES.iter().find(|n| **n != dead && cluster.zone_of(**n) == cluster.zone_of(dead)).unwrap();
    assert!(!replicas.contains(&sibling), "placement spreads a zone's replicas: {before:?}");

    // Writes go on through the survivors while the node dies and its replica is replaced.
    let alive: Vec<u64> = NODES.iter().copied().filter(|n| *n != dead).collect();
    let apis: Vec<_> = alive.iter().map(|n| cluster.api(*n)).collect();
    let writer = BackgroundWriter::start(apis, KEYS, 0, 50_000, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill(dead);
    let healed = await_map(&cluster, alive[0], "the replacement of the dead node's replica", |map| {
        map.values().all(|r| !r.contains(&dead)) && map[&group].contains(&sibling)
    });
    let mut expected: Vec<u64> = replicas.iter().map(|r| if *r == dead { sibling } else { *r }).collect();
    expected.sort_unstable();
    assert_eq!(healed[&group], expected, "the replica stays in its zone");
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    assert!(acked.len() as u64 == KEYS, "writes succeeded throughout: {} keys written", acked.len());
    await_replicas_agree(&cluster, &alive, &healed);

    // Back, the node is empty and its zone unbalanced (its sibling holds two replicas): the
    // admin loop moves one back, and every replica agrees.
    cluster.start_node(dead);
    let balanced = await_map(&cluster, dead, "the rebalance onto the returned node", |map| {
        let on = |node: u64| map.values().filter(|r| r.contains(&node)).count();
        on(dead) == 1 && on(sibling) == 1
    });
    await_replicas_agree(&cluster, &NODES, &balanced);
    for (k, n) in &acked {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("k{k}")}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(dead), "GetItem", &get, WAIT);
        // A later write that timed out may have landed too.
        assert!(number_of(&answer, "n").unwrap_or(-1) >= *n as i64, "k{k} lost acknowledged write {n}: {answer}");
    }
}

#[test]
fn a_zone_without_a_survivor_keeps_its_replicas_waiting_for_it() {
    // Three nodes, one per zone: a dead node has no zone sibling, so nothing moves and the two
    // other zones go on serving.
    let mut cluster = Cluster::start_with("127.35.0.", 3, 3, 1, &["--replace-after-ms", "1000"]);
    create_table(cluster.api(1), "items");
    cluster.kill(3);
    for n in 0..KEYS {
        let item = json!({"TableName": "items", "Item": {"pk": {"S": format!("k{n}")}, "n": {"N": n.to_string()}}});
        call_until_ok(cluster.api(1 + n % 2), "PutItem", &item, WAIT);
    }
    std::thread::sleep(Duration::from_secs(4));
    let map = partitions(&cluster, 1);
    assert!(map.values().all(|r| *r == vec![1, 2, 3]), "no replica left its zone: {map:?}");
    cluster.start_node(3);
    await_replicas_agree(&cluster, &[1, 2, 3], &map);
}
