//! Failures counted by DynamoDB operation and error, so a report says not only that calls
//! failed but how (`TransactWriteItems UnknownOperationException ×709`): against another
//! implementation that is what tells a missing feature from a slow server.
//!
//! [`Tallied`] wraps any [`DynamoApi`] and counts every failed call into a shared
//! [`ErrorTally`]; successes cost nothing. Refusals (a condition that evaluated false, a
//! transaction cancelled only by such conditions) are counted apart: they are correct answers
//! that scenarios expect.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use crate::api::{cancelled_by_condition, DynamoApi};
use crate::driver::DriverError;

/// The error type DynamoDB answers for an operation it does not know.
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";
/// Longest example message kept per entry, in characters.
const EXAMPLE_CHARS_MAX: usize = 300;

/// How a failure is named in a tally: the service's error type, or the kind of transport failure.
pub fn error_name(error: &DriverError) -> String {
    match error {
        DriverError::Service { type_name, .. } => type_name.clone(),
        DriverError::Timeout { .. } => "timeout".into(),
        DriverError::Connect { .. } => "connect failed".into(),
        DriverError::Io(_) => "connection failed".into(),
        DriverError::Protocol(_) => "protocol error".into(),
        DriverError::Config(_) | DriverError::InvalidRequest(_) => "invalid request".into(),
    }
}

/// Failures of one DynamoDB operation with one error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEntry {
    /// The DynamoDB operation, `TransactWriteItems`, ...
    pub operation: String,
    /// The error, as [`error_name`] names it.
    pub error: String,
    /// How many calls failed so.
    pub count: u64,
    /// The first such failure in full, shortened.
    pub example: String,
    /// A refusal: a condition that evaluated false, not a failure of the endpoint.
    pub refusal: bool,
}

/// Whether `error` is a refusal: a condition evaluated false (on its own or in a transaction).
pub fn is_refusal(error: &DriverError) -> bool {
    error.is_conditional_check_failed() || cancelled_by_condition(error)
}

/// (refusal, operation, error name) → (count, first example).
type Entries = BTreeMap<(bool, String, String), (u64, String)>;

/// Failure counts shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct ErrorTally {
    entries: Arc<Mutex<Entries>>,
}

impl ErrorTally {
    /// An empty tally.
    pub fn new() -> Self {
        ErrorTally::default()
    }

    /// Counts one failed call of `operation`.
    pub fn add(&self, operation: &str, error: &DriverError) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let key = (is_refusal(error), operation.to_owned(), error_name(error));
        let entry = entries.entry(key).or_insert_with(|| {
            let example: String = error.to_string().chars().take(EXAMPLE_CHARS_MAX).collect();
            (0, example)
        });
        entry.0 += 1;
    }

    /// The entries counted since the last `take`, failures first, then refusals, each by
    /// operation then error; the tally starts over.
    pub fn take(&self) -> Vec<ErrorEntry> {
        let Ok(mut entries) = self.entries.lock() else {
            return Vec::new();
        };
        std::mem::take(&mut *entries)
            .into_iter()
            .map(|((refusal, operation, error), (count, example))| ErrorEntry {
                operation,
                error,
                count,
                example,
                refusal,
            })
            .collect()
    }
}

/// A [`DynamoApi`] that counts its failures into an [`ErrorTally`].
#[derive(Debug, Clone)]
pub struct Tallied<A> {
    inner: A,
    tally: ErrorTally,
}

impl<A: DynamoApi> Tallied<A> {
    /// Wraps `inner`; its failures go to `tally`.
    pub fn new(inner: A, tally: ErrorTally) -> Self {
        Tallied { inner, tally }
    }
}

impl<A: DynamoApi> DynamoApi for Tallied<A> {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, DriverError> {
        let result = self.inner.call(operation, body).await;
        if let Err(error) = &result {
            self.tally.add(operation, error);
        }
        result
    }
}

/// The entries of failures, or of refusals.
pub fn select(entries: &[ErrorEntry], refusals: bool) -> Vec<ErrorEntry> {
    entries.iter().filter(|e| e.refusal == refusals).cloned().collect()
}

/// The operations in `entries` that the endpoint said it does not know.
pub fn unknown_operations(entries: &[ErrorEntry]) -> Vec<&str> {
    entries.iter().filter(|e| e.error == UNKNOWN_OPERATION).map(|e| e.operation.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    /// Answers PutItem and refuses every other operation as unknown.
    #[derive(Clone)]
    struct PutOnly;

    impl DynamoApi for PutOnly {
        async fn call(&self, operation: &str, _body: Value) -> Result<Value, DriverError> {
            if operation == "PutItem" {
                return Ok(json!({}));
            }
            Err(DriverError::Service { type_name: UNKNOWN_OPERATION.into(), message: String::new(), status: 400 })
        }
    }

    #[tokio::test]
    async fn failures_are_counted_by_operation_and_error() {
        let tally = ErrorTally::new();
        let api = Tallied::new(PutOnly, tally.clone());
        assert!(api.call("PutItem", json!({})).await.is_ok());
        for _ in 0..3 {
            assert!(api.call("TransactWriteItems", json!({})).await.is_err());
        }
        tally.add("GetItem", &DriverError::Timeout { after: Duration::from_secs(1) });
        let refused = DriverError::Service {
            type_name: "TransactionCanceledException".into(),
            message: "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]".into(),
            status: 400,
        };
        tally.add("TransactWriteItems", &refused);
        let conflict = DriverError::Service {
            type_name: "TransactionCanceledException".into(),
            message: "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]".into(),
            status: 400,
        };
        tally.add("TransactWriteItems", &conflict);
        let entries = tally.take();
        let summary: Vec<(&str, &str, u64, bool)> =
            entries.iter().map(|e| (e.operation.as_str(), e.error.as_str(), e.count, e.refusal)).collect();
        assert_eq!(
            summary,
            [
                ("GetItem", "timeout", 1, false),
                ("TransactWriteItems", "TransactionCanceledException", 1, false),
                ("TransactWriteItems", UNKNOWN_OPERATION, 3, false),
                ("TransactWriteItems", "TransactionCanceledException", 1, true),
            ]
        );
        assert_eq!(entries[0].example, "no response within 1s");
        assert!(entries[1].example.contains("TransactionConflict"));
        assert_eq!(select(&entries, true).len(), 1);
        assert_eq!(select(&entries, false).len(), 3);
        assert_eq!(unknown_operations(&entries), ["TransactWriteItems"]);
        assert!(tally.take().is_empty(), "take starts the tally over");
    }

    #[test]
    fn failures_are_named_by_type_or_transport() {
        let service =
            DriverError::Service { type_name: "ValidationException".into(), message: "x".into(), status: 400 };
        assert_eq!(error_name(&service), "ValidationException");
        assert_eq!(error_name(&DriverError::Io("reset".into())), "connection failed");
        assert_eq!(error_name(&DriverError::Protocol("html".into())), "protocol error");
    }
}
