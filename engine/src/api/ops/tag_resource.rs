//! TagResource: adds or replaces tags on a table, named by its ARN.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::api::common::{missing, Request};
use crate::api::{ApiError, TAGS_MAX, TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX};
use crate::catalog::TableMeta;
use crate::db::{Database, Table};

/// Runs TagResource.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = table_of_arn(db, &request)?;
    let list = request.array("Tags")?.ok_or_else(|| missing("Tags"))?;
    let mut meta = table.meta.clone();
    apply_tags(&mut meta.tags, list)?;
    db.update_table(meta)?;
    Ok(json!({}))
}

/// The table a request's `ResourceArn` names.
pub fn table_of_arn(db: &Database, request: &Request) -> Result<std::sync::Arc<Table>, ApiError> {
    let arn = request.required_str("ResourceArn")?;
    let name = TableMeta::name_from_arn(arn).ok_or_else(|| ApiError::validation(format!("Invalid TableArn: {arn}")))?;
    db.table(name)
        .map_err(|_| ApiError::ResourceNotFound(format!("Requested resource not found: ResourcArn: {arn} not found")))
}

/// Adds `[{"Key": .., "Value": ..}]` to `tags`, enforcing DynamoDB's tag limits.
pub fn apply_tags(tags: &mut BTreeMap<String, String>, list: &[Value]) -> Result<(), ApiError> {
    for entry in list {
        let entry = Request::sub(entry, "Tags")?;
        let key = entry.required_str("Key")?;
        let value = entry.required_str("Value")?;
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > TAG_KEY_CHARS_MAX {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{key}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and {TAG_KEY_CHARS_MAX}"
            )));
        }
        if value.chars().count() > TAG_VALUE_CHARS_MAX {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to {TAG_VALUE_CHARS_MAX}"
            )));
        }
        if key.starts_with("aws:") {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: Tag keys may not start with the reserved prefix aws:",
            ));
        }
        tags.insert(key.to_string(), value.to_string());
    }
    if tags.len() > TAGS_MAX {
        return Err(ApiError::LimitExceeded(format!(
            "One or more parameter values were invalid: A resource may have at most {TAGS_MAX} tags"
        )));
    }
    Ok(())
}
