//! UpdateTable: capacity, billing mode, deletion protection, and adding or removing global
//! secondary indexes (a new index is backfilled from the table's items).

use serde_json::{json, Value};

use crate::api::common::{missing, Request};
use crate::api::ops::create_table::{
    attribute_definitions, check_projection_limit, index_meta, now_ms, on_demand_for_mode, throughput,
    throughput_for_mode,
};
use crate::api::{ApiError, GLOBAL_INDEXES_MAX};
use crate::catalog::{BillingMode, IndexKind, TableMeta};
use crate::db::Database;

/// Runs UpdateTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let meta = plan(db, &request)?;
    let table = db.update_table(meta)?;
    Ok(json!({"TableDescription": table.describe("ACTIVE")}))
}

/// Validates the request against the table as `db` holds it and returns the table's metadata
/// as the update would leave it, changing nothing.
pub fn plan(db: &Database, request: &Request) -> Result<TableMeta, ApiError> {
    let table = db.table(request.table_name()?)?;
    let mut meta = table.meta.clone();
    let mut changed = false;

    if let Some(mode) = request.str("BillingMode")? {
        let mode = match request.choice("BillingMode", &["PROVISIONED", "PAY_PER_REQUEST"], "")? {
            "PAY_PER_REQUEST" => BillingMode::PayPerRequest,
            _ => {
                debug_assert_eq!(mode, "PROVISIONED");
                BillingMode::Provisioned
            }
        };
        if mode != meta.billing_mode {
            meta.throughput = throughput_for_mode(request, mode, "ProvisionedThroughput")?;
            for index in meta.indexes.iter_mut().filter(|i| i.kind == IndexKind::Global) {
                index.throughput = match mode {
                    BillingMode::PayPerRequest => None,
                    BillingMode::Provisioned => Some(meta.throughput),
                };
                index.on_demand = Default::default();
            }
            if mode == BillingMode::PayPerRequest {
                meta.on_demand_since_ms = Some(now_ms());
            }
            meta.billing_mode = mode;
            changed = true;
        }
    }
    if request.get("OnDemandThroughput").is_some() {
        meta.on_demand = on_demand_for_mode(
            request.get("OnDemandThroughput"),
            meta.billing_mode,
            meta.on_demand,
            "the table",
            "table",
        )?;
        changed = true;
    } else if meta.billing_mode == BillingMode::Provisioned {
        meta.on_demand = Default::default();
    }
    if let Some(value) = request.get("ProvisionedThroughput") {
        if meta.billing_mode == BillingMode::PayPerRequest {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        let new = throughput(value, "ProvisionedThroughput")?;
        if new == table.meta.throughput && !changed && request.get("GlobalSecondaryIndexUpdates").is_none() {
            return Err(ApiError::validation(format!(
                "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
                table.meta.throughput.read_units, new.read_units, table.meta.throughput.write_units, new.write_units
            )));
        }
        meta.throughput_changes.record(table.meta.throughput, new, now_ms()).map_err(ApiError::LimitExceeded)?;
        meta.throughput = new;
        changed = true;
    }
    if let Some(protection) = request.bool("DeletionProtectionEnabled")? {
        meta.deletion_protection = protection;
        changed = true;
    }
    if let Some(updates) = request.array("GlobalSecondaryIndexUpdates")? {
        let structural = updates.iter().filter(|u| u.get("Create").is_some() || u.get("Delete").is_some()).count();
        if structural > 1 {
            return Err(ApiError::LimitExceeded(
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
                    .into(),
            ));
        }
        for update in updates {
            let update = Request::sub(update, "GlobalSecondaryIndexUpdates")?;
            if let Some(create) = update.get("Create") {
                let definitions = match request.get("AttributeDefinitions") {
                    Some(_) => attribute_definitions(request)?,
                    None => meta.attribute_definitions.clone(),
                };
                let index = index_meta(create, &definitions, IndexKind::Global, meta.next_index_id, meta.billing_mode)?;
                if meta.index(&index.name).is_some() {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values were invalid: Index with name: {} already exists",
                        index.name
                    )));
                }
                if meta.indexes.iter().filter(|i| i.kind == IndexKind::Global).count() >= GLOBAL_INDEXES_MAX {
                    return Err(ApiError::LimitExceeded(format!(
                        "Subscriber limit exceeded: Cannot have more than {GLOBAL_INDEXES_MAX} global secondary indexes per table"
                    )));
                }
                // Definitions for the new key attributes join the table's, and an existing
                // definition may not change type.
                for attribute in index.key_schema.attributes() {
                    match meta.attribute_definitions.iter().find(|d| d.name == attribute.name) {
                        Some(existing) if existing.kind != attribute.kind => {
                            return Err(ApiError::validation(format!(
                                "One or more parameter values were invalid: Cannot change the type of attribute {}",
                                attribute.name
                            )))
                        }
                        Some(_) => {}
                        None => meta.attribute_definitions.push(attribute.clone()),
                    }
                }
                meta.next_index_id += 1;
                meta.indexes.push(index);
                check_projection_limit(&meta.indexes)?;
            } else if let Some(delete) = update.get("Delete") {
                let delete = Request::sub(delete, "Delete")?;
                let name = delete.required_str("IndexName")?;
                match meta.index(name) {
                    Some(index) if index.kind == IndexKind::Global => meta.indexes.retain(|i| i.name != name),
                    _ => {
                        return Err(ApiError::ResourceNotFound(format!(
                            "Requested resource not found: Index: {name} not found for table: {}",
                            meta.name
                        )))
                    }
                }
            } else if let Some(change) = update.get("Update") {
                let change = Request::sub(change, "Update")?;
                let name = change.required_str("IndexName")?;
                let mode = meta.billing_mode;
                let Some(index) = meta.indexes.iter_mut().find(|i| i.name == name && i.kind == IndexKind::Global)
                else {
                    return Err(ApiError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {name} not found for table: {}",
                        meta.name
                    )));
                };
                match (change.get("ProvisionedThroughput"), change.get("OnDemandThroughput")) {
                    (Some(value), _) => {
                        let new = throughput(value, "ProvisionedThroughput")?;
                        if let Some(old) = index.throughput {
                            index.throughput_changes.record(old, new, now_ms()).map_err(ApiError::LimitExceeded)?;
                        }
                        index.throughput = Some(new);
                    }
                    (None, Some(value)) => {
                        let whose = format!("index : {name}");
                        index.on_demand = on_demand_for_mode(Some(value), mode, index.on_demand, "the table", &whose)?;
                    }
                    (None, None) => return Err(missing("ProvisionedThroughput")),
                }
            } else {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Create, Update or Delete must be specified",
                ));
            }
            changed = true;
        }
        // Drop definitions no key schema uses any more, as DynamoDB does after deleting an index.
        let snapshot = meta.clone();
        meta.attribute_definitions.retain(|d| {
            snapshot.key_schema.contains(&d.name) || snapshot.indexes.iter().any(|i| i.key_schema.contains(&d.name))
        });
    }
    if !changed {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::api::{ApiError, Service};
    use crate::storage::MemStore;

    #[test]
    fn on_demand_throughput_is_for_on_demand_tables_and_minus_one_removes_it() {
        let service = Service::new(Arc::new(crate::db::Database::open(Arc::new(MemStore::new())).unwrap()));
        let call = |operation: &str, body: serde_json::Value| service.call(operation, body.to_string().as_bytes());
        let key = json!({"AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]});
        let mut provisioned = key.clone();
        provisioned["TableName"] = json!("provisioned");
        provisioned["ProvisionedThroughput"] = json!({"ReadCapacityUnits": 1, "WriteCapacityUnits": 1});
        call("CreateTable", provisioned).unwrap();
        let error =
            call("UpdateTable", json!({"TableName": "provisioned", "OnDemandThroughput": {"MaxReadRequestUnits": 10}}))
                .unwrap_err();
        assert!(error.to_string().contains("cannot be specified when the table BillingMode is PROVISIONED"), "{error}");

        let mut on_demand = key;
        on_demand["TableName"] = json!("on_demand");
        on_demand["BillingMode"] = json!("PAY_PER_REQUEST");
        on_demand["OnDemandThroughput"] = json!({"MaxReadRequestUnits": 10, "MaxWriteRequestUnits": 20});
        let created = call("CreateTable", on_demand).unwrap();
        assert_eq!(
            created["TableDescription"]["OnDemandThroughput"],
            json!({"MaxReadRequestUnits": 10, "MaxWriteRequestUnits": 20})
        );
        let updated =
            call("UpdateTable", json!({"TableName": "on_demand", "OnDemandThroughput": {"MaxReadRequestUnits": -1}}))
                .unwrap();
        assert_eq!(updated["TableDescription"]["OnDemandThroughput"], json!({"MaxWriteRequestUnits": 20}));
        // Switching to provisioned capacity drops the on-demand maximum.
        let switched = call(
            "UpdateTable",
            json!({"TableName": "on_demand", "BillingMode": "PROVISIONED",
                   "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}),
        )
        .unwrap();
        assert!(switched["TableDescription"].get("OnDemandThroughput").is_none(), "{switched}");
    }

    #[test]
    fn a_global_index_of_an_on_demand_table_has_its_own_maximum() {
        let service = Service::new(Arc::new(crate::db::Database::open(Arc::new(MemStore::new())).unwrap()));
        let call = |operation: &str, body: serde_json::Value| service.call(operation, body.to_string().as_bytes());
        let index = |on_demand: serde_json::Value| {
            json!([{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"}, "OnDemandThroughput": on_demand}])
        };
        let table = |name: &str, indexes: serde_json::Value| {
            json!({"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                   "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                            {"AttributeName": "g", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                   "GlobalSecondaryIndexes": indexes})
        };
        let error = call("CreateTable", table("bad", index(json!({"MaxWriteRequestUnits": 0})))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "One or more parameter values were invalid: Requested MaxWriteRequestUnits for OnDemandThroughput for index : by_g is outside of valid range"
        );
        let created = call("CreateTable", table("capped", index(json!({"MaxReadRequestUnits": 30})))).unwrap();
        let described = &created["TableDescription"]["GlobalSecondaryIndexes"][0];
        assert_eq!(described["OnDemandThroughput"], json!({"MaxReadRequestUnits": 30}), "{created}");
        assert!(created["TableDescription"].get("OnDemandThroughput").is_none(), "the table has none of its own");

        let update = |on_demand: serde_json::Value| {
            json!({"TableName": "capped", "GlobalSecondaryIndexUpdates": [
                {"Update": {"IndexName": "by_g", "OnDemandThroughput": on_demand}}]})
        };
        let updated =
            call("UpdateTable", update(json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 7}))).unwrap();
        let described = &updated["TableDescription"]["GlobalSecondaryIndexes"][0];
        assert_eq!(described["OnDemandThroughput"], json!({"MaxWriteRequestUnits": 7}), "{updated}");
        let error = call("UpdateTable", update(json!({"MaxWriteRequestUnits": -2}))).unwrap_err();
        assert!(error.to_string().contains("for index : by_g is outside of valid range"), "{error}");

        // Switching to provisioned capacity drops it; a provisioned table's index may not have one.
        let switched = call(
            "UpdateTable",
            json!({"TableName": "capped", "BillingMode": "PROVISIONED",
                   "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}),
        )
        .unwrap();
        let described = &switched["TableDescription"]["GlobalSecondaryIndexes"][0];
        assert!(described.get("OnDemandThroughput").is_none(), "{switched}");
        let error = call("UpdateTable", update(json!({"MaxWriteRequestUnits": 7}))).unwrap_err();
        assert!(error.to_string().contains("cannot be specified when the table BillingMode is PROVISIONED"), "{error}");
    }

    #[test]
    fn describe_shows_when_capacity_changed_and_refuses_a_fifth_quick_decrease() {
        use crate::scope::{with_scope, CallScope};
        let service = Service::new(Arc::new(crate::db::Database::open(Arc::new(MemStore::new())).unwrap()));
        let at = |ms: u64, operation: &str, body: serde_json::Value| {
            let scope = CallScope { now_ms: Some(ms), ..CallScope::default() };
            with_scope(scope, || service.call(operation, body.to_string().as_bytes()))
        };
        let t0 = 1_800_000_000_000;
        let throughput = |r: u64| json!({"TableName": "changes", "ProvisionedThroughput": {"ReadCapacityUnits": r, "WriteCapacityUnits": 5}});
        at(
            t0,
            "CreateTable",
            json!({"TableName": "changes",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}),
        )
        .unwrap();
        at(t0 + 1_000, "UpdateTable", throughput(10)).unwrap();
        let described = at(t0 + 2_000, "UpdateTable", throughput(2)).unwrap();
        let provisioned = &described["TableDescription"]["ProvisionedThroughput"];
        assert_eq!(provisioned["LastIncreaseDateTime"], json!((t0 + 1_000) as f64 / 1000.0), "{provisioned}");
        assert_eq!(provisioned["LastDecreaseDateTime"], json!((t0 + 2_000) as f64 / 1000.0), "{provisioned}");
        assert_eq!(provisioned["NumberOfDecreasesToday"], 1);
        for n in 0..3 {
            at(t0 + 3_000 + n, "UpdateTable", throughput(10 + n)).unwrap();
            at(t0 + 4_000 + n, "UpdateTable", throughput(2 + n)).unwrap();
        }
        let error = at(t0 + 10_000, "UpdateTable", throughput(1)).unwrap_err();
        assert!(matches!(error, ApiError::LimitExceeded(_)), "{error}");

        // Switching to on-demand records when.
        let switched =
            at(t0 + 20_000, "UpdateTable", json!({"TableName": "changes", "BillingMode": "PAY_PER_REQUEST"})).unwrap();
        assert_eq!(
            switched["TableDescription"]["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"],
            json!((t0 + 20_000) as f64 / 1000.0)
        );
    }
}
