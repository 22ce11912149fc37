//! The client abstraction the runner and the scenarios call: one DynamoDB operation with a JSON
//! body, answered by a JSON body or a [`DriverError`]. [`DynamoClient`] implements it over real or
//! simulated TCP; tests can implement it in memory.

use std::future::Future;

use serde_json::Value;

use crate::driver::{DriverError, DynamoClient};
use crate::recorder::Outcome;

/// Anything that answers DynamoDB operations.
pub trait DynamoApi: Clone + Send + Sync + 'static {
    /// Calls `operation` (`PutItem`, `Query`, ...) with a JSON request body.
    fn call(&self, operation: &str, body: Value) -> impl Future<Output = Result<Value, DriverError>> + Send;
}

impl DynamoApi for DynamoClient {
    fn call(&self, operation: &str, body: Value) -> impl Future<Output = Result<Value, DriverError>> + Send {
        DynamoClient::call(self, operation, body)
    }
}

/// How a failed call counts: throttling and timeouts apart from every other error.
pub fn failure_outcome(error: &DriverError) -> Outcome {
    if error.is_throttling() {
        Outcome::Throttled
    } else if matches!(error, DriverError::Timeout { .. }) {
        Outcome::Timeout
    } else {
        Outcome::Error
    }
}

/// Whether a `TransactionCanceledException` was cancelled only by conditions that evaluated false
/// (a correct "no" from the database, such as insufficient funds), not by a conflict or an error.
/// The reasons are read from DynamoDB's message, `Transaction cancelled, please refer cancellation
/// reasons for specific reasons [None, ConditionalCheckFailed]`, which every implementation this
/// runs against writes in that form.
pub fn cancelled_by_condition(error: &DriverError) -> bool {
    let DriverError::Service { type_name, message, .. } = error else {
        return false;
    };
    if type_name != "TransactionCanceledException" {
        return false;
    }
    let Some(reasons) = message.rsplit_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(r, _)| r) else {
        return false;
    };
    let reasons: Vec<&str> = reasons.split(',').map(str::trim).collect();
    reasons.contains(&"ConditionalCheckFailed")
        && reasons.iter().all(|r| matches!(*r, "None" | "ConditionalCheckFailed"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn service(type_name: &str, message: &str) -> DriverError {
        DriverError::Service { type_name: type_name.into(), message: message.into(), status: 400 }
    }

    #[test]
    fn failures_are_classified_by_kind() {
        assert_eq!(failure_outcome(&service("ProvisionedThroughputExceededException", "")), Outcome::Throttled);
        assert_eq!(failure_outcome(&service("ThrottlingException", "")), Outcome::Throttled);
        assert_eq!(failure_outcome(&DriverError::Timeout { after: Duration::from_secs(1) }), Outcome::Timeout);
        assert_eq!(failure_outcome(&service("ValidationException", "")), Outcome::Error);
        assert_eq!(failure_outcome(&DriverError::Io("reset".into())), Outcome::Error);
    }

    #[test]
    fn cancellation_reasons_are_read_from_the_message() {
        let message = |reasons: &str| {
            format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{reasons}]")
        };
        let cancelled = |reasons: &str| service("TransactionCanceledException", &message(reasons));
        assert!(cancelled_by_condition(&cancelled("None, ConditionalCheckFailed")));
        assert!(cancelled_by_condition(&cancelled("ConditionalCheckFailed")));
        assert!(!cancelled_by_condition(&cancelled("None, TransactionConflict")));
        assert!(!cancelled_by_condition(&cancelled("ConditionalCheckFailed, TransactionConflict")));
        assert!(!cancelled_by_condition(&cancelled("None, None")));
        assert!(!cancelled_by_condition(&service("TransactionCanceledException", "no reasons")));
        assert!(!cancelled_by_condition(&service("ValidationException", &message("ConditionalCheckFailed"))));
    }
}
