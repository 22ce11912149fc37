//! What a request asks of capacity: its parts — table, partition key, read or write, the units
//! it costs at least — and, for a batch, where each part sits in the request, so that refused
//! items can be handed back as unprocessed.
//!
//! Planning never refuses a request for being malformed: whatever it cannot make sense of (no
//! such table, a missing key, a duplicate item in a batch) is left unplanned, and the operation
//! itself answers with DynamoDB's validation error.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::capacity::limits::{claims, Part, Placement, Sizing, Target};
use crate::capacity::{self, Access};
use crate::catalog::{key_type_matches, BillingMode, IndexKind, TableMeta};
use crate::cluster::routing;
use crate::db::{keys, Database};
use crate::model::{item_from_json, item_size_bytes, AttributeValue, Item};

/// Where a node enforces a table's limits, given a part's partition-key hash (if it has one),
/// and how large it makes their buckets.
#[derive(Clone, Copy)]
pub struct Placing<'a> {
    /// Where each part's limits are enforced.
    pub placement: &'a dyn Fn(&TableMeta, Option<u64>) -> Placement,
    /// The quotas and shares that size the buckets.
    pub sizing: Sizing<'a>,
}

/// How a plan places its parts.
pub type PlacementOf<'a> = &'a Placing<'a>;

/// How a request's parts are admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Every part or none: a single-item request, a Query or Scan page.
    Single,
    /// Every part or none, refusals reported per action: TransactWriteItems, TransactGetItems.
    Transaction,
    /// Part by part; refused items come back in `UnprocessedItems`.
    BatchWrite,
    /// Part by part; refused keys come back in `UnprocessedKeys`.
    BatchGet,
}

/// One planned part.
#[derive(Clone, Debug)]
pub struct Planned {
    /// What the part claims.
    pub part: Part,
    /// The table's billing mode, which decides the error a refusal gets.
    pub billing: BillingMode,
    /// For a batch item: its table's name and its position in that table's list.
    pub position: Option<(String, usize)>,
}

/// A request's parts and how they are admitted.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How the parts are admitted.
    pub shape: Shape,
    /// The parts, in request order.
    pub parts: Vec<Planned>,
}

/// Plans a data-plane request; `None` for anything not subject to capacity (control-plane
/// operations) or not well formed enough to plan.
pub fn plan(db: &Database, operation: &str, request: &Value, body: &[u8], placement: PlacementOf<'_>) -> Option<Plan> {
    let single = |parts: Vec<Planned>| Some(Plan { shape: Shape::Single, parts });
    match operation {
        "GetItem" => {
            let meta = meta(db, request)?;
            let hash = Some(key_hash(&meta, request.get("Key")?)?);
            single(vec![planned(&meta, placement, hash, Access::Read, Target::Table, read_floor(request), None)])
        }
        "PutItem" => {
            let meta = meta(db, request)?;
            let item = request.get("Item")?;
            let hash = Some(key_hash(&meta, item)?);
            let units = put_units(item)?;
            single(vec![planned(&meta, placement, hash, Access::Write, Target::Table, units, None)])
        }
        "UpdateItem" | "DeleteItem" => {
            let meta = meta(db, request)?;
            let hash = Some(key_hash(&meta, request.get("Key")?)?);
            single(vec![planned(&meta, placement, hash, Access::Write, Target::Table, 1.0, None)])
        }
        "Query" => {
            let meta = meta(db, request)?;
            let units = read_floor(request);
            match global_index(&meta, request)? {
                Some(index) => single(vec![planned_unkeyed(&meta, placement, Target::GlobalIndex(&index), units)]),
                None => {
                    let value = crate::api::ops::query::routing_value(db, body).ok()??;
                    let hash = Some(routing::hash_of(&value));
                    single(vec![planned(&meta, placement, hash, Access::Read, Target::Table, units, None)])
                }
            }
        }
        "Scan" => {
            let meta = meta(db, request)?;
            let index = global_index(&meta, request)?;
            let target = index.as_deref().map_or(Target::Table, Target::GlobalIndex);
            single(vec![planned_unkeyed(&meta, placement, target, read_floor(request))])
        }
        "BatchWriteItem" => batch_write(db, request, placement),
        "BatchGetItem" => batch_get(db, request, placement),
        "TransactWriteItems" | "TransactGetItems" => transaction(db, operation, request, placement),
        _ => None,
    }
}

/// The table a request names.
fn meta(db: &Database, request: &Value) -> Option<TableMeta> {
    let name = request.get("TableName")?.as_str()?;
    db.table(name).ok().map(|t| t.meta.clone())
}

/// The partition-key hash of an item or key, `None` (not plannable) without a usable key: a
/// missing one, or one of a type the schema does not declare (only key types hash).
fn key_hash(meta: &TableMeta, item: &Value) -> Option<u64> {
    let value = AttributeValue::from_json(item.get(&meta.key_schema.partition.name)?).ok()?;
    key_type_matches(&meta.key_schema.partition, &value).then(|| routing::hash_of(&value))
}

/// The storage key of an item or key, which tells duplicates in a batch apart.
fn storage_key(meta: &TableMeta, item: &Value) -> Option<Vec<u8>> {
    let item: Item = item_from_json(item).ok()?;
    let key = meta.key_of(&item)?;
    Some(keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &key))
}

/// What a put costs: its item is known, so its size is. `None` (not plannable) for an item
/// beyond the item size limit: the operation refuses it with a validation error, which must
/// not be hidden behind a refusal for capacity (a client would retry it).
fn put_units(item: &Value) -> Option<f64> {
    put_bytes(item).map(|bytes| capacity::write_units_for_item(bytes as u64))
}

