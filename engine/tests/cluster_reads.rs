//! A cluster answers reads and batches that span partitions as one node does: a global index's
//! Query and Scan apply `Limit`, filters and COUNT to the merged entries; Scan and BatchGetItem
//! stop at their 1 MB and 16 MB answers; a BatchWriteItem with one bad request writes nothing;
//! a transaction over 4 MB is refused for its size; a transaction cancelled in several
//! partitions gives every action's reason.

mod cluster_common;

use std::time::Duration;

use cluster_common::{call, call_until_ok, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// Items with the global index key, spread over the table's four partitions.
const INDEXED: u64 = 40;

fn ok(cluster: &Cluster, node: u64, operation: &str, body: &Value) -> Value {
    call_until_ok(cluster.api(node), operation, body, WAIT)
}

/// Follows a Query or Scan's pages to the end: the items' `n` values, the sum of the pages'
/// Count and of their ScannedCount, and the number of pages.
fn all_pages(cluster: &Cluster, operation: &str, request: &Value) -> (Vec<u64>, u64, u64, u64) {
    let (mut found, mut count, mut scanned, mut pages) = (Vec::new(), 0, 0, 0);
    let mut request = request.clone();
    loop {
        let page = ok(cluster, 1 + pages % 3, operation, &request);
        pages += 1;
        assert!(pages < 200, "paging never ends");
        count += page["Count"].as_u64().unwrap();
        scanned += page["ScannedCount"].as_u64().unwrap();
        if let Some(limit) = request.get("Limit").and_then(Value::as_u64) {
            assert!(page["ScannedCount"].as_u64().unwrap() <= limit, "{page}");
        }
        for item in page.get("Items").and_then(Value::as_array).into_iter().flatten() {
            found.push(item["n"]["N"].as_str().unwrap().parse().unwrap());
        }
        match page.get("LastEvaluatedKey") {
            Some(key) => request["ExclusiveStartKey"] = key.clone(),
            None => return (found, count, scanned, pages),
        }
    }
}

/// Waits until every node's replicas hold `expected` items of the table (an eventually
/// consistent COUNT through each node, which reads its own replicas), so that the eventually
/// consistent reads after it see every item whichever node serves them.
fn await_every_replica(cluster: &Cluster, expected: u64) {
    for node in 1..=3 {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mut request = json!({"TableName": "reads", "Select": "COUNT"});
            let mut count = 0;
            loop {
                let page = ok(cluster, node, "Scan", &request);
                count += page["Count"].as_u64().unwrap();
                match page.get("LastEvaluatedKey") {
                    Some(key) => request["ExclusiveStartKey"] = key.clone(),
                    None => break,
                }
            }
            if count == expected {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node {node} sees {count} of {expected} items");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn reads_and_batches_across_partitions_answer_as_one_node_does() {
    let cluster = Cluster::start("127.36.0.", 3, 3, 4);
    ok(
        &cluster,
        1,
        "CreateTable",
        &json!({"TableName": "reads", "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "g", "AttributeType": "S"},
                                         {"AttributeName": "n", "AttributeType": "N"}],
                "GlobalSecondaryIndexes": [{"IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"}}]}),
    );
    for n in 0..INDEXED {
        let item = json!({"pk": {"S": format!("item-{n}")}, "g": {"S": "G"}, "n": {"N": n.to_string()},
                          "odd": {"BOOL": n % 2 == 1}});
        ok(&cluster, 1 + n % 3, "PutItem", &json!({"TableName": "reads", "Item": item}));
    }
    await_every_replica(&cluster, INDEXED);

    // A global index's Query: Limit counts the entries evaluated in index order, whichever
    // partitions hold them, and the filter applies to those.
    let query = json!({"TableName": "reads", "IndexName": "by_g", "KeyConditionExpression": "g = :g",
                       "FilterExpression": "odd = :t",
                       "ExpressionAttributeValues": {":g": {"S": "G"}, ":t": {"BOOL": true}}, "Limit": 10});
    let first = ok(&cluster, 2, "Query", &query);
    let ns: Vec<&str> = first["Items"].as_array().unwrap().iter().map(|i| i["n"]["N"].as_str().unwrap()).collect();
    assert_eq!(ns, ["1", "3", "5", "7", "9"], "{first}");
    assert_eq!((first["Count"].as_u64(), first["ScannedCount"].as_u64()), (Some(5), Some(10)));
    assert_eq!(first["LastEvaluatedKey"]["n"]["N"], "9");
    let (found, count, scanned, _) = all_pages(&cluster, "Query", &query);
    assert_eq!(found, (0..INDEXED).filter(|n| n % 2 == 1).collect::<Vec<_>>());
    assert_eq!((count, scanned), (INDEXED / 2, INDEXED));
    // Counting through pages counts every item once.
    let mut counting = query.clone();
    counting["Select"] = json!("COUNT");
    counting["Limit"] = json!(7);
    let (_, count, scanned, _) = all_pages(&cluster, "Query", &counting);
    assert_eq!((count, scanned), (INDEXED / 2, INDEXED));
    let scan = json!({"TableName": "reads", "IndexName": "by_g", "Select": "COUNT", "Limit": 7});
    let (_, count, scanned, _) = all_pages(&cluster, "Scan", &scan);
    assert_eq!((count, scanned), (INDEXED, INDEXED));

    // Twenty-four 100 KB items: a Scan over the partitions stops each page at 1 MB read.
    let blob = "x".repeat(100 * 1024);
    for n in 0..24u64 {
        let item = json!({"pk": {"S": format!("big-{n}")}, "n": {"N": (1000 + n).to_string()}, "blob": {"S": blob}});
        ok(&cluster, 1 + n % 3, "PutItem", &json!({"TableName": "reads", "Item": item}));
    }
    await_every_replica(&cluster, INDEXED + 24);
    let (found, _, _, pages) = all_pages(&cluster, "Scan", &json!({"TableName": "reads", "ProjectionExpression": "n"}));
    assert_eq!(found.len() as u64, INDEXED + 24, "every item once");
    assert!(pages >= 3, "2.4 MB of items take at least three pages, not {pages}");
    let consistent = json!({"TableName": "reads", "ProjectionExpression": "n", "ConsistentRead": true});
    let (found, _, _, pages) = all_pages(&cluster, "Scan", &consistent);
    assert_eq!(found.len() as u64, INDEXED + 24, "every item once, read through the partitions' logs");
    assert!(pages >= 3, "{pages} pages");

    // BatchGetItem of 45 items of 390 KB: at most 16 MB comes back, the rest unprocessed.
    let large = "y".repeat(390 * 1024);
    let keys: Vec<Value> = (0..45).map(|n| json!({"pk": {"S": format!("large-{n}")}})).collect();
    for (n, key) in keys.iter().enumerate() {
        let mut item = key.clone();
        item["blob"] = json!({"S": large});
        ok(&cluster, 1 + n as u64 % 3, "PutItem", &json!({"TableName": "reads", "Item": item}));
    }
    // Strongly consistent: an eventually consistent read may miss an item just written.
    let batch = json!({"RequestItems": {"reads": {"Keys": keys, "ConsistentRead": true}}});
    let answer = ok(&cluster, 3, "BatchGetItem", &batch);
    let returned = answer["Responses"]["reads"].as_array().unwrap().len();
    let unprocessed = answer["UnprocessedKeys"]["reads"]["Keys"].as_array().map_or(0, Vec::len);
    assert!(returned <= 42, "{returned} items of 390 KB exceed 16 MB");
    assert_eq!(returned + unprocessed, 45, "every key is returned or unprocessed");

    // A BatchWriteItem with one item over 400 KB writes none of the others.
    let mut writes: Vec<Value> =
        (0..24).map(|n| json!({"PutRequest": {"Item": {"pk": {"S": format!("batch-{n}")}}}})).collect();
    writes.push(json!({"PutRequest": {"Item": {"pk": {"S": "batch-huge"}, "blob": {"S": "z".repeat(401 * 1024)}}}}));
    let (status, answer) = call(cluster.api(1), "BatchWriteItem", &json!({"RequestItems": {"reads": writes}})).unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer["__type"].as_str().unwrap().ends_with("ValidationException"), "{answer}");
    for n in 0..24 {
        let get = json!({"TableName": "reads", "Key": {"pk": {"S": format!("batch-{n}")}}, "ConsistentRead": true});
        assert!(ok(&cluster, 1 + n % 3, "GetItem", &get).get("Item").is_none(), "batch-{n} was written");
    }

    // A transaction over 4 MB is refused whole for its size, though each partition's part is
    // under it (and would be refused for capacity).
    let puts: Vec<Value> = (0..11)
        .map(|n| json!({"Put": {"TableName": "reads", "Item": {"pk": {"S": format!("tx-{n}")}, "blob": {"S": large}}}}))
        .collect();
    let (status, answer) = call(cluster.api(3), "TransactWriteItems", &json!({"TransactItems": puts})).unwrap();
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "Transaction request size has exceeded the maximum allowed size of 4 MB", "{answer}");

    // A transaction whose conditions fail in several partitions names every failed action.
    let actions: Vec<Value> = (0..8)
        .map(|n| {
            json!({"ConditionCheck": {"TableName": "reads", "Key": {"pk": {"S": format!("item-{n}")}},
                                      "ConditionExpression": "n = :never",
                                      "ExpressionAttributeValues": {":never": {"N": "100"}},
                                      "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}})
        })
        .collect();
    let (status, answer) = call(cluster.api(2), "TransactWriteItems", &json!({"TransactItems": actions})).unwrap();
    assert_eq!(status, 400, "{answer}");
    let reasons = answer["CancellationReasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 8);
    for (n, reason) in reasons.iter().enumerate() {
        assert_eq!(reason["Code"], "ConditionalCheckFailed", "action {n}: {answer}");
        assert_eq!(reason["Item"]["n"]["N"], n.to_string(), "action {n}: {answer}");
    }
}
