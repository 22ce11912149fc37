//! Idempotent TransactWriteItems: a request with a `ClientRequestToken` has the effect of one
//! call however often it is sent within ten minutes of its completion. A later call with the
//! same token and the same other parameters succeeds without writing again (reporting read
//! capacity, as DynamoDB does); one with different parameters is refused with
//! `IdempotentParameterMismatchException`.
//!
//! The record of a completed call (`keys::token_key`) is written in the same batch as the
//! call's items, so a call is remembered exactly when it took effect. A single node keeps every
//! token in one place (table id [`NODE_TABLE_ID`], under the token's own hash), so any reuse
//! of a token is found. In a cluster the record lives under the table and partition-key hash of
//! the request's first item, so the partition that owns that item owns it: it is replicated,
//! snapshotted and split with the item, and written atomically with the partition's part of the
//! call. There a repeat is found when its first item is the same, as any retry's is, and a
//! reuse of the token with another first item goes unnoticed.
//! Records older than [`TOKEN_WINDOW_MS`] count as absent and are deleted a few at a time by
//! later calls (at most [`EXPIRED_SWEEP_MAX`] each), within the calling partition's range.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::common::Request;
use crate::api::ApiError;
use crate::db::{keys, Database, RecordChange};
use crate::storage::Direction;

/// The table id under which a single node keeps its tokens (no table has it).
pub const NODE_TABLE_ID: u64 = 0;
/// How long a completed call's token is remembered.
pub const TOKEN_WINDOW_MS: u64 = 10 * 60 * 1000;
/// Longest client request token, in bytes.
pub const TOKEN_BYTES_MAX: usize = 36;
/// Expired token records one call looks at to delete.
pub const EXPIRED_SWEEP_MAX: usize = 16;

/// A call's client request token and the hash of its other parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientToken {
    /// The token.
    pub token: String,
    /// FNV-1a of the request without its token.
    pub request_hash: u64,
}

impl ClientToken {
    /// The token of `request` (a TransactWriteItems body), if it carries one, checked as
    /// DynamoDB checks it.
    pub fn of_request(request: &Request) -> Result<Option<ClientToken>, ApiError> {
        let Some(token) = request.str("ClientRequestToken")? else { return Ok(None) };
        if token.is_empty() || token.len() > TOKEN_BYTES_MAX {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must have length {}",
                if token.is_empty() { "greater than or equal to 1".to_string() } else { format!("less than or equal to {TOKEN_BYTES_MAX}") }
            )));
        }
        Ok(Some(ClientToken { token: token.to_string(), request_hash: request_hash(&request.0) }))
    }
}

/// Where a single node keeps `token`'s record: the FNV-1a hash of the token.
pub fn token_hash(token: &str) -> u64 {
    fnv(0xcbf2_9ce4_8422_2325, token.bytes())
}

fn fnv(mut hash: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a over the request's fields but its token, in key order: equal for requests that
/// differ only in their token or the order of their fields.
pub fn request_hash(request: &serde_json::Map<String, Value>) -> u64 {
    let mut fields: Vec<(&String, &Value)> = request.iter().filter(|(k, _)| *k != "ClientRequestToken").collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    fields.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, (name, value)| {
        fnv(hash, name.bytes().chain([0]).chain(canonical(value).bytes()).chain([0]))
    })
}

/// `value` as JSON text with every object's fields in key order.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> =
                fields.iter().map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v))).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// What is remembered of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// Nothing within the window: the call runs.
    Unknown,
    /// A completed call with the same parameters: this one succeeds without writing.
    Same,
    /// A completed call with other parameters: this one is refused.
    Different,
}

fn decode(value: &[u8]) -> Option<(u64, u64)> {
    let hash = u64::from_be_bytes(value.get(0..8)?.try_into().ok()?);
    let completed_ms = u64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some((hash, completed_ms))
}

fn expired(completed_ms: u64, now_ms: u64) -> bool {
    completed_ms.saturating_add(TOKEN_WINDOW_MS) <= now_ms
}

