//! What a scenario asks the runner to do: an [`Op`] is one logical operation (a read, an order
//! placement) made of one or more DynamoDB calls issued in sequence; its latency is the whole
//! sequence's. Also the table definitions scenarios create, and DynamoDB JSON helpers.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::api::DynamoApi;
use crate::driver::DriverError;

/// Pages read by [`scan_all`] at most: with DynamoDB's 1 MB pages, 100 GB.
pub const SCAN_PAGES_MAX: usize = 100_000;
/// How long [`create_tables`] waits for a table to become ACTIVE.
pub const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(120);
/// Poll interval while waiting for a table.
const TABLE_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Attempts at one page in [`scan_all`]: a server that was overloaded by the run may still be
/// working through abandoned requests when the check starts, and a read can safely be repeated.
pub const SCAN_PAGE_ATTEMPTS: u32 = 5;
/// Pause before the second attempt at a page; it doubles before each further one. Unit tests
/// run the same retries without the waiting.
const SCAN_RETRY_PAUSE: Duration = if cfg!(test) { Duration::from_millis(1) } else { Duration::from_secs(1) };

/// One DynamoDB call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Operation name, `GetItem`, `TransactWriteItems`, ...
    pub operation: &'static str,
    /// Request body.
    pub body: Value,
}

/// What a scenario needs to know when an operation finishes, to keep the acknowledgements its
/// invariant is checked against.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// Nothing to remember.
    None,
    /// A YCSB insert of this key number.
    YcsbInsert(u64),
    /// A scenario-specific record: an index into the scenario's own table of issued operations.
    Issued(u64),
}

/// One logical operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Name under which its latency is recorded (`READ`, `place_order`, ...).
    pub name: &'static str,
    /// The calls, issued in order; the operation stops at the first failure.
    pub calls: Vec<Call>,
    /// What to tell the scenario when it finishes.
    pub ack: Ack,
}

impl Op {
    /// An operation of one call.
    pub fn single(name: &'static str, operation: &'static str, body: Value, ack: Ack) -> Op {
        Op { name, calls: vec![Call { operation, body }], ack }
    }
}

/// Issues an operation's calls in order; returns the last response or the first failure.
pub async fn execute<A: DynamoApi>(api: &A, op: &Op) -> Result<Value, DriverError> {
    let mut last = Value::Null;
    for call in &op.calls {
        last = api.call(call.operation, call.body.clone()).await?;
    }
    Ok(last)
}

/// Attempts at one call of the load phase that keeps failing (see [`execute_load`]).
pub const LOAD_THROTTLED_ATTEMPTS: u32 = 20;
/// Pause after the first failed attempt; it doubles up to [`LOAD_THROTTLED_PAUSE_MAX`] (unit
/// tests do not wait).
const LOAD_THROTTLED_PAUSE: Duration = if cfg!(test) { Duration::from_micros(1) } else { Duration::from_millis(10) };
/// Longest pause between failed attempts.
pub const LOAD_THROTTLED_PAUSE_MAX: Duration =
    if cfg!(test) { Duration::from_micros(10) } else { Duration::from_secs(1) };

/// Whether sending `call` twice leaves the table as sending it once does: a PutItem without a
/// condition writes the same whole item again.
fn idempotent(call: &Call) -> bool {
    call.operation == "PutItem" && call.body.get("ConditionExpression").is_none()
}

/// Issues a load-phase operation's calls as [`execute`] does, sending a failed call again
/// after a growing pause, up to [`LOAD_THROTTLED_ATTEMPTS`] attempts. The load phase must put
/// every item in place at whatever rate the endpoint accepts (DynamoDB throttles a table beyond
/// its capacity). A throttled call was not applied, so it is always sent again; any other
/// retryable failure (a timeout, a server error, a lost connection) is sent again only for an
/// idempotent call, since it may have been applied. Anything else ends the operation at once.
pub async fn execute_load<A: DynamoApi>(api: &A, op: &Op) -> Result<Value, DriverError> {
    let mut last = Value::Null;
    for call in &op.calls {
        let mut pause = LOAD_THROTTLED_PAUSE;
        let mut attempt = 1;
        last = loop {
            match api.call(call.operation, call.body.clone()).await {
                Err(error)
                    if attempt < LOAD_THROTTLED_ATTEMPTS
                        && (error.is_throttling() || (error.is_retryable() && idempotent(call))) =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LOAD_THROTTLED_PAUSE_MAX);
                    attempt += 1;
                }
                result => break result?,
            }
        };
    }
    Ok(last)
}

