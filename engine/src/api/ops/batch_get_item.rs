//! BatchGetItem: up to 100 keys across tables; keys beyond the 16 MB response limit come back
//! in `UnprocessedKeys`.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::api::common::{expression_context, missing, validate_key, CapacityDetail, Consumed, Request};
use crate::api::ops::projection_paths;
use crate::api::{ApiError, BATCH_GET_KEYS_MAX, BATCH_GET_RESPONSE_BYTES_MAX};
use crate::capacity;
use crate::db::{keys, Database};
use crate::expr::project;
use crate::model::{item_from_json, item_size_bytes, item_to_json};

/// Runs BatchGetItem.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let request_items = request.object("RequestItems")?.ok_or_else(|| missing("RequestItems"))?;
    if request_items.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let capacity = CapacityDetail::from_request(&request)?;
    let total_keys: usize =
        request_items.values().map(|v| v.get("Keys").and_then(Value::as_array).map(Vec::len).unwrap_or(0)).sum();
    if total_keys > BATCH_GET_KEYS_MAX {
        return Err(ApiError::validation("Too many items requested for the BatchGetItem call"));
    }
    // Validate everything before reading anything, so a bad request reads nothing.
    let mut plans = Vec::new();
    for (table_name, spec) in request_items {
        crate::api::common::validate_name(table_name, "requestItems.member.key")?;
        let table = db.table(table_name)?;
        let spec = Request::sub(spec, "RequestItems")?;
        let keys_json = spec.array("Keys")?.ok_or_else(|| missing("Keys"))?;
        if keys_json.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '[]' at 'requestItems.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mut context = expression_context(&spec, &["ProjectionExpression"])?;
        let paths = projection_paths(&spec, &mut context)?;
        context.finish()?;
        let consistent = spec.bool("ConsistentRead")?.unwrap_or(false);
        let mut seen = BTreeSet::new();
        let mut item_keys = Vec::new();
        for key_json in keys_json {
            let key = item_from_json(key_json)?;
            validate_key(&table.meta, &key)?;
            let storage_key = keys::entry_key(table.meta.id, keys::TABLE_INDEX_ID, &table.meta.key_schema, None, &key);
            if !seen.insert(storage_key) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
            item_keys.push((key, key_json.clone()));
        }
        plans.push((table, spec, paths, consistent, item_keys));
    }

    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut consumed_list = Vec::new();
    let mut response_bytes = 0usize;
    for (table, spec, paths, consistent, item_keys) in plans {
        let mut items = Vec::new();
        let mut left = Vec::new();
        let mut consumed = Consumed::default();
        for (key, key_json) in item_keys {
            if response_bytes >= BATCH_GET_RESPONSE_BYTES_MAX {
                left.push(key_json);
                continue;
            }
            let item = db.get_item(&table, &key)?;
            let size = item.as_ref().map(|i| item_size_bytes(i) as u64).unwrap_or(0);
            consumed.table_units += capacity::read_units_for_item(size, consistent);
            if let Some(item) = item {
                let item = match &paths {
                    Some(paths) => project(&item, paths),
                    None => item,
                };
                let item_bytes = item_size_bytes(&item);
                if response_bytes + item_bytes > BATCH_GET_RESPONSE_BYTES_MAX {
                    // The response is full: this key and every later one are left for the
                    // client to ask again, as DynamoDB does.
                    response_bytes = BATCH_GET_RESPONSE_BYTES_MAX;
                    left.push(key_json);
                    continue;
                }
                response_bytes += item_bytes;
                items.push(item_to_json(&item));
            }
        }
        let name = table.meta.name.clone();
        if !left.is_empty() {
            let mut spec_json = spec.0.clone();
            spec_json.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(name.clone(), Value::Object(spec_json));
        }
        if let Some(c) = consumed.report(&name, capacity, false) {
            consumed_list.push(c);
        }
        responses.insert(name, Value::Array(items));
    }
    let mut response = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
    if capacity != CapacityDetail::None {
        response["ConsumedCapacity"] = Value::Array(consumed_list);
    }
    Ok(response)
}
