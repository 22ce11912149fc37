//! Capacity enforcement through the in-process API over an in-memory store, on tokio's paused
//! clock: every refill is exact, and minutes of DynamoDB time pass in microseconds.
//!
//! Item sizes are chosen so each write costs a known number of units: a `blob` of
//! `units * 1024 - 200` bytes plus its key is a little under `units` KB, so it costs `units`
//! write units and `ceil(units / 4)` strongly consistent read units.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use squall_engine::api::error::{INDEX_THROUGHPUT_EXCEEDED, ON_DEMAND_THROTTLED, TABLE_THROUGHPUT_EXCEEDED};
use squall_engine::api::{ApiError, Service};
use squall_engine::capacity::share::Demand;
use squall_engine::capacity::{Access, Placement, Quota, Slot, Units, Usage, BURST_CREDIT_S};
use squall_engine::catalog::TableMeta;
use squall_engine::cluster::routing::hash_of;
use squall_engine::db::Database;
use squall_engine::model::AttributeValue;
use squall_engine::storage::MemStore;
use squall_engine::throttle::{slot_of, Admission, Throttle};
use tokio::time::advance;

fn database() -> Arc<Database> {
    Arc::new(Database::open(Arc::new(MemStore::new())).expect("open database"))
}

fn service() -> Service {
    Service::with_throttle(database(), Arc::new(Throttle::new()))
}

fn call(service: &Service, operation: &str, body: Value) -> Result<Value, ApiError> {
    service.call(operation, body.to_string().as_bytes())
}

fn ok(service: &Service, operation: &str, body: Value) -> Value {
    call(service, operation, body.clone()).unwrap_or_else(|e| panic!("{operation} failed: {e:?}\nrequest: {body}"))
}

/// A provisioned table keyed by `pk`, optionally with a global index on `g` of its own
/// throughput.
fn create_provisioned(service: &Service, name: &str, read: u64, write: u64, index: Option<(u64, u64)>) {
    let mut body = json!({
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write},
    });
    if let Some((index_read, index_write)) = index {
        body["AttributeDefinitions"] = json!([
            {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}]);
        body["GlobalSecondaryIndexes"] = json!([{
            "IndexName": "by_g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": index_read, "WriteCapacityUnits": index_write},
        }]);
    }
    ok(service, "CreateTable", body);
}

fn create_on_demand(service: &Service, name: &str) {
    ok(
        service,
        "CreateTable",
        json!({
            "TableName": name,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    );
}

/// An item that costs `units` write units.
fn item(pk: &str, units: usize) -> Value {
    json!({"pk": {"S": pk}, "blob": {"S": "x".repeat(units * 1024 - 200)}})
}

fn put(service: &Service, table: &str, pk: &str, units: usize) -> Result<Value, ApiError> {
    call(service, "PutItem", json!({"TableName": table, "Item": item(pk, units)}))
}

fn get(service: &Service, table: &str, pk: &str) -> Result<Value, ApiError> {
    call(service, "GetItem", json!({"TableName": table, "Key": {"pk": {"S": pk}}, "ConsistentRead": true}))
}

/// Asserts DynamoDB's answer to a provisioned table out of capacity: type, message, status.
#[track_caller]
fn assert_table_throttled(result: Result<Value, ApiError>) {
    let error = result.expect_err("the request should be throttled");
    let body = error.to_json();
    assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "{body}");
    assert_eq!(body["message"], TABLE_THROUGHPUT_EXCEEDED);
    assert_eq!(error.http_status(), 400);
}

#[track_caller]
fn assert_on_demand_throttled(result: Result<Value, ApiError>) {
    let error = result.expect_err("the request should be throttled");
    let body = error.to_json();
    assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#ThrottlingException", "{body}");
    assert_eq!(body["message"], ON_DEMAND_THROTTLED);
    assert_eq!(error.http_status(), 400);
}

/// Spends a 1 WCU table's burst credit down to `left` units with 10-unit puts of new items.
fn spend_writes_down_to(service: &Service, table: &str, left: usize) {
    let burst = BURST_CREDIT_S as usize;
    assert_eq!((burst - left) % 10, 0);
    for n in 0..(burst - left) / 10 {
        put(service, table, &format!("spend-{n}"), 10).expect("within the burst credit");
    }
}

#[tokio::test(start_paused = true)]
async fn a_provisioned_table_spends_its_burst_then_is_throttled_and_recovers() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    // 300 seconds of 1 WCU: thirty 10-unit writes, and not one more.
    for n in 0..30 {
        put(&service, "tab", &format!("k{n}"), 10).unwrap_or_else(|e| panic!("write {n} within the burst: {e}"));
    }
    assert_table_throttled(put(&service, "tab", "k30", 10));
    // Refill is one unit a second: nine seconds are not enough for ten units, ten are.
    advance(Duration::from_secs(9)).await;
    assert_table_throttled(put(&service, "tab", "k30", 10));
    advance(Duration::from_secs(1)).await;
    put(&service, "tab", "k30", 10).expect("ten seconds refill ten units");
    assert_table_throttled(put(&service, "tab", "k31", 10));
    // Reads have their own capacity: the writes did not touch it.
    get(&service, "tab", "k0").expect("read capacity is separate");
    // Unused capacity collects for at most 300 seconds, however long the table idles.
    advance(Duration::from_secs(3_600)).await;
    for n in 0..30 {
        put(&service, "tab", &format!("again{n}"), 10).expect("a full burst after an idle hour");
    }
    assert_table_throttled(put(&service, "tab", "again30", 10));
}