/// A key attribute: name and scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// `S`, `N` or `B`.
    pub kind: String,
}

impl KeyAttribute {
    /// A key attribute.
    pub fn new(name: &str, kind: &str) -> Self {
        KeyAttribute { name: name.to_owned(), kind: kind.to_owned() }
    }
}

/// A global secondary index (projection ALL).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// Its partition key.
    pub partition_key: KeyAttribute,
    /// Its sort key, if any.
    pub sort_key: Option<KeyAttribute>,
}

/// A table a scenario uses (on-demand billing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableDef {
    /// Table name.
    pub name: String,
    /// Partition key.
    pub partition_key: KeyAttribute,
    /// Sort key, if any.
    pub sort_key: Option<KeyAttribute>,
    /// Global secondary indexes.
    pub indexes: Vec<IndexDef>,
}

impl TableDef {
    /// The CreateTable request.
    pub fn create_request(&self) -> Value {
        let mut definitions: Vec<&KeyAttribute> = Vec::new();
        let keys = std::iter::once(&self.partition_key).chain(self.sort_key.as_ref()).chain(
            self.indexes.iter().flat_map(|index| std::iter::once(&index.partition_key).chain(index.sort_key.as_ref())),
        );
        for attribute in keys {
            if !definitions.iter().any(|d| d.name == attribute.name) {
                definitions.push(attribute);
            }
        }
        let definitions: Vec<Value> =
            definitions.iter().map(|a| json!({"AttributeName": a.name, "AttributeType": a.kind})).collect();
        let mut request = json!({
            "TableName": self.name,
            "KeySchema": key_schema(&self.partition_key, self.sort_key.as_ref()),
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        });
        if !self.indexes.is_empty() {
            request["GlobalSecondaryIndexes"] = self
                .indexes
                .iter()
                .map(|index| {
                    json!({
                        "IndexName": index.name,
                        "KeySchema": key_schema(&index.partition_key, index.sort_key.as_ref()),
                        "Projection": {"ProjectionType": "ALL"},
                    })
                })
                .collect();
        }
        request
    }
}

fn key_schema(partition: &KeyAttribute, sort: Option<&KeyAttribute>) -> Value {
    let mut schema = vec![json!({"AttributeName": partition.name, "KeyType": "HASH"})];
    if let Some(sort) = sort {
        schema.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
    }
    Value::Array(schema)
}

/// Why tables could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The table exists and recreating was not asked for.
    #[error("table {0} already exists (pass --recreate to delete and create it again)")]
    Exists(String),
    /// A call failed.
    #[error("{operation} {table}: {source}")]
    Call {
        /// The operation.
        operation: &'static str,
        /// The table.
        table: String,
        /// The failure.
        #[source]
        source: DriverError,
    },
    /// The table did not become ACTIVE in time.
    #[error("table {0} did not become ACTIVE within {TABLE_ACTIVE_WAIT:?}")]
    NotActive(String),
}

/// Creates the tables and waits until each (and its indexes) is ACTIVE. An existing table is an
/// error unless `recreate`, which deletes it first.
pub async fn create_tables<A: DynamoApi>(api: &A, tables: &[TableDef], recreate: bool) -> Result<(), SetupError> {
    for table in tables {
        let call_error = |operation, source| SetupError::Call { operation, table: table.name.clone(), source };
        match api.call("CreateTable", table.create_request()).await {
            Ok(_) => {}
            Err(error) if error.type_name() == Some("ResourceInUseException") => {
                if !recreate {
                    return Err(SetupError::Exists(table.name.clone()));
                }
                api.call("DeleteTable", json!({"TableName": table.name}))
                    .await
                    .map_err(|e| call_error("DeleteTable", e))?;
                wait_deleted(api, &table.name).await?;
                api.call("CreateTable", table.create_request()).await.map_err(|e| call_error("CreateTable", e))?;
            }
            Err(error) => return Err(call_error("CreateTable", error)),
        }
        wait_active(api, &table.name).await?;
    }
    Ok(())
}

