//! ListTables: table names in ascending order, paginated.

use serde_json::{json, Value};

use crate::api::common::{validate_name, Request};
use crate::api::ApiError;
use crate::db::Database;

/// Most names one page returns.
pub const LIST_TABLES_LIMIT_MAX: i64 = 100;

/// Runs ListTables.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let limit = request.int("Limit")?.unwrap_or(LIST_TABLES_LIMIT_MAX);
    if !(1..=LIST_TABLES_LIMIT_MAX).contains(&limit) {
        let constraint = if limit < 1 { "greater than or equal to 1" } else { "less than or equal to 100" };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value {constraint}"
        )));
    }
    let start = request.str("ExclusiveStartTableName")?;
    if let Some(start) = start {
        validate_name(start, "exclusiveStartTableName")?;
    }
    let names: Vec<String> =
        db.table_names().into_iter().filter(|name| start.is_none_or(|s| name.as_str() > s)).collect();
    let page: Vec<&String> = names.iter().take(limit as usize).collect();
    let mut response = json!({"TableNames": page});
    if names.len() > page.len() {
        if let Some(last) = page.last() {
            response["LastEvaluatedTableName"] = json!(last);
        }
    }
    Ok(response)
}
