//! The router's pure decisions for every request a clustered node receives: which partition of a
//! 64-partition table (replicas on nine nodes in three zones) owns a key, from a hash, from a
//! key value, and from a whole GetItem or PutItem body, plus the partitions a Scan segment
//! visits.
//!
//! The request benchmarks run the steps of `Router::call` and `Router::partition_of` in their
//! order: parse the body, read the table name, hash the partition key the operation addresses,
//! find the partition, list its replicas. Two steps are left out because they are not pure: the
//! catalog lookup of the table (`ClusterNode::table_map`, state of a running node) and the
//! choice of the replica to send to (`ClusterNode::route`, which follows leader hints and the
//! transport's view of suspected peers).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use squall_engine::catalog::TableMeta;
use squall_engine::cluster::routing::{hash_of, initial_map, item_request_hash, partition_for, table_name};
use squall_engine::db::keys::segment_start_hash;
use squall_engine::model::{item_to_json, AttributeValue};
use squall_engine::partition::PartitionMap;

mod common;

/// Partitions of the benchmark table: the largest count a table is created with
/// (`routing::INITIAL_PARTITIONS_MAX`), so a lookup searches the longest list it can.
const PARTITIONS: u64 = 64;

/// Distinct keys the lookups cycle through, so that the search does not take one path every time.
const KEYS: usize = 1024;

/// From a request body to the replicas of the partition it addresses, as the router does it.
fn route(operation: &str, body: &[u8], table: &TableMeta, map: &PartitionMap) -> Option<Vec<u64>> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let name = table_name(&request).ok()?;
    debug_assert_eq!(name, table.name);
    let hash = item_request_hash(table, operation, &request)?;
    let partition = partition_for(map, hash).clone();
    Some(partition.replicas.iter().map(|r| r.node.0).collect())
}

fn routing(c: &mut Criterion) {
    let table = common::orders_table(42);
    let map = initial_map(table.id, PARTITIONS, &common::nine_nodes()).expect("a valid map");
    let values: Vec<AttributeValue> = (0..KEYS).map(|i| common::s(&format!("customer#{:010}", i * 7919))).collect();
    let hashes: Vec<u64> = values.iter().map(hash_of).collect();

    let item = common::order_item();
    let get_body = serde_json::to_vec(&json!({
        "TableName": "orders",
        "Key": {"pk": item["pk"].to_json(), "sk": item["sk"].to_json()},
        "ConsistentRead": true,
    }))
    .expect("serializes");
    let put_body = serde_json::to_vec(&json!({
        "TableName": "orders",
        "Item": item_to_json(&item),
        "ConditionExpression": "attribute_not_exists(pk)",
    }))
    .expect("serializes");
    assert_eq!(route("GetItem", &get_body, &table, &map).map(|r| r.len()), Some(3));
    assert_eq!(route("PutItem", &put_body, &table, &map), route("GetItem", &get_body, &table, &map));

    let mut group = c.benchmark_group("routing");
    let mut next = 0usize;
    group.bench_function("partition_for_hash_64_partitions", |b| {
        b.iter(|| {
            next = (next + 1) % KEYS;
            partition_for(black_box(&map), black_box(hashes[next])).id
        })
    });
    group.bench_function("partition_for_key_64_partitions", |b| {
        b.iter(|| {
            next = (next + 1) % KEYS;
            partition_for(&map, hash_of(black_box(&values[next]))).id
        })
    });
    group.bench_function("get_item_request_to_replicas", |b| {
        b.iter(|| route("GetItem", black_box(&get_body), &table, &map).expect("routes"))
    });
    group.bench_function("put_item_1kb_request_to_replicas", |b| {
        b.iter(|| route("PutItem", black_box(&put_body), &table, &map).expect("routes"))
    });
    // Segment 5 of 16 of a parallel Scan: the hash range of the segment, then the partitions
    // that overlap it, in hash order.
    group.bench_function("scan_segment_partitions", |b| {
        b.iter(|| {
            let start = segment_start_hash(black_box(5), 16);
            let end = segment_start_hash(6, 16);
            map.partitions_for_range(start, Some(end)).len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = routing
}
criterion_main!(benches);
