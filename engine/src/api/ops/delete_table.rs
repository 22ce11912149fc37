//! DeleteTable: removes the table, its indexes and all their data in one synced batch.

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ops::describe_table::table_not_found_detail;
use crate::api::ApiError;
use crate::db::Database;

/// Runs DeleteTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let name = request.table_name()?;
    let description = db.delete_table(name).map_err(|e| table_not_found_detail(e, name))?;
    Ok(json!({"TableDescription": description}))
}