/// What table `table_id` remembers of `token` under partition-key hash `hash` at `now_ms`.
pub fn look_up(
    db: &Database,
    table_id: u64,
    hash: u64,
    token: &ClientToken,
    now_ms: u64,
) -> Result<Previous, ApiError> {
    let Some(value) = db.store().get(&keys::token_key(table_id, hash, &token.token))? else {
        return Ok(Previous::Unknown);
    };
    Ok(match decode(&value) {
        Some((_, completed_ms)) if expired(completed_ms, now_ms) => Previous::Unknown,
        Some((request_hash, _)) if request_hash == token.request_hash => Previous::Same,
        Some(_) => Previous::Different,
        // A record that does not decode is not one of ours: forget it.
        None => Previous::Unknown,
    })
}

/// The refusal of a call whose token a different call used.
pub fn mismatch() -> ApiError {
    ApiError::IdempotentParameterMismatch(
        "The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.".into(),
    )
}

/// The refusal of a call whose token a call still being carried out uses.
pub fn in_progress() -> ApiError {
    ApiError::TransactionInProgress("The transaction with the given request token is already in progress.".into())
}

/// The records a completed call writes with its items: its token's record, and the deletion
/// of expired records found next to it (within the current scope's hash range, if any).
pub fn records(
    db: &Database,
    table_id: u64,
    hash: u64,
    token: &ClientToken,
    now_ms: u64,
) -> Result<Vec<RecordChange>, ApiError> {
    let key = keys::token_key(table_id, hash, &token.token);
    let mut value = token.request_hash.to_be_bytes().to_vec();
    value.extend_from_slice(&now_ms.to_be_bytes());
    let mut out = vec![(key.clone(), Some(value))];
    let prefix = keys::token_table_prefix(table_id);
    let bound = |hash: u64| {
        let mut k = prefix.clone();
        k.extend_from_slice(&hash.to_be_bytes());
        k
    };
    let (start, end) = match crate::scope::hash_range() {
        Some(range) => (bound(range.start()), range.end().map(bound)),
        None => (prefix.clone(), None),
    };
    let end = end.unwrap_or_else(|| keys::prefix_successor(&prefix).expect("token prefix has a successor"));
    // From the new record onwards, then from the range's start: over many calls the sweep
    // passes every record.
    let after = db.store().scan(
        Bound::Excluded(key.as_slice()),
        Bound::Excluded(end.as_slice()),
        Direction::Forward,
        EXPIRED_SWEEP_MAX,
    )?;
    let rest = EXPIRED_SWEEP_MAX - after.len();
    let before = if rest > 0 {
        db.store().scan(Bound::Included(start.as_slice()), Bound::Excluded(key.as_slice()), Direction::Forward, rest)?
    } else {
        Vec::new()
    };
    for (old_key, old_value) in after.into_iter().chain(before) {
        if decode(&old_value).is_none_or(|(_, completed_ms)| expired(completed_ms, now_ms)) {
            out.push((old_key, None));
        }
    }
    Ok(out)
}

/// The answer to a call that repeats a completed one: nothing written, each item read (one
/// read unit per action, on its table) when capacity is asked for.
pub fn replayed_answer(request: &Request) -> Result<Value, ApiError> {
    let capacity = crate::api::common::CapacityDetail::from_request(request)?;
    let mut per_table: std::collections::BTreeMap<String, crate::api::common::Consumed> = Default::default();
    for action in request.array("TransactItems")?.unwrap_or(&Vec::new()) {
        let name = ["ConditionCheck", "Put", "Delete", "Update"]
            .iter()
            .find_map(|kind| action.get(kind)?.get("TableName")?.as_str())
            .unwrap_or_default();
        per_table.entry(name.to_string()).or_default().table_units += 1.0;
    }
    let reported: Vec<Value> = per_table.iter().filter_map(|(name, c)| c.report(name, capacity, false)).collect();
    let mut answer = serde_json::json!({});
    if capacity != crate::api::common::CapacityDetail::None {
        answer["ConsumedCapacity"] = Value::Array(reported);
    }
    Ok(answer)
}
