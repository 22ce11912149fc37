//! TransactWriteItems: up to 100 puts, updates, deletes and condition checks across tables,
//! all or nothing. Every partition key involved is locked, every condition is checked against
//! the current items, and the changes land in one synced batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::api::common::{
    expression_context, item_field, missing, return_old_on_condition_failure, validate_item, validate_key,
    CapacityDetail, Consumed, Request,
};
use crate::api::idempotency::{self, ClientToken, Previous};
use crate::api::ops::transact_get_items::check_count;
use crate::api::write::refuse_key_updates;
use crate::api::{ApiError, TRANSACT_BYTES_MAX};
use crate::capacity;
use crate::db::{keys, Database, ItemChange, Table};
use crate::expr::{parse_condition, parse_update, Condition, ConditionKind, UpdateExpression};
use crate::model::{item_size_bytes, item_to_json, Item};

enum Action {
    ConditionCheck,
    Put(Item),
    Delete,
    Update(Option<UpdateExpression>),
}

struct Planned {
    table: Arc<Table>,
    key: Item,
    action: Action,
    condition: Option<Condition>,
    return_old_on_failure: bool,
}

/// Checks a TransactWriteItems as running it would before it reads any item (its actions,
/// expressions, keys, size, token), and returns its client request token: what a cluster's
/// router does before a two-phase commit, whose parts alone could not see the whole request's
/// limits.
pub fn validate(db: &Database, request: &Request) -> Result<Option<ClientToken>, ApiError> {
    plan(db, request).map(|(_, _, token)| token)
}

/// The request's actions, validated, with its capacity detail and its own client request
/// token.
fn plan(db: &Database, request: &Request) -> Result<(Vec<Planned>, CapacityDetail, Option<ClientToken>), ApiError> {
    let actions = request.array("TransactItems")?.ok_or_else(|| missing("TransactItems"))?;
    check_count(actions.len())?;
    let capacity = CapacityDetail::from_request(request)?;
    request.choice("ReturnItemCollectionMetrics", &["SIZE", "NONE"], "NONE")?;
    let token = ClientToken::of_request(request)?;
    let mut planned = Vec::with_capacity(actions.len());
    let mut request_bytes = 0usize;
    for action in actions {
        let plan = plan_action(db, action)?;
        if let Action::Put(item) = &plan.action {
            request_bytes += item_size_bytes(item);
        }
        planned.push(plan);
    }
    if request_bytes > TRANSACT_BYTES_MAX {
        return Err(ApiError::validation("Transaction request size has exceeded the maximum allowed size of 4 MB"));
    }
    let mut seen = BTreeSet::new();
    for plan in &planned {
        let storage_key =
            keys::entry_key(plan.table.meta.id, keys::TABLE_INDEX_ID, &plan.table.meta.key_schema, None, &plan.key);
        if !seen.insert(storage_key) {
            return Err(ApiError::validation("Transaction request cannot include multiple operations on one item"));
        }
    }
    Ok((planned, capacity, token))
}

