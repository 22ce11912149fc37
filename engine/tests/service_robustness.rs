//! Hostile input: random JSON documents shaped like DynamoDB requests must always get an answer
//! or a DynamoDB client error, never a panic and never an internal error — capacity
//! enforcement included.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};
use squall_engine::api::{ApiError, Service, OPERATIONS};
use squall_engine::db::Database;
use squall_engine::storage::MemStore;

/// A service that enforces capacity, so hostile requests also go through its planning.
fn service() -> Service {
    let database = Arc::new(Database::open(Arc::new(MemStore::new())).unwrap());
    let service = Service::with_throttle(database, Arc::new(squall_engine::throttle::Throttle::new()));
    let create = json!({"TableName": "ttt",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "ALL"}}],
        "BillingMode": "PAY_PER_REQUEST"});
    service.call("CreateTable", create.to_string().as_bytes()).unwrap();
    service
}

/// Values biased towards what the API looks at: attribute values, names, expressions.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("ttt".to_string()),
            Just("pk".to_string()),
            Just("gsi".to_string()),
            Just("1E+400".to_string()),
            Just("pk = :v".to_string()),
            Just("SET #a = :v".to_string()),
            Just(":v".to_string()),
            Just("#a".to_string()),
            "[ -~]{0,12}".prop_map(|s| s),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("S".to_string()),
            Just("N".to_string()),
            Just("M".to_string()),
            Just("L".to_string()),
            Just("SS".to_string()),
            Just("NS".to_string()),
            Just("pk".to_string()),
            Just("sk".to_string()),
            Just("g".to_string()),
            Just(":v".to_string()),
            Just("#a".to_string()),
            Just("TableName".to_string()),
            Just("Item".to_string()),
            Just("Key".to_string()),
            Just("IndexName".to_string()),
            Just("ExclusiveStartKey".to_string()),
            Just("ExpressionAttributeValues".to_string()),
            Just("ExpressionAttributeNames".to_string()),
            Just("KeyConditionExpression".to_string()),
            Just("UpdateExpression".to_string()),
            Just("ConditionExpression".to_string()),
            Just("RequestItems".to_string()),
            Just("Limit".to_string()),
            Just("Segment".to_string()),
            Just("TotalSegments".to_string()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_fail_internally(operation in 0..OPERATIONS.len(), body in json_value()) {
        let service = service();
        let operation = OPERATIONS[operation];
        let result = service.call(operation, body.to_string().as_bytes());
        if let Err(ApiError::Internal(message)) = result {
            prop_assert!(false, "internal error for {} {}: {}", operation, body, message);
        }
    }

    #[test]
    fn random_bytes_never_fail_internally(operation in 0..OPERATIONS.len(), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let service = service();
        let result = service.call(OPERATIONS[operation], &body);
        prop_assert!(!matches!(result, Err(ApiError::Internal(_))));
    }
}
