//! The paged range read shared by Query and Scan: walk a byte range of the table or an index
//! in chunks, stop at `Limit` entries evaluated or 1 MB read, filter, project, and compute
//! `LastEvaluatedKey`.

use std::ops::Bound;

use serde_json::{json, Map, Value};

use super::common::{item_field, CapacityDetail, Consumed, Request};
use super::{ApiError, PAGE_BYTES_MAX};
use crate::capacity;
use crate::catalog::{IndexKind, IndexMeta, Projection};
use crate::db::{keys, Database, Table, SCAN_CHUNK_ENTRIES};
use crate::expr::{project, Condition, Path, PathElement};
use crate::model::{item_size_bytes, item_to_json, Item, ScalarType};
use crate::storage::Direction;

/// What a Query or Scan returns per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Every attribute of the item (from the table for a local index).
    AllAttributes,
    /// The attributes projected into the index.
    AllProjected,
    /// The attributes named by the projection.
    Specific,
    /// Only the count.
    Count,
}

/// A planned read over one key range.
pub struct ReadPlan<'a> {
    /// The table read.
    pub table: &'a Table,
    /// The index read, if not the table itself.
    pub index: Option<&'a IndexMeta>,
    /// Inclusive lower bound of the storage keys.
    pub lower: Vec<u8>,
    /// Exclusive upper bound of the storage keys.
    pub upper: Vec<u8>,
    /// Storage key to resume after (`ExclusiveStartKey`).
    pub start_after: Option<Vec<u8>>,
    /// Key order.
    pub direction: Direction,
    /// Most entries to evaluate.
    pub limit: Option<usize>,
    /// `FilterExpression`.
    pub filter: Option<Condition>,
    /// `ProjectionExpression`.
    pub paths: Option<Vec<Path>>,
    /// What to return.
    pub select: Select,
    /// Strongly consistent read.
    pub consistent: bool,
}

/// Decodes `Select`, `ProjectionExpression` and index projection rules into a `Select`.
pub fn select_for(
    request: &Request,
    table: &Table,
    index: Option<&IndexMeta>,
    has_projection: bool,
) -> Result<Select, ApiError> {
    let text = request.choice(
        "Select",
        &["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT"],
        "",
    )?;
    let select = match text {
        "ALL_ATTRIBUTES" => Select::AllAttributes,
        "ALL_PROJECTED_ATTRIBUTES" => Select::AllProjected,
        "SPECIFIC_ATTRIBUTES" => Select::Specific,
        "COUNT" => Select::Count,
        _ if has_projection => Select::Specific,
        _ if index.is_some() => Select::AllProjected,
        _ => Select::AllAttributes,
    };
    if has_projection && select != Select::Specific {
        return Err(ApiError::validation(format!(
            "Cannot specify the AttributesToGet or ProjectionExpression when choosing to get {text}"
        )));
    }
    if select == Select::Specific && !has_projection {
        return Err(ApiError::validation(
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
        ));
    }
    match (select, index) {
        (Select::AllProjected, None) => Err(ApiError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        (Select::AllAttributes, Some(index)) if index.kind == IndexKind::Global && index.projection != Projection::All => {
            Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                index.name
            )))
        }
        _ => {
            let _ = table;
            Ok(select)
        }
    }
}

/// Resolves `IndexName` and `ConsistentRead` for a read.
pub fn index_for<'a>(request: &Request, table: &'a Table) -> Result<(Option<&'a IndexMeta>, bool), ApiError> {
    let consistent = request.bool("ConsistentRead")?.unwrap_or(false);
    let index = match request.str("IndexName")? {
        None => None,
        Some(name) => Some(
            table
                .meta
                .index(name)
                .ok_or_else(|| ApiError::validation(format!("The table does not have the specified index: {name}")))?,
        ),
    };
    if consistent && index.is_some_and(|i| i.kind == IndexKind::Global) {
        return Err(ApiError::validation("Consistent reads are not supported on global secondary indexes"));
    }
    Ok((index, consistent))
}

/// Decodes `ExclusiveStartKey` into the storage key to resume after.
pub fn start_key(
    request: &Request,
    table: &Table,
    index: Option<&IndexMeta>,
) -> Result<Option<(Item, Vec<u8>)>, ApiError> {
    let Some(start) = item_field(request, "ExclusiveStartKey")? else {
        return Ok(None);
    };
    let meta = &table.meta;
    let invalid = || {
        ApiError::validation("The provided starting key is invalid: The provided key element does not match the schema")
    };
    let mut expected: Vec<(String, ScalarType)> =
        meta.key_schema.attributes().map(|a| (a.name.clone(), a.kind)).collect();
    if let Some(index) = index {
        for attribute in index.key_schema.attributes() {
            if !expected.iter().any(|(n, _)| n == &attribute.name) {
                expected.push((attribute.name.clone(), attribute.kind));
            }
        }
    }
    if start.len() != expected.len() {
        return Err(invalid());
    }
    for (name, kind) in &expected {
        match start.get(name) {
            Some(value) if ScalarType::of(value) == Some(*kind) => {}
            _ => return Err(invalid()),
        }
    }
    let key = match index {
        None => keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &start),
        Some(index) => keys::entry_key(meta.id, index.id, &index.key_schema, Some(&meta.key_schema), &start),
    };
    Ok(Some((start, key)))
}