/// Runs TransactWriteItems.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let (planned, capacity, own_token) = plan(db, &request)?;
    // A part of a cross-partition transaction carries no token; its scope may give the whole's.
    let token = crate::scope::client_token().or(own_token);

    let partitions: Vec<_> =
        planned.iter().map(|p| (&*p.table, &p.key[&p.table.meta.key_schema.partition.name])).collect();
    let _guards = db.lock_partitions(&partitions);
    // Where the token's record lives (see `api::idempotency`): on a cluster's partition, with
    // the first item, under the same locks as the items; on a single node, in one place.
    let now_ms = crate::api::ops::create_table::now_ms();
    let token_home = match crate::scope::hash_range() {
        Some(_) => planned.first().and_then(|p| {
            let meta = &p.table.meta;
            keys::table_and_hash_of(&keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &p.key))
        }),
        None => token.as_ref().map(|t| (idempotency::NODE_TABLE_ID, idempotency::token_hash(&t.token))),
    };
    if let (Some(token), Some((table_id, hash))) = (&token, token_home) {
        match idempotency::look_up(db, table_id, hash, token, now_ms)? {
            Previous::Same => return idempotency::replayed_answer(&request),
            Previous::Different => return Err(idempotency::mismatch()),
            Previous::Unknown => {}
        }
    }
    // An item held by another cross-partition transaction cancels this one.
    let txid = crate::scope::txid();
    let mut conflicts = Vec::with_capacity(planned.len());
    for plan in &planned {
        let storage_key =
            keys::entry_key(plan.table.meta.id, keys::TABLE_INDEX_ID, &plan.table.meta.key_schema, None, &plan.key);
        conflicts.push(db.lock_holder(&storage_key)?.is_some_and(|holder| Some(holder) != txid));
    }
    if let Some(cancelled) = cancelled_by_conflicts(&conflicts) {
        return Err(cancelled);
    }
    let mut olds = Vec::with_capacity(planned.len());
    for plan in &planned {
        olds.push(db.get_item(&plan.table, &plan.key)?);
    }
    let mut news: Vec<Option<Option<Item>>> = Vec::with_capacity(planned.len());
    let mut reasons = Vec::with_capacity(planned.len());
    let mut cancelled = false;
    let empty = Item::new();
    for (plan, old) in planned.iter().zip(&olds) {
        if let Some(condition) = &plan.condition {
            if !condition.evaluate(old.as_ref().unwrap_or(&empty)) {
                let mut reason = json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                if let (true, Some(old)) = (plan.return_old_on_failure, old) {
                    reason["Item"] = item_to_json(old);
                }
                reasons.push(reason);
                news.push(None);
                cancelled = true;
                continue;
            }
        }
        let new = match &plan.action {
            Action::ConditionCheck => Ok(None),
            Action::Put(item) => Ok(Some(Some(item.clone()))),
            Action::Delete => Ok(Some(None)),
            Action::Update(update) => {
                let base = old.clone().unwrap_or_else(|| plan.key.clone());
                match update {
                    Some(update) => update.apply(&base).map(|item| Some(Some(item))).map_err(ApiError::from),
                    None => Ok(Some(Some(base))),
                }
            }
        };
        let new = new.and_then(|new| match &new {
            Some(Some(item)) => validate_item(&plan.table.meta, item).map(|_| new),
            _ => Ok(new),
        });
        match new {
            Ok(new) => {
                reasons.push(json!({"Code": "None"}));
                news.push(new);
            }
            Err(error) => {
                reasons.push(json!({"Code": "ValidationError", "Message": error.to_string()}));
                news.push(None);
                cancelled = true;
            }
        }
    }
    if cancelled {
        return Err(cancelled_with(reasons));
    }

    let mut changes = Vec::new();
    let mut change_of_plan = Vec::new();
    for (index, ((plan, old), new)) in planned.iter().zip(&olds).zip(&news).enumerate() {
        if let Some(new) = new {
            if old.is_some() || new.is_some() {
                changes.push(ItemChange { table: &plan.table, old: old.as_ref(), new: new.as_ref() });
                change_of_plan.push(index);
            }
        }
    }
    let records = match (&token, token_home) {
        (Some(token), Some((table_id, hash))) => idempotency::records(db, table_id, hash, token, now_ms)?,
        _ => Vec::new(),
    };
    let units = db.write_items_with_records(&changes, records)?;
    let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
    for (index, ((plan, old), new)) in planned.iter().zip(&olds).zip(&news).enumerate() {
        let size = |item: Option<&Item>| item.map(|i| item_size_bytes(i) as u64).unwrap_or(0);
        let new_size = new.as_ref().map(|n| size(n.as_ref())).unwrap_or(0);
        let entry = consumed.entry(plan.table.meta.name.clone()).or_default();
        // Transactional writes cost twice a standard write.
        entry.table_units += 2.0 * capacity::write_units_for_item(size(old.as_ref()).max(new_size));
        if let Some(position) = change_of_plan.iter().position(|&i| i == index) {
            let mut index_units = Consumed {
                local: units[position].local.clone(),
                global: units[position].global.clone(),
                ..Consumed::default()
            };
            index_units.local.values_mut().for_each(|u| *u *= 2.0);
            index_units.global.values_mut().for_each(|u| *u *= 2.0);
            entry.add(&index_units);
        }
    }
    let mut response = json!({});
    let reported: Vec<Value> = consumed.iter().filter_map(|(name, c)| c.report(name, capacity, true)).collect();
    if capacity != CapacityDetail::None {
        response["ConsumedCapacity"] = Value::Array(reported);
    }
    Ok(response)
}