#[tokio::test(start_paused = true)]
async fn a_read_is_admitted_on_a_little_capacity_and_charged_its_real_size_afterwards() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1_000, None);
    put(&service, "tab", "big", 400).expect("a 400 KB item");
    // A strongly consistent read of 400 KB costs 100 RCU; the 300-unit burst pays three.
    for _ in 0..3 {
        get(&service, "tab", "big").expect("within the burst");
    }
    assert_table_throttled(get(&service, "tab", "big"));
    // 99 seconds give 99 units: enough to start the read (it needs one), which then costs 100,
    // leaving a debt of one unit.
    advance(Duration::from_secs(99)).await;
    let answer = ok(
        &service,
        "GetItem",
        json!({"TableName": "tab", "Key": {"pk": {"S": "big"}}, "ConsistentRead": true, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(answer["ConsumedCapacity"]["CapacityUnits"], 100.0);
    advance(Duration::from_secs(1)).await;
    assert_table_throttled(get(&service, "tab", "big"));
    advance(Duration::from_secs(1)).await;
    get(&service, "tab", "big").expect("the debt is repaid");
}

#[tokio::test(start_paused = true)]
async fn update_table_changes_the_rate_at_once_and_caps_the_credit_kept() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 0);
    assert_table_throttled(put(&service, "tab", "x", 10));
    ok(
        &service,
        "UpdateTable",
        json!({"TableName": "tab", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 100}}),
    );
    // At 100 WCU, a tenth of a second refills ten units; at the old 1 WCU it would take ten
    // seconds.
    advance(Duration::from_millis(100)).await;
    put(&service, "tab", "x", 10).expect("the new rate applies at once");
    assert_table_throttled(put(&service, "tab", "y", 10));
    advance(Duration::from_millis(100)).await;
    put(&service, "tab", "y", 10).expect("and keeps applying");

    // Lowering the rate lowers the burst credit with it: 300 s at 100 WCU was 30,000 units,
    // 300 s at 1 WCU is 300.
    advance(Duration::from_secs(300)).await;
    ok(
        &service,
        "UpdateTable",
        json!({"TableName": "tab", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
    );
    for n in 0..30 {
        put(&service, "tab", &format!("low{n}"), 10).expect("within the lowered burst");
    }
    assert_table_throttled(put(&service, "tab", "low30", 10));
}

#[tokio::test(start_paused = true)]
async fn on_demand_tables_take_modest_rates_but_throttle_a_hot_partition() {
    let service = service();
    create_on_demand(&service, "ondemand");
    // Two hundred writes and reads a second over many keys, for ten seconds: far within
    // every limit.
    for step in 0..2_000 {
        let key = format!("user{}", step % 500);
        put(&service, "ondemand", &key, 1).unwrap_or_else(|e| panic!("modest write {step}: {e}"));
        get(&service, "ondemand", &key).unwrap_or_else(|e| panic!("modest read {step}: {e}"));
        advance(Duration::from_millis(5)).await;
    }
    // One hot key takes its partition's 1,000 write units a second, and no more.
    for n in 0..100 {
        put(&service, "ondemand", "hot", 10)
            .unwrap_or_else(|e| panic!("hot write {n} within the partition limit: {e}"));
    }
    assert_on_demand_throttled(put(&service, "ondemand", "hot", 10));
    // Other partitions are not affected; the hot one recovers within a second.
    let hot = slot_of(hash_of(&AttributeValue::S("hot".into())), 4);
    let cold = (0..)
        .map(|n| format!("cold{n}"))
        .find(|k| slot_of(hash_of(&AttributeValue::S(k.clone())), 4) != hot)
        .expect("some key falls in another partition");
    put(&service, "ondemand", &cold, 10).expect("another partition has its own limit");
    advance(Duration::from_millis(10)).await;
    put(&service, "ondemand", "hot", 10).expect("ten milliseconds refill ten units of the partition");
    assert_on_demand_throttled(put(&service, "ondemand", "hot", 10));
}

#[tokio::test(start_paused = true)]
async fn a_batch_returns_throttled_items_unprocessed_and_fails_only_when_none_ran() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 50);
    let writes: Vec<Value> = (0..10).map(|n| json!({"PutRequest": {"Item": item(&format!("b{n}"), 10)}})).collect();
    let answer = ok(&service, "BatchWriteItem", json!({"RequestItems": {"tab": writes}}));
    // Fifty units pay for five of the ten writes; the other five come back to retry.
    let unprocessed = answer["UnprocessedItems"]["tab"].as_array().expect("unprocessed writes of tab").clone();
    assert_eq!(unprocessed.len(), 5, "{answer}");
    assert_eq!(unprocessed, writes[5..].to_vec());
    for n in 0..10 {
        let found = get(&service, "tab", &format!("b{n}")).expect("reads have their own capacity");
        assert_eq!(found.get("Item").is_some(), n < 5, "item b{n}");
    }
    // Retrying at once: nothing can run, so the batch fails as DynamoDB's does.
    assert_table_throttled(call(&service, "BatchWriteItem", json!({"RequestItems": {"tab": unprocessed.clone()}})));
    advance(Duration::from_secs(50)).await;
    let answer = ok(&service, "BatchWriteItem", json!({"RequestItems": {"tab": unprocessed}}));
    assert_eq!(answer["UnprocessedItems"], json!({}), "{answer}");

    // Reads: 1 RCU, 300 units of burst; each of these keys costs 3 units strongly read.
    for _ in 0..99 {
        get(&service, "tab", "b0").expect("within the read burst");
    }
    let keys: Vec<Value> = (0..4).map(|n| json!({"pk": {"S": format!("b{n}")}})).collect();
    let answer = ok(
        &service,
        "BatchGetItem",
        json!({"RequestItems": {"tab": {"Keys": keys, "ConsistentRead": true, "ProjectionExpression": "pk"}}}),
    );
    // Each key is admitted on the least a read costs (one unit): three units left admit three
    // keys, and the fourth waits. Their real cost (nine units) leaves a debt.
    assert_eq!(answer["Responses"]["tab"].as_array().map(Vec::len), Some(3), "{answer}");
    let left = &answer["UnprocessedKeys"]["tab"];
    assert_eq!(left["Keys"], json!(keys[3..].to_vec()));
    assert_eq!(left["ConsistentRead"], true, "unprocessed keys keep their read settings");
    assert_eq!(left["ProjectionExpression"], "pk");
    advance(Duration::from_secs(6)).await;
    assert_table_throttled(get(&service, "tab", "b3"));
    advance(Duration::from_secs(1)).await;
    get(&service, "tab", "b3").expect("the debt of the batch is repaid");
}

