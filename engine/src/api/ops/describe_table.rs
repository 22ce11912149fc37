//! DescribeTable.

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ApiError;
use crate::db::Database;

/// DescribeTable and DeleteTable name the missing table in their message, as DynamoDB does.
pub fn table_not_found_detail(error: ApiError, name: &str) -> ApiError {
    match error {
        ApiError::ResourceNotFound(_) => {
            ApiError::ResourceNotFound(format!("Requested resource not found: Table: {name} not found"))
        }
        other => other,
    }
}

/// Runs DescribeTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let name = request.table_name()?;
    let table = db.table(name).map_err(|e| table_not_found_detail(e, name))?;
    Ok(json!({"Table": table.describe("ACTIVE")}))
}
