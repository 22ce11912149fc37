//! Capacity enforcement: admits or refuses each data-plane request against a node's token
//! buckets, and charges what admitted requests really consumed. This is the part of
//! enforcement that reads a clock (`tokio::time::Instant`, simulated under madsim); the
//! buckets and the rules are pure (`crate::capacity`), and what a request claims is planned
//! from its JSON in [`plan`].
//!
//! The flow of one request:
//! 1. [`Throttle::admit`] plans the request, admits its parts (each part's lower-bound units are
//!    taken) or refuses it with DynamoDB's error. A batch is admitted item by item: refused
//!    items are cut from the request and come back to the client as unprocessed.
//! 2. The caller runs the (possibly cut) request inside `scope::measure`, which collects the
//!    consumption every operation reports.
//! 3. [`Throttle::settle`] charges that consumption against the buckets (the difference from
//!    what admission took may be a debt), and adds the unprocessed items to the answer. A
//!    request that failed without consuming is refunded; a failed condition keeps its charge,
//!    as DynamoDB charges for it. A request that never ran is given back with
//!    [`Throttle::abandon`].
//!
//! Buckets are node-local, in memory, and not replicated: a restarted node, or a new partition
//! leader, starts with full buckets.

pub mod plan;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};

use self::plan::{Placing, Plan, Planned, Shape};
use crate::api::ApiError;
use crate::capacity::share::{Board, Demand, Shares};
use crate::capacity::{Access, BucketKey, Buckets, Grant, Limit, Part, Placement, Quota, Sizing, Slot, Usage};
use crate::catalog::{BillingMode, TableMeta};
use crate::cluster::routing;
use crate::db::Database;
use crate::partition::HashRange;

/// A node's capacity enforcement.
pub struct Throttle {
    state: Mutex<State>,
    /// The shares of table-wide limits the demand reports give this node (in a cluster),
    /// replaced whole once per demand interval, so that requests plan against them without
    /// holding the buckets' lock.
    shares: Mutex<Arc<Shares>>,
    quota: Quota,
    epoch: tokio::time::Instant,
}

/// What enforcement keeps under one lock: the buckets, and in a cluster the demand reports.
#[derive(Debug, Default)]
struct State {
    buckets: Buckets,
    board: Board,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("buckets", &self.lock().buckets.len()).finish()
    }
}

/// The outcome of admission.
#[derive(Debug)]
pub enum Admission {
    /// Not subject to capacity (a control-plane request, or one the operation will refuse as
    /// malformed): run it as it is.
    Free,
    /// Admitted, perhaps only in part: run the ticket's request, then settle the ticket.
    Admitted(Ticket),
    /// Refused: answer with this error.
    Refused(ApiError),
}

/// An admitted request, to be settled once it has run.
#[derive(Debug)]
pub struct Ticket {
    grant: Grant,
    parts: Vec<Part>,
    /// The request to run instead of the one received, when some batch items were refused.
    body: Option<Vec<u8>>,
    /// The refused batch items: the answer's field and its value per table.
    unprocessed: Option<(&'static str, Map<String, Value>)>,
}

impl Ticket {
    /// The request to run instead of the one received, if admission cut it.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new()
    }
}

impl Throttle {
    /// Enforcement with DynamoDB's default quotas and no buckets yet; each is created full on
    /// first use.
    pub fn new() -> Throttle {
        Throttle::with_quota(Quota::default())
    }

    /// Enforcement with the per-table quotas `quota`.
    pub fn with_quota(quota: Quota) -> Throttle {
        Throttle {
            state: Mutex::new(State::default()),
            shares: Mutex::new(Arc::new(Shares::new())),
            quota,
            epoch: tokio::time::Instant::now(),
        }
    }