async fn wait_active<A: DynamoApi>(api: &A, table: &str) -> Result<(), SetupError> {
    let polls = TABLE_ACTIVE_WAIT.as_millis() / TABLE_POLL_INTERVAL.as_millis();
    for _ in 0..polls {
        let description = api
            .call("DescribeTable", json!({"TableName": table}))
            .await
            .map_err(|source| SetupError::Call { operation: "DescribeTable", table: table.to_owned(), source })?;
        let table_description = &description["Table"];
        // Servers that leave out a status are taken as ready: be liberal in what is accepted.
        let active = |status: &Value| status.as_str().is_none_or(|s| s == "ACTIVE");
        let indexes_active = table_description["GlobalSecondaryIndexes"]
            .as_array()
            .is_none_or(|indexes| indexes.iter().all(|index| active(&index["IndexStatus"])));
        if active(&table_description["TableStatus"]) && indexes_active {
            return Ok(());
        }
        tokio::time::sleep(TABLE_POLL_INTERVAL).await;
    }
    Err(SetupError::NotActive(table.to_owned()))
}

async fn wait_deleted<A: DynamoApi>(api: &A, table: &str) -> Result<(), SetupError> {
    let polls = TABLE_ACTIVE_WAIT.as_millis() / TABLE_POLL_INTERVAL.as_millis();
    for _ in 0..polls {
        match api.call("DescribeTable", json!({"TableName": table})).await {
            Err(error) if error.type_name() == Some("ResourceNotFoundException") => return Ok(()),
            Err(source) => {
                return Err(SetupError::Call { operation: "DescribeTable", table: table.to_owned(), source })
            }
            Ok(_) => tokio::time::sleep(TABLE_POLL_INTERVAL).await,
        }
    }
    Err(SetupError::NotActive(table.to_owned()))
}

/// Every item of a table (or of one of its indexes), read with consistent Scans page by page.
pub async fn scan_all<A: DynamoApi>(api: &A, table: &str, index: Option<&str>) -> Result<Vec<Item>, DriverError> {
    let mut items = Vec::new();
    let mut start_key: Option<Value> = None;
    for _ in 0..SCAN_PAGES_MAX {
        let mut request = json!({"TableName": table});
        if let Some(index) = index {
            request["IndexName"] = json!(index);
        } else {
            request["ConsistentRead"] = json!(true);
        }
        if let Some(key) = start_key.take() {
            request["ExclusiveStartKey"] = key;
        }
        let page = scan_page(api, request).await?;
        if let Some(page_items) = page["Items"].as_array() {
            items.extend(page_items.iter().filter_map(|item| item.as_object().cloned()));
        }
        match page.get("LastEvaluatedKey") {
            Some(key) if key.as_object().is_some_and(|k| !k.is_empty()) => start_key = Some(key.clone()),
            _ => return Ok(items),
        }
    }
    Err(DriverError::Protocol(format!("scan of {table} did not end within {SCAN_PAGES_MAX} pages")))
}

/// Longest [`settle`] waits for the tables to stop changing.
pub const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// Pause between two reads of the tables in [`settle`] (unit tests do not wait).
const SETTLE_PAUSE: Duration = if cfg!(test) { Duration::from_millis(1) } else { Duration::from_secs(1) };

/// Reads every table and index in full, again and again, until two reads in a row return the
/// same items, or [`SETTLE_WAIT`] has passed; returns whether they settled.
///
/// A check must read a database that no longer changes: a request whose answer never came (a
/// timeout, a lost connection) may still be applied after the run, perhaps between the check's
/// read of a table and of its index, and DynamoDB keeps global secondary indexes only
/// eventually consistent with their tables.
pub async fn settle<A: DynamoApi>(api: &A, tables: &[TableDef]) -> Result<bool, DriverError> {
    let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
    let mut previous = None;
    loop {
        let mut snapshot = Vec::new();
        for table in tables {
            let sources = std::iter::once(None).chain(table.indexes.iter().map(|i| Some(i.name.as_str())));
            for index in sources {
                // Sorted, so that two reads of the same contents compare equal in any order.
                let mut items: Vec<String> = scan_all(api, &table.name, index)
                    .await?
                    .iter()
                    .map(|item| Value::Object(item.clone()).to_string())
                    .collect();
                items.sort_unstable();
                snapshot.push(items);
            }
        }
        if previous.as_ref() == Some(&snapshot) {
            return Ok(true);
        }
        if tokio::time::Instant::now() + SETTLE_PAUSE > deadline {
            return Ok(false);
        }
        previous = Some(snapshot);
        tokio::time::sleep(SETTLE_PAUSE).await;
    }
}

