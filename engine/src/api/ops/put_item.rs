//! PutItem: creates or replaces an item, optionally under a condition.

use serde_json::Value;

use crate::api::common::{
    expression_context, item_field, missing, refuse_legacy, return_old_on_condition_failure, CapacityDetail, Request,
};
use crate::api::write::conditional_write;
use crate::api::ApiError;
use crate::db::Database;
use crate::expr::{parse_condition, ConditionKind};

/// Runs PutItem.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    refuse_legacy(&request, &["Expected", "ConditionalOperator"])?;
    let item = item_field(&request, "Item")?.ok_or_else(|| missing("Item"))?;
    let return_values =
        request.choice("ReturnValues", &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"], "NONE")?;
    if return_values != "NONE" && return_values != "ALL_OLD" {
        return Err(ApiError::validation("ReturnValues can only be ALL_OLD or NONE"));
    }
    let capacity = CapacityDetail::from_request(&request)?;
    let metrics = request.choice("ReturnItemCollectionMetrics", &["SIZE", "NONE"], "NONE")? == "SIZE";
    let return_old_on_failure = return_old_on_condition_failure(&request)?;
    let mut context = expression_context(&request, &["ConditionExpression"])?;
    let condition = request
        .str("ConditionExpression")?
        .map(|text| parse_condition(text, &mut context, ConditionKind::Condition))
        .transpose()?;
    context.finish()?;
    crate::api::common::validate_item(&table.meta, &item)?;
    let key = table.meta.key_of(&item).ok_or_else(|| ApiError::Internal("validated item has no key".into()))?;
    let outcome = conditional_write(db, &table, &key, condition.as_ref(), return_old_on_failure, |_| Ok(Some(item)))?;

    let attributes = if return_values == "ALL_OLD" { outcome.old.as_ref() } else { None };
    Ok(outcome.response(&table, &key, attributes, capacity, metrics))
}
