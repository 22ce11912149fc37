//! Query: the items of one partition key, in sort-key order, optionally within a sort-key
//! range, from the table or a secondary index. One storage range scan per page.

use serde_json::Value;

use crate::api::common::{expression_context, refuse_legacy, CapacityDetail, Request};
use crate::api::ops::projection_paths;
use crate::api::read::{index_for, limit, read_page, select_for, start_after, ReadPlan};
use crate::api::ApiError;
use crate::catalog::KeySchema;
use crate::db::{keys, Database};
use crate::expr::{parse_condition, parse_key_condition, ConditionKind, ExprContext, KeyCondition, SortKeyCondition};
use crate::model::{encode_key_prefix, AttributeValue, ScalarType};
use crate::storage::Direction;

/// Runs Query.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    refuse_legacy(&request, &["KeyConditions", "QueryFilter", "ConditionalOperator"])?;
    let (index, consistent) = index_for(&request, &table)?;
    let schema = index.map(|i| &i.key_schema).unwrap_or(&table.meta.key_schema);
    let index_id = index.map(|i| i.id).unwrap_or(keys::TABLE_INDEX_ID);
    let (mut context, condition) = key_condition(&request, schema)?;
    let filter = request
        .str("FilterExpression")?
        .map(|text| parse_condition(text, &mut context, ConditionKind::Filter))
        .transpose()?;
    if let Some(filter) = &filter {
        // DynamoDB applies key conditions before the filter and refuses to filter on keys.
        for path in filter.paths() {
            if schema.contains(path.top()) {
                return Err(ApiError::validation(format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    path.top()
                )));
            }
        }
    }
    let paths = projection_paths(&request, &mut context)?;
    context.finish()?;
    let select = select_for(&request, &table, index, paths.is_some())?;
    let capacity = CapacityDetail::from_request(&request)?;
    let limit = limit(&request)?;
    let forward = request.bool("ScanIndexForward")?.unwrap_or(true);

    let (lower, upper) = key_range(table.meta.id, index_id, schema, &condition)?;
    let start_after = start_after(
        &request,
        &table,
        index,
        &lower,
        &upper,
        "The provided starting key is outside query boundaries based on provided conditions",
    )?;
    let plan = ReadPlan {
        table: &table,
        index,
        lower,
        upper,
        start_after,
        direction: if forward { Direction::Forward } else { Direction::Reverse },
        limit,
        filter,
        paths,
        select,
        consistent,
    };
    let page = read_page(db, plan)?;
    Ok(page.to_json(&table.meta.name, capacity, select))
}

fn type_mismatch() -> ApiError {
    ApiError::validation(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
    )
}

fn check_type(value: &AttributeValue, kind: ScalarType) -> Result<(), ApiError> {
    if ScalarType::of(value) == Some(kind) {
        Ok(())
    } else {
        Err(type_mismatch())
    }
}

fn successor(bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    keys::prefix_successor(bytes).ok_or_else(|| ApiError::Internal("key range without an upper bound".into()))
}

/// The storage key range `[lower, upper)` a key condition selects.
pub fn key_range(
    table_id: u64,
    index_id: u16,
    schema: &KeySchema,
    condition: &KeyCondition,
) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    check_type(&condition.partition_value, schema.partition.kind)?;
    let prefix = keys::partition_prefix(table_id, index_id, &condition.partition_value);
    let with = |value: &AttributeValue| {
        let mut key = prefix.clone();
        key.extend_from_slice(&keys::encode_value(value));
        key
    };
    let Some(sort_condition) = &condition.sort else {
        return Ok((prefix.clone(), successor(&prefix)?));
    };
    let sort = schema.sort.as_ref().ok_or_else(|| ApiError::validation("Query key condition not supported"))?;
    Ok(match sort_condition {
        SortKeyCondition::Eq(v) => {
            check_type(v, sort.kind)?;
            (with(v), successor(&with(v))?)
        }
        SortKeyCondition::Lt(v) => {
            check_type(v, sort.kind)?;
            (prefix.clone(), with(v))
        }
        SortKeyCondition::Le(v) => {
            check_type(v, sort.kind)?;
            (prefix.clone(), successor(&with(v))?)
        }
        SortKeyCondition::Gt(v) => {
            check_type(v, sort.kind)?;
            (successor(&with(v))?, successor(&prefix)?)
        }
        SortKeyCondition::Ge(v) => {
            check_type(v, sort.kind)?;
            (with(v), successor(&prefix)?)
        }
        SortKeyCondition::Between(low, high) => {
            check_type(low, sort.kind)?;
            check_type(high, sort.kind)?;
            (with(low), successor(&with(high))?)
        }
        SortKeyCondition::BeginsWith(v) => {
            check_type(v, sort.kind)?;
            let mut start = prefix.clone();
            encode_key_prefix(&mut start, v);
            let end = successor(&start)?;
            (start, end)
        }
    })
}

/// The partition-key value a Query reads, when it reads one partition of the table: queries of
/// the table and of its local indexes. `None` for a global index, whose entries for one key
/// are spread over the table's partitions. Errors are the Query's own validation errors.
pub fn routing_value(db: &Database, body: &[u8]) -> Result<Option<AttributeValue>, ApiError> {
    let request = crate::api::common::parse_body(body)?;
    let table = db.table(request.table_name()?)?;
    let (index, _) = index_for(&request, &table)?;
    if index.is_some_and(|i| i.kind == crate::catalog::IndexKind::Global) {
        return Ok(None);
    }
    let schema = index.map(|i| &i.key_schema).unwrap_or(&table.meta.key_schema);
    let (_, condition) = key_condition(&request, schema)?;
    Ok(Some(condition.partition_value))
}

/// The expression context of a Query and its parsed key condition.
fn key_condition(request: &Request, schema: &KeySchema) -> Result<(ExprContext, KeyCondition), ApiError> {
    let mut context =
        expression_context(request, &["KeyConditionExpression", "FilterExpression", "ProjectionExpression"])?;
    let key_text = request.str("KeyConditionExpression")?.ok_or_else(|| {
        ApiError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        )
    })?;
    let condition = parse_key_condition(
        key_text,
        &mut context,
        &schema.partition.name,
        schema.sort.as_ref().map(|s| s.name.as_str()),
    )?;
    Ok((context, condition))
}
