//! TransactGetItems: up to 100 reads that see one consistent state — every partition key
//! involved is locked while the items are read, so no write lands between two of the reads,
//! and an item a cross-partition write transaction holds cancels the read.

use serde_json::{json, Map, Value};

use crate::api::common::{expression_context, missing, validate_key, CapacityDetail, Consumed, Request};
use crate::api::ops::projection_paths;
use crate::api::{ApiError, TRANSACT_ITEMS_MAX};
use crate::capacity;
use crate::db::keys;
use crate::db::Database;
use crate::expr::project;
use crate::model::{item_size_bytes, item_to_json};

/// Runs TransactGetItems.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let actions = request.array("TransactItems")?.ok_or_else(|| missing("TransactItems"))?;
    check_count(actions.len())?;
    let capacity = CapacityDetail::from_request(&request)?;
    let mut plans = Vec::new();
    for action in actions {
        let action = Request::sub(action, "TransactItems")?;
        let get =
            action.get("Get").ok_or_else(|| ApiError::validation("TransactItems can only contain Get actions"))?;
        let get = Request::sub(get, "Get")?;
        let table = db.table(get.table_name()?)?;
        let key = crate::api::common::item_field(&get, "Key")?.ok_or_else(|| missing("Key"))?;
        validate_key(&table.meta, &key)?;
        let mut context = expression_context(&get, &["ProjectionExpression"])?;
        let paths = projection_paths(&get, &mut context)?;
        context.finish()?;
        plans.push((table, key, paths));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (table, key, _) in &plans {
        if !seen.insert(keys::entry_key(table.meta.id, keys::TABLE_INDEX_ID, &table.meta.key_schema, None, key)) {
            return Err(ApiError::validation("Transaction request cannot include multiple operations on one item"));
        }
    }
    let partitions: Vec<_> =
        plans.iter().map(|(table, key, _)| (&**table, &key[&table.meta.key_schema.partition.name])).collect();
    let _guards = db.lock_partitions(&partitions);
    // An item a cross-partition write transaction has prepared and not yet finished would be
    // read at its old value while the transaction's other items may already show their new
    // ones: the read is cancelled instead, as DynamoDB cancels one that meets a transaction
    // in progress.
    let mut conflicts = Vec::with_capacity(plans.len());
    for (table, key, _) in &plans {
        let storage_key = keys::entry_key(table.meta.id, keys::TABLE_INDEX_ID, &table.meta.key_schema, None, key);
        conflicts.push(db.lock_holder(&storage_key)?.is_some());
    }
    if let Some(cancelled) = crate::api::ops::transact_write_items::cancelled_by_conflicts(&conflicts) {
        return Err(cancelled);
    }
    let mut responses = Vec::new();
    let mut consumed: std::collections::BTreeMap<String, Consumed> = std::collections::BTreeMap::new();
    for (table, key, paths) in &plans {
        let item = db.get_item(table, key)?;
        let size = item.as_ref().map(|i| item_size_bytes(i) as u64).unwrap_or(0);
        // Transactional reads cost twice a strongly consistent read.
        consumed.entry(table.meta.name.clone()).or_default().table_units +=
            2.0 * capacity::read_units_for_item(size, true);
        let mut entry = Map::new();
        if let Some(item) = item {
            let item = match paths {
                Some(paths) => project(&item, paths),
                None => item,
            };
            entry.insert("Item".into(), item_to_json(&item));
        }
        responses.push(Value::Object(entry));
    }
    let mut response = json!({"Responses": responses});
    let reported: Vec<Value> = consumed.iter().filter_map(|(name, c)| c.report(name, capacity, false)).collect();
    if capacity != CapacityDetail::None {
        response["ConsumedCapacity"] = Value::Array(reported);
    }
    Ok(response)
}

/// Checks the action count of a transaction.
pub fn check_count(count: usize) -> Result<(), ApiError> {
    if count == 0 || count > TRANSACT_ITEMS_MAX {
        let constraint = if count == 0 {
            "Member must have length greater than or equal to 1".to_string()
        } else {
            format!("Member must have length less than or equal to {TRANSACT_ITEMS_MAX}")
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: {constraint}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::api::{ApiError, Service};
    use crate::db::keys;
    use crate::model::{AttributeValue, Item};
    use crate::storage::MemStore;

    #[test]
    fn an_item_a_write_transaction_holds_cancels_the_read() {
        let service = Service::new(Arc::new(crate::db::Database::open(Arc::new(MemStore::new())).unwrap()));
        let create = json!({"TableName": "held", "BillingMode": "PAY_PER_REQUEST",
                            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]});
        service.call("CreateTable", create.to_string().as_bytes()).unwrap();
        for key in ["a", "b"] {
            let put = json!({"TableName": "held", "Item": {"pk": {"S": key}, "v": {"N": "1"}}});
            service.call("PutItem", put.to_string().as_bytes()).unwrap();
        }
        let read = json!({"TransactItems": [{"Get": {"TableName": "held", "Key": {"pk": {"S": "a"}}}},
                                            {"Get": {"TableName": "held", "Key": {"pk": {"S": "b"}}}}]});
        let answer = service.call("TransactGetItems", read.to_string().as_bytes()).unwrap();
        assert_eq!(answer["Responses"][1]["Item"]["v"], json!({"N": "1"}));
        // A cross-partition transaction prepared a change of "b".
        let db = service.database();
        let meta = &db.table("held").unwrap().meta;
        let mut key = Item::new();
        key.insert("pk".into(), AttributeValue::S("b".into()));
        let storage_key = keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &key);
        db.write_records(vec![(keys::lock_key(&storage_key), 42u64.to_be_bytes().to_vec())], Vec::new()).unwrap();
        let error = service.call("TransactGetItems", read.to_string().as_bytes()).unwrap_err();
        let ApiError::TransactionCanceled { reasons, .. } = error else { panic!("not cancelled: {error}") };
        assert_eq!(reasons[0]["Code"], "None");
        assert_eq!(reasons[1]["Code"], "TransactionConflict");
        // A plain read still sees the committed value.
        let get = json!({"TableName": "held", "Key": {"pk": {"S": "b"}}, "ConsistentRead": true});
        assert_eq!(service.call("GetItem", get.to_string().as_bytes()).unwrap()["Item"]["v"], json!({"N": "1"}));
    }
}