#[tokio::test(start_paused = true)]
async fn a_global_index_out_of_write_capacity_throttles_writes_to_its_table() {
    let service = service();
    create_provisioned(&service, "tab", 100, 1_000, Some((100, 1)));
    let indexed = |pk: &str| {
        let mut it = item(pk, 10);
        it["g"] = json!({"S": "group"});
        json!({"TableName": "tab", "Item": it})
    };
    // Each write copies ten units into the index, whose 1 WCU keeps 300 units of credit.
    for n in 0..30 {
        ok(&service, "PutItem", indexed(&format!("k{n}")));
    }
    let error = call(&service, "PutItem", indexed("k30")).expect_err("the index is out of capacity");
    assert_eq!(error.type_name(), "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException");
    assert_eq!(error.to_string(), INDEX_THROUGHPUT_EXCEEDED);
    // Raising the index's capacity applies at once.
    ok(
        &service,
        "UpdateTable",
        json!({"TableName": "tab", "GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "by_g",
            "ProvisionedThroughput": {"ReadCapacityUnits": 100, "WriteCapacityUnits": 1000}}}]}),
    );
    advance(Duration::from_millis(10)).await;
    ok(&service, "PutItem", indexed("k30"));
    // Reads of the index draw on the index's read capacity: 100 RCU, 30,000 units of burst.
    let query = json!({"TableName": "tab", "IndexName": "by_g", "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "group"}}, "ReturnConsumedCapacity": "INDEXES"});
    let answer = ok(&service, "Query", query);
    assert_eq!(answer["Count"], 31);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_is_charged_double_and_throttled_as_a_whole() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 30);
    // Two 10-unit puts cost 40 transactional units: 30 are not enough for both, and neither
    // is written.
    let transaction = json!({"TransactItems": [
        {"Put": {"TableName": "tab", "Item": item("a", 10)}},
        {"Put": {"TableName": "tab", "Item": item("b", 10)}},
    ]});
    match call(&service, "TransactWriteItems", transaction.clone()) {
        Err(ApiError::TransactionCanceled { reasons, .. }) => {
            assert_eq!(reasons[0]["Code"], "None");
            assert_eq!(reasons[1]["Code"], "ProvisionedThroughputExceeded");
            assert_eq!(reasons[1]["Message"], TABLE_THROUGHPUT_EXCEEDED);
        }
        other => panic!("the transaction should be cancelled for capacity, got {other:?}"),
    }
    assert!(get(&service, "tab", "a").unwrap().get("Item").is_none());
    // The refusal gave back what the first action took: 30 units still pay for three puts.
    for n in 0..3 {
        put(&service, "tab", &format!("after{n}"), 10).expect("the refused transaction took nothing");
    }
    assert_table_throttled(put(&service, "tab", "after3", 10));
    advance(Duration::from_secs(40)).await;
    let answer = ok(&service, "TransactWriteItems", {
        let mut t = transaction;
        t["ReturnConsumedCapacity"] = json!("TOTAL");
        t
    });
    assert_eq!(answer["ConsumedCapacity"][0]["CapacityUnits"], 40.0);
    assert_table_throttled(put(&service, "tab", "c", 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_condition_is_charged_and_an_invalid_request_is_not() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 0);
    advance(Duration::from_secs(3)).await;
    for _ in 0..10 {
        let invalid = call(
            &service,
            "UpdateItem",
            json!({"TableName": "tab", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET"}),
        );
        assert!(matches!(invalid, Err(ApiError::Validation(_))), "{invalid:?}");
    }
    let conditional =
        json!({"TableName": "tab", "Key": {"pk": {"S": "absent"}}, "ConditionExpression": "attribute_exists(pk)"});
    for _ in 0..3 {
        let failed = call(&service, "DeleteItem", conditional.clone());
        assert!(matches!(failed, Err(ApiError::ConditionalCheckFailed { .. })), "{failed:?}");
    }
    assert_table_throttled(call(&service, "DeleteItem", conditional));
}

#[tokio::test(start_paused = true)]
async fn a_service_without_enforcement_never_throttles() {
    let service = Service::new(database());
    create_provisioned(&service, "tab", 1, 1, None);
    for n in 0..40 {
        put(&service, "tab", &format!("k{n}"), 10).expect("no enforcement");
    }
}

#[tokio::test(start_paused = true)]
async fn buckets_go_with_their_table() {
    let service = service();
    let throttle = service.throttle().expect("enforcing").clone();
    create_provisioned(&service, "tab", 1, 1, None);
    put(&service, "tab", "k", 1).unwrap();
    assert!(throttle.bucket_count() > 0);
    ok(&service, "DeleteTable", json!({"TableName": "tab"}));
    assert_eq!(throttle.bucket_count(), 0);
    // A new table of the same name starts with its own full burst.
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 0);
}

/// Strongly consistent reads of partition `slot` admitted at `per_s` a second for one second,
/// as a partition leader in a cluster admits them: how many were admitted.
async fn reads_admitted_in_a_second(throttle: &Throttle, db: &Database, slot: Slot, per_s: u32) -> u32 {
    let body = json!({"TableName": "shared", "Key": {"pk": {"S": "hot"}}, "ConsistentRead": true}).to_string();
    let placement = move |_: &TableMeta, _: Option<u64>| Placement::Share { slot };
    let mut usage = Usage::default();
    usage.record("shared", Access::Read, &Units { table: 1.0, ..Units::default() });
    let mut admitted = 0;
    for _ in 0..per_s {
        match throttle.admit(db, "GetItem", body.as_bytes(), &placement) {
            Admission::Admitted(ticket) => {
                throttle.settle(ticket, Ok(json!({})), &usage).expect("admitted read settles");
                admitted += 1;
            }
            Admission::Refused(error) => assert!(matches!(error, ApiError::Throttling(_)), "{error:?}"),
            Admission::Free => panic!("a read of a table is subject to capacity"),
        }
        advance(Duration::from_secs(1) / per_s).await;
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_hot_partition_takes_the_table_capacity_its_siblings_leave_unused() {
    let db = database();
    create_on_demand(&Service::new(db.clone()), "shared");
    // A table quota of 400 read units a second over four partitions: an even share is 100.
    let throttle = Throttle::with_quota(Quota { table_read_units_per_s: 400.0, table_write_units_per_s: 400.0 });
    let hot = Slot { index: 0, count: 4 };
    let interval = Duration::from_secs(1);
    let even = reads_admitted_in_a_second(&throttle, &db, hot, 300).await;
    assert!((150..=210).contains(&even), "a second's share plus one second of burst: {even}");
    // This node reports its demand; nobody else asks for anything: the hot partition may use
    // nearly all of the table's capacity.
    let report = throttle.end_demand_interval(1, &db, interval, interval * 3);
    assert_eq!(report.len(), 1);
    assert!(report[0].units_per_s >= 290.0, "refused reads count as demand: {report:?}");
    assert!(throttle.share_of(7_000, Access::Read, hot) == 0.25, "an unknown table keeps an even share");
    let adapted = reads_admitted_in_a_second(&throttle, &db, hot, 300).await;
    assert!(adapted >= 295, "the hot partition borrows its siblings' unused share: {adapted}");
    // Another node reports the three other partitions as just as hot: the table's capacity
    // is shared fairly again, a hundred each.
    let sibling = |index| Demand {
        table_id: report[0].table_id,
        access: Access::Read,
        slot: Slot { index, count: 4 },
        units_per_s: 300.0,
    };
    throttle.record_demand(2, vec![sibling(1), sibling(2), sibling(3)]);
    throttle.end_demand_interval(1, &db, interval, interval * 3);
    let fraction = throttle.share_of(report[0].table_id, Access::Read, hot);
    assert!((fraction - 0.25).abs() < 1e-9, "four equally hot partitions share evenly: {fraction}");
    let shared = reads_admitted_in_a_second(&throttle, &db, hot, 300).await;
    assert!((95..=210).contains(&shared), "back to an even share, with at most a second's credit: {shared}");
    // The other node falls silent; its old report expires after three intervals.
    advance(interval * 3).await;
    throttle.end_demand_interval(1, &db, interval, interval * 3);
    assert!(throttle.share_of(report[0].table_id, Access::Read, hot) > 0.9);
}

#[tokio::test(start_paused = true)]
async fn a_request_too_large_to_ever_run_gets_its_validation_error_not_a_throttling_one() {
    let service = service();
    create_provisioned(&service, "tab", 1, 1, None);
    spend_writes_down_to(&service, "tab", 0);
    assert_table_throttled(put(&service, "tab", "fits", 10));
    // Out of capacity, an item over 400 KB is still refused for its size: retrying it after a
    // throttling error would never succeed.
    let error = put(&service, "tab", "huge", 500).expect_err("an item over 400 KB");
    assert!(matches!(error, ApiError::Validation(_)), "{error:?}");
    assert!(error.to_string().contains("Item size has exceeded the maximum allowed size"), "{error}");
    let batch = json!({"RequestItems": {"tab": [{"PutRequest": {"Item": item("huge", 500)}}]}});
    let error = call(&service, "BatchWriteItem", batch).expect_err("an item over 400 KB");
    assert!(matches!(error, ApiError::Validation(_)), "{error:?}");

    // A transaction over 4 MB, on a fresh on-demand table, is refused for its size too.
    create_on_demand(&service, "demand");
    let actions: Vec<Value> =
        (0..11).map(|n| json!({"Put": {"TableName": "demand", "Item": item(&format!("t{n}"), 390)}})).collect();
    let error = call(&service, "TransactWriteItems", json!({"TransactItems": actions})).expect_err("over 4 MB");
    assert_eq!(error.to_string(), "Transaction request size has exceeded the maximum allowed size of 4 MB");
}
