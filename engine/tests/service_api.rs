//! In-process tests of the API over an in-memory store: the correctness of key ranges, index
//! maintenance and paging, where a wrong byte range or a stale index entry would show.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use squall_engine::api::{ApiError, Service};
use squall_engine::db::Database;
use squall_engine::storage::MemStore;

fn service() -> Service {
    Service::new(Arc::new(Database::open(Arc::new(MemStore::new())).expect("open database")))
}

fn call(service: &Service, operation: &str, body: Value) -> Value {
    service
        .call(operation, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{operation} failed: {e:?}\nrequest: {body}"))
}

fn call_err(service: &Service, operation: &str, body: Value) -> ApiError {
    match service.call(operation, body.to_string().as_bytes()) {
        Ok(v) => panic!("{operation} should fail, got {v}"),
        Err(e) => e,
    }
}

fn create_numbers_table(service: &Service) {
    call(
        service,
        "CreateTable",
        json!({
            "TableName": "numbers",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "n", "AttributeType": "N"},
                {"AttributeName": "g", "AttributeType": "S"},
                {"AttributeName": "l", "AttributeType": "S"}
            ],
            "LocalSecondaryIndexes": [{"IndexName": "by_l", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            "GlobalSecondaryIndexes": [{"IndexName": "by_g", "KeySchema": [
                {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

const NUMBERS: &[&str] = &[
    "-1E+100", "-1000", "-10.5", "-10", "-1", "-0.001", "0", "1E-130", "0.5", "1", "2", "10", "10.25", "99", "100",
    "1E+125",
];

fn numbers_of(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["n"]["N"].as_str().unwrap().to_string()).collect()
}

fn normalised(text: &str) -> String {
    text.parse::<squall_engine::model::Number>().unwrap().to_string()
}

#[test]
fn query_sort_key_ranges_follow_numeric_order() {
    let service = service();
    create_numbers_table(&service);
    for n in NUMBERS {
        call(&service, "PutItem", json!({"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": n}}}));
        // A neighbouring partition key must never leak into the results.
        call(&service, "PutItem", json!({"TableName": "numbers", "Item": {"pk": {"S": "p\u{0}"}, "n": {"N": n}}}));
    }
    let all: Vec<String> = NUMBERS.iter().map(|n| normalised(n)).collect();
    let query = |condition: &str, values: Value, forward: bool| {
        let mut values = values;
        values[":p"] = json!({"S": "p"});
        let response = call(
            &service,
            "Query",
            json!({"TableName": "numbers", "KeyConditionExpression": condition,
                   "ExpressionAttributeValues": values, "ScanIndexForward": forward}),
        );
        numbers_of(&response["Items"])
    };
    assert_eq!(query("pk = :p", json!({}), true), all);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(query("pk = :p", json!({}), false), reversed);
    assert_eq!(query("pk = :p AND n < :v", json!({":v": {"N": "0"}}), true), all[..6].to_vec());
    assert_eq!(query("pk = :p AND n <= :v", json!({":v": {"N": "0"}}), true), all[..7].to_vec());
    assert_eq!(query("pk = :p AND n > :v", json!({":v": {"N": "10"}}), true), all[12..].to_vec());
    assert_eq!(query("pk = :p AND n >= :v", json!({":v": {"N": "10"}}), true), all[11..].to_vec());
    assert_eq!(query("pk = :p AND n = :v", json!({":v": {"N": "1.0"}}), true), vec!["1".to_string()]);
    assert_eq!(
        query("pk = :p AND n BETWEEN :a AND :b", json!({":a": {"N": "-10"}, ":b": {"N": "0.5"}}), true),
        all[3..9].to_vec()
    );
    assert!(query("pk = :p AND n = :v", json!({":v": {"N": "3"}}), true).is_empty());
}

#[test]
fn begins_with_on_strings_selects_exactly_the_prefix() {
    let service = service();
    call(
        &service,
        "CreateTable",
        json!({"TableName": "strings",
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "s", "AttributeType": "S"}],
               "BillingMode": "PAY_PER_REQUEST"}),
    );
    let sorts = ["a", "ab", "ab\u{0}", "ab\u{0}c", "abc", "abd", "ac", "b", "\u{0}", "é"];
    for s in sorts {
        call(&service, "PutItem", json!({"TableName": "strings", "Item": {"pk": {"S": "p"}, "s": {"S": s}}}));
    }
    for prefix in ["ab", "ab\u{0}", "a", "", "é", "z"] {
        let response = call(
            &service,
            "Query",
            json!({"TableName": "strings", "KeyConditionExpression": "pk = :p AND begins_with(s, :x)",
                   "ExpressionAttributeValues": {":p": {"S": "p"}, ":x": {"S": prefix}}}),
        );
        let got: Vec<&str> =
            response["Items"].as_array().unwrap().iter().map(|i| i["s"]["S"].as_str().unwrap()).collect();
        let mut expected: Vec<&str> = sorts.iter().copied().filter(|s| s.starts_with(prefix)).collect();
        expected.sort();
        assert_eq!(got, expected, "prefix {prefix:?}");
    }
}

#[test]
fn indexes_follow_updates_deletes_and_key_changes() {
    let service = service();
    create_numbers_table(&service);
    let put = |n: i64, g: &str| {
        call(
            &service,
            "PutItem",
            json!({"TableName": "numbers", "Item": {
            "pk": {"S": "p"}, "n": {"N": n.to_string()}, "g": {"S": g}, "l": {"S": format!("l{n}")}, "v": {"S": "x"}, "w": {"S": "hidden"}}}),
        );
    };
    for n in 0..10 {
        put(n, if n % 2 == 0 { "even" } else { "odd" });
    }
    let gsi = |g: &str| {
        let response = call(
            &service,
            "Query",
            json!({"TableName": "numbers", "IndexName": "by_g",
            "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": g}}}),
        );
        response["Items"].as_array().unwrap().clone()
    };
    assert_eq!(gsi("even").len(), 5);
    // INCLUDE projection: keys and v, not w.
    let first = &gsi("even")[0];
    assert!(first.get("v").is_some() && first.get("w").is_none() && first.get("l").is_none(), "{first}");
    // Moving an item to another index key removes the old entry.
    call(
        &service,
        "UpdateItem",
        json!({"TableName": "numbers", "Key": {"pk": {"S": "p"}, "n": {"N": "0"}},
        "UpdateExpression": "SET g = :g", "ExpressionAttributeValues": {":g": {"S": "odd"}}}),
    );
    assert_eq!(gsi("even").len(), 4);
    assert_eq!(gsi("odd").len(), 6);
    // Removing the index key attribute takes the item out of the index (sparse index).
    call(
        &service,
        "UpdateItem",
        json!({"TableName": "numbers", "Key": {"pk": {"S": "p"}, "n": {"N": "1"}},
        "UpdateExpression": "REMOVE g"}),
    );
    assert_eq!(gsi("odd").len(), 5);
    call(&service, "DeleteItem", json!({"TableName": "numbers", "Key": {"pk": {"S": "p"}, "n": {"N": "2"}}}));
    assert_eq!(gsi("even").len(), 3);
    // The local index, KEYS_ONLY, fetches the rest from the table when asked for all attributes.
    let response = call(
        &service,
        "Query",
        json!({"TableName": "numbers", "IndexName": "by_l",
        "KeyConditionExpression": "pk = :p AND l >= :l", "ExpressionAttributeValues": {":p": {"S": "p"}, ":l": {"S": "l5"}},
        "Select": "ALL_ATTRIBUTES"}),
    );
    let items = response["Items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["w"]["S"], "hidden");
    let table = call(&service, "DescribeTable", json!({"TableName": "numbers"}));
    assert_eq!(table["Table"]["ItemCount"], 9);
    let gsi_count = table["Table"]["GlobalSecondaryIndexes"][0]["ItemCount"].as_i64().unwrap();
    assert_eq!(gsi_count, 8);
}

#[test]
fn paging_visits_every_item_once_in_both_directions_and_on_indexes() {
    let service = service();
    create_numbers_table(&service);
    for n in 0..57 {
        call(
            &service,
            "PutItem",
            json!({"TableName": "numbers", "Item": {
            "pk": {"S": "p"}, "n": {"N": n.to_string()}, "g": {"S": "g"}, "l": {"S": format!("{:03}", 100 - n)}}}),
        );
    }
    for (index, forward) in [(None, true), (None, false), (Some("by_g"), true), (Some("by_l"), false)] {
        let mut seen = Vec::new();
        let mut start: Option<Value> = None;
        let mut pages = 0;
        loop {
            let mut request = json!({"TableName": "numbers", "Limit": 10, "ScanIndexForward": forward});
            match index {
                Some("by_g") => {
                    request["IndexName"] = json!("by_g");
                    request["KeyConditionExpression"] = json!("g = :v");
                    request["ExpressionAttributeValues"] = json!({":v": {"S": "g"}});
                }
                Some(name) => {
                    request["IndexName"] = json!(name);
                    request["KeyConditionExpression"] = json!("pk = :v");
                    request["ExpressionAttributeValues"] = json!({":v": {"S": "p"}});
                }
                None => {
                    request["KeyConditionExpression"] = json!("pk = :v");
                    request["ExpressionAttributeValues"] = json!({":v": {"S": "p"}});
                }
            }
            if let Some(start) = &start {
                request["ExclusiveStartKey"] = start.clone();
            }
            let response = call(&service, "Query", request);
            seen.extend(numbers_of(&response["Items"]));
            pages += 1;
            assert!(pages < 20, "paging does not end");
            match response.get("LastEvaluatedKey") {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 57, "index {index:?} forward {forward}");
        assert_eq!(unique.len(), 57);
    }
}

#[test]
fn parallel_scan_segments_partition_the_table() {
    let service = service();
    create_numbers_table(&service);
    for n in 0..200 {
        call(
            &service,
            "PutItem",
            json!({"TableName": "numbers", "Item": {"pk": {"S": format!("p{n}")}, "n": {"N": "1"}}}),
        );
    }
    for total in [1, 3, 7] {
        let mut seen = BTreeSet::new();
        for segment in 0..total {
            let mut start: Option<Value> = None;
            loop {
                let mut request =
                    json!({"TableName": "numbers", "Segment": segment, "TotalSegments": total, "Limit": 13});
                if let Some(start) = &start {
                    request["ExclusiveStartKey"] = start.clone();
                }
                let response = call(&service, "Scan", request);
                for item in response["Items"].as_array().unwrap() {
                    assert!(seen.insert(item["pk"]["S"].as_str().unwrap().to_string()), "item seen twice");
                }
                match response.get("LastEvaluatedKey") {
                    Some(key) => start = Some(key.clone()),
                    None => break,
                }
            }
        }
        assert_eq!(seen.len(), 200, "total segments {total}");
    }
}

#[test]
fn conditional_writes_and_return_values() {
    let service = service();
    create_numbers_table(&service);
    let key = json!({"pk": {"S": "p"}, "n": {"N": "1"}});
    call(
        &service,
        "PutItem",
        json!({"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": "1"}, "c": {"N": "5"}},
        "ConditionExpression": "attribute_not_exists(pk)"}),
    );
    let error = call_err(
        &service,
        "PutItem",
        json!({"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": "1"}},
        "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
    );
    match &error {
        ApiError::ConditionalCheckFailed { item: Some(item), .. } => assert_eq!(item.len(), 3),
        other => panic!("expected a failed condition with the item, got {other:?}"),
    }
    assert!(error.to_json()["Item"]["c"]["N"] == "5");
    let response = call(
        &service,
        "UpdateItem",
        json!({"TableName": "numbers", "Key": key,
        "UpdateExpression": "SET c = c - :one", "ConditionExpression": "c > :zero",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}}, "ReturnValues": "UPDATED_NEW"}),
    );
    assert_eq!(response["Attributes"], json!({"c": {"N": "4"}}));
    let response = call(
        &service,
        "UpdateItem",
        json!({"TableName": "numbers", "Key": key,
        "UpdateExpression": "ADD c :one", "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "UPDATED_OLD"}),
    );
    assert_eq!(response["Attributes"], json!({"c": {"N": "4"}}));
    let error = call_err(
        &service,
        "UpdateItem",
        json!({"TableName": "numbers", "Key": key,
        "UpdateExpression": "SET n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
    );
    assert!(matches!(error, ApiError::Validation(ref m) if m.contains("Cannot update attribute n")), "{error:?}");
}

#[test]
fn deleted_table_data_does_not_reappear() {
    let service = service();
    create_numbers_table(&service);
    call(
        &service,
        "PutItem",
        json!({"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": "1"}, "g": {"S": "g"}}}),
    );
    call(&service, "DeleteTable", json!({"TableName": "numbers"}));
    assert!(matches!(
        call_err(&service, "DescribeTable", json!({"TableName": "numbers"})),
        ApiError::ResourceNotFound(_)
    ));
    create_numbers_table(&service);
    let response = call(&service, "Scan", json!({"TableName": "numbers"}));
    assert_eq!(response["Count"], 0);
    let response = call(&service, "Scan", json!({"TableName": "numbers", "IndexName": "by_g"}));
    assert_eq!(response["Count"], 0);
}

#[test]
fn catalog_and_counters_survive_reopening_the_store() {
    let store = Arc::new(MemStore::new());
    {
        let service = Service::new(Arc::new(Database::open(store.clone()).unwrap()));
        create_numbers_table(&service);
        for n in 0..5 {
            call(
                &service,
                "PutItem",
                json!({"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": n.to_string()}}}),
            );
        }
    }
    let service = Service::new(Arc::new(Database::open(store).unwrap()));
    let table = call(&service, "DescribeTable", json!({"TableName": "numbers"}));
    assert_eq!(table["Table"]["ItemCount"], 5);
    assert_eq!(table["Table"]["GlobalSecondaryIndexes"][0]["IndexName"], "by_g");
}

