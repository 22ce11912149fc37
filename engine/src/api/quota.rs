//! The throughput quotas at CreateTable and UpdateTable: DynamoDB refuses to provision more read
//! or write capacity for one table, or for one of its global secondary indexes, than the
//! account's per-table maximum (40,000 units by default, raised through Service Quotas), or more
//! than the account's maximum over all provisioned tables and global indexes together (80,000
//! units by default), with `LimitExceededException`.
//!
//! The check runs where a request enters (the single node's service, a cluster's router), never
//! where a committed catalog change is applied: nodes started with different quotas must still
//! apply the same changes.

use serde_json::Value;

use crate::api::common::Request;
use crate::api::ops::{create_table, update_table};
use crate::api::ApiError;
use crate::capacity::{Access, Quota};
use crate::catalog::{BillingMode, IndexKind, TableMeta, REGION};
use crate::db::Database;

/// Refuses a CreateTable or UpdateTable whose resulting provisioned capacity exceeds `quota`.
/// A request that is invalid otherwise passes: its operation reports what is wrong with it, as
/// DynamoDB validates a request before it checks limits. Other operations pass.
pub fn check_request(db: &Database, operation: &str, body: &[u8], quota: Quota) -> Result<(), ApiError> {
    // Every request passes through here: only the two catalog operations are parsed.
    if !matches!(operation, "CreateTable" | "UpdateTable") {
        return Ok(());
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return Ok(()) };
    let request = Request(map);
    let planned =
        if operation == "CreateTable" { create_table::table_meta(&request) } else { update_table::plan(db, &request) };
    let Ok(meta) = planned else { return Ok(()) };
    if operation == "CreateTable" && db.table(&meta.name).is_ok() {
        // CreateTable reports the name in use.
        return Ok(());
    }
    check_table(&meta, quota)?;
    check_account(db, &meta, quota)
}

/// The provisioned capacity of `access` a table holds: its own and its global indexes'; none
/// for an on-demand table.
fn provisioned_units(meta: &TableMeta, access: Access) -> u64 {
    if meta.billing_mode != BillingMode::Provisioned {
        return 0;
    }
    let of = |throughput: crate::catalog::Throughput| match access {
        Access::Read => throughput.read_units,
        Access::Write => throughput.write_units,
    };
    let indexes = meta.indexes.iter().filter(|i| i.kind == IndexKind::Global).filter_map(|i| i.throughput).map(of);
    of(meta.throughput) + indexes.sum::<u64>()
}

/// Refuses `meta` (a table as CreateTable or UpdateTable would leave it) when it raises the
/// provisioned capacity of all the account's tables past the account's quota, with DynamoDB's
/// message. A change that does not raise the table's capacity always passes, so a table over a
/// lowered quota can still be brought down.
fn check_account(db: &Database, meta: &TableMeta, quota: Quota) -> Result<(), ApiError> {
    for (access, field) in [(Access::Read, "ReadCapacityUnits"), (Access::Write, "WriteCapacityUnits")] {
        let requested = provisioned_units(meta, access);
        let (mut reserved, mut before) = (0, 0);
        for name in db.table_names() {
            let Ok(table) = db.table(&name) else { continue };
            let units = provisioned_units(&table.meta, access);
            reserved += units;
            if name == meta.name {
                before = units;
            }
        }
        let max = quota.account_units_max(access);
        if requested > before && reserved - before + requested > max {
            return Err(ApiError::LimitExceeded(format!(
                "This request would have caused the {field} limit to be exceeded for the account in {REGION}. Current {field} reserved by the account: {reserved}. Limit: {max}. Requested: {requested}"
            )));
        }
    }
    Ok(())
}

/// Refuses a table whose provisioned capacity, or one of whose global indexes', exceeds
/// `quota`, with DynamoDB's message.
pub fn check_table(meta: &TableMeta, quota: Quota) -> Result<(), ApiError> {
    if meta.billing_mode != BillingMode::Provisioned {
        return check_on_demand(meta, quota);
    }
    let limits =
        [("ReadCapacityUnits", quota.table_read_units_per_s), ("WriteCapacityUnits", quota.table_write_units_per_s)];
    let mut throughputs = vec![(None, meta.throughput)];
    for index in meta.indexes.iter().filter(|i| i.kind == IndexKind::Global) {
        if let Some(throughput) = index.throughput {
            throughputs.push((Some(index.name.as_str()), throughput));
        }
    }
    for (index, throughput) in throughputs {
        for ((field, max), requested) in limits.iter().zip([throughput.read_units, throughput.write_units]) {
            let max = max.floor() as u64;
            if requested <= max {
                continue;
            }
            return Err(ApiError::LimitExceeded(match index {
                None => format!(
                    "The requested {field}, {requested}, is above the per table maximum for the account in {REGION}. Per table maximum: {max}."
                ),
                Some(name) => format!(
                    "The requested {field} for index {name}, {requested}, is above the per index maximum for the account in {REGION}. Per index maximum: {max}."
                ),
            }));
        }
    }
    Ok(())
}