/// `ExclusiveStartKey` as the storage key to resume after, refused with `outside` when it lies
/// outside `[lower, upper)`, the range the request reads.
pub fn start_after(
    request: &Request,
    table: &Table,
    index: Option<&IndexMeta>,
    lower: &[u8],
    upper: &[u8],
    outside: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    match start_key(request, table, index)? {
        Some((_, key)) if key.as_slice() < lower || key.as_slice() >= upper => Err(ApiError::validation(outside)),
        Some((_, key)) => Ok(Some(key)),
        None => Ok(None),
    }
}

/// The result of one page.
pub struct ReadPage {
    /// Items that passed the filter, projected (empty for COUNT).
    pub items: Vec<Item>,
    /// Items that passed the filter.
    pub count: usize,
    /// Entries evaluated.
    pub scanned_count: usize,
    /// Key to resume from, when the page stopped early.
    pub last_evaluated_key: Option<Item>,
    /// Capacity consumed.
    pub consumed: Consumed,
    /// Every entry evaluated, in reading order, when the scope asks for them
    /// (`scope::report_evaluated`): its key, whether it matched, its size.
    pub evaluated: Option<Vec<Value>>,
}

/// The response field listing a page's evaluated entries (see `scope::report_evaluated`).
pub const EVALUATED_FIELD: &str = "SquallEvaluated";

impl ReadPage {
    /// The Query/Scan response body.
    pub fn to_json(&self, table_name: &str, detail: CapacityDetail, select: Select) -> Value {
        let mut response = Map::new();
        if select != Select::Count {
            response.insert("Items".into(), Value::Array(self.items.iter().map(item_to_json).collect()));
        }
        response.insert("Count".into(), json!(self.count));
        response.insert("ScannedCount".into(), json!(self.scanned_count));
        if let Some(key) = &self.last_evaluated_key {
            response.insert("LastEvaluatedKey".into(), item_to_json(key));
        }
        if let Some(consumed) = self.consumed.report(table_name, detail, false) {
            response.insert("ConsumedCapacity".into(), consumed);
        }
        if let Some(evaluated) = &self.evaluated {
            response.insert(EVALUATED_FIELD.into(), Value::Array(evaluated.clone()));
        }
        Value::Object(response)
    }
}

/// True when a path names only attributes the index projects (so no table read is needed).
fn projected_by(index: &IndexMeta, table: &Table, path: &Path) -> bool {
    match (&index.projection, path.0.first()) {
        (Projection::All, _) => true,
        (_, Some(PathElement::Attribute(name))) => {
            table.meta.key_schema.contains(name)
                || index.key_schema.contains(name)
                || matches!(&index.projection, Projection::Include(names) if names.contains(name))
        }
        _ => false,
    }
}

