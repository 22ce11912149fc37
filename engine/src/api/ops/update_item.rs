//! UpdateItem: edits an item with an update expression (creating it when absent), optionally
//! under a condition.

use serde_json::Value;

use crate::api::common::{
    expression_context, key_field, refuse_legacy, return_old_on_condition_failure, CapacityDetail, Request,
};
use crate::api::write::{conditional_write, refuse_key_updates};
use crate::api::ApiError;
use crate::db::Database;
use crate::expr::{parse_condition, parse_update, project, ConditionKind};
use crate::model::Item;

/// Runs UpdateItem.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    refuse_legacy(&request, &["Expected", "ConditionalOperator", "AttributeUpdates"])?;
    let key = key_field(&table.meta, &request)?;
    let return_values = request
        .choice("ReturnValues", &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"], "NONE")?
        .to_string();
    let capacity = CapacityDetail::from_request(&request)?;
    let metrics = request.choice("ReturnItemCollectionMetrics", &["SIZE", "NONE"], "NONE")? == "SIZE";
    let return_old_on_failure = return_old_on_condition_failure(&request)?;
    let mut context = expression_context(&request, &["ConditionExpression", "UpdateExpression"])?;
    let update = request.str("UpdateExpression")?.map(|text| parse_update(text, &mut context)).transpose()?;
    let condition = request
        .str("ConditionExpression")?
        .map(|text| parse_condition(text, &mut context, ConditionKind::Condition))
        .transpose()?;
    context.finish()?;
    let paths = update.as_ref().map(|u| u.paths()).unwrap_or_default();
    refuse_key_updates(&table, &paths)?;
    let outcome = conditional_write(db, &table, &key, condition.as_ref(), return_old_on_failure, |old| {
        let base = old.cloned().unwrap_or_else(|| key.clone());
        let new = match &update {
            Some(update) => update.apply(&base)?,
            None => base,
        };
        Ok(Some(new))
    })?;

    let empty = Item::new();
    let attributes = match return_values.as_str() {
        "ALL_OLD" => outcome.old.clone(),
        "ALL_NEW" => outcome.new.clone(),
        "UPDATED_OLD" => Some(project(outcome.old.as_ref().unwrap_or(&empty), &paths)),
        "UPDATED_NEW" => Some(project(outcome.new.as_ref().unwrap_or(&empty), &paths)),
        _ => None,
    };
    Ok(outcome.response(&table, &key, attributes.as_ref(), capacity, metrics))
}