/// The cancellation of a transaction some of whose items (`true` in `conflicts`, one per
/// action) another transaction holds; `None` when none is held.
pub fn cancelled_by_conflicts(conflicts: &[bool]) -> Option<ApiError> {
    conflicts.iter().any(|c| *c).then(|| {
        let reasons = conflicts
            .iter()
            .map(|held| match held {
                true => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
                false => json!({"Code": "None"}),
            })
            .collect();
        cancelled_with(reasons)
    })
}

/// A cancellation with one reason per action, worded as DynamoDB words it.
pub fn cancelled_with(reasons: Vec<Value>) -> ApiError {
    let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
    ApiError::TransactionCanceled {
        message: format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        reasons,
    }
}

/// The storage keys of the items a TransactWriteItems request touches, in action order (the
/// items a cross-partition transaction locks while it is prepared).
pub fn action_keys(db: &Database, body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let request = crate::api::common::parse_body(body)?;
    let actions = request.array("TransactItems")?.ok_or_else(|| missing("TransactItems"))?;
    actions
        .iter()
        .map(|action| {
            let plan = plan_action(db, action)?;
            let meta = &plan.table.meta;
            Ok(keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &plan.key))
        })
        .collect()
}

fn plan_action(db: &Database, action: &Value) -> Result<Planned, ApiError> {
    let action = Request::sub(action, "TransactItems")?;
    let kinds: Vec<&str> =
        ["ConditionCheck", "Put", "Delete", "Update"].into_iter().filter(|k| action.get(k).is_some()).collect();
    let [kind] = kinds.as_slice() else {
        return Err(ApiError::validation("TransactItems can only contain one of Check, Put, Update or Delete"));
    };
    let body = Request::sub(action.get(kind).unwrap_or(&Value::Null), kind)?;
    let table = db.table(body.table_name()?)?;
    let mut fields = vec!["ConditionExpression"];
    if *kind == "Update" {
        fields.push("UpdateExpression");
    }
    let mut context = expression_context(&body, &fields)?;
    let (key, action) = match *kind {
        "Put" => {
            let item = item_field(&body, "Item")?.ok_or_else(|| missing("Item"))?;
            validate_item(&table.meta, &item)?;
            let key = table.meta.key_of(&item).ok_or_else(|| ApiError::Internal("validated item has no key".into()))?;
            (key, Action::Put(item))
        }
        _ => {
            let key = item_field(&body, "Key")?.ok_or_else(|| missing("Key"))?;
            validate_key(&table.meta, &key)?;
            let action = match *kind {
                "Delete" => Action::Delete,
                "ConditionCheck" => Action::ConditionCheck,
                _ => {
                    let update = body.str("UpdateExpression")?.map(|t| parse_update(t, &mut context)).transpose()?;
                    refuse_key_updates(&table, &update.as_ref().map(|u| u.paths()).unwrap_or_default())?;
                    Action::Update(update)
                }
            };
            (key, action)
        }
    };
    let condition = body
        .str("ConditionExpression")?
        .map(|text| parse_condition(text, &mut context, ConditionKind::Condition))
        .transpose()?;
    if matches!(action, Action::ConditionCheck) && condition.is_none() {
        return Err(missing("ConditionExpression"));
    }
    context.finish()?;
    let return_old_on_failure = return_old_on_condition_failure(&body)?;
    Ok(Planned { table, key, action, condition, return_old_on_failure })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use crate::api::{ApiError, Service};
    use crate::scope::{with_scope, CallScope};
    use crate::storage::MemStore;

    fn service() -> Service {
        let service = Service::new(Arc::new(crate::db::Database::open(Arc::new(MemStore::new())).unwrap()));
        let create = json!({"TableName": "counters", "BillingMode": "PAY_PER_REQUEST",
                            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]});
        service.call("CreateTable", create.to_string().as_bytes()).unwrap();
        service
    }

    fn bump(keys: &[&str], token: &str) -> Value {
        let actions: Vec<Value> = keys
            .iter()
            .map(|k| {
                json!({"Update": {"TableName": "counters", "Key": {"pk": {"S": k}},
                                  "UpdateExpression": "ADD hits :one",
                                  "ExpressionAttributeValues": {":one": {"N": "1"}}}})
            })
            .collect();
        json!({"TransactItems": actions, "ClientRequestToken": token, "ReturnConsumedCapacity": "TOTAL"})
    }

    /// Calls TransactWriteItems as if at `now_ms`.
    fn transact_at(service: &Service, now_ms: u64, request: &Value) -> Result<Value, ApiError> {
        let scope = CallScope { now_ms: Some(now_ms), ..CallScope::default() };
        with_scope(scope, || service.call("TransactWriteItems", request.to_string().as_bytes()))
    }

    fn hits(service: &Service, key: &str) -> Value {
        let get = json!({"TableName": "counters", "Key": {"pk": {"S": key}}});
        service.call("GetItem", get.to_string().as_bytes()).unwrap()["Item"]["hits"]["N"].clone()
    }

    #[test]
    fn a_repeated_client_request_token_has_the_effect_of_one_call_for_ten_minutes() {
        let service = service();
        let t0 = 1_700_000_000_000;
        let first = transact_at(&service, t0, &bump(&["a", "b"], "token-1")).unwrap();
        assert_eq!(first["ConsumedCapacity"][0]["WriteCapacityUnits"], json!(4.0), "{first}");
        // The same call again, with its fields in another order: nothing written, reads reported.
        let mut again = bump(&["a", "b"], "token-1");
        let actions = again["TransactItems"].take();
        let reordered =
            json!({"ReturnConsumedCapacity": "TOTAL", "ClientRequestToken": "token-1", "TransactItems": actions});
        let replayed = transact_at(&service, t0 + 60_000, &reordered).unwrap();
        assert_eq!(replayed["ConsumedCapacity"][0]["ReadCapacityUnits"], json!(2.0), "{replayed}");
        assert_eq!((hits(&service, "a"), hits(&service, "b")), (json!("1"), json!("1")));

        // The same token with other parameters (here other items) is refused, and changes
        // nothing.
        let error = transact_at(&service, t0 + 100_000, &bump(&["z"], "token-1")).unwrap_err();
        assert!(matches!(error, ApiError::IdempotentParameterMismatch(_)), "{error}");
        let error = transact_at(&service, t0 + 120_000, &bump(&["a"], "token-1")).unwrap_err();
        assert_eq!(error.type_name(), "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException");
        assert_eq!(error.http_status(), 400);
        assert_eq!(hits(&service, "a"), json!("1"));

        // Another token is another call; ten minutes after completion the token is new again.
        transact_at(&service, t0 + 180_000, &bump(&["a", "b"], "token-2")).unwrap();
        assert_eq!(hits(&service, "a"), json!("2"));
        transact_at(&service, t0 + 10 * 60_000, &bump(&["a", "b"], "token-1")).unwrap();
        assert_eq!((hits(&service, "a"), hits(&service, "b")), (json!("3"), json!("3")));
        // Without a token every call counts.
        let mut untokened = bump(&["a"], "x");
        untokened.as_object_mut().unwrap().remove("ClientRequestToken");
        transact_at(&service, t0 + 11 * 60_000, &untokened).unwrap();
        transact_at(&service, t0 + 11 * 60_000, &untokened).unwrap();
        assert_eq!(hits(&service, "a"), json!("5"));
    }

    #[test]
    fn a_cancelled_call_leaves_its_token_unused_and_expired_records_are_swept() {
        let service = service();
        let t0 = 1_700_000_000_000;
        let mut failing = bump(&["c"], "token-c");
        failing["TransactItems"][0]["Update"]["ConditionExpression"] = json!("attribute_exists(pk)");
        let error = transact_at(&service, t0, &failing).unwrap_err();
        assert!(matches!(error, ApiError::TransactionCanceled { .. }), "{error}");
        transact_at(&service, t0, &bump(&["c"], "token-c")).unwrap();
        assert_eq!(hits(&service, "c"), json!("1"));

        // Many tokens, then one call after they all expired: it sweeps some of their records.
        for n in 0..40 {
            transact_at(&service, t0, &bump(&["c"], &format!("many-{n}"))).unwrap();
        }
        let db = service.database();
        let prefix = crate::db::keys::token_table_prefix(crate::api::idempotency::NODE_TABLE_ID);
        let count = || {
            let end = crate::db::keys::prefix_successor(&prefix).unwrap();
            db.store()
                .scan(
                    std::ops::Bound::Included(prefix.as_slice()),
                    std::ops::Bound::Excluded(end.as_slice()),
                    crate::storage::Direction::Forward,
                    usize::MAX,
                )
                .unwrap()
                .len()
        };
        assert_eq!(count(), 41);
        transact_at(&service, t0 + 11 * 60_000, &bump(&["c"], "late")).unwrap();
        assert_eq!(count(), 41 + 1 - crate::api::idempotency::EXPIRED_SWEEP_MAX);
    }
}