#[test]
fn query_filter_on_a_key_attribute_is_refused() {
    let service = service();
    create_numbers_table(&service);
    let error = call_err(
        &service,
        "Query",
        json!({"TableName": "numbers", "KeyConditionExpression": "pk = :p",
        "FilterExpression": "n > :v", "ExpressionAttributeValues": {":p": {"S": "p"}, ":v": {"N": "1"}}}),
    );
    assert!(matches!(&error, ApiError::Validation(m) if m.contains("Primary key attribute: n")), "{error:?}");
    // On an index, the index's keys are the primary key; the table's sort key may be filtered.
    call(
        &service,
        "Query",
        json!({"TableName": "numbers", "IndexName": "by_l", "KeyConditionExpression": "pk = :p",
        "FilterExpression": "n > :v", "ExpressionAttributeValues": {":p": {"S": "p"}, ":v": {"N": "1"}}}),
    );
}

#[test]
fn missing_tables_are_named_by_describe_and_delete() {
    let service = service();
    for operation in ["DescribeTable", "DeleteTable"] {
        match call_err(&service, operation, json!({"TableName": "nowhere"})) {
            ApiError::ResourceNotFound(m) => assert_eq!(m, "Requested resource not found: Table: nowhere not found"),
            other => panic!("{operation}: {other:?}"),
        }
    }
    match call_err(&service, "GetItem", json!({"TableName": "nowhere", "Key": {"pk": {"S": "a"}}})) {
        ApiError::ResourceNotFound(m) => assert_eq!(m, "Requested resource not found"),
        other => panic!("GetItem: {other:?}"),
    }
}

