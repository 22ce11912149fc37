//! Transactions across partitions: two-phase commit with the first participant as the primary,
//! whose outcome record decides the transaction (as in Percolator).
//!
//! 1. **Prepare**, in every participant's group: the participant's part of the request is
//!    evaluated without writing (conditions, updates, validation); if it would succeed, the
//!    items are locked (`04 <item key>` → transaction id) and a transaction record
//!    (`05 <group> <txid>`) keeps the part. Locked items refuse other writes
//!    (TransactionConflict) but stay readable at their committed value.
//! 2. **Commit**, primary first: the part is run for real (the locks guarantee the same
//!    outcome as at prepare), the locks and record are removed and an outcome marker
//!    (`06 <group> <txid>` = committed) is left. Once the primary has committed, the
//!    transaction has committed; the other participants follow.
//! 3. **Abort** removes locks and record and leaves an aborted marker, which also refuses a
//!    prepare that arrives late.
//!
//! If the coordinating router fails midway, each participant's leader finds records older than
//! [`TXN_TIMEOUT_MS`] and resolves them: the primary aborts unless it has committed; another
//! participant asks the primary for the outcome (which aborts an undecided primary) and follows
//! it. Every step is a replicated log entry, so every replica makes the same decisions.

use serde_json::{json, Value};

use crate::api::idempotency::{self, ClientToken, Previous};
use crate::api::ops::transact_write_items::{action_keys, cancelled_with};
use crate::api::{ApiError, Service};
use crate::db::{keys, Database};
use crate::scope::{with_scope, CallScope};

/// A prepared transaction whose coordinator has not finished it after this long is resolved
/// by the participants.
pub const TXN_TIMEOUT_MS: u64 = 5_000;

/// Internal operation names, replicated through partition logs like API requests.
pub const PREPARE: &str = "Squall.TxPrepare";
/// See [`PREPARE`].
pub const COMMIT: &str = "Squall.TxCommit";
/// See [`PREPARE`].
pub const ABORT: &str = "Squall.TxAbort";
/// See [`PREPARE`].
pub const RESOLVE: &str = "Squall.TxResolve";

const RECORD_PREFIX: u8 = 0x05;
const OUTCOME_PREFIX: u8 = 0x06;
const COMMITTED: &[u8] = b"c";
const ABORTED: &[u8] = b"a";

/// Whether `operation` is one of the internal transaction operations.
pub fn is_internal(operation: &str) -> bool {
    operation.starts_with("Squall.Tx")
}

fn record_key(group: u64, txid: u64) -> Vec<u8> {
    let mut key = vec![RECORD_PREFIX];
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(&txid.to_be_bytes());
    key
}

/// The key range of `group`'s transaction records.
pub fn record_range(group: u64) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![RECORD_PREFIX];
    start.extend_from_slice(&group.to_be_bytes());
    let end = keys::prefix_successor(&start).unwrap_or_else(|| vec![RECORD_PREFIX + 1]);
    (start, end)
}

/// The key range of `group`'s transaction outcome markers.
pub fn outcome_range(group: u64) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![OUTCOME_PREFIX];
    start.extend_from_slice(&group.to_be_bytes());
    let end = keys::prefix_successor(&start).unwrap_or_else(|| vec![OUTCOME_PREFIX + 1]);
    (start, end)
}

/// The outcome markers of `group`: transaction id and marker.
pub fn outcomes(db: &Database, group: u64) -> Result<Vec<(u64, Vec<u8>)>, crate::storage::StorageError> {
    let (start, end) = outcome_range(group);
    let pairs = db.store().scan(
        std::ops::Bound::Included(start.as_slice()),
        std::ops::Bound::Excluded(end.as_slice()),
        crate::storage::Direction::Forward,
        usize::MAX,
    )?;
    Ok(pairs
        .into_iter()
        .filter_map(|(key, value)| {
            let txid = key.get(start.len()..).and_then(|t| <[u8; 8]>::try_from(t).ok()).map(u64::from_be_bytes)?;
            Some((txid, value))
        })
        .collect())
}

