//! The simulated clients' workload: versioned conditional puts and updates and strongly
//! consistent gets on a small set of keys, so that clients contend on every key.
//!
//! Requests are DynamoDB JSON and go through the same HTTP client as real load; this module
//! builds them and classifies the answers, and does no I/O itself.

use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use squall_workloads::driver::DriverError;
use squall_workloads::keygen::uniform_below;

use crate::history::{OpKind, Outcome};

/// Name of the table the workload uses.
pub const TABLE: &str = "sim";
/// Partition-key attribute.
pub const KEY_ATTRIBUTE: &str = "pk";

/// Shape of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Number of keys (`k0` ..).
    pub keys: u32,
    /// Relative weight of puts.
    pub put_weight: u32,
    /// Relative weight of updates.
    pub update_weight: u32,
    /// Relative weight of gets.
    pub get_weight: u32,
    /// Most simulated time a client waits between two operations.
    pub think_us_max: u64,
}

impl Default for WorkloadSpec {
    fn default() -> WorkloadSpec {
        WorkloadSpec { keys: 8, put_weight: 35, update_weight: 30, get_weight: 35, think_us_max: 20_000 }
    }
}

impl WorkloadSpec {
    /// Draws the next operation's kind and key.
    pub fn choose(&self, rng: &mut ChaCha8Rng) -> (OpKind, u32) {
        let total = u64::from(self.put_weight + self.update_weight + self.get_weight).max(1);
        let draw = uniform_below(rng, total);
        let kind = if draw < u64::from(self.put_weight) {
            OpKind::Put
        } else if draw < u64::from(self.put_weight + self.update_weight) {
            OpKind::Update
        } else {
            OpKind::Get
        };
        let key = uniform_below(rng, u64::from(self.keys.max(1))) as u32;
        (kind, key)
    }

    /// Draws a think time in microseconds.
    pub fn think_us(&self, rng: &mut ChaCha8Rng) -> u64 {
        uniform_below(rng, self.think_us_max + 1)
    }
}

