//! The closed set of errors the API returns, each mapped to DynamoDB's `__type` and HTTP status.

use crate::model::Item;

/// DynamoDB's message when a provisioned table or one of its partitions is out of capacity.
pub const TABLE_THROUGHPUT_EXCEEDED: &str = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
/// DynamoDB's message when a global index of a provisioned table is out of capacity.
pub const INDEX_THROUGHPUT_EXCEEDED: &str = "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API";
/// DynamoDB's message when an on-demand table is throttled.
pub const ON_DEMAND_THROTTLED: &str = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";

/// An error as a DynamoDB client sees it.
///
/// Messages are DynamoDB's own wording where DynamoDB fixes one, since clients and tests match on
/// them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The request is well formed JSON but breaks a rule of the API.
    #[error("{0}")]
    Validation(String),
    /// The request body is not the JSON the operation expects.
    #[error("{0}")]
    Serialization(String),
    /// The `X-Amz-Target` names no operation this service has.
    #[error("{0}")]
    UnknownOperation(String),
    /// The request lacks the `X-Amz-Target` header or uses the wrong protocol.
    #[error("{0}")]
    MissingAction(String),
    /// The table or index does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The table already exists, or is busy.
    #[error("{0}")]
    ResourceInUse(String),
    /// A condition expression evaluated to false. `item` is the current item when the request
    /// asked for it with `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    #[error("{message}")]
    ConditionalCheckFailed { message: String, item: Option<Item> },
    /// A transaction was cancelled; `reasons` has one entry per action, in request order
    /// (`{"Code": "None"}` for actions that were fine).
    #[error("{message}")]
    TransactionCanceled { message: String, reasons: Vec<serde_json::Value> },
    /// The item is part of a transaction in progress.
    #[error("{0}")]
    TransactionConflict(String),
    /// A transaction reused a client request token of the last ten minutes with different
    /// parameters.
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// A transaction with the same client request token is still being carried out.
    #[error("{0}")]
    TransactionInProgress(String),
    /// An item collection of a table with local secondary indexes would exceed 10 GB.
    #[error("{0}")]
    ItemCollectionSizeLimitExceeded(String),
    /// A provisioned table or partition has no capacity left.
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    /// An on-demand table exceeded its limits.
    #[error("{0}")]
    Throttling(String),
    /// Too many concurrent control-plane operations or tables.
    #[error("{0}")]
    LimitExceeded(String),
    /// The request body exceeds the request size limit.
    #[error("{0}")]
    RequestTooLarge(String),
    /// The service cannot answer now (for example a partition without a leader).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A bug or an unexpected storage failure. Never used for bad input.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// DynamoDB's `__type` value for this error.
    pub fn type_name(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "com.amazon.coral.validate#ValidationException",
            ApiError::Serialization(_) => "com.amazon.coral.service#SerializationException",
            ApiError::UnknownOperation(_) => "com.amazon.coral.service#UnknownOperationException",
            ApiError::MissingAction(_) => "com.amazon.coral.service#MissingAuthenticationTokenException",
            ApiError::ResourceNotFound(_) => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            ApiError::ResourceInUse(_) => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ApiError::ConditionalCheckFailed { .. } => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            ApiError::TransactionCanceled { .. } => "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            ApiError::TransactionConflict(_) => "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
            ApiError::IdempotentParameterMismatch(_) => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            ApiError::TransactionInProgress(_) => "com.amazonaws.dynamodb.v20120810#TransactionInProgressException",
            ApiError::ItemCollectionSizeLimitExceeded(_) => {
                "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException"
            }
            ApiError::ProvisionedThroughputExceeded(_) => {
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            }
            ApiError::Throttling(_) => "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            ApiError::LimitExceeded(_) => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            ApiError::RequestTooLarge(_) => "com.amazon.coral.service#RequestEntityTooLargeException",
            ApiError::ServiceUnavailable(_) => "com.amazon.coral.availability#ServiceUnavailableException",
            ApiError::Internal(_) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
        }
    }

    /// HTTP status DynamoDB answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ApiError::Internal(_) => 500,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::RequestTooLarge(_) => 413,
            _ => 400,
        }
    }

    /// The JSON error body: `{"__type": ..., "message": ...}` plus `Item` for a failed
    /// condition that asked for the old item.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("__type".into(), self.type_name().into());
        // DynamoDB spells the key "Message" for a few coral errors and "message" otherwise;
        // the SDKs accept either, so one spelling keeps clients simple.
        body.insert("message".into(), self.to_string().into());
        if let ApiError::ConditionalCheckFailed { item: Some(item), .. } = self {
            body.insert("Item".into(), crate::model::item_to_json(item));
        }
        if let ApiError::TransactionCanceled { reasons, .. } = self {
            body.insert("CancellationReasons".into(), serde_json::Value::Array(reasons.clone()));
        }
        serde_json::Value::Object(body)
    }

    /// The error a [`to_json`](ApiError::to_json) body describes: how an error crosses from
    /// the node that ran an operation back to the router that received it. A body that is not
    /// one of ours becomes an internal error naming it.
    pub fn from_json(body: &serde_json::Value) -> ApiError {
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
        let type_name = body.get("__type").and_then(|t| t.as_str()).unwrap_or_default();
        let kind = type_name.rsplit('#').next().unwrap_or_default();
        match kind {
            "ValidationException" => ApiError::Validation(message),
            "SerializationException" => ApiError::Serialization(message),
            "UnknownOperationException" => ApiError::UnknownOperation(message),
            "MissingAuthenticationTokenException" => ApiError::MissingAction(message),
            "ResourceNotFoundException" => ApiError::ResourceNotFound(message),
            "ResourceInUseException" => ApiError::ResourceInUse(message),
            "ConditionalCheckFailedException" => {
                let item = body.get("Item").and_then(|i| crate::model::item_from_json(i).ok());
                ApiError::ConditionalCheckFailed { message, item }
            }
            "TransactionCanceledException" => {
                let reasons = body.get("CancellationReasons").and_then(|r| r.as_array()).cloned().unwrap_or_default();
                ApiError::TransactionCanceled { message, reasons }
            }
            "TransactionConflictException" => ApiError::TransactionConflict(message),
            "IdempotentParameterMismatchException" => ApiError::IdempotentParameterMismatch(message),
            "TransactionInProgressException" => ApiError::TransactionInProgress(message),
            "ItemCollectionSizeLimitExceededException" => ApiError::ItemCollectionSizeLimitExceeded(message),
            "ProvisionedThroughputExceededException" => ApiError::ProvisionedThroughputExceeded(message),
            "ThrottlingException" => ApiError::Throttling(message),
            "LimitExceededException" => ApiError::LimitExceeded(message),
            "RequestEntityTooLargeException" => ApiError::RequestTooLarge(message),
            "ServiceUnavailableException" => ApiError::ServiceUnavailable(message),
            "InternalServerError" => ApiError::Internal(message),
            _ => ApiError::Internal(format!("unrecognised error from a peer: {body}")),
        }
    }

    /// Shorthand for a validation error.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::Validation(message.into())
    }

    /// The error for a missing table, worded as DynamoDB words it.
    pub fn table_not_found(_table: &str) -> ApiError {
        ApiError::ResourceNotFound("Requested resource not found".into())
    }

    /// A write to an item that a transaction in progress holds.
    pub fn transaction_conflict() -> ApiError {
        ApiError::TransactionConflict("Transaction is ongoing for the item".into())
    }

    /// A provisioned table (or one of its partitions) out of capacity, worded as DynamoDB
    /// words it.
    pub fn table_throughput_exceeded() -> ApiError {
        ApiError::ProvisionedThroughputExceeded(TABLE_THROUGHPUT_EXCEEDED.into())
    }

    /// A write refused because a global index of a provisioned table is out of capacity.
    pub fn index_throughput_exceeded() -> ApiError {
        ApiError::ProvisionedThroughputExceeded(INDEX_THROUGHPUT_EXCEEDED.into())
    }

    /// An on-demand table beyond its limits (its partition's, or its maximum throughput).
    pub fn on_demand_throttled() -> ApiError {
        ApiError::Throttling(ON_DEMAND_THROTTLED.into())
    }

    /// A failed conditional request.
    pub fn condition_failed(item: Option<Item>) -> ApiError {
        ApiError::ConditionalCheckFailed { message: "The conditional request failed".into(), item }
    }
}

