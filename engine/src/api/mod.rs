//! DynamoDB's JSON API: request decoding, validation, the operations (one module each) and
//! errors in DynamoDB's format. Transport-free: `Service::call` takes an operation name and a
//! body and returns a JSON body or an `ApiError`; `crate::http` puts it on the wire.

pub mod common;
pub mod error;
pub mod idempotency;
pub mod ops;
pub mod quota;
pub mod read;
pub mod write;

use std::sync::Arc;

pub use error::ApiError;

use crate::capacity::Quota;
use crate::db::Database;
use crate::throttle::{Admission, Throttle};

/// Largest request body accepted, as DynamoDB's 16 MB request limit.
pub const REQUEST_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest item, by DynamoDB's size rules.
pub const ITEM_BYTES_MAX: usize = 400 * 1024;
/// Largest partition key value.
pub const PARTITION_KEY_BYTES_MAX: usize = 2048;
/// Largest sort key value.
pub const SORT_KEY_BYTES_MAX: usize = 1024;
/// Most data a Query or Scan reads for one page.
pub const PAGE_BYTES_MAX: u64 = 1024 * 1024;
/// Most keys in one BatchGetItem.
pub const BATCH_GET_KEYS_MAX: usize = 100;
/// Most requests in one BatchWriteItem.
pub const BATCH_WRITE_REQUESTS_MAX: usize = 25;
/// Most data one BatchGetItem returns before leaving keys unprocessed.
pub const BATCH_GET_RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most actions in one TransactWriteItems or TransactGetItems.
pub const TRANSACT_ITEMS_MAX: usize = 100;
/// Most item data in one transaction.
pub const TRANSACT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most tags on one resource.
pub const TAGS_MAX: usize = 50;
/// Longest tag key, in characters.
pub const TAG_KEY_CHARS_MAX: usize = 128;
/// Longest tag value, in characters.
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// Most local secondary indexes per table.
pub const LOCAL_INDEXES_MAX: usize = 5;
/// Most global secondary indexes per table.
pub const GLOBAL_INDEXES_MAX: usize = 20;
/// Most projected non-key attributes across a table's indexes.
pub const PROJECTED_ATTRIBUTES_MAX: usize = 100;

/// The operations this service answers, by their DynamoDB names.
pub const OPERATIONS: &[&str] = &[
    "BatchGetItem",
    "BatchWriteItem",
    "CreateTable",
    "DeleteItem",
    "DeleteTable",
    "DescribeLimits",
    "DescribeTable",
    "GetItem",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "Query",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateItem",
    "UpdateTable",
];

/// Operations that change the catalog: after one, the buckets follow it (new rates, what no
/// longer exists dropped).
const CATALOG_OPERATIONS: &[&str] = &["CreateTable", "DeleteTable", "UpdateTable"];

/// The API over one database.
#[derive(Clone)]
pub struct Service {
    db: Arc<Database>,
    /// Capacity enforcement of a single node; `None` where requests are admitted elsewhere
    /// (a cluster's replicas apply requests their partition leader admitted) or not at all.
    throttle: Option<Arc<Throttle>>,
    /// The per-table quotas DescribeLimits reports (those the throttle enforces, when there
    /// is one).
    quota: Quota,
}

impl Service {
    /// A service answering from `db`, enforcing no capacity.
    pub fn new(db: Arc<Database>) -> Service {
        Service { db, throttle: None, quota: Quota::default() }
    }

    /// The same service, reporting `quota` as its per-table quotas (where requests are
    /// admitted elsewhere: a cluster's partition leaders enforce it).
    pub fn with_quota(self, quota: Quota) -> Service {
        Service { quota, ..self }
    }

    /// A service answering from `db` that enforces its tables' capacity as a single node:
    /// every table whole, divided into partitions by DynamoDB's rules for the per-partition
    /// limit (see `crate::throttle`).
    pub fn with_throttle(db: Arc<Database>, throttle: Arc<Throttle>) -> Service {
        let quota = throttle.quota();
        Service { db, throttle: Some(throttle), quota }
    }

    /// The database underneath.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// The capacity enforcement, if this service enforces capacity.
    pub fn throttle(&self) -> Option<&Arc<Throttle>> {
        self.throttle.as_ref()
    }

    /// Runs one operation on a JSON request body.
    pub fn call(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        if body.len() > REQUEST_BYTES_MAX {
            return Err(ApiError::RequestTooLarge(format!(
                "Request size {} exceeded {REQUEST_BYTES_MAX} bytes",
                body.len()
            )));
        }
        let Some(throttle) = &self.throttle else { return self.dispatch(operation, body) };
        quota::check_request(&self.db, operation, body, self.quota)?;
        match throttle.admit(&self.db, operation, body, &crate::throttle::whole_table) {
            Admission::Refused(error) => Err(error),
            Admission::Free => {
                let result = self.dispatch(operation, body);
                if result.is_ok() && CATALOG_OPERATIONS.contains(&operation) {
                    let partitions =
                        |meta: &crate::catalog::TableMeta| Some(crate::throttle::whole_table_partitions(meta));
                    throttle.follow_catalog(&self.db, &partitions);
                }
                result
            }
            Admission::Admitted(ticket) => {
                let cut = ticket.body().map(<[u8]>::to_vec);
                let (result, usage) =
                    crate::scope::measure(|| self.dispatch(operation, cut.as_deref().unwrap_or(body)));
                throttle.settle(ticket, result, &usage)
            }
        }
    }

    /// Runs one operation, with no capacity enforcement.
    fn dispatch(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let request = common::parse_body(body)?;
        let db = &*self.db;
        match operation {
            "BatchGetItem" => ops::batch_get_item::run(db, request),
            "BatchWriteItem" => ops::batch_write_item::run(db, request),
            "CreateTable" => ops::create_table::run(db, request),
            "DeleteItem" => ops::delete_item::run(db, request),
            "DeleteTable" => ops::delete_table::run(db, request),
            "DescribeLimits" => ops::describe_limits::run(&self.quota, request),
            "DescribeTable" => ops::describe_table::run(db, request),
            "GetItem" => ops::get_item::run(db, request),
            "ListTables" => ops::list_tables::run(db, request),
            "ListTagsOfResource" => ops::list_tags_of_resource::run(db, request),
            "PutItem" => ops::put_item::run(db, request),
            "Query" => ops::query::run(db, request),
            "Scan" => ops::scan::run(db, request),
            "TagResource" => ops::tag_resource::run(db, request),
            "TransactGetItems" => ops::transact_get_items::run(db, request),
            "TransactWriteItems" => ops::transact_write_items::run(db, request),
            "UntagResource" => ops::untag_resource::run(db, request),
            "UpdateItem" => ops::update_item::run(db, request),
            "UpdateTable" => ops::update_table::run(db, request),
            other => Err(ApiError::UnknownOperation(format!("Unknown operation: {other}"))),
        }
    }
}