    /// The per-table quotas enforced.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.epoch)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shares in force now.
    fn shares(&self) -> Arc<Shares> {
        self.shares.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Number of buckets kept (they are tied to the tables that exist).
    pub fn bucket_count(&self) -> usize {
        self.lock().buckets.len()
    }

    /// Admits `operation` with request `body` against the buckets of `db`'s tables, placed by
    /// `placement` (see [`whole_table`] and [`Placement::Share`]).
    pub fn admit(
        &self,
        db: &Database,
        operation: &str,
        body: &[u8],
        placement: &dyn Fn(&TableMeta, Option<u64>) -> Placement,
    ) -> Admission {
        let Ok(request) = serde_json::from_slice::<Value>(body) else { return Admission::Free };
        let shares = self.shares();
        let placing = Placing { placement, sizing: Sizing { quota: self.quota, shares: Some(&shares) } };
        let Some(plan) = plan::plan(db, operation, &request, body, &placing) else { return Admission::Free };
        let parts: Vec<Part> = plan.parts.iter().map(|p| p.part.clone()).collect();
        let now = self.now();
        let buckets = &mut self.lock().buckets;
        match plan.shape {
            Shape::Single | Shape::Transaction => match buckets.admit_all(now, &parts) {
                Ok(grant) => Admission::Admitted(Ticket { grant, parts, body: None, unprocessed: None }),
                Err(refusal) => {
                    let refused = &plan.parts[refusal.part];
                    if plan.shape == Shape::Single {
                        return Admission::Refused(refusal_error(refused.billing, &refusal.key.limit));
                    }
                    let mut reasons = vec![json!({"Code": "None"}); plan.parts.len()];
                    reasons[refusal.part] = cancellation_reason(refused.billing, &refusal.key.limit);
                    Admission::Refused(crate::api::ops::transact_write_items::cancelled_with(reasons))
                }
            },
            Shape::BatchWrite | Shape::BatchGet => {
                let (grant, refusals) = buckets.admit_each(now, &parts);
                let Some(first) = refusals.first() else {
                    return Admission::Admitted(Ticket { grant, parts, body: None, unprocessed: None });
                };
                if grant.admitted.is_empty() {
                    // DynamoDB answers a batch none of whose items could run with the error
                    // rather than an answer of nothing but unprocessed items.
                    return Admission::Refused(refusal_error(plan.parts[first.part].billing, &first.key.limit));
                }
                let refused: Vec<usize> = refusals.iter().map(|r| r.part).collect();
                let (cut, unprocessed) = cut_batch(&request, &plan, &refused);
                let body = serde_json::to_vec(&cut).ok();
                let field = if plan.shape == Shape::BatchWrite { "UnprocessedItems" } else { "UnprocessedKeys" };
                Admission::Admitted(Ticket { grant, parts, body, unprocessed: Some((field, unprocessed)) })
            }
        }
    }

    /// Charges what an admitted request consumed (`usage`, from `scope::measure` around it)
    /// and returns its answer with the refused batch items added as unprocessed.
    pub fn settle(&self, ticket: Ticket, result: Result<Value, ApiError>, usage: &Usage) -> Result<Value, ApiError> {
        let now = self.now();
        {
            let buckets = &mut self.lock().buckets;
            match &result {
                Ok(_) => buckets.settle(now, &ticket.grant, &ticket.parts, usage),
                // DynamoDB charges a write whose condition failed, and a cancelled transaction.
                Err(ApiError::ConditionalCheckFailed { .. } | ApiError::TransactionCanceled { .. }) => {}
                Err(_) => buckets.refund(now, &ticket.grant),
            }
        }
        let mut value = result?;
        if let Some((field, unprocessed)) = ticket.unprocessed {
            merge_unprocessed(&mut value, field, unprocessed);
        }
        Ok(value)
    }

    /// Gives back what an admitted request took when it never ran (it reached a replica that
    /// is not the partition's leader, for instance).
    pub fn abandon(&self, ticket: Ticket) {
        let now = self.now();
        self.lock().buckets.refund(now, &ticket.grant);
    }

    /// Brings the buckets in line with `db`'s catalog after it changed: a changed capacity
    /// applies from now (UpdateTable takes effect at once), and the buckets of tables and
    /// indexes that no longer exist go, as do those of partitions a table is no longer divided
    /// into (`partitions` gives each table's current count, `None` when unknown). Buckets live
    /// only as long as what they limit.
    pub fn follow_catalog(&self, db: &Database, partitions: &dyn Fn(&TableMeta) -> Option<u32>) {
        let tables = tables_by_id(db);
        let shares = self.shares();
        let sizing = Sizing { quota: self.quota, shares: Some(&shares) };
        let now = self.now();
        self.lock().buckets.follow(now, |key: &BucketKey| {
            let meta = tables.get(&key.table_id)?;
            if key.slot.is_some_and(|slot| partitions(meta).is_some_and(|count| count != slot.count)) {
                return None;
            }
            crate::capacity::settings(meta, key, &sizing)
        });
    }

    /// Ends a demand interval of `interval`: what this node's partition shares were asked for
    /// since the last call, per second — the report to send to every other node. It also goes
    /// on this node's own board, and the shares are divided afresh from the board (reports
    /// older than `report_age_max` dropped) with the tables of `db`.
    pub fn end_demand_interval(
        &self,
        me: u64,
        db: &Database,
        interval: Duration,
        report_age_max: Duration,
    ) -> Vec<Demand> {
        let seconds = interval.as_secs_f64().max(1e-3);
        let now = self.now();
        let mut state = self.lock();
        let demands: Vec<Demand> = state
            .buckets
            .take_demand()
            .into_iter()
            .filter_map(|(key, units)| {
                Some(Demand {
                    table_id: key.table_id,
                    access: key.access,
                    slot: key.slot?,
                    units_per_s: units / seconds,
                })
            })
            .collect();
        state.board.record(me, now, demands.clone());
        state.board.expire(now, report_age_max);
        let tables = tables_by_id(db);
        let mut shares = Shares::new();
        shares.recompute(me, &state.board, |table_id, access| {
            tables.get(&table_id).map(|meta| crate::capacity::table_rate(meta, access, &self.quota))
        });
        drop(state);
        *self.shares.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(shares);
        demands
    }

    /// Records another node's demand report (see [`Throttle::end_demand_interval`]).
    pub fn record_demand(&self, from: u64, demands: Vec<Demand>) {
        let now = self.now();
        self.lock().board.record(from, now, demands);
    }

    /// The fraction of table `table_id`'s `access` limit this node's bucket for `slot`
    /// enforces now.
    pub fn share_of(&self, table_id: u64, access: Access, slot: Slot) -> f64 {
        self.shares().fraction(table_id, access, slot)
    }
}

/// Every table of `db`'s catalog, by id.
fn tables_by_id(db: &Database) -> std::collections::BTreeMap<u64, TableMeta> {
    db.table_names().iter().filter_map(|n| db.table(n).ok()).map(|t| (t.meta.id, t.meta.clone())).collect()
}

/// Partitions a single node divides a table into for the per-partition limit: DynamoDB's rule
/// on the table's current throughput. The partitions are only buckets here, so the count
/// follows UpdateTable at once, both ways.
pub fn whole_table_partitions(meta: &TableMeta) -> u32 {
    let count = routing::initial_partition_count(meta, None);
    u32::try_from(count).unwrap_or(u32::MAX).max(1)
}

/// The partition of `count` equal hash ranges that holds `hash`.
pub fn slot_of(hash: u64, count: u32) -> Slot {
    let count = count.max(1);
    // The even split's boundaries are floor(i * 2^64 / count); start from the estimate and
    // step to the range that really holds the hash.
    let mut index = ((u128::from(hash) * u128::from(count)) >> 64) as u64;
    index = index.min(u64::from(count) - 1);
    while index > 0 && hash < HashRange::even(index, u64::from(count)).start() {
        index -= 1;
    }
    while index + 1 < u64::from(count) && !HashRange::even(index, u64::from(count)).contains(hash) {
        index += 1;
    }
    Slot { index: index as u32, count }
}

/// How a single node places a table's limits: whole, with a part addressed to a partition key
/// also drawing on the partition the key falls in.
pub fn whole_table(meta: &TableMeta, hash: Option<u64>) -> Placement {
    Placement::Whole { slot: hash.map(|h| slot_of(h, whole_table_partitions(meta))) }
}

/// The error for a request refused by a bucket enforcing `limit` on a table billed as
/// `billing`: provisioned tables answer ProvisionedThroughputExceeded (worded for the index
/// when a global index refused), on-demand tables ThrottlingException.
fn refusal_error(billing: BillingMode, limit: &Limit) -> ApiError {
    match (billing, limit) {
        (BillingMode::Provisioned, Limit::Index(_)) => ApiError::index_throughput_exceeded(),
        (BillingMode::Provisioned, _) => ApiError::table_throughput_exceeded(),
        (BillingMode::PayPerRequest, _) => ApiError::on_demand_throttled(),
    }
}

/// The cancellation reason of a transaction action refused for capacity.
fn cancellation_reason(billing: BillingMode, limit: &Limit) -> Value {
    let error = refusal_error(billing, limit);
    let code = match error {
        ApiError::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceeded",
        _ => "ThrottlingError",
    };
    json!({"Code": code, "Message": error.to_string()})
}

/// Splits a batch request into the request of its admitted items and the refused items, per
/// table, in DynamoDB's unprocessed form (write requests as sent; keys with their table's read
/// settings).
fn cut_batch(request: &Value, plan: &Plan, refused: &[usize]) -> (Value, Map<String, Value>) {
    let refused_positions: std::collections::BTreeSet<(String, usize)> =
        refused.iter().filter_map(|i| plan.parts.get(*i)).filter_map(|p: &Planned| p.position.clone()).collect();
    let mut kept_tables = Map::new();
    let mut unprocessed = Map::new();
    let tables = request.get("RequestItems").and_then(Value::as_object).cloned().unwrap_or_default();
    for (name, entry) in tables {
        let (list, spec) = match plan.shape {
            Shape::BatchGet => (entry.get("Keys").and_then(Value::as_array).cloned().unwrap_or_default(), Some(entry)),
            _ => (entry.as_array().cloned().unwrap_or_default(), None),
        };
        let (mut kept, mut left) = (Vec::new(), Vec::new());
        for (position, element) in list.into_iter().enumerate() {
            if refused_positions.contains(&(name.clone(), position)) {
                left.push(element);
            } else {
                kept.push(element);
            }
        }
        let wrap = |elements: Vec<Value>| match &spec {
            Some(spec) => {
                let mut spec = spec.clone();
                spec["Keys"] = Value::Array(elements);
                spec
            }
            None => Value::Array(elements),
        };
        if !kept.is_empty() {
            kept_tables.insert(name.clone(), wrap(kept));
        }
        if !left.is_empty() {
            unprocessed.insert(name, wrap(left));
        }
    }
    let mut cut = request.clone();
    cut["RequestItems"] = Value::Object(kept_tables);
    (cut, unprocessed)
}

/// Adds refused batch items to an answer's unprocessed field, after any the operation left.
fn merge_unprocessed(answer: &mut Value, field: &str, unprocessed: Map<String, Value>) {
    let Some(answer) = answer.as_object_mut() else { return };
    let target = answer.entry(field.to_string()).or_insert_with(|| json!({}));
    let Some(target) = target.as_object_mut() else { return };
    for (table, more) in unprocessed {
        let joined = match (target.get_mut(&table), &more) {
            (Some(Value::Array(existing)), Value::Array(items)) => {
                existing.extend(items.iter().cloned());
                true
            }
            (Some(Value::Object(existing)), Value::Object(spec)) => {
                if let (Some(Value::Array(keys)), Some(Value::Array(more_keys))) =
                    (existing.get_mut("Keys"), spec.get("Keys"))
                {
                    keys.extend(more_keys.iter().cloned());
                }
                true
            }
            _ => false,
        };
        if !joined {
            target.insert(table, more);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_even_split_of_the_hash_space() {
        for count in [1u32, 2, 3, 4, 7, 64] {
            for hash in [0u64, 1, u64::MAX / 3, u64::MAX / 2, (u64::MAX / 3) * 2 + 1, u64::MAX - 1, u64::MAX] {
                let slot = slot_of(hash, count);
                assert_eq!(slot.count, count);
                assert!(
                    HashRange::even(u64::from(slot.index), u64::from(count)).contains(hash),
                    "hash {hash} of {count}: {slot:?}"
                );
            }
        }
    }

    #[test]
    fn unprocessed_items_join_those_the_operation_left() {
        let mut answer = json!({"UnprocessedKeys": {"a": {"Keys": [{"k": 1}], "ConsistentRead": true}}});
        let more = json!({"a": {"Keys": [{"k": 2}]}, "b": {"Keys": [{"k": 3}]}});
        merge_unprocessed(&mut answer, "UnprocessedKeys", more.as_object().cloned().unwrap());
        assert_eq!(answer["UnprocessedKeys"]["a"]["Keys"], json!([{"k": 1}, {"k": 2}]));
        assert_eq!(answer["UnprocessedKeys"]["a"]["ConsistentRead"], json!(true));
        assert_eq!(answer["UnprocessedKeys"]["b"]["Keys"], json!([{"k": 3}]));
        let mut answer = json!({});
        merge_unprocessed(&mut answer, "UnprocessedItems", json!({"t": [1]}).as_object().cloned().unwrap());
        assert_eq!(answer, json!({"UnprocessedItems": {"t": [1]}}));
    }

    #[test]
    fn refusals_get_dynamodb_errors_by_billing_mode() {
        let provisioned = refusal_error(BillingMode::Provisioned, &Limit::Partition);
        assert_eq!(provisioned.to_string(), crate::api::error::TABLE_THROUGHPUT_EXCEEDED);
        assert!(matches!(provisioned, ApiError::ProvisionedThroughputExceeded(_)));
        let index = refusal_error(BillingMode::Provisioned, &Limit::Index("g".into()));
        assert_eq!(index.to_string(), crate::api::error::INDEX_THROUGHPUT_EXCEEDED);
        let on_demand = refusal_error(BillingMode::PayPerRequest, &Limit::Partition);
        assert!(matches!(on_demand, ApiError::Throttling(_)));
        assert_eq!(cancellation_reason(BillingMode::PayPerRequest, &Limit::OnDemand)["Code"], "ThrottlingError");
        assert_eq!(
            cancellation_reason(BillingMode::Provisioned, &Limit::Provisioned)["Code"],
            "ProvisionedThroughputExceeded"
        );
    }
}