/// One Scan page, tried again after a pause when the failure may pass (throttling, a server
/// error, a timeout, a lost connection).
async fn scan_page<A: DynamoApi>(api: &A, request: Value) -> Result<Value, DriverError> {
    let mut pause = SCAN_RETRY_PAUSE;
    let mut attempt = 1;
    loop {
        match api.call("Scan", request.clone()).await {
            Err(error) if error.is_retryable() && attempt < SCAN_PAGE_ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// The operations among `operations` that the endpoint does not implement.
///
/// Each is sent once with an empty request, which changes nothing: an endpoint that implements
/// the operation refuses it as invalid (or answers some other error), and one that does not
/// answers `UnknownOperationException`, as DynamoDB does for an operation it does not know. A
/// transport failure (no connection, no answer) is returned as an error.
pub async fn unsupported_operations<A: DynamoApi>(
    api: &A,
    operations: impl IntoIterator<Item = &'static str>,
) -> Result<Vec<&'static str>, DriverError> {
    let mut unsupported = Vec::new();
    for operation in operations {
        match api.call(operation, json!({})).await {
            Err(error) if error.type_name() == Some(crate::tally::UNKNOWN_OPERATION) => unsupported.push(operation),
            Err(error @ (DriverError::Timeout { .. } | DriverError::Connect { .. } | DriverError::Io(_))) => {
                return Err(error)
            }
            _ => {}
        }
    }
    Ok(unsupported)
}

/// An item in DynamoDB JSON: attribute name → typed value.
pub type Item = Map<String, Value>;

/// `{"S": text}`.
pub fn s(text: impl Into<String>) -> Value {
    json!({"S": text.into()})
}

/// `{"N": "number"}`.
pub fn n(number: i64) -> Value {
    json!({"N": number.to_string()})
}

/// The string of an `S` attribute.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

/// The integer of an `N` attribute (DynamoDB numbers are text; integral ones parse).
pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.get("N")?.as_str()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_defines_each_key_attribute_once() {
        let table = TableDef {
            name: "orders".into(),
            partition_key: KeyAttribute::new("pk", "S"),
            sort_key: Some(KeyAttribute::new("sk", "S")),
            indexes: vec![IndexDef {
                name: "by_status".into(),
                partition_key: KeyAttribute::new("status", "S"),
                sort_key: Some(KeyAttribute::new("sk", "S")),
            }],
        };
        let request = table.create_request();
        assert_eq!(request["AttributeDefinitions"].as_array().unwrap().len(), 3);
        assert_eq!(request["KeySchema"][1]["KeyType"], "RANGE");
        assert_eq!(request["GlobalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"], "status");
        let plain = TableDef { indexes: vec![], sort_key: None, ..table };
        assert!(plain.create_request().get("GlobalSecondaryIndexes").is_none());
    }

    /// Knows GetItem and Scan only; its Scan fails `scan_failures` times before it answers.
    #[derive(Clone)]
    struct Partial {
        scan_failures: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    impl DynamoApi for Partial {
        async fn call(&self, operation: &str, _body: Value) -> Result<Value, DriverError> {
            let service = |type_name: &str, status| DriverError::Service {
                type_name: type_name.into(),
                message: String::new(),
                status,
            };
            match operation {
                "GetItem" => Err(service("ValidationException", 400)),
                "Scan" => {
                    let left = self.scan_failures.load(std::sync::atomic::Ordering::Relaxed);
                    if left > 0 {
                        self.scan_failures.store(left - 1, std::sync::atomic::Ordering::Relaxed);
                        return Err(service("InternalServerError", 500));
                    }
                    Ok(json!({"Items": [{"id": s("a")}]}))
                }
                _ => Err(service(crate::tally::UNKNOWN_OPERATION, 400)),
            }
        }
    }

    #[tokio::test]
    async fn operations_answered_as_unknown_are_unsupported() {
        let api = Partial { scan_failures: Default::default() };
        let unsupported = unsupported_operations(&api, ["GetItem", "TransactWriteItems", "Scan"]).await.unwrap();
        assert_eq!(unsupported, ["TransactWriteItems"]);
    }

    #[tokio::test]
    async fn a_scan_page_is_tried_again_after_a_passing_failure() {
        let api = Partial { scan_failures: std::sync::Arc::new(1.into()) };
        let items = scan_all(&api, "t", None).await.unwrap();
        assert_eq!(items.len(), 1);
        // A failure that keeps coming back is reported after the attempts run out.
        let api = Partial { scan_failures: std::sync::Arc::new(SCAN_PAGE_ATTEMPTS.into()) };
        assert!(scan_all(&api, "t", None).await.is_err());
    }

    /// A table whose Scan shows one more item on each of its first `changes` reads.
    #[derive(Clone)]
    struct Growing {
        reads: std::sync::Arc<std::sync::atomic::AtomicU32>,
        changes: u32,
    }

    impl DynamoApi for Growing {
        async fn call(&self, _operation: &str, _body: Value) -> Result<Value, DriverError> {
            let read = self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let items: Vec<Value> = (0..=read.min(self.changes)).map(|i| json!({"id": s(i.to_string())})).collect();
            Ok(json!({ "Items": items }))
        }
    }

    #[tokio::test]
    async fn settling_reads_until_two_reads_agree() {
        let table =
            TableDef { name: "t".into(), partition_key: KeyAttribute::new("id", "S"), sort_key: None, indexes: vec![] };
        let api = Growing { reads: Default::default(), changes: 3 };
        assert!(settle(&api, std::slice::from_ref(&table)).await.unwrap());
        // Reads 0..=3 differ, read 4 equals read 3.
        assert_eq!(api.reads.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    /// Times out the first `failures` calls, then answers; counts the calls.
    #[derive(Clone, Default)]
    struct Flaky {
        failures: u32,
        calls: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    impl DynamoApi for Flaky {
        async fn call(&self, _operation: &str, _body: Value) -> Result<Value, DriverError> {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if call < self.failures {
                return Err(DriverError::Timeout { after: Duration::from_millis(1) });
            }
            Ok(json!({}))
        }
    }

    #[tokio::test]
    async fn the_load_sends_an_unconditional_put_again_after_a_timeout_and_nothing_else() {
        let put = Op::single("load", "PutItem", json!({"TableName": "t", "Item": {"id": s("a")}}), Ack::None);
        let api = Flaky { failures: 2, ..Flaky::default() };
        assert!(execute_load(&api, &put).await.is_ok());
        assert_eq!(api.calls.load(std::sync::atomic::Ordering::Relaxed), 3);

        // A conditional put or an update may have been applied: not sent twice.
        let mut conditional = put.clone();
        conditional.calls[0].body["ConditionExpression"] = json!("attribute_not_exists(id)");
        let update = Op::single("load", "UpdateItem", json!({"TableName": "t"}), Ack::None);
        for op in [conditional, update] {
            let api = Flaky { failures: 1, ..Flaky::default() };
            assert!(execute_load(&api, &op).await.is_err());
            assert_eq!(api.calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        }

        // A failure that keeps coming back is reported after the attempts run out.
        let api = Flaky { failures: u32::MAX, ..Flaky::default() };
        assert!(execute_load(&api, &put).await.is_err());
        assert_eq!(api.calls.load(std::sync::atomic::Ordering::Relaxed), LOAD_THROTTLED_ATTEMPTS);
    }

    #[test]
    fn attribute_helpers_read_typed_values() {
        let item: Item = serde_json::from_value(json!({"a": s("x"), "b": n(-7), "c": {"N": "1.5"}})).unwrap();
        assert_eq!(get_s(&item, "a"), Some("x"));
        assert_eq!(get_n(&item, "b"), Some(-7));
        assert_eq!(get_n(&item, "c"), None);
        assert_eq!(get_s(&item, "b"), None);
    }
}
