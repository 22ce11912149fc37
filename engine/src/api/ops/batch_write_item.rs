//! BatchWriteItem: up to 25 puts and deletes across tables. Each write is atomic and durable on
//! its own; the batch as a whole is not a transaction, as in DynamoDB.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::api::common::{
    item_collection_metrics, missing, validate_item, validate_key, CapacityDetail, Consumed, Request,
};
use crate::api::write::conditional_write;
use crate::api::{ApiError, BATCH_WRITE_REQUESTS_MAX};
use crate::db::{keys, Database, Table};
use crate::model::{item_from_json, Item};

enum Write {
    Put(Item),
    Delete,
}

/// The validated writes of one table, keyed by item key.
type TableWrites = (std::sync::Arc<Table>, Vec<(Item, Write)>);

/// A validated BatchWriteItem.
struct Planned {
    capacity: CapacityDetail,
    metrics: bool,
    plans: Vec<TableWrites>,
}

/// Checks a BatchWriteItem as running it would, without writing anything: what a cluster's
/// router does before it sends the batch's parts to their partitions, so that a batch with
/// one bad request writes nothing anywhere.
pub fn validate(db: &Database, request: &Request) -> Result<(), ApiError> {
    plan(db, request).map(|_| ())
}

/// Decodes and validates a BatchWriteItem: every request is checked before any is written.
fn plan(db: &Database, request: &Request) -> Result<Planned, ApiError> {
    let request_items = request.object("RequestItems")?.ok_or_else(|| missing("RequestItems"))?;
    let capacity = CapacityDetail::from_request(request)?;
    let metrics = request.choice("ReturnItemCollectionMetrics", &["SIZE", "NONE"], "NONE")? == "SIZE";
    let count: usize = request_items.values().map(|v| v.as_array().map(Vec::len).unwrap_or(0)).sum();
    if request_items.is_empty() || count > BATCH_WRITE_REQUESTS_MAX {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {BATCH_WRITE_REQUESTS_MAX}, Member must have length greater than or equal to 1]",
            Value::Object(request_items.clone())
        )));
    }
    // Validate every request before writing any, so a bad batch writes nothing.
    let mut plans: Vec<TableWrites> = Vec::new();
    for (table_name, list) in request_items {
        let table = db.table(table_name)?;
        let list =
            list.as_array().ok_or_else(|| ApiError::Serialization("RequestItems values must be lists".into()))?;
        if list.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '[]' at 'requestItems.member.value' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut writes = Vec::new();
        for entry in list {
            let entry = Request::sub(entry, "RequestItems")?;
            let (key, write) = match (entry.get("PutRequest"), entry.get("DeleteRequest")) {
                (Some(put), None) => {
                    let put = Request::sub(put, "PutRequest")?;
                    let item = item_from_json(put.get("Item").ok_or_else(|| missing("Item"))?)?;
                    validate_item(&table.meta, &item)?;
                    let key = table.meta.key_of(&item).ok_or_else(|| ApiError::Internal("validated item has no key".into()))?;
                    (key, Write::Put(item))
                }
                (None, Some(delete)) => {
                    let delete = Request::sub(delete, "DeleteRequest")?;
                    let key = item_from_json(delete.get("Key").ok_or_else(|| missing("Key"))?)?;
                    validate_key(&table.meta, &key)?;
                    (key, Write::Delete)
                }
                _ => {
                    return Err(ApiError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ))
                }
            };
            let storage_key = keys::entry_key(table.meta.id, keys::TABLE_INDEX_ID, &table.meta.key_schema, None, &key);
            if !seen.insert(storage_key) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
            writes.push((key, write));
        }
        plans.push((table, writes));
    }
    Ok(Planned { capacity, metrics, plans })
}

/// Runs BatchWriteItem.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let Planned { capacity, metrics, plans } = plan(db, &request)?;
    let mut consumed_by_table: BTreeMap<String, Consumed> = BTreeMap::new();
    let mut collection_metrics: Map<String, Value> = Map::new();
    for (table, writes) in plans {
        for (key, write) in writes {
            let outcome = conditional_write(db, &table, &key, None, false, |_| {
                Ok(match write {
                    Write::Put(item) => Some(item),
                    Write::Delete => None,
                })
            })?;
            consumed_by_table.entry(table.meta.name.clone()).or_default().add(&outcome.consumed);
            if let (true, Some(bytes)) = (metrics, outcome.collection_bytes) {
                let list = collection_metrics.entry(table.meta.name.clone()).or_insert_with(|| json!([]));
                if let Value::Array(list) = list {
                    list.push(item_collection_metrics(&table.meta, &key, bytes));
                }
            }
        }
    }
    let mut response = json!({"UnprocessedItems": {}});
    let reported: Vec<Value> =
        consumed_by_table.iter().filter_map(|(name, c)| c.report(name, capacity, true)).collect();
    if capacity != CapacityDetail::None {
        response["ConsumedCapacity"] = Value::Array(reported);
    }
    if metrics {
        response["ItemCollectionMetrics"] = Value::Object(collection_metrics);
    }
    Ok(response)
}
