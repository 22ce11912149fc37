//! Whole requests: any operation name and body must produce a response or a DynamoDB error,
//! never a panic, and never an InternalServerError.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use squall_engine::api::{ApiError, Service, OPERATIONS};
use squall_engine::db::Database;
use squall_engine::storage::MemStore;

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open memory database"));
        let service = Service::new(db);
        let create = br#"{"TableName":"ttt","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
            "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"},{"AttributeName":"g","AttributeType":"S"}],
            "GlobalSecondaryIndexes":[{"IndexName":"gsi","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}],
            "BillingMode":"PAY_PER_REQUEST"}"#;
        service.call("CreateTable", create).expect("create fuzz table");
        service
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let operation = OPERATIONS[selector as usize % OPERATIONS.len()];
    // Deleting the shared table would make every later input uninteresting.
    if operation == "DeleteTable" {
        return;
    }
    if let Err(ApiError::Internal(message)) = service().call(operation, body) {
        panic!("internal error for {operation}: {message}");
    }
});
