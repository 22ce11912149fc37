//! Scan: every item of the table or an index, in hash order, with parallel segments that are
//! disjoint ranges of the partition-key hash space.

use serde_json::Value;

use crate::api::common::{expression_context, refuse_legacy, CapacityDetail, Request};
use crate::api::ops::projection_paths;
use crate::api::read::{index_for, limit, read_page, select_for, start_after, ReadPlan};
use crate::api::ApiError;
use crate::db::{keys, Database};
use crate::expr::{parse_condition, ConditionKind};
use crate::storage::Direction;

/// Most segments of a parallel scan.
pub const TOTAL_SEGMENTS_MAX: i64 = 1_000_000;

/// Runs Scan.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let table = db.table(request.table_name()?)?;
    refuse_legacy(&request, &["ScanFilter", "ConditionalOperator"])?;
    let (index, consistent) = index_for(&request, &table)?;
    let index_id = index.map(|i| i.id).unwrap_or(keys::TABLE_INDEX_ID);
    let mut context = expression_context(&request, &["FilterExpression", "ProjectionExpression"])?;
    let filter = request
        .str("FilterExpression")?
        .map(|text| parse_condition(text, &mut context, ConditionKind::Filter))
        .transpose()?;
    let paths = projection_paths(&request, &mut context)?;
    context.finish()?;
    let select = select_for(&request, &table, index, paths.is_some())?;
    let capacity = CapacityDetail::from_request(&request)?;
    let limit = limit(&request)?;
    let (segment, total) = segments(&request)?;

    let prefix = keys::index_prefix(table.meta.id, index_id);
    let end_of_index =
        keys::prefix_successor(&prefix).ok_or_else(|| ApiError::Internal("index prefix has no successor".into()))?;
    let mut lower = prefix.clone();
    lower.extend_from_slice(&keys::segment_start_hash(segment, total).to_be_bytes());
    let upper = if segment + 1 == total {
        end_of_index
    } else {
        let mut upper = prefix.clone();
        upper.extend_from_slice(&keys::segment_start_hash(segment + 1, total).to_be_bytes());
        upper
    };
    let start_after = start_after(
        &request,
        &table,
        index,
        &lower,
        &upper,
        "The provided Exclusive start key does not map to the provided segment",
    )?;
    // A partition's scope narrows the walk to its slice of the hash space.
    let (lower, upper) = match crate::scope::hash_range() {
        Some(range) if index.is_none_or(|i| i.kind != crate::catalog::IndexKind::Global) => {
            let mut scope_lower = prefix.clone();
            scope_lower.extend_from_slice(&range.start().to_be_bytes());
            let scope_upper = match range.end() {
                Some(end) => {
                    let mut key = prefix.clone();
                    key.extend_from_slice(&end.to_be_bytes());
                    key
                }
                None => upper.clone(),
            };
            (lower.max(scope_lower), upper.min(scope_upper))
        }
        _ => (lower, upper),
    };
    let upper = upper.max(lower.clone());
    let plan = ReadPlan {
        table: &table,
        index,
        lower,
        upper,
        start_after,
        direction: Direction::Forward,
        limit,
        filter,
        paths,
        select,
        consistent,
    };
    let page = read_page(db, plan)?;
    Ok(page.to_json(&table.meta.name, capacity, select))
}

/// Decodes `Segment` and `TotalSegments` (both or neither).
fn segments(request: &Request) -> Result<(u64, u64), ApiError> {
    match (request.int("Segment")?, request.int("TotalSegments")?) {
        (None, None) => Ok((0, 1)),
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(segment), Some(total)) => {
            if !(1..=TOTAL_SEGMENTS_MAX).contains(&total) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{total}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                    if total < 1 { "greater than or equal to 1".to_string() } else { format!("less than or equal to {TOTAL_SEGMENTS_MAX}") }
                )));
            }
            if segment < 0 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{segment}' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0"
                )));
            }
            if segment >= total {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
                )));
            }
            Ok((segment as u64, total as u64))
        }
    }
}
