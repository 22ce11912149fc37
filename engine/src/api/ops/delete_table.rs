//! DeleteTable: removes the table, its indexes and all their data in one synced batch.

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ApiError;
use crate::db::Database;

/// Runs DeleteTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let description = db.delete_table(request.table_name()?)?;
    Ok(json!({"TableDescription": description}))
}
