//! Splitting partitions of a real three-node cluster under load: writers keep writing while a
//! partition is split twice (by its items' sizes, then at a chosen hash); afterwards every
//! acknowledged write reads back, a scan returns every item exactly once, every node's map shows
//! the new partitions, the replicas of every partition agree, a transaction spans the new
//! partitions, and the split survives a node's restart. Leaders also split on their own: for
//! heat (never for one hot key), for size, and when UpdateTable raises a table's capacity.

mod cluster_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_common::{call, call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const WRITERS: u64 = 3;
const KEYS_PER_WRITER: u64 = 40;
const LOAD_MAX: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);

fn key(writer: u64, n: u64) -> String {
    format!("w{writer}-k{n}")
}

/// Partition ids and ranges of a node's map.
fn partitions(cluster: &Cluster, node: u64) -> Vec<(u64, u64)> {
    let map = call_until_ok(cluster.api(node), "SquallAdmin.DescribePartitions", &json!({"TableName": "items"}), WAIT);
    map["Partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| (p["PartitionId"].as_u64().unwrap(), p["RangeStart"].as_u64().unwrap()))
        .collect()
}

/// Waits until every node's map has `count` partitions.
fn wait_for_partitions(cluster: &Cluster, count: usize) {
    let deadline = Instant::now() + WAIT;
    for node in 1..=3 {
        while partitions(cluster, node).len() != count {
            assert!(Instant::now() < deadline, "node {node} never showed {count} partitions");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Waits until, for every partition group (and the metadata group), all three replicas stand
/// at one applied index with one digest, and returns the partitions' digests by group.
fn agreeing_replicas(cluster: &Cluster) -> BTreeMap<u64, Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut by_group: BTreeMap<u64, Vec<(u64, Value)>> = BTreeMap::new();
        for node in 1..=3 {
            let answer = call_until_ok(cluster.api(node), "SquallAdmin.DescribeReplicas", &json!({}), WAIT);
            for replica in answer["Replicas"].as_array().expect("replicas") {
                if replica.get("digest").is_some() {
                    let group = replica["group"].as_u64().unwrap();
                    by_group
                        .entry(group)
                        .or_default()
                        .push((replica["applied_index"].as_u64().unwrap(), replica["digest"].clone()));
                }
            }
        }
        let settled = by_group.values().all(|r| r.len() == 3 && r.iter().all(|(index, _)| *index == r[0].0));
        if settled {
            for (group, replicas) in &by_group {
                for (_, digest) in replicas {
                    assert_eq!(digest, &replicas[0].1, "replicas of group {group:#x} differ: {replicas:?}");
                }
            }
            return by_group.into_iter().filter(|(g, _)| *g != 0).map(|(g, r)| (g, r[0].1.clone())).collect();
        }
        assert!(Instant::now() < deadline, "replicas never settled: {by_group:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn splits_under_load_lose_and_duplicate_nothing() {
    let mut cluster = Cluster::start("127.28.0.", 3, 3, 1);
    create_table(cluster.api(1), "items");
    assert_eq!(partitions(&cluster, 1).len(), 1);

    // Bad requests are refused cleanly.
    let (status, answer) =
        call(cluster.api(1), "SquallAdmin.SplitPartition", &json!({"TableName": "items", "PartitionId": 7})).unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer["__type"].as_str().unwrap().ends_with("ResourceNotFoundException"), "{answer}");
    let (status, answer) = call(cluster.api(1), "SquallAdmin.NoSuchThing", &json!({})).unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer["__type"].as_str().unwrap().ends_with("UnknownOperationException"), "{answer}");

    // Writers: each key's versions go up one by one, and the last acknowledged one is kept.
    let acked: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let acked = acked.clone();
            let addr = cluster.api(1 + writer % 3);
            std::thread::spawn(move || {
                for round in 1..=3i64 {
                    for n in 0..KEYS_PER_WRITER {
                        if started.elapsed() > LOAD_MAX {
                            return;
                        }
                        let k = key(writer, n);
                        let item =
                            json!({"TableName": "items", "Item": {"pk": {"S": k}, "ver": {"N": round.to_string()}}});
                        if let Ok((200, _)) = call(addr, "PutItem", &item) {
                            acked.lock().unwrap().insert(k, round);
                        }
                    }
                }
            })
        })
        .collect();

    // Split while they write: first by size, then the right half at a chosen hash.
    std::thread::sleep(Duration::from_millis(300));
    let first = call_until_ok(cluster.api(2), "SquallAdmin.SplitPartition", &json!({"TableName": "items"}), WAIT);
    let children: Vec<u64> =
        first["Children"].as_array().expect("children").iter().map(|c| c.as_u64().unwrap()).collect();
    assert_eq!(children.len(), 2, "{first}");
    let at = first["SplitHash"].as_u64().expect("split hash");
    assert!(at > 0, "{first}");
    wait_for_partitions(&cluster, 2);
    let right_start = partitions(&cluster, 3)[1].1;
    assert_eq!(right_start, at);
    let second_at = at + (u64::MAX - at) / 2;
    let second = call_until_ok(
        cluster.api(3),
        "SquallAdmin.SplitPartition",
        &json!({"TableName": "items", "PartitionId": children[1], "SplitHash": second_at}),
        WAIT,
    );
    assert_eq!(second["SplitHash"].as_u64(), Some(second_at), "{second}");
    for writer in writers {
        writer.join().expect("writer");
    }
    wait_for_partitions(&cluster, 3);
    // A split point outside the partition is refused.
    let (status, answer) = call(
        cluster.api(1),
        "SquallAdmin.SplitPartition",
        &json!({"TableName": "items", "PartitionId": children[0], "SplitHash": second_at}),
    )
    .unwrap();
    assert_eq!(status, 400, "{answer}");

    // Every acknowledged write reads back, from every node.
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() as u64 >= WRITERS * KEYS_PER_WRITER / 2, "too few writes succeeded: {}", acked.len());
    for (i, (k, version)) in acked.iter().enumerate() {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": k}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(1 + i as u64 % 3), "GetItem", &get, WAIT);
        let read = number_of(&answer, "ver").unwrap_or_else(|| panic!("{k} lost: {answer}"));
        assert!(read >= *version, "{k}: read version {read}, acknowledged {version}");
    }

    // A scan sees every item exactly once, across the three partitions.
    let mut seen = BTreeSet::new();
    let mut start: Option<Value> = None;
    loop {
        let mut scan = json!({"TableName": "items", "ConsistentRead": true, "Limit": 25});
        if let Some(start) = &start {
            scan["ExclusiveStartKey"] = start.clone();
        }
        let page = call_until_ok(cluster.api(2), "Scan", &scan, WAIT);
        for item in page["Items"].as_array().expect("items") {
            let k = item["pk"]["S"].as_str().unwrap().to_string();
            assert!(seen.insert(k.clone()), "{k} scanned twice");
        }
        match page.get("LastEvaluatedKey") {
            Some(last) => start = Some(last.clone()),
            None => break,
        }
    }
    for k in acked.keys() {
        assert!(seen.contains(k), "{k} missing from the scan");
    }

    // The three partitions' replicas agree, and hold every item between them.
    let digests = agreeing_replicas(&cluster);
    let records: u64 = digests.values().map(|d| d["records"].as_u64().unwrap()).sum();
    assert_eq!(records, seen.len() as u64, "replicas hold {records} records for {} items", seen.len());

    // A transaction across the new partitions commits.
    let (k0, k1) = (key(0, 0), key(1, 1));
    let transact = json!({"TransactItems": [
        {"Put": {"TableName": "items", "Item": {"pk": {"S": k0}, "ver": {"N": "100"}}}},
        {"Put": {"TableName": "items", "Item": {"pk": {"S": k1}, "ver": {"N": "100"}}}}
    ]});
    call_until_ok(cluster.api(1), "TransactWriteItems", &transact, WAIT);

    // The split survives a restart: the node comes back with three partitions and serves.
    cluster.kill(2);
    cluster.start_node(2);
    wait_for_partitions(&cluster, 3);
    let get = json!({"TableName": "items", "Key": {"pk": {"S": k1}}, "ConsistentRead": true});
    let answer = call_until_ok(cluster.api(2), "GetItem", &get, WAIT);
    assert_eq!(number_of(&answer, "ver"), Some(100), "{answer}");
    agreeing_replicas(&cluster);
}