/// Refuses an on-demand table whose own maximum throughput (`OnDemandThroughput`), or one of
/// whose global indexes', exceeds `quota`, with DynamoDB's message.
fn check_on_demand(meta: &TableMeta, quota: Quota) -> Result<(), ApiError> {
    let mut owners = vec![("table".to_string(), meta.on_demand)];
    for index in meta.indexes.iter().filter(|i| i.kind == IndexKind::Global) {
        owners.push((format!("index : {}", index.name), index.on_demand));
    }
    for (whose, on_demand) in owners {
        let maxima = [
            (
                "MaxReadRequestUnits",
                on_demand.max_read_units,
                "TableMaxReadCapacityUnits",
                quota.table_read_units_per_s,
            ),
            (
                "MaxWriteRequestUnits",
                on_demand.max_write_units,
                "TableMaxWriteCapacityUnits",
                quota.table_write_units_per_s,
            ),
        ];
        for (field, requested, quota_name, max) in maxima {
            if requested.is_some_and(|units| units as f64 > max) {
                return Err(ApiError::LimitExceeded(format!(
                    "Subscriber limit exceeded: Requested {field} for OnDemandThroughput for {whose} exceeds {quota_name} of the account in region {REGION}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::storage::MemStore;

    fn quota(units: f64) -> Quota {
        Quota { table_read_units_per_s: units, table_write_units_per_s: units }
    }

    fn create(read: u64, write: u64, index: Option<(u64, u64)>) -> Vec<u8> {
        let mut request = json!({
            "TableName": "quota",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write},
        });
        if let Some((r, w)) = index {
            request["GlobalSecondaryIndexes"] = json!([{
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ProvisionedThroughput": {"ReadCapacityUnits": r, "WriteCapacityUnits": w},
            }]);
        } else {
            request["AttributeDefinitions"] = json!([{"AttributeName": "pk", "AttributeType": "S"}]);
        }
        serde_json::to_vec(&request).unwrap()
    }

    #[test]
    fn create_table_within_the_quota_passes_and_beyond_it_is_refused() {
        let db = Database::open(Arc::new(MemStore::new())).unwrap();
        assert!(check_request(&db, "CreateTable", &create(40_000, 40_000, None), quota(40_000.0)).is_ok());
        let error = check_request(&db, "CreateTable", &create(40_001, 5, None), quota(40_000.0)).unwrap_err();
        assert_eq!(error.type_name(), "com.amazonaws.dynamodb.v20120810#LimitExceededException");
        assert_eq!(error.http_status(), 400);
        assert_eq!(
            error.to_string(),
            "The requested ReadCapacityUnits, 40001, is above the per table maximum for the account in us-east-1. Per table maximum: 40000."
        );
        let error = check_request(&db, "CreateTable", &create(5, 50_000, None), quota(40_000.0)).unwrap_err();
        assert!(error.to_string().starts_with("The requested WriteCapacityUnits, 50000"), "{error}");
        // A raised quota admits it.
        assert!(check_request(&db, "CreateTable", &create(5, 50_000, None), quota(60_000.0)).is_ok());
        // A global index has the same maximum of its own.
        let error = check_request(&db, "CreateTable", &create(5, 5, Some((40_001, 5))), quota(40_000.0)).unwrap_err();
        assert!(error.to_string().starts_with("The requested ReadCapacityUnits for index by_g, 40001"), "{error}");
    }

    #[test]
    fn invalid_requests_and_other_operations_pass_to_their_own_validation() {
        let db = Database::open(Arc::new(MemStore::new())).unwrap();
        let mut invalid: Value = serde_json::from_slice(&create(50_000, 5, None)).unwrap();
        invalid["KeySchema"] = json!([]);
        assert!(check_request(&db, "CreateTable", &serde_json::to_vec(&invalid).unwrap(), quota(40_000.0)).is_ok());
        assert!(check_request(&db, "CreateTable", b"not json", quota(40_000.0)).is_ok());
        assert!(check_request(&db, "PutItem", &create(50_000, 5, None), quota(40_000.0)).is_ok());
        let on_demand = json!({
            "TableName": "quota",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        assert!(check_request(&db, "CreateTable", &serde_json::to_vec(&on_demand).unwrap(), quota(1.0)).is_ok());
    }

    #[test]
    fn update_table_is_checked_against_the_table_it_would_leave() {
        let db = Database::open(Arc::new(MemStore::new())).unwrap();
        let service = crate::api::Service::new(Arc::new(db));
        service.call("CreateTable", &create(10, 10, Some((10, 10)))).unwrap();
        let update = |body: Value| serde_json::to_vec(&body).unwrap();
        let raise = update(
            json!({"TableName": "quota", "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 40_001}}),
        );
        let db = service.database();
        let error = check_request(db, "UpdateTable", &raise, quota(40_000.0)).unwrap_err();
        assert!(error.to_string().starts_with("The requested WriteCapacityUnits, 40001"), "{error}");
        let index = update(json!({"TableName": "quota", "GlobalSecondaryIndexUpdates": [
            {"Update": {"IndexName": "by_g", "ProvisionedThroughput": {"ReadCapacityUnits": 45_000, "WriteCapacityUnits": 10}}}
        ]}));
        let error = check_request(db, "UpdateTable", &index, quota(40_000.0)).unwrap_err();
        assert!(error.to_string().contains("for index by_g, 45000"), "{error}");
        let fine = update(
            json!({"TableName": "quota", "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 20}}),
        );
        assert!(check_request(db, "UpdateTable", &fine, quota(40_000.0)).is_ok());
        // Planning changed nothing.
        assert_eq!(db.table("quota").unwrap().meta.throughput.read_units, 10);
    }

    #[test]
    fn the_account_quota_caps_the_sum_of_provisioned_tables_and_indexes() {
        let service = crate::api::Service::new(Arc::new(Database::open(Arc::new(MemStore::new())).unwrap()));
        let db = service.database();
        let named = |name: &str, body: Vec<u8>| {
            let mut request: Value = serde_json::from_slice(&body).unwrap();
            request["TableName"] = json!(name);
            serde_json::to_vec(&request).unwrap()
        };
        let quota = Quota::default();
        for (name, body) in [("t_a", create(40_000, 10, None)), ("t_b", create(20_000, 10, Some((10_000, 10))))] {
            let body = named(name, body);
            check_request(db, "CreateTable", &body, quota).expect("within the account's quota");
            service.call("CreateTable", &body).unwrap();
        }
        // 70,000 read units are reserved (b's index counts): 20,000 more would be too many.
        let error = check_request(db, "CreateTable", &named("t_c", create(20_000, 10, None)), quota).unwrap_err();
        assert_eq!(error.type_name(), "com.amazonaws.dynamodb.v20120810#LimitExceededException");
        assert_eq!(
            error.to_string(),
            "This request would have caused the ReadCapacityUnits limit to be exceeded for the account in us-east-1. Current ReadCapacityUnits reserved by the account: 70000. Limit: 80000. Requested: 20000"
        );
        // Exactly the quota is allowed, and write units are counted apart.
        let fills = named("t_c", create(10_000, 40_000, None));
        assert!(check_request(db, "CreateTable", &fills, quota).is_ok());
        service.call("CreateTable", &fills).unwrap();
        // CreateTable of a name in use reports that instead.
        assert!(check_request(db, "CreateTable", &named("t_a", create(40_000, 10, None)), quota).is_ok());
        // UpdateTable counts what the table would hold instead of what it holds.
        let update = |body: Value| serde_json::to_vec(&body).unwrap();
        let raise = update(json!({"TableName": "t_b", "GlobalSecondaryIndexUpdates": [
            {"Update": {"IndexName": "by_g", "ProvisionedThroughput": {"ReadCapacityUnits": 20_001, "WriteCapacityUnits": 10}}}
        ]}));
        let error = check_request(db, "UpdateTable", &raise, quota).unwrap_err();
        assert!(
            error.to_string().ends_with("reserved by the account: 80000. Limit: 80000. Requested: 40001"),
            "{error}"
        );
        // At the quota, a change that does not raise the table's capacity passes.
        let lower = update(
            json!({"TableName": "t_b", "ProvisionedThroughput": {"ReadCapacityUnits": 19_999, "WriteCapacityUnits": 10}}),
        );
        assert!(check_request(db, "UpdateTable", &lower, quota).is_ok());
        // On-demand tables reserve nothing.
        let on_demand = update(json!({
            "TableName": "t_d",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }));
        assert!(check_request(db, "CreateTable", &on_demand, quota).is_ok());
    }

    #[test]
    fn an_on_demand_maximum_above_the_quota_is_refused_for_the_table_and_each_index() {
        let db = Database::open(Arc::new(MemStore::new())).unwrap();
        let request = |table: Value, index: Value| {
            serde_json::to_vec(&json!({
                "TableName": "quota", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "OnDemandThroughput": table,
                "GlobalSecondaryIndexes": [{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                            "Projection": {"ProjectionType": "ALL"}, "OnDemandThroughput": index}],
            }))
            .unwrap()
        };
        let within = request(json!({"MaxReadRequestUnits": 40_000}), json!({"MaxWriteRequestUnits": 40_000}));
        assert!(check_request(&db, "CreateTable", &within, quota(40_000.0)).is_ok());
        let error = check_request(
            &db,
            "CreateTable",
            &request(json!({}), json!({"MaxWriteRequestUnits": 40_001})),
            quota(40_000.0),
        )
        .unwrap_err();
        assert_eq!(error.type_name(), "com.amazonaws.dynamodb.v20120810#LimitExceededException");
        assert_eq!(
            error.to_string(),
            "Subscriber limit exceeded: Requested MaxWriteRequestUnits for OnDemandThroughput for index : by_g exceeds TableMaxWriteCapacityUnits of the account in region us-east-1"
        );
        let error = check_request(
            &db,
            "CreateTable",
            &request(json!({"MaxReadRequestUnits": 40_001}), json!({})),
            quota(40_000.0),
        )
        .unwrap_err();
        assert!(error.to_string().contains("MaxReadRequestUnits for OnDemandThroughput for table exceeds"), "{error}");
    }
}