#[test]
fn concurrent_transfers_keep_the_total_balance() {
    let service = service();
    call(
        &service,
        "CreateTable",
        json!({"TableName": "bank", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}),
    );
    const ACCOUNTS: usize = 5;
    for a in 0..ACCOUNTS {
        call(
            &service,
            "PutItem",
            json!({"TableName": "bank", "Item": {"pk": {"S": format!("a{a}")}, "balance": {"N": "100"}}}),
        );
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let service = service.clone();
            std::thread::spawn(move || {
                let mut committed = 0;
                for i in 0..200 {
                    let from = (t + i) % ACCOUNTS;
                    let to = (t * 3 + i * 7 + 1) % ACCOUNTS;
                    if from == to {
                        continue;
                    }
                    let amount = 1 + (i % 40);
                    let request = json!({"TransactItems": [
                        {"Update": {"TableName": "bank", "Key": {"pk": {"S": format!("a{from}")}},
                            "UpdateExpression": "SET balance = balance - :x", "ConditionExpression": "balance >= :x",
                            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}}}},
                        {"Update": {"TableName": "bank", "Key": {"pk": {"S": format!("a{to}")}},
                            "UpdateExpression": "SET balance = balance + :x",
                            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}}}}]});
                    match service.call("TransactWriteItems", request.to_string().as_bytes()) {
                        Ok(_) => committed += 1,
                        Err(ApiError::TransactionCanceled { reasons, .. }) => {
                            assert_eq!(reasons[0]["Code"], "ConditionalCheckFailed");
                        }
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
                committed
            })
        })
        .collect();
    let committed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(committed > 100, "most transfers should commit, {committed} did");
    let mut total = 0i64;
    for a in 0..ACCOUNTS {
        let response = call(&service, "GetItem", json!({"TableName": "bank", "Key": {"pk": {"S": format!("a{a}")}}}));
        let balance: i64 = response["Item"]["balance"]["N"].as_str().unwrap().parse().unwrap();
        assert!(balance >= 0, "a balance went negative");
        total += balance;
    }
    assert_eq!(total, 100 * ACCOUNTS as i64, "transfers must never create or destroy money");
}

