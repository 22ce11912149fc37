//! UntagResource: removes tags from a table by key.

use serde_json::{json, Value};

use crate::api::common::{missing, Request};
use crate::api::ops::tag_resource::table_of_arn;
use crate::api::ApiError;
use crate::db::Database;

/// Runs UntagResource.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = table_of_arn(db, &request)?;
    let keys = request.array("TagKeys")?.ok_or_else(|| missing("TagKeys"))?;
    let mut meta = table.meta.clone();
    for key in keys {
        let key = key.as_str().ok_or_else(|| ApiError::Serialization("TagKeys must be a list of strings".into()))?;
        meta.tags.remove(key);
    }
    db.update_table(meta)?;
    Ok(json!({}))
}
