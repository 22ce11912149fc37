//! Capacity enforcement on a real three-node cluster: each partition's leader enforces its
//! share of the table's provisioned capacity, the router returns a batch's throttled partition
//! as unprocessed while the other partition's items are written, and a transaction across
//! partitions is cancelled when one participant refuses it as it prepares.

mod cluster_common;

use std::time::Duration;

use cluster_common::{call, call_until_ok, Cluster};
use serde_json::{json, Value};
use squall_engine::api::error::TABLE_THROUGHPUT_EXCEEDED;
use squall_engine::cluster::routing::hash_of;
use squall_engine::model::AttributeValue;
use squall_engine::throttle::slot_of;

const PARTITIONS: u32 = 2;
const SETTLE: Duration = Duration::from_secs(60);

/// An item of about 10 KB: ten write units.
fn item(pk: &str) -> Value {
    json!({"pk": {"S": pk}, "blob": {"S": "x".repeat(10 * 1024 - 200)}})
}

/// The partition a key falls in.
fn partition_of(key: &str) -> u32 {
    slot_of(hash_of(&AttributeValue::S(key.to_string())), PARTITIONS).index
}

/// Keys in partition `index`, none of them `avoid`.
fn keys_in(index: u32, count: usize, avoid: &str) -> Vec<String> {
    (0..).map(|n| format!("key{n}")).filter(|k| partition_of(k) == index && k != avoid).take(count).collect()
}

#[test]
fn partition_leaders_enforce_their_share_on_writes_batches_and_transactions() {
    let cluster = Cluster::start("127.27.0.", 3, 3, u64::from(PARTITIONS));
    let entry = cluster.api(1);
    call_until_ok(
        entry,
        "CreateTable",
        &json!({"TableName": "small",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 2}}),
        SETTLE,
    );
    // Every node reports the per-table quotas its partition leaders enforce.
    let (status, limits) = call(cluster.api(2), "DescribeLimits", &json!({})).expect("the node answers");
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["TableMaxReadCapacityUnits"], 40_000, "{limits}");
    assert_eq!(limits["TableMaxWriteCapacityUnits"], 40_000, "{limits}");
    // A table asking for more than that is refused by the router it reaches, before any node
    // applies it.
    let over = json!({"TableName": "over_quota",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 40_001}});
    let (status, answer) = call(cluster.api(3), "CreateTable", &over).expect("the node answers");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["__type"], "com.amazonaws.dynamodb.v20120810#LimitExceededException", "{answer}");
    let (status, _) = call(cluster.api(3), "DescribeTable", &json!({"TableName": "over_quota"})).expect("answers");
    assert_eq!(status, 400, "no such table");
    // 2 WCU over two partitions: each leader refills one unit a second and keeps 300 of credit,
    // thirty 10-unit writes. The first write waits for the partitions to elect their leaders.
    call_until_ok(entry, "PutItem", &json!({"TableName": "small", "Item": item("hot")}), SETTLE);
    let mut written = 1;
    let refusal = loop {
        assert!(written < 60, "a partition with 300 units of credit took {written} writes of 10 units");
        let (status, answer) =
            call(entry, "PutItem", &json!({"TableName": "small", "Item": item("hot")})).expect("the node answers");
        if status != 200 {
            break (status, answer);
        }
        written += 1;
    };
    assert_eq!(refusal.0, 400, "{refusal:?}");
    assert_eq!(
        refusal.1["__type"], "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "{refusal:?}"
    );
    assert_eq!(refusal.1["message"], TABLE_THROUGHPUT_EXCEEDED);
    // Thirty writes, plus a refill of one unit a second while they ran (a few seconds at most).
    assert!((30..=33).contains(&written), "the hot partition took {written} writes");

    // A batch over both partitions: the hot one's items come back, the other's are written.
    let hot_partition = partition_of("hot");
    let hot_keys = keys_in(hot_partition, 2, "hot");
    let cold_keys = keys_in(1 - hot_partition, 2, "hot");
    let writes: Vec<Value> =
        hot_keys.iter().chain(&cold_keys).map(|k| json!({"PutRequest": {"Item": item(k)}})).collect();
    let (status, answer) =
        call(entry, "BatchWriteItem", &json!({"RequestItems": {"small": writes}})).expect("the node answers");
    assert_eq!(status, 200, "{answer}");
    let unprocessed: Vec<String> = answer["UnprocessedItems"]["small"]
        .as_array()
        .map(|items| {
            items.iter().filter_map(|w| w["PutRequest"]["Item"]["pk"]["S"].as_str()).map(String::from).collect()
        })
        .unwrap_or_default();
    assert_eq!(unprocessed, hot_keys, "{answer}");
    for key in &cold_keys {
        let found = call_until_ok(
            entry,
            "GetItem",
            &json!({"TableName": "small", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
            SETTLE,
        );
        assert!(found.get("Item").is_some(), "{key} was written");
    }
    // Only hot keys: nothing can run, so the batch fails as DynamoDB's does.
    let only_hot: Vec<Value> = hot_keys.iter().map(|k| json!({"PutRequest": {"Item": item(k)}})).collect();
    let (status, answer) =
        call(entry, "BatchWriteItem", &json!({"RequestItems": {"small": only_hot}})).expect("the node answers");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["__type"], "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException");

    // A transaction across both partitions is admitted by each participant as it prepares:
    // the hot one refuses, and the whole transaction is cancelled with the reason at its action.
    // Every participant is asked, so the cold one's action has its own partition's answer
    // (its share of the table's 2 WCU may have gone to the hot partition by now).
    let cold = keys_in(1 - hot_partition, 3, "hot")[2].clone();
    let hot = keys_in(hot_partition, 3, "hot")[2].clone();
    let transaction = json!({"TransactItems": [
        {"Put": {"TableName": "small", "Item": item(&cold)}},
        {"Put": {"TableName": "small", "Item": item(&hot)}},
    ]});
    let (status, answer) = call(entry, "TransactWriteItems", &transaction).expect("the node answers");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["__type"], "com.amazonaws.dynamodb.v20120810#TransactionCanceledException", "{answer}");
    let codes: Vec<&str> =
        answer["CancellationReasons"].as_array().into_iter().flatten().filter_map(|r| r["Code"].as_str()).collect();
    assert_eq!(codes.len(), 2, "{answer}");
    assert_eq!(codes[1], "ProvisionedThroughputExceeded", "{answer}");
    assert!(matches!(codes[0], "None" | "ProvisionedThroughputExceeded"), "{answer}");
    // Nothing was written, and nothing stays locked: the cold item can be written at once.
    let get_cold = json!({"TableName": "small", "Key": {"pk": {"S": cold}}, "ConsistentRead": true});
    assert!(call_until_ok(entry, "GetItem", &get_cold, SETTLE).get("Item").is_none());
    call_until_ok(entry, "PutItem", &json!({"TableName": "small", "Item": item(&cold)}), SETTLE);
}