/// The key of `group`'s outcome marker of transaction `txid`.
pub fn outcome_key(group: u64, txid: u64) -> Vec<u8> {
    let mut key = vec![OUTCOME_PREFIX];
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(&txid.to_be_bytes());
    key
}

/// A participant's record of a prepared transaction.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TxnRecord {
    /// Transaction id.
    pub txid: u64,
    /// The group whose outcome decides the transaction.
    pub primary: u64,
    /// The participant's part: a TransactWriteItems body.
    pub request: Value,
    /// Storage keys of the locked items.
    pub keys: Vec<Vec<u8>>,
    /// When the prepare was applied (the proposer's clock).
    pub prepared_at_ms: u64,
    /// The whole transaction's client request token, kept by the primary, which writes its
    /// record when it commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ClientToken>,
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    ApiError::from(e)
}

fn read_record(db: &Database, group: u64, txid: u64) -> Result<Option<TxnRecord>, ApiError> {
    match db.store().get(&record_key(group, txid)).map_err(storage)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::Internal(format!("transaction record {txid}: {e}"))),
        None => Ok(None),
    }
}

/// Up to `limit` stored records of `group`'s prepared transactions, in key order.
fn record_pairs(db: &Database, group: u64, limit: usize) -> Result<Vec<crate::storage::KvPair>, ApiError> {
    let (start, end) = record_range(group);
    db.store()
        .scan(
            std::ops::Bound::Included(start.as_slice()),
            std::ops::Bound::Excluded(end.as_slice()),
            crate::storage::Direction::Forward,
            limit,
        )
        .map_err(storage)
}

/// Whether `group` holds any prepared transaction's record.
pub fn has_records(db: &Database, group: u64) -> Result<bool, ApiError> {
    Ok(!record_pairs(db, group, 1)?.is_empty())
}

/// The records of `group`'s prepared transactions (for the resolver: a failed read finds none
/// this round).
pub fn records(db: &Database, group: u64) -> Vec<TxnRecord> {
    let pairs = record_pairs(db, group, 1024).unwrap_or_default();
    pairs.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v).ok()).collect()
}

fn outcome(db: &Database, group: u64, txid: u64) -> Result<Option<Vec<u8>>, ApiError> {
    db.store().get(&outcome_key(group, txid)).map_err(storage)
}

fn txid_of(body: &Value) -> Result<u64, ApiError> {
    body.get("TxId").and_then(Value::as_u64).ok_or_else(|| ApiError::validation("TxId is required"))
}

/// The current scope with changes: nested calls keep the apply's batch extras and durability.
fn scope_with(change: impl FnOnce(&mut CallScope)) -> CallScope {
    let mut scope = crate::scope::current(|s| s.cloned()).unwrap_or_default();
    change(&mut scope);
    scope
}

/// Applies one internal transaction operation to `group`'s state. Runs inside the apply's
/// scope (applied index, buffered durability, the proposer's clock).
pub fn apply(service: &Service, group: u64, operation: &str, body: &[u8], now_ms: u64) -> Result<Value, ApiError> {
    let db = service.database();
    let body: Value = serde_json::from_slice(body).map_err(|e| ApiError::Serialization(e.to_string()))?;
    let txid = txid_of(&body)?;
    match operation {
        PREPARE => prepare(service, db, group, txid, &body, now_ms),
        COMMIT => commit(service, db, group, txid),
        ABORT => abort(db, group, txid),
        RESOLVE => match outcome(db, group, txid)?.as_deref() {
            Some(COMMITTED) => Ok(json!({"State": "committed"})),
            _ => {
                abort(db, group, txid)?;
                Ok(json!({"State": "aborted"}))
            }
        },
        other => Err(ApiError::UnknownOperation(format!("Unknown operation: {other}"))),
    }
}

