//! The conditional single-item write shared by PutItem, UpdateItem, DeleteItem and
//! BatchWriteItem: lock the partition key, read the current item, check the condition, build
//! the new item, validate it, and write it with its index entries in one synced batch.

use serde_json::{Map, Value};

use super::common::{item_collection_metrics, validate_item, CapacityDetail, Consumed};
use super::ApiError;
use crate::capacity;
use crate::db::{Database, Table};
use crate::expr::Condition;
use crate::expr::{Path, PathElement};
use crate::model::{item_size_bytes, item_to_json, Item};

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The item before the write.
    pub old: Option<Item>,
    /// The item after the write.
    pub new: Option<Item>,
    /// Capacity consumed.
    pub consumed: Consumed,
    /// Size of the item collection after the write (tables with local indexes only).
    pub collection_bytes: Option<u64>,
}

/// Performs one conditional write of the item with key `key`.
///
/// `build` receives the current item and returns the new one (`None` deletes it). A failed
/// condition returns `ConditionalCheckFailed`, carrying the current item when
/// `return_old_on_failure` is set.
pub fn conditional_write(
    db: &Database,
    table: &Table,
    key: &Item,
    condition: Option<&Condition>,
    return_old_on_failure: bool,
    build: impl FnOnce(Option<&Item>) -> Result<Option<Item>, ApiError>,
) -> Result<WriteOutcome, ApiError> {
    let meta = &table.meta;
    let partition = &key[&meta.key_schema.partition.name];
    let _guard = db.lock_partition(table, partition);
    let old = db.get_item(table, key)?;
    if let Some(condition) = condition {
        let empty = Item::new();
        if !condition.evaluate(old.as_ref().unwrap_or(&empty)) {
            return Err(ApiError::condition_failed(if return_old_on_failure { old } else { None }));
        }
    }
    let new = build(old.as_ref())?;
    if let Some(item) = &new {
        validate_item(meta, item)?;
        debug_assert_eq!(meta.key_of(item).as_ref(), Some(key), "a write must keep the item's key");
    }
    let old_size = old.as_ref().map(|i| item_size_bytes(i) as u64).unwrap_or(0);
    let new_size = new.as_ref().map(|i| item_size_bytes(i) as u64).unwrap_or(0);
    let mut consumed =
        Consumed { table_units: capacity::write_units_for_item(old_size.max(new_size)), ..Consumed::default() };
    if old.is_some() || new.is_some() {
        let index_units = db.write_item(table, old.as_ref(), new.as_ref())?;
        consumed.local = index_units.local;
        consumed.global = index_units.global;
    }
    let collection_bytes =
        if meta.has_local_index() { Some(db.item_collection_bytes(table, partition)?) } else { None };
    Ok(WriteOutcome { old, new, consumed, collection_bytes })
}

impl WriteOutcome {
    /// The response of a single-item write: `Attributes` when given and not empty, then
    /// `ConsumedCapacity` and `ItemCollectionMetrics` as the request asked.
    pub fn response(
        &self,
        table: &Table,
        key: &Item,
        attributes: Option<&Item>,
        capacity: CapacityDetail,
        collection_metrics: bool,
    ) -> Value {
        let mut response = Map::new();
        if let Some(attributes) = attributes.filter(|a| !a.is_empty()) {
            response.insert("Attributes".into(), item_to_json(attributes));
        }
        if let Some(consumed) = self.consumed.report(&table.meta.name, capacity, true) {
            response.insert("ConsumedCapacity".into(), consumed);
        }
        if let (true, Some(bytes)) = (collection_metrics, self.collection_bytes) {
            response.insert("ItemCollectionMetrics".into(), item_collection_metrics(&table.meta, key, bytes));
        }
        Value::Object(response)
    }
}

/// Refuses an update expression that touches a key attribute, as DynamoDB does.
pub fn refuse_key_updates(table: &Table, paths: &[Path]) -> Result<(), ApiError> {
    for path in paths {
        if let Some(PathElement::Attribute(first)) = path.0.first() {
            if table.meta.key_schema.contains(first) {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {first}. This attribute is part of the key"
                )));
            }
        }
    }
    Ok(())
}