/// Writes `count` items `prefix-0..` of about `value_bytes` each, retrying each until it is
/// acknowledged.
fn write_items(cluster: &Cluster, prefix: &str, count: u64, value_bytes: usize) {
    let value = "x".repeat(value_bytes);
    for n in 0..count {
        let item = json!({"TableName": "items", "Item": {"pk": {"S": format!("{prefix}-{n}")}, "v": {"S": value}}});
        call_until_ok(cluster.api(1 + n % 3), "PutItem", &item, WAIT);
    }
}

#[test]
fn leaders_split_hot_and_large_partitions_on_their_own_but_not_for_one_hot_key() {
    // Checks every 300 ms; 10 write units a second is hot; 30,000 bytes is large.
    let args = ["--split-check-interval-ms", "300", "--split-heat-load-min", "0.01", "--split-size-bytes-max", "30000"];
    let cluster = Cluster::start_with("127.29.0.", 3, 3, 1, &args);
    create_table(cluster.api(1), "items");

    // One hot key: hot enough, but no split point can divide one key's load.
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let item = json!({"TableName": "items", "Item": {"pk": {"S": "hot"}, "n": {"N": n.to_string()}}});
        call_until_ok(cluster.api(1 + n % 3), "PutItem", &item, WAIT);
        n += 1;
    }
    assert!(n >= 60, "the hot key should see at least 20 writes a second, saw {n} in 3 s");
    assert_eq!(partitions(&cluster, 1).len(), 1, "a single hot key must not split its partition");

    // Load spread over many keys splits the partition for heat.
    let deadline = Instant::now() + WAIT;
    let mut spread = 0u64;
    while partitions(&cluster, 1).len() < 2 {
        assert!(Instant::now() < deadline, "the hot partition never split");
        write_items(&cluster, &format!("spread{spread}"), 20, 10);
        spread += 1;
    }

    // Then size: 120 items of 1 KB is about 120 KB, four times the limit; once written, the
    // partitions keep splitting without load until each is under it.
    write_items(&cluster, "big", 120, 1_000);
    let deadline = Instant::now() + WAIT;
    while partitions(&cluster, 1).len() < 5 {
        assert!(Instant::now() < deadline, "large partitions never split: {:?}", partitions(&cluster, 1));
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in 0..120 {
        let get = json!({"TableName": "items", "Key": {"pk": {"S": format!("big-{n}")}}, "ConsistentRead": true});
        let answer = call_until_ok(cluster.api(2), "GetItem", &get, WAIT);
        assert!(answer.get("Item").is_some(), "big-{n} lost: {answer}");
    }
    let digests = agreeing_replicas(&cluster);
    assert!(digests.len() >= 5, "{digests:?}");

    // Raising a provisioned table's capacity past what its partitions serve adds partitions:
    // 3,500 write units need four (1,000 each).
    create_table(cluster.api(1), "cap");
    let update = json!({"TableName": "cap", "BillingMode": "PROVISIONED",
                        "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 3500}});
    call_until_ok(cluster.api(1), "UpdateTable", &update, WAIT);
    let deadline = Instant::now() + WAIT;
    loop {
        let map = call_until_ok(cluster.api(3), "SquallAdmin.DescribePartitions", &json!({"TableName": "cap"}), WAIT);
        let count = map["Partitions"].as_array().map_or(0, Vec::len);
        assert!(count <= 4, "more partitions than the capacity needs: {map}");
        if count == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "UpdateTable never added partitions: {map}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