fn prepare(
    service: &Service,
    db: &Database,
    group: u64,
    txid: u64,
    body: &Value,
    now_ms: u64,
) -> Result<Value, ApiError> {
    match outcome(db, group, txid)?.as_deref() {
        Some(ABORTED) => return Err(ApiError::transaction_conflict()),
        Some(_) => return Ok(json!({"Prepared": true})),
        None => {}
    }
    if read_record(db, group, txid)?.is_some() {
        return Ok(json!({"Prepared": true}));
    }
    let primary =
        body.get("Primary").and_then(Value::as_u64).ok_or_else(|| ApiError::validation("Primary is required"))?;
    let request = body.get("Request").cloned().ok_or_else(|| ApiError::validation("Request is required"))?;
    let request_bytes = serde_json::to_vec(&request).unwrap_or_default();
    let keys = action_keys(db, &request_bytes)?;
    let token: Option<ClientToken> = match body.get("Token") {
        Some(value) => {
            Some(serde_json::from_value(value.clone()).map_err(|e| ApiError::Serialization(format!("Token: {e}")))?)
        }
        None => None,
    };
    if let (Some(token), Some((table_id, hash))) = (&token, keys.first().and_then(|k| keys::table_and_hash_of(k))) {
        match idempotency::look_up(db, table_id, hash, token, now_ms)? {
            Previous::Same => return Ok(json!({"Replayed": true})),
            Previous::Different => return Err(idempotency::mismatch()),
            Previous::Unknown => {}
        }
        // Another attempt with the token, prepared and not yet finished (a client's retry
        // while its first call is still under way), keeps its primary's record here.
        // (Read so that a failed read stops the replica, as every read of an apply must,
        // rather than letting it decide otherwise than the others.)
        let prepared = record_pairs(db, group, usize::MAX)?;
        let same_token =
            |record: TxnRecord| record.txid != txid && record.token.is_some_and(|t| t.token == token.token);
        if prepared.iter().filter_map(|(_, value)| serde_json::from_slice(value).ok()).any(same_token) {
            return Err(idempotency::in_progress());
        }
    }
    // Evaluate everything without writing; another transaction's lock cancels it.
    let dry = scope_with(|s| {
        s.dry_run = true;
        s.txid = Some(txid);
    });
    with_scope(dry, || service.call("TransactWriteItems", &request_bytes))?;
    let record = TxnRecord { txid, primary, request, keys: keys.clone(), prepared_at_ms: now_ms, token };
    let mut puts: Vec<(Vec<u8>, Vec<u8>)> =
        keys.iter().map(|k| (keys::lock_key(k), txid.to_be_bytes().to_vec())).collect();
    puts.push((record_key(group, txid), serde_json::to_vec(&record).unwrap_or_default()));
    db.write_records(puts, Vec::new()).map_err(storage)?;
    Ok(json!({"Prepared": true}))
}

fn commit(service: &Service, db: &Database, group: u64, txid: u64) -> Result<Value, ApiError> {
    match outcome(db, group, txid)?.as_deref() {
        Some(COMMITTED) => return Ok(json!({})),
        Some(_) => return Err(ApiError::transaction_conflict()),
        None => {}
    }
    let Some(record) = read_record(db, group, txid)? else {
        return Err(ApiError::Internal(format!("transaction {txid} is not prepared in group {group}")));
    };
    let request_bytes = serde_json::to_vec(&record.request).unwrap_or_default();
    let own = scope_with(|s| {
        s.txid = Some(txid);
        s.client_token = record.token.clone();
    });
    let result = with_scope(own, || service.call("TransactWriteItems", &request_bytes));
    // The locks kept the items as they were at prepare, so this cannot fail for the request's
    // sake; if the store fails, the transaction is finished as aborted rather than left locked.
    let marker = if result.is_ok() { COMMITTED } else { ABORTED };
    if let Err(error) = &result {
        tracing::error!(txid, group, %error, "prepared transaction failed to commit");
    }
    release(db, group, &record, marker)?;
    result
}