/// Runs a planned read for one page.
pub fn read_page(db: &Database, plan: ReadPlan<'_>) -> Result<ReadPage, ApiError> {
    let meta = &plan.table.meta;
    // A local index whose projection lacks what the request needs reads the item from the table,
    // as DynamoDB does (and charges for it).
    let fetch_from_table = match plan.index {
        Some(index) if index.kind == IndexKind::Local && index.projection != Projection::All => match plan.select {
            Select::AllAttributes => true,
            Select::Specific => {
                plan.paths.iter().flatten().any(|p| !projected_by(index, plan.table, p)) || plan.filter.is_some()
            }
            _ => false,
        },
        _ => false,
    };
    let mut page = ReadPage {
        items: Vec::new(),
        count: 0,
        scanned_count: 0,
        last_evaluated_key: None,
        consumed: Consumed::default(),
        evaluated: crate::scope::report_evaluated().then(Vec::new),
    };
    let mut lower = plan.lower.clone();
    let mut upper = plan.upper.clone();
    let mut lower_excluded = false;
    let mut upper_excluded = true;
    if let Some(start) = &plan.start_after {
        match plan.direction {
            Direction::Forward => {
                if *start >= lower {
                    lower = start.clone();
                    lower_excluded = true;
                }
            }
            Direction::Reverse => {
                if *start < upper {
                    upper = start.clone();
                }
            }
        }
    }
    // Inside a partition's scope a global index holds entries of every partition this node
    // hosts; only those whose table item belongs to the partition are its to return.
    let scope_range = crate::scope::hash_range().filter(|_| plan.index.is_some_and(|i| i.kind == IndexKind::Global));
    let in_scope = |entry: &Item| match scope_range {
        None => true,
        Some(range) => entry
            .get(&meta.key_schema.partition.name)
            .is_some_and(|value| range.contains(keys::partition_hash(&keys::encode_value(value)))),
    };
    let mut bytes_read: u64 = 0;
    let mut table_bytes_read: u64 = 0;
    loop {
        let remaining = plan.limit.map(|l| l - page.scanned_count).unwrap_or(usize::MAX);
        let chunk_limit = remaining.min(SCAN_CHUNK_ENTRIES);
        if chunk_limit == 0 {
            break;
        }
        let lower_bound = if lower_excluded { Bound::Excluded(&lower[..]) } else { Bound::Included(&lower[..]) };
        let upper_bound = if upper_excluded { Bound::Excluded(&upper[..]) } else { Bound::Included(&upper[..]) };
        let entries = db.read_range(lower_bound, upper_bound, plan.direction, chunk_limit)?;
        let exhausted = entries.len() < chunk_limit;
        let mut last_key = None;
        for (storage_key, entry) in entries {
            if !in_scope(&entry) {
                last_key = Some(storage_key);
                continue;
            }
            page.scanned_count += 1;
            bytes_read += item_size_bytes(&entry) as u64;
            let stop = plan.limit.is_some_and(|l| page.scanned_count >= l) || bytes_read >= PAGE_BYTES_MAX;
            // The resume key comes from the entry as read, not from a table item that may have
            // changed since, so paging resumes exactly after this entry.
            let resume_key = stop.then(|| evaluated_key(plan.table, plan.index, &entry));
            // A router merging partitions' pages needs each evaluated entry's key and size.
            let listed = page
                .evaluated
                .is_some()
                .then(|| (item_to_json(&evaluated_key(plan.table, plan.index, &entry)), item_size_bytes(&entry)));
            let item = if fetch_from_table {
                let table_key =
                    meta.key_of(&entry).ok_or_else(|| ApiError::Internal("index entry without table key".into()))?;
                match db.get_item(plan.table, &table_key)? {
                    Some(item) => {
                        table_bytes_read += item_size_bytes(&item) as u64;
                        item
                    }
                    // The item went away between the index read and the table read.
                    None => entry,
                }
            } else {
                entry
            };
            let matched = plan.filter.as_ref().is_none_or(|f| f.evaluate(&item));
            if let (Some(evaluated), Some((key, size))) = (&mut page.evaluated, listed) {
                evaluated.push(json!({"Key": key, "Matched": matched, "Size": size}));
            }
            if matched {
                page.count += 1;
                if plan.select != Select::Count {
                    page.items.push(match &plan.paths {
                        Some(paths) => project(&item, paths),
                        None => item,
                    });
                }
            }
            if let Some(resume_key) = resume_key {
                page.last_evaluated_key = Some(resume_key);
                finish_capacity(&mut page, &plan, bytes_read, table_bytes_read, fetch_from_table);
                return Ok(page);
            }
            last_key = Some(storage_key);
        }
        match last_key {
            Some(key) if !exhausted => match plan.direction {
                Direction::Forward => {
                    lower = key;
                    lower_excluded = true;
                }
                Direction::Reverse => {
                    upper = key;
                    upper_excluded = true;
                }
            },
            _ => break,
        }
    }
    finish_capacity(&mut page, &plan, bytes_read, table_bytes_read, fetch_from_table);
    Ok(page)
}

fn finish_capacity(page: &mut ReadPage, plan: &ReadPlan<'_>, bytes_read: u64, table_bytes_read: u64, fetched: bool) {
    let units = capacity::read_units_for_range(bytes_read, plan.consistent);
    match plan.index {
        None => page.consumed.table_units += units,
        Some(index) => {
            page.consumed.charge_index(&plan.table.meta, &index.name, units);
            if fetched {
                page.consumed.table_units += capacity::read_units_for_range(table_bytes_read, plan.consistent);
            }
        }
    }
}

/// The `LastEvaluatedKey` of an entry: the table's key, plus the index's key for an index.
fn evaluated_key(table: &Table, index: Option<&IndexMeta>, entry: &Item) -> Item {
    let mut key = Item::new();
    let schemas = std::iter::once(&table.meta.key_schema).chain(index.map(|i| &i.key_schema));
    for schema in schemas {
        for attribute in schema.attributes() {
            if let Some(value) = entry.get(&attribute.name) {
                key.insert(attribute.name.clone(), value.clone());
            }
        }
    }
    key
}

/// Decodes `Limit` (at least 1).
pub fn limit(request: &Request) -> Result<Option<usize>, ApiError> {
    match request.int("Limit")? {
        None => Ok(None),
        Some(l) if l >= 1 => Ok(Some(l as usize)),
        Some(l) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
    }
}
