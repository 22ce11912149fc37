//! GetItem: reads one item by key, optionally projected.

use serde_json::{Map, Value};

use crate::api::common::{expression_context, key_field, CapacityDetail, Consumed, Request};
use crate::api::ops::projection_paths;
use crate::api::ApiError;
use crate::capacity;
use crate::db::Database;
use crate::expr::project;
use crate::model::{item_size_bytes, item_to_json};

/// Runs GetItem.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    let key = key_field(&table.meta, &request)?;
    let consistent = request.bool("ConsistentRead")?.unwrap_or(false);
    let capacity = CapacityDetail::from_request(&request)?;
    let mut context = expression_context(&request, &["ProjectionExpression"])?;
    let paths = projection_paths(&request, &mut context)?;
    context.finish()?;
    let item = db.get_item(&table, &key)?;
    let size = item.as_ref().map(|i| item_size_bytes(i) as u64).unwrap_or(0);
    let consumed = Consumed { table_units: capacity::read_units_for_item(size, consistent), ..Consumed::default() };
    let mut response = Map::new();
    if let Some(item) = item {
        let item = match &paths {
            Some(paths) => project(&item, paths),
            None => item,
        };
        response.insert("Item".into(), item_to_json(&item));
    }
    if let Some(consumed) = consumed.report(&table.meta.name, capacity, false) {
        response.insert("ConsumedCapacity".into(), consumed);
    }
    Ok(Value::Object(response))
}