fn abort(db: &Database, group: u64, txid: u64) -> Result<Value, ApiError> {
    if outcome(db, group, txid)?.as_deref() == Some(COMMITTED) {
        return Err(ApiError::Internal(format!("transaction {txid} already committed in group {group}")));
    }
    match read_record(db, group, txid)? {
        Some(record) => release(db, group, &record, ABORTED)?,
        None => db.write_records(vec![(outcome_key(group, txid), ABORTED.to_vec())], Vec::new()).map_err(storage)?,
    }
    Ok(json!({"Aborted": true}))
}

fn release(db: &Database, group: u64, record: &TxnRecord, marker: &[u8]) -> Result<(), ApiError> {
    let mut deletes: Vec<Vec<u8>> = record.keys.iter().map(|k| keys::lock_key(k)).collect();
    deletes.push(record_key(group, record.txid));
    db.write_records(vec![(outcome_key(group, record.txid), marker.to_vec())], deletes).map_err(storage)
}

/// Maps a participant's cancellation reasons (for its part's actions) onto the whole request's
/// actions; actions of other participants get `None`.
pub fn full_reasons(total: usize, positions: &[usize], error: &ApiError) -> Option<ApiError> {
    let ApiError::TransactionCanceled { reasons, .. } = error else { return None };
    let mut all = vec![json!({"Code": "None"}); total];
    for (reason, position) in reasons.iter().zip(positions) {
        all[*position] = reason.clone();
    }
    Some(cancelled_with(all))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::idempotency::request_hash;
    use crate::partition::HashRange;
    use crate::storage::MemStore;

    #[test]
    fn a_primary_refuses_a_token_in_progress_and_replays_one_committed() {
        let service = Service::new(Arc::new(Database::open(Arc::new(MemStore::new())).unwrap()));
        let create = json!({"TableName": "txns", "BillingMode": "PAY_PER_REQUEST",
                            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]});
        service.call("CreateTable", create.to_string().as_bytes()).unwrap();
        let part = |key: &str| {
            json!({"TransactItems": [{"Update": {"TableName": "txns", "Key": {"pk": {"S": key}},
                   "UpdateExpression": "ADD hits :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}]})
        };
        let token = |request: &Value| ClientToken {
            token: "retry-me".into(),
            request_hash: request_hash(request.as_object().unwrap()),
        };
        // A partition's application scope: its (whole) range and the proposer's clock.
        let scope = CallScope { hash_range: HashRange::new(0, None), now_ms: Some(1_000), ..CallScope::default() };
        let call = |operation: &str, body: Value| {
            with_scope(scope.clone(), || apply(&service, 7, operation, body.to_string().as_bytes(), 1_000))
        };
        let prepare = |txid: u64, request: &Value| {
            call(PREPARE, json!({"TxId": txid, "Primary": 7, "Request": request, "Token": token(request)}))
        };
        let request = part("a");
        assert_eq!(prepare(1, &request).unwrap(), json!({"Prepared": true}));
        // A second attempt while the first is prepared is told it is in progress.
        let error = prepare(2, &request).unwrap_err();
        assert!(matches!(error, ApiError::TransactionInProgress(_)), "{error}");
        call(ABORT, json!({"TxId": 2})).unwrap();
        call(COMMIT, json!({"TxId": 1})).unwrap();
        // Once committed, the same call is replayed without running, another one refused.
        assert_eq!(prepare(3, &request).unwrap(), json!({"Replayed": true}));
        let mut other = part("a");
        other["TransactItems"][0]["Update"]["ExpressionAttributeValues"][":one"] = json!({"N": "2"});
        let error = prepare(4, &other).unwrap_err();
        assert!(matches!(error, ApiError::IdempotentParameterMismatch(_)), "{error}");
        let get = json!({"TableName": "txns", "Key": {"pk": {"S": "a"}}});
        assert_eq!(service.call("GetItem", get.to_string().as_bytes()).unwrap()["Item"]["hits"], json!({"N": "1"}));
    }
}