impl From<crate::model::ValueError> for ApiError {
    fn from(error: crate::model::ValueError) -> ApiError {
        match error {
            crate::model::ValueError::Serialization(m) => ApiError::Serialization(m),
            crate::model::ValueError::Validation(m) => ApiError::Validation(m),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(error: crate::storage::StorageError) -> ApiError {
        // Inside a replicated apply, a storage failure must stop the replica, not become the
        // entry's answer (see `scope::note_storage_failure`).
        crate::scope::note_storage_failure();
        match error {
            // A full disk refuses writes cleanly; the client may retry elsewhere or later.
            crate::storage::StorageError::Full => {
                ApiError::ServiceUnavailable("storage is full; writes are refused".into())
            }
            other => ApiError::Internal(format!("storage failure: {other}")),
        }
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn every_error_survives_its_json_form() {
        let mut item = Item::new();
        item.insert("k".into(), crate::model::AttributeValue::S("v".into()));
        let errors = [
            ApiError::Validation("v".into()),
            ApiError::Serialization("s".into()),
            ApiError::UnknownOperation("u".into()),
            ApiError::MissingAction("m".into()),
            ApiError::ResourceNotFound("r".into()),
            ApiError::ResourceInUse("r".into()),
            ApiError::condition_failed(Some(item)),
            ApiError::condition_failed(None),
            ApiError::TransactionCanceled { message: "t".into(), reasons: vec![serde_json::json!({"Code": "None"})] },
            ApiError::TransactionConflict("c".into()),
            ApiError::IdempotentParameterMismatch("i".into()),
            ApiError::TransactionInProgress("t".into()),
            ApiError::ItemCollectionSizeLimitExceeded("i".into()),
            ApiError::ProvisionedThroughputExceeded("p".into()),
            ApiError::Throttling("t".into()),
            ApiError::LimitExceeded("l".into()),
            ApiError::RequestTooLarge("r".into()),
            ApiError::ServiceUnavailable("s".into()),
            ApiError::Internal("i".into()),
        ];
        for error in errors {
            let back = ApiError::from_json(&error.to_json());
            assert_eq!(back.to_json(), error.to_json());
            assert_eq!(back.http_status(), error.http_status());
        }
    }
}