#[test]
fn transactions_keep_indexes_in_step() {
    let service = service();
    create_numbers_table(&service);
    call(
        &service,
        "TransactWriteItems",
        json!({"TransactItems": [
        {"Put": {"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": "1"}, "g": {"S": "x"}}}},
        {"Put": {"TableName": "numbers", "Item": {"pk": {"S": "p"}, "n": {"N": "2"}, "g": {"S": "x"}, "l": {"S": "l"}}}}]}),
    );
    let response = call(
        &service,
        "Query",
        json!({"TableName": "numbers", "IndexName": "by_g",
        "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}),
    );
    assert_eq!(response["Count"], 2);
    call(
        &service,
        "TransactWriteItems",
        json!({"TransactItems": [
        {"Delete": {"TableName": "numbers", "Key": {"pk": {"S": "p"}, "n": {"N": "1"}}}},
        {"Update": {"TableName": "numbers", "Key": {"pk": {"S": "p"}, "n": {"N": "2"}}, "UpdateExpression": "REMOVE g"}}]}),
    );
    let response = call(
        &service,
        "Query",
        json!({"TableName": "numbers", "IndexName": "by_g",
        "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}),
    );
    assert_eq!(response["Count"], 0);
    let table = call(&service, "DescribeTable", json!({"TableName": "numbers"}));
    assert_eq!(table["Table"]["ItemCount"], 1);
}
