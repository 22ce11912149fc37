//! ListTagsOfResource: a table's tags, in key order. All tags fit in one page (at most 50), so
//! no `NextToken` is ever returned.

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ops::tag_resource::table_of_arn;
use crate::api::ApiError;
use crate::db::Database;

/// Runs ListTagsOfResource.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = table_of_arn(db, &request)?;
    let tags: Vec<Value> = table.meta.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    Ok(json!({"Tags": tags}))
}