/// The CreateTable request of the workload's table.
pub fn create_table() -> Value {
    json!({
        "TableName": TABLE,
        "AttributeDefinitions": [{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    })
}

fn key_value(key: u32) -> Value {
    json!({ KEY_ATTRIBUTE: {"S": format!("k{key}")} })
}

/// The operation name and body of one operation. `ver` is the version a write carries;
/// `client` is recorded in the item so a reader can tell writers apart.
pub fn request(kind: OpKind, key: u32, ver: u64, client: u32) -> (&'static str, Value) {
    let condition_values = json!({":v": {"N": ver.to_string()}});
    match kind {
        OpKind::Put => (
            "PutItem",
            json!({
                "TableName": TABLE,
                "Item": {
                    KEY_ATTRIBUTE: {"S": format!("k{key}")},
                    "ver": {"N": ver.to_string()},
                    "client": {"N": client.to_string()},
                    "payload": {"S": format!("written by client {client} as ver {ver}")},
                },
                "ConditionExpression": "attribute_not_exists(ver) OR ver < :v",
                "ExpressionAttributeValues": condition_values,
            }),
        ),
        OpKind::Update => (
            "UpdateItem",
            json!({
                "TableName": TABLE,
                "Key": key_value(key),
                "UpdateExpression": "SET ver = :v, client = :c, updates = if_not_exists(updates, :zero) + :one",
                "ConditionExpression": "attribute_not_exists(ver) OR ver < :v",
                "ExpressionAttributeValues": {
                    ":v": {"N": ver.to_string()},
                    ":c": {"N": client.to_string()},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            }),
        ),
        OpKind::Get => ("GetItem", json!({"TableName": TABLE, "Key": key_value(key), "ConsistentRead": true})),
    }
}

/// Classifies the answer to an operation of `kind`.
pub fn outcome(kind: OpKind, result: Result<Value, DriverError>) -> Outcome {
    match result {
        Ok(body) if kind == OpKind::Get => match body.get("Item") {
            None => Outcome::Ok(None),
            Some(item) => match item.pointer("/ver/N").and_then(Value::as_str).and_then(|n| n.parse().ok()) {
                Some(ver) => Outcome::Ok(Some(ver)),
                None => Outcome::Indeterminate(format!("item without a readable ver: {item}")),
            },
        },
        Ok(_) => Outcome::Ok(None),
        Err(error) if error.is_conditional_check_failed() => Outcome::ConditionFailed,
        Err(DriverError::Service { type_name, status, .. }) if status < 500 && !is_transient(&type_name) => {
            Outcome::Refused(type_name)
        }
        Err(DriverError::Service { type_name, status, .. }) => Outcome::Indeterminate(format!("{type_name} {status}")),
        // A connection that could not be opened carried nothing: the request was never sent.
        Err(DriverError::Connect { .. }) => Outcome::Unsent("connect".into()),
        Err(DriverError::Timeout { .. }) => Outcome::Indeterminate("timeout".into()),
        Err(DriverError::Io(_)) => Outcome::Indeterminate("connection".into()),
        Err(other) => Outcome::Indeterminate(other.to_string()),
    }
}

/// Client errors that mean "try again later" rather than "this request is wrong".
fn is_transient(type_name: &str) -> bool {
    matches!(
        type_name,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "ResourceInUseException"
            | "ResourceNotFoundException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_workloads::keygen::seeded_rng;

    #[test]
    fn choices_repeat_per_seed_and_cover_every_kind_and_key() {
        let spec = WorkloadSpec::default();
        let draw = |seed| {
            let mut rng = seeded_rng(seed, 7);
            (0..500).map(|_| spec.choose(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        for kind in [OpKind::Put, OpKind::Update, OpKind::Get] {
            assert!(a.iter().any(|(k, _)| *k == kind), "{kind} never drawn");
        }
        for key in 0..spec.keys {
            assert!(a.iter().any(|(_, k)| *k == key), "k{key} never drawn");
        }
    }

    #[test]
    fn answers_are_classified() {
        let get = |body: Value| outcome(OpKind::Get, Ok(body));
        assert_eq!(get(json!({})), Outcome::Ok(None));
        assert_eq!(get(json!({"Item": {"pk": {"S": "k1"}, "ver": {"N": "12"}}})), Outcome::Ok(Some(12)));
        assert!(matches!(get(json!({"Item": {"pk": {"S": "k1"}}})), Outcome::Indeterminate(_)));
        assert_eq!(outcome(OpKind::Put, Ok(json!({}))), Outcome::Ok(None));
        let service =
            |name: &str, status| DriverError::Service { type_name: name.into(), message: String::new(), status };
        assert_eq!(
            outcome(OpKind::Put, Err(service("ConditionalCheckFailedException", 400))),
            Outcome::ConditionFailed
        );
        assert_eq!(
            outcome(OpKind::Put, Err(service("ValidationException", 400))),
            Outcome::Refused("ValidationException".into())
        );
        assert!(matches!(outcome(OpKind::Put, Err(service("InternalServerError", 500))), Outcome::Indeterminate(_)));
        assert!(matches!(
            outcome(OpKind::Put, Err(DriverError::Timeout { after: std::time::Duration::from_secs(1) })),
            Outcome::Indeterminate(_)
        ));
    }

    #[test]
    fn writes_are_conditional_on_an_older_version() {
        let (operation, body) = request(OpKind::Update, 3, 42, 1);
        assert_eq!(operation, "UpdateItem");
        assert_eq!(body["Key"]["pk"]["S"], "k3");
        assert_eq!(body["ExpressionAttributeValues"][":v"]["N"], "42");
        assert!(body["ConditionExpression"].as_str().unwrap().contains("ver < :v"));
        let (operation, body) = request(OpKind::Get, 3, 0, 1);
        assert_eq!(operation, "GetItem");
        assert_eq!(body["ConsistentRead"], true);
    }
}