/// The size of an item to put, when it is within the item size limit.
fn put_bytes(item: &Value) -> Option<usize> {
    let item = item_from_json(item).ok()?;
    let bytes = item_size_bytes(&item);
    (bytes <= crate::api::ITEM_BYTES_MAX).then_some(bytes)
}

/// The least a read costs: one item of at most 4 KB.
fn read_floor(request: &Value) -> f64 {
    let consistent = request.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
    capacity::read_units_for_item(0, consistent)
}

/// The global index a Query or Scan reads: `Some(None)` for the table or a local index, `None`
/// for an index the table does not have (the operation reports it).
fn global_index(meta: &TableMeta, request: &Value) -> Option<Option<String>> {
    match request.get("IndexName") {
        None => Some(None),
        Some(name) => {
            let index = meta.index(name.as_str()?)?;
            Some((index.kind == IndexKind::Global).then(|| index.name.clone()))
        }
    }
}

fn planned(
    meta: &TableMeta,
    placement: PlacementOf<'_>,
    hash: Option<u64>,
    access: Access,
    target: Target<'_>,
    units: f64,
    position: Option<(String, usize)>,
) -> Planned {
    let claims = claims(meta, (placement.placement)(meta, hash), access, target, units, &placement.sizing);
    Planned { part: Part { table: meta.name.clone(), access, units, claims }, billing: meta.billing_mode, position }
}

/// A read not addressed to one partition key: a Scan, a Query of a global index.
fn planned_unkeyed(meta: &TableMeta, placement: PlacementOf<'_>, target: Target<'_>, units: f64) -> Planned {
    planned(meta, placement, None, Access::Read, target, units, None)
}

fn batch_write(db: &Database, request: &Value, placement: PlacementOf<'_>) -> Option<Plan> {
    let mut parts = Vec::new();
    for (name, writes) in request.get("RequestItems")?.as_object()? {
        let meta = db.table(name).ok()?.meta.clone();
        let mut seen = BTreeSet::new();
        for (position, write) in writes.as_array()?.iter().enumerate() {
            let (item, units) = match (write.get("PutRequest"), write.get("DeleteRequest")) {
                (Some(put), None) => {
                    let item = put.get("Item")?;
                    (item, put_units(item)?)
                }
                (None, Some(delete)) => (delete.get("Key")?, 1.0),
                _ => return None,
            };
            if !seen.insert(storage_key(&meta, item)?) {
                return None;
            }
            let hash = Some(key_hash(&meta, item)?);
            let position = Some((name.clone(), position));
            parts.push(planned(&meta, placement, hash, Access::Write, Target::Table, units, position));
        }
    }
    (!parts.is_empty()).then_some(Plan { shape: Shape::BatchWrite, parts })
}

fn batch_get(db: &Database, request: &Value, placement: PlacementOf<'_>) -> Option<Plan> {
    let mut parts = Vec::new();
    for (name, spec) in request.get("RequestItems")?.as_object()? {
        let meta = db.table(name).ok()?.meta.clone();
        let units = read_floor(spec);
        let mut seen = BTreeSet::new();
        for (position, key) in spec.get("Keys")?.as_array()?.iter().enumerate() {
            if !seen.insert(storage_key(&meta, key)?) {
                return None;
            }
            let hash = Some(key_hash(&meta, key)?);
            let position = Some((name.clone(), position));
            parts.push(planned(&meta, placement, hash, Access::Read, Target::Table, units, position));
        }
    }
    (!parts.is_empty()).then_some(Plan { shape: Shape::BatchGet, parts })
}

/// Transactional reads and writes cost twice their plain counterparts.
const TRANSACTION_FACTOR: f64 = 2.0;

fn transaction(db: &Database, operation: &str, request: &Value, placement: PlacementOf<'_>) -> Option<Plan> {
    let mut parts = Vec::new();
    // Beyond the transaction size limit the operation's validation error answers.
    let mut put_bytes_total = 0usize;
    for action in request.get("TransactItems")?.as_array()? {
        let action = action.as_object()?;
        if action.len() != 1 {
            return None;
        }
        let (kind, spec) = action.iter().next()?;
        let meta = meta(db, spec)?;
        let planned_part = match (operation, kind.as_str()) {
            ("TransactGetItems", "Get") => {
                let hash = Some(key_hash(&meta, spec.get("Key")?)?);
                let units = TRANSACTION_FACTOR * capacity::read_units_for_item(0, true);
                planned(&meta, placement, hash, Access::Read, Target::Table, units, None)
            }
            ("TransactWriteItems", "Put") => {
                let item = spec.get("Item")?;
                let hash = Some(key_hash(&meta, item)?);
                let bytes = put_bytes(item)?;
                put_bytes_total += bytes;
                if put_bytes_total > crate::api::TRANSACT_BYTES_MAX {
                    return None;
                }
                let units = TRANSACTION_FACTOR * capacity::write_units_for_item(bytes as u64);
                planned(&meta, placement, hash, Access::Write, Target::Table, units, None)
            }
            ("TransactWriteItems", "Update" | "Delete" | "ConditionCheck") => {
                let hash = Some(key_hash(&meta, spec.get("Key")?)?);
                planned(&meta, placement, hash, Access::Write, Target::Table, TRANSACTION_FACTOR, None)
            }
            _ => return None,
        };
        parts.push(planned_part);
    }
    (!parts.is_empty()).then_some(Plan { shape: Shape::Transaction, parts })
}
