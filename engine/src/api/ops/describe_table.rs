//! DescribeTable.

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ApiError;
use crate::db::Database;

/// Runs DescribeTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    Ok(json!({"Table": table.describe("ACTIVE")}))
}
