//! The request router every clustered node runs behind its HTTP endpoint: it sends each API
//! request to the group that owns it, splits batches by partition, walks a Scan across the
//! partitions in hash order, gathers a global-index Query from every partition, and merges the
//! answers into one DynamoDB response.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::node::ClusterNode;
use super::routing;
use super::wire::Mode;
use crate::api::common::Request;
use crate::api::ApiError;
use crate::catalog::{IndexKind, IndexMeta, TableMeta};
use crate::model::{encode_key_value, AttributeValue};
use crate::partition::{HashRange, PartitionDescriptor, PartitionMap};

type ApiResult = Result<Value, ApiError>;

/// Operations the metadata group replicates.
const META_OPERATIONS: &[&str] = &["CreateTable", "DeleteTable", "UpdateTable", "TagResource", "UntagResource"];

/// Steps and step length of the wait for this node's catalog to show a table change the
/// metadata group committed: 2 s at most.
const CATALOG_WAIT_STEPS: u32 = 100;
/// How long a replica move may take before the administration request gives up waiting (the
/// move may still finish).
const MOVE_WAIT_MS: u64 = 60_000;
const CATALOG_WAIT_STEP_MS: u64 = 20;

/// Attempts of a request that meets split partitions, and the first and longest pause between
/// them: about 7 s in all, time for the metadata group to record a split.
const STALE_MAP_ATTEMPTS_MAX: u32 = 20;
const STALE_MAP_BACKOFF_MS: u64 = 20;
const STALE_MAP_BACKOFF_MAX_MS: u64 = 500;

/// The router of one node.
#[derive(Clone)]
pub struct Router {
    node: Arc<ClusterNode>,
}

/// Times a TransactGetItems over several partitions reads them twice looking for two passes
/// that agree before it is cancelled as conflicting.
const TRANSACT_GET_ATTEMPTS_MAX: usize = 3;

fn replicas_of(partition: &PartitionDescriptor) -> Vec<u64> {
    partition.replicas.iter().map(|r| r.node.0).collect()
}

fn consistent(request: &Value) -> bool {
    request.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false)
}

fn read_mode(request: &Value) -> Mode {
    if consistent(request) {
        Mode::Replicated
    } else {
        Mode::Local
    }
}

fn to_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl Router {
    /// The router of `node`.
    pub fn new(node: Arc<ClusterNode>) -> Router {
        Router { node }
    }

    /// Runs one API request wherever it belongs.
    pub async fn call(&self, operation: &str, body: &[u8]) -> ApiResult {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            // Not JSON: the local service words the error.
            return self.node.call_local(operation, body);
        };
        if let Some(name) = operation.strip_prefix(crate::http::ADMIN_OPERATION_PREFIX) {
            return self.admin(name, &request).await;
        }
        if self.node.catalog_unready() {
            return Err(ApiError::ServiceUnavailable(
                "this node is rejoining the cluster and has no catalog yet; try again".into(),
            ));
        }
        if META_OPERATIONS.contains(&operation) {
            // Checked here, where the request enters, not where the change is applied: every
            // node must apply a committed change whatever quota it was started with.
            if let Some(quota) = self.node.enforced_quota() {
                crate::api::quota::check_request(self.node.database(), operation, body, quota)?;
            }
            let result = self.node.route_meta(operation, body).await;
            // The metadata leader answered after applying the change; this node's copy of the
            // catalog may lag by a moment. Wait for it, so that a client's next request to this
            // node sees its own table change.
            if result.is_ok() {
                if let Ok(name) = routing::table_name(&request) {
                    match operation {
                        "CreateTable" => self.wait_for_catalog(name, true).await,
                        "DeleteTable" => self.wait_for_catalog(name, false).await,
                        _ => {}
                    }
                }
            }
            return result;
        }
        // A partition split while the request was on its way refuses it before it changes
        // anything; the request is routed again once this node's map shows the split. (A
        // batch's refused part comes back unprocessed instead, since other parts ran.)
        let mut backoff_ms = STALE_MAP_BACKOFF_MS;
        for _ in 1..STALE_MAP_ATTEMPTS_MAX {
            match self.dispatch(operation, &request, body).await {
                Err(error) if super::split::is_stale_partition(&error) => {
                    tokio::time::sleep(std::time::Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(STALE_MAP_BACKOFF_MAX_MS);
                }
                result => return result,
            }
        }
        self.dispatch(operation, &request, body).await
    }

    /// Sends a data-plane request where its partitions are.
    async fn dispatch(&self, operation: &str, request: &Value, body: &[u8]) -> ApiResult {
        match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" => self.item(operation, request, body, Mode::Replicated).await,
            "GetItem" => self.item(operation, request, body, read_mode(request)).await,
            "Query" => self.query(request, body).await,
            "Scan" => self.scan(request).await,
            "BatchWriteItem" => self.batch_write(request, body).await,
            "BatchGetItem" => self.batch_get(request, body).await,
            "TransactWriteItems" | "TransactGetItems" => self.transaction(operation, request, body).await,
            // DescribeTable, ListTables, ListTagsOfResource and unknown operations: the local
            // catalog answers.
            _ => self.node.call_local(operation, body),
        }
    }

    /// Squall's administration operations (`X-Amz-Target: SquallAdmin.<name>`).
    ///
    /// - `DescribeReplicas` `{}`: this node's replicas, their applied index and data digest.
    /// - `DescribeReplicaRecords` `{"Group"}`: every record this node's replica of a partition
    ///   holds (key in hex, hash of the value), to find where two replicas differ.
    /// - `DescribePartitions` `{"TableName"}`: the table's partition map as this node knows it.
    /// - `SplitPartition` `{"TableName", "PartitionId"?, "SplitHash"?}`: splits a partition (by
    ///   default the widest) at a hash (by default the median of its items' sizes, taken by its
    ///   leader) and answers with the two new partitions once the split is applied.
    ///
    /// `SquallAdmin.MoveReplica {TableName, PartitionId, FromNode, ToNode}`: moves one replica
    /// of a partition to another node, keeping the partition's replicas in distinct zones.
    async fn move_replica(&self, request: &Value) -> ApiResult {
        let (table, map) = self.node.table_map(routing::table_name(request)?)?;
        let field = |name: &str| {
            request.get(name).and_then(Value::as_u64).ok_or_else(|| ApiError::validation(format!("{name} is required")))
        };
        let (id, from, to) = (field("PartitionId")?, field("FromNode")?, field("ToNode")?);
        let partition = map
            .partitions()
            .iter()
            .find(|p| p.id.0 == id)
            .cloned()
            .ok_or_else(|| ApiError::ResourceNotFound(format!("partition {id} is not in the table's map")))?;
        let replicas: Vec<u64> = partition.replicas.iter().map(|r| r.node.0).collect();
        if !replicas.contains(&from) {
            return Err(ApiError::validation(format!("node {from} holds no replica of partition {id}")));
        }
        if replicas.contains(&to) {
            return Err(ApiError::validation(format!("node {to} already holds a replica of partition {id}")));
        }
        let spec = self.node.spec();
        let zone = |node: u64| spec.node(node).map(|n| n.zone.clone());
        let Some(to_zone) = zone(to) else {
            return Err(ApiError::validation(format!("node {to} is not in the cluster")));
        };
        if replicas.iter().filter(|r| **r != from).any(|r| zone(*r).as_ref() == Some(&to_zone)) {
            return Err(ApiError::validation(format!(
                "zone {to_zone} already holds a replica of partition {id}; replicas stay in distinct zones"
            )));
        }
        let wait = std::time::Duration::from_millis(MOVE_WAIT_MS);
        self.node.move_replica(table.meta.id, id, &replicas, from, to, wait).await
    }

    async fn admin(&self, name: &str, request: &Value) -> ApiResult {
        match name {
            "DescribeReplicas" => {
                let statuses = self.node.replica_statuses().map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(json!({ "Node": self.node.id(), "Replicas": statuses }))
            }
            "DescribeReplicaRecords" => {
                let group = request
                    .get("Group")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ApiError::validation("Group must be a partition group id"))?;
                let (applied, records) = self.node.replica_records(group)?;
                let records: Vec<Value> =
                    records.iter().map(|(key, hash)| json!([hex_of(key), format!("{hash:016x}")])).collect();
                Ok(json!({"Node": self.node.id(), "Group": group, "AppliedIndex": applied, "Records": records}))
            }
            "DescribePartitions" => {
                let (_, map) = self.node.table_map(routing::table_name(request)?)?;
                Ok(describe_map(&map))
            }
            "MoveReplica" => self.move_replica(request).await,
            "SplitPartition" => {
                let (_, map) = self.node.table_map(routing::table_name(request)?)?;
                let partition = match request.get("PartitionId") {
                    Some(id) => {
                        let id = id.as_u64().ok_or_else(|| ApiError::validation("PartitionId must be a number"))?;
                        map.partitions().iter().find(|p| p.id.0 == id).cloned().ok_or_else(|| {
                            ApiError::ResourceNotFound(format!("partition {id} is not in the table's map"))
                        })?
                    }
                    None => map
                        .partitions()
                        .iter()
                        .max_by_key(|p| (p.range.width(), std::cmp::Reverse(p.range.start())))
                        .cloned()
                        .ok_or_else(|| ApiError::Internal("the table has no partitions".into()))?,
                };
                let mut body = json!({});
                if let Some(at) = request.get("SplitHash") {
                    let at = at.as_u64().ok_or_else(|| ApiError::validation("SplitHash must be a number"))?;
                    body["At"] = json!(at);
                }
                let answer = self
                    .node
                    .route(
                        partition.id.0,
                        &replicas_of(&partition),
                        Some(partition.range),
                        Mode::Replicated,
                        super::split::SPLIT,
                        &to_body(&body),
                    )
                    .await?;
                Ok(json!({"Parent": partition.id.0, "Children": answer["Children"], "SplitHash": answer["At"]}))
            }
            other => Err(ApiError::UnknownOperation(format!("Unknown operation: SquallAdmin.{other}"))),
        }
    }

    /// Waits (boundedly) until this node's catalog has, or no longer has, table `name` and
    /// its partitions.
    async fn wait_for_catalog(&self, name: &str, exists: bool) {
        for _ in 0..CATALOG_WAIT_STEPS {
            if self.node.table_map(name).is_ok() == exists {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(CATALOG_WAIT_STEP_MS)).await;
        }
    }

    /// The partition an item request addresses, if it can be told.
    fn partition_of(&self, operation: &str, request: &Value) -> Option<PartitionDescriptor> {
        let table_name = routing::table_name(request).ok()?;
        let (table, map) = self.node.table_map(table_name).ok()?;
        let hash = routing::item_request_hash(&table.meta, operation, request)?;
        Some(routing::partition_for(&map, hash).clone())
    }

    async fn item(&self, operation: &str, request: &Value, body: &[u8], mode: Mode) -> ApiResult {
        match self.partition_of(operation, request) {
            Some(p) => self.node.route(p.id.0, &replicas_of(&p), Some(p.range), mode, operation, body).await,
            // No table or no key: the local service gives the validation error.
            None => self.node.call_local(operation, body),
        }
    }

    async fn query(&self, request: &Value, body: &[u8]) -> ApiResult {
        let value = crate::api::ops::query::routing_value(self.node.database(), body)?;
        let table_name = routing::table_name(request)?;
        let (table, map) = self.node.table_map(table_name)?;
        let mode = read_mode(request);
        match value {
            Some(value) => {
                let p = routing::partition_for(&map, routing::hash_of(&value)).clone();
                self.node.route(p.id.0, &replicas_of(&p), Some(p.range), mode, "Query", body).await
            }
            None => self.gather_index_read("Query", request, &table.meta, &map, mode).await,
        }
    }

    /// A read of a global index: every partition answers for its own items, and the pages are
    /// merged in index order.
    async fn gather_index_read(
        &self,
        operation: &str,
        request: &Value,
        table: &TableMeta,
        map: &PartitionMap,
        mode: Mode,
    ) -> ApiResult {
        let index_name = request.get("IndexName").and_then(Value::as_str).unwrap_or_default();
        let Some(index) = table.indexes.iter().find(|i| i.name == index_name) else {
            return self.node.call_local(operation, &to_body(request));
        };
        if mode == Mode::Replicated {
            // A strongly consistent read of a global index: the local service refuses it.
            return self.node.call_local(operation, &to_body(request));
        }
        let body = to_body(request);
        let evaluated = if operation == "Query" { super::node::EVALUATED_QUERY } else { super::node::EVALUATED_SCAN };
        let mut pages = Vec::new();
        for p in map.partitions() {
            pages.push(self.node.route(p.id.0, &replicas_of(p), Some(p.range), mode, evaluated, &body).await?);
        }
        Ok(merge_pages(pages, request, table, index))
    }

    /// Scan walks the partitions overlapping its segment in hash order, starting at the one
    /// holding the ExclusiveStartKey, and returns the first page that ends early.
    async fn scan(&self, request: &Value) -> ApiResult {
        let table_name = routing::table_name(request)?;
        let (table, map) = self.node.table_map(table_name)?;
        let segment = segment_range(request);
        let global_index = request
            .get("IndexName")
            .and_then(Value::as_str)
            .and_then(|name| table.meta.indexes.iter().find(|i| i.name == name))
            .is_some_and(|i| i.kind == IndexKind::Global);
        let mode = read_mode(request);
        if global_index {
            // Index entries are ordered by the index key's hash, not the table's: gather.
            return self.gather_index_read("Scan", request, &table.meta, &map, mode).await;
        }
        let start_hash = request
            .get("ExclusiveStartKey")
            .and_then(|k| k.get(&table.meta.key_schema.partition.name))
            .and_then(|v| crate::model::AttributeValue::from_json(v).ok())
            .map(|v| routing::hash_of(&v));
        let partitions: Vec<PartitionDescriptor> = map
            .partitions()
            .iter()
            .filter(|p| segment.is_none_or(|s| p.range.overlaps(s.start(), s.end())))
            .filter(|p| start_hash.is_none_or(|h| p.range.end().is_none_or(|end| h < end)))
            .cloned()
            .collect();
        let limit = request.get("Limit").and_then(Value::as_u64);
        let mut merged: Option<Value> = None;
        let mut request = request.clone();
        // Pages from several partitions make one page of at most 1 MB read, as one partition's:
        // they list their entries' sizes, which one partition's page alone needs not.
        let operation = if partitions.len() > 1 { super::node::EVALUATED_SCAN } else { "Scan" };
        let mut bytes_read = 0u64;
        for p in partitions {
            let scanned_so_far =
                merged.as_ref().and_then(|m| m.get("ScannedCount")).and_then(Value::as_u64).unwrap_or(0);
            if let Some(limit) = limit {
                if let Some(map) = request.as_object_mut() {
                    map.insert("Limit".into(), json!(limit.saturating_sub(scanned_so_far).max(1)));
                }
            }
            let page =
                self.node.route(p.id.0, &replicas_of(&p), Some(p.range), mode, operation, &to_body(&request)).await?;
            let (page, page_bytes) = cut_at_page_size(page, bytes_read);
            bytes_read += page_bytes;
            let ended_early = page.get("LastEvaluatedKey").is_some();
            merged = Some(match merged {
                None => page,
                Some(acc) => append_page(acc, page),
            });
            if ended_early {
                break;
            }
            // The next partition starts at its beginning.
            if let Some(map) = request.as_object_mut() {
                map.remove("ExclusiveStartKey");
            }
        }
        match merged {
            Some(page) => Ok(page),
            // No partition overlaps: an empty page, worded by the local service for validation.
            None => self.node.call_local("Scan", &to_body(&request)),
        }
    }

    async fn batch_write(&self, request: &Value, body: &[u8]) -> ApiResult {
        let Some(tables) = request.get("RequestItems").and_then(Value::as_object) else {
            return self.node.call_local("BatchWriteItem", body);
        };
        let total: usize = tables.values().filter_map(Value::as_array).map(Vec::len).sum();
        if total == 0 || total > crate::api::BATCH_WRITE_REQUESTS_MAX {
            return self.node.call_local("BatchWriteItem", body);
        }
        // Every write is checked before any part is sent: a batch with one bad request writes
        // nothing, on a cluster as on one node.
        if let Some(map) = request.as_object() {
            crate::api::ops::batch_write_item::validate(self.node.database(), &Request(map.clone()))?;
        }
        // Group the writes by partition, keeping request order within each.
        let mut groups: BTreeMap<u64, (PartitionDescriptor, Map<String, Value>)> = BTreeMap::new();
        for (table_name, writes) in tables {
            let Ok((table, map)) = self.node.table_map(table_name) else {
                return self.node.call_local("BatchWriteItem", body);
            };
            for write in writes.as_array().into_iter().flatten() {
                let (field, op) = if let Some(put) = write.get("PutRequest") {
                    (put.get("Item"), "PutItem")
                } else {
                    (write.get("DeleteRequest").and_then(|d| d.get("Key")), "DeleteItem")
                };
                let field_name = if op == "PutItem" { "Item" } else { "Key" };
                let probe = json!({ field_name: field.cloned().unwrap_or(Value::Null) });
                let Some(hash) = routing::item_request_hash(&table.meta, op, &probe) else {
                    return self.node.call_local("BatchWriteItem", body);
                };
                let p = routing::partition_for(&map, hash).clone();
                let entry = groups.entry(p.id.0).or_insert_with(|| (p, Map::new()));
                entry
                    .1
                    .entry(table_name.clone())
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .into_iter()
                    .for_each(|a| a.push(write.clone()));
            }
        }
        let mut parts = BatchParts::default();
        for (_, (p, items)) in groups {
            let mut sub = request.clone();
            sub["RequestItems"] = Value::Object(items);
            let response = self
                .node
                .route(p.id.0, &replicas_of(&p), Some(p.range), Mode::Replicated, "BatchWriteItem", &to_body(&sub))
                .await;
            parts.add(response, || json!({"UnprocessedItems": sub["RequestItems"].clone()}))?;
        }
        parts.finish("UnprocessedItems")
    }

    async fn batch_get(&self, request: &Value, body: &[u8]) -> ApiResult {
        let Some(tables) = request.get("RequestItems").and_then(Value::as_object) else {
            return self.node.call_local("BatchGetItem", body);
        };
        let total: usize = tables.values().filter_map(|t| t.get("Keys").and_then(Value::as_array)).map(Vec::len).sum();
        if total == 0 || total > crate::api::BATCH_GET_KEYS_MAX {
            return self.node.call_local("BatchGetItem", body);
        }
        let mut groups: BTreeMap<u64, (PartitionDescriptor, Map<String, Value>, bool)> = BTreeMap::new();
        for (table_name, spec) in tables {
            let Ok((table, map)) = self.node.table_map(table_name) else {
                return self.node.call_local("BatchGetItem", body);
            };
            let strong = consistent(spec);
            for key in spec.get("Keys").and_then(Value::as_array).into_iter().flatten() {
                let Some(hash) = routing::item_request_hash(&table.meta, "GetItem", &json!({ "Key": key })) else {
                    return self.node.call_local("BatchGetItem", body);
                };
                let p = routing::partition_for(&map, hash).clone();
                let entry = groups.entry(p.id.0).or_insert_with(|| (p, Map::new(), false));
                entry.2 |= strong;
                let table_spec = entry.1.entry(table_name.clone()).or_insert_with(|| {
                    let mut s = spec.clone();
                    s["Keys"] = json!([]);
                    s
                });
                if let Some(keys) = table_spec.get_mut("Keys").and_then(Value::as_array_mut) {
                    keys.push(key.clone());
                }
            }
        }
        let mut parts = BatchParts::default();
        // The parts' answers together stay within the 16 MB a response may hold, as one
        // node's do: past it, items come back as unprocessed keys, and parts not yet asked
        // are not asked.
        let mut response_bytes = 0usize;
        for (_, (p, items, strong)) in groups {
            let mut sub = request.clone();
            sub["RequestItems"] = Value::Object(items);
            if response_bytes >= crate::api::BATCH_GET_RESPONSE_BYTES_MAX {
                parts.responses.push(json!({"UnprocessedKeys": sub["RequestItems"].clone()}));
                continue;
            }
            let mode = if strong { Mode::Replicated } else { Mode::Local };
            let response =
                self.node.route(p.id.0, &replicas_of(&p), Some(p.range), mode, "BatchGetItem", &to_body(&sub)).await;
            let response = response.map(|r| self.within_response_size(r, &sub, &mut response_bytes));
            parts.add(response, || json!({"UnprocessedKeys": sub["RequestItems"].clone()}))?;
        }
        parts.finish("UnprocessedKeys")
    }

    /// A part's BatchGetItem answer after answers of `response_bytes` in all: the items that
    /// still fit in 16 MB, and the keys of the rest added to its unprocessed keys (with the
    /// part's request for that table). An item whose key its projection left out stays.
    fn within_response_size(&self, mut answer: Value, sub: &Value, response_bytes: &mut usize) -> Value {
        let Some(responses) = answer.get_mut("Responses").and_then(Value::as_object_mut) else { return answer };
        let mut left: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (table_name, items) in responses.iter_mut() {
            let Some(items) = items.as_array_mut() else { continue };
            let key_schema = self.node.table_map(table_name).ok().map(|(t, _)| t.meta.key_schema.clone());
            items.retain(|item| {
                let size = crate::model::item_from_json(item).map(|i| crate::model::item_size_bytes(&i)).unwrap_or(0);
                let key = key_schema.as_ref().and_then(|schema| {
                    let key: Map<String, Value> = schema
                        .attributes()
                        .map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
                        .collect::<Option<_>>()?;
                    Some(Value::Object(key))
                });
                match key {
                    Some(key) if *response_bytes + size > crate::api::BATCH_GET_RESPONSE_BYTES_MAX => {
                        *response_bytes = crate::api::BATCH_GET_RESPONSE_BYTES_MAX;
                        left.entry(table_name.clone()).or_default().push(key);
                        false
                    }
                    _ => {
                        *response_bytes += size;
                        true
                    }
                }
            });
        }
        for (table_name, keys) in left {
            let unprocessed =
                answer.as_object_mut().map(|m| m.entry("UnprocessedKeys".to_string()).or_insert_with(|| json!({})));
            let Some(Value::Object(unprocessed)) = unprocessed else { continue };
            let entry = unprocessed.entry(table_name.clone()).or_insert_with(|| {
                let mut spec = sub["RequestItems"][&table_name].clone();
                spec["Keys"] = json!([]);
                spec
            });
            if let Some(list) = entry.get_mut("Keys").and_then(Value::as_array_mut) {
                list.extend(keys);
            }
        }
        answer
    }

    /// A transaction whose items live in one partition runs there as one log entry; one
    /// spanning partitions runs as a two-phase commit coordinated here (see [`super::txn`]).
    async fn transaction(&self, operation: &str, request: &Value, body: &[u8]) -> ApiResult {
        let Some(items) = request.get("TransactItems").and_then(Value::as_array) else {
            return self.node.call_local(operation, body);
        };
        if items.is_empty() || items.len() > crate::api::TRANSACT_ITEMS_MAX {
            return self.node.call_local(operation, body);
        }
        // Actions by partition, with their positions in the request.
        let mut parts: BTreeMap<u64, (PartitionDescriptor, Vec<usize>)> = BTreeMap::new();
        for (position, action) in items.iter().enumerate() {
            let Some((kind, spec)) = action.as_object().and_then(|o| o.iter().next()) else {
                return self.node.call_local(operation, body);
            };
            let op = if kind == "Put" { "PutItem" } else { "GetItem" };
            let Some(p) = self.partition_of(op, spec) else {
                return self.node.call_local(operation, body);
            };
            parts.entry(p.id.0).or_insert_with(|| (p, Vec::new())).1.push(position);
        }
        if parts.len() == 1 {
            let (_, (p, _)) = parts.into_iter().next().unwrap_or_else(|| unreachable!("one part"));
            return self.node.route(p.id.0, &replicas_of(&p), Some(p.range), Mode::Replicated, operation, body).await;
        }
        let sub_request = |positions: &[usize]| {
            let mut sub = request.clone();
            sub["TransactItems"] = Value::Array(positions.iter().map(|i| items[*i].clone()).collect());
            sub
        };
        if operation == "TransactGetItems" {
            // Each partition's reads are one consistent snapshot, and an item a write
            // transaction holds cancels them. Across partitions the items are read one
            // partition after another, twice: a write transaction that committed in between
            // changed an item read before it, so unequal passes are read again, and the reads
            // are cancelled as conflicting when the passes never agree.
            for _ in 0..TRANSACT_GET_ATTEMPTS_MAX {
                let first = self.read_parts(operation, &parts, items.len(), &sub_request).await?;
                let second = self.read_parts(operation, &parts, items.len(), &sub_request).await?;
                if first.get("Responses") == second.get("Responses") {
                    return Ok(first);
                }
            }
            let reasons = vec![
                json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"});
                items.len()
            ];
            return Err(crate::api::ops::transact_write_items::cancelled_with(reasons));
        }
        self.two_phase_commit(request, &parts, items.len(), sub_request).await
    }

    /// One pass of a TransactGetItems over its partitions, one after another: the items'
    /// responses in request order, and the capacity they consumed.
    async fn read_parts(
        &self,
        operation: &str,
        parts: &BTreeMap<u64, (PartitionDescriptor, Vec<usize>)>,
        total: usize,
        sub_request: &impl Fn(&[usize]) -> Value,
    ) -> ApiResult {
        let mut responses = vec![Value::Null; total];
        let mut merged = json!({});
        for (p, positions) in parts.values() {
            let sub = to_body(&sub_request(positions));
            let answer = self
                .node
                .route(p.id.0, &replicas_of(p), Some(p.range), Mode::Replicated, operation, &sub)
                .await
                // A partition's cancellation (its part refused for capacity, or meeting a write
                // transaction) names its actions only; the client sees one reason per action.
                .map_err(|error| super::txn::full_reasons(total, positions, &error).unwrap_or(error))?;
            let got = answer.get("Responses").and_then(Value::as_array).cloned().unwrap_or_default();
            for (position, response) in positions.iter().zip(got) {
                responses[*position] = response;
            }
            merge_capacity(&mut merged, &answer);
        }
        merged["Responses"] = Value::Array(responses);
        Ok(merged)
    }

    async fn two_phase_commit(
        &self,
        request: &Value,
        parts: &BTreeMap<u64, (PartitionDescriptor, Vec<usize>)>,
        total: usize,
        sub_request: impl Fn(&[usize]) -> Value,
    ) -> ApiResult {
        // The whole request is checked here: each part alone would pass the limits the whole
        // breaks (4 MB), and a bad part would otherwise only cancel the others. Its token goes
        // to the primary (the first item's partition, which keeps the token's record), since
        // the parts carry none.
        let whole = Request(request.as_object().cloned().unwrap_or_default());
        let token = crate::api::ops::transact_write_items::validate(self.node.database(), &whole)?;
        let txid = self.node.new_txid();
        // Every action has its part, so the first action's is found; the first part otherwise.
        let first_action = parts.iter().find(|(_, (_, positions))| positions.contains(&0)).map(|(group, _)| *group);
        let Some(primary) = first_action.or_else(|| parts.keys().next().copied()) else {
            return Err(ApiError::Internal("a transaction without parts".into()));
        };
        let mut groups: Vec<u64> = vec![primary];
        groups.extend(parts.keys().copied().filter(|g| *g != primary));
        let id = json!({"TxId": txid});
        let abort_all = || async {
            for group in &groups {
                let _ = self.node.route_txn(*group, super::txn::ABORT, &id).await;
            }
        };
        let mut cancelled: Option<Vec<Value>> = None;
        for group in &groups {
            let Some((_, positions)) = parts.get(group) else { continue };
            let mut sub = sub_request(positions);
            if let Some(map) = sub.as_object_mut() {
                map.remove("ClientRequestToken");
            }
            let mut prepare = json!({"TxId": txid, "Primary": primary, "Request": sub});
            if let (true, Some(token)) = (*group == primary, &token) {
                prepare["Token"] = serde_json::to_value(token).unwrap_or_default();
            }
            match self.node.route_txn(*group, super::txn::PREPARE, &prepare).await {
                // The primary is prepared first: a repeat of a completed call stops here.
                Ok(answer) if answer.get("Replayed").and_then(Value::as_bool) == Some(true) => {
                    return crate::api::idempotency::replayed_answer(&whole);
                }
                Ok(_) => {}
                // A part cancelled (a failed condition, a conflict): the other parts are still
                // prepared, so the cancellation gives every action's reason, as one node's does.
                Err(ApiError::TransactionCanceled { reasons, .. }) => {
                    let all = cancelled.get_or_insert_with(|| vec![json!({"Code": "None"}); total]);
                    for (reason, position) in reasons.into_iter().zip(positions) {
                        all[*position] = reason;
                    }
                }
                Err(error) => {
                    abort_all().await;
                    return Err(error);
                }
            }
        }
        if let Some(reasons) = cancelled {
            abort_all().await;
            return Err(crate::api::ops::transact_write_items::cancelled_with(reasons));
        }
        // The primary's commit decides the transaction.
        let mut merged = json!({});
        match self.node.route_txn(primary, super::txn::COMMIT, &id).await {
            Ok(answer) => merge_capacity(&mut merged, &answer),
            Err(ApiError::TransactionConflict(_)) => {
                abort_all().await;
                let reasons = vec![
                    json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"});
                    total
                ];
                return Err(crate::api::ops::transact_write_items::cancelled_with(reasons));
            }
            Err(error) => return Err(error),
        }
        for group in &groups[1..] {
            // A failure here is finished by the participant's resolver, which follows the
            // primary's committed outcome.
            if let Ok(answer) = self.node.route_txn(*group, super::txn::COMMIT, &id).await {
                merge_capacity(&mut merged, &answer);
            }
        }
        if request.get("ReturnConsumedCapacity").and_then(Value::as_str).is_none_or(|v| v == "NONE") {
            if let Some(map) = merged.as_object_mut() {
                map.remove("ConsumedCapacity");
            }
        }
        Ok(merged)
    }
}

/// Bytes as lowercase hex.
pub(crate) fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A partition map as the administration API shows it.
fn describe_map(map: &PartitionMap) -> Value {
    let partitions: Vec<Value> = map
        .partitions()
        .iter()
        .map(|p| {
            json!({
                "PartitionId": p.id.0,
                "RangeStart": p.range.start(),
                "RangeEnd": p.range.end(),
                "Replicas": replicas_of(p),
            })
        })
        .collect();
    json!({"Version": map.version(), "Partitions": partitions})
}

/// The hash range of a parallel scan's segment, when the request names one.
fn segment_range(request: &Value) -> Option<HashRange> {
    let segment = request.get("Segment")?.as_u64()?;
    let total = request.get("TotalSegments")?.as_u64()?;
    if total == 0 || segment >= total {
        return None;
    }
    let start = crate::db::keys::segment_start_hash(segment, total);
    let end = (segment + 1 < total).then(|| crate::db::keys::segment_start_hash(segment + 1, total));
    HashRange::new(start, end)
}

/// One partition's page of a Scan over several partitions (listing its evaluated entries),
/// after pages that read `bytes_before`: cut where the read reaches 1 MB, as a single read
/// stops there, with the LastEvaluatedKey of the entry that reached it. Returns the page
/// without its listing, and the bytes it read up to its end or the cut.
fn cut_at_page_size(mut page: Value, bytes_before: u64) -> (Value, u64) {
    let listed = page
        .as_object_mut()
        .and_then(|m| m.remove(crate::api::read::EVALUATED_FIELD))
        .and_then(|v| if let Value::Array(a) = v { Some(a) } else { None })
        .unwrap_or_default();
    let (mut bytes, mut scanned, mut matched) = (0u64, 0u64, 0usize);
    for entry in &listed {
        bytes += entry.get("Size").and_then(Value::as_u64).unwrap_or(0);
        scanned += 1;
        matched += usize::from(entry.get("Matched").and_then(Value::as_bool).unwrap_or(false));
        if bytes_before + bytes >= crate::api::PAGE_BYTES_MAX {
            if let Some(items) = page.get_mut("Items").and_then(Value::as_array_mut) {
                items.truncate(matched);
            }
            page["Count"] = json!(matched);
            page["ScannedCount"] = json!(scanned);
            page["LastEvaluatedKey"] = entry.get("Key").cloned().unwrap_or(Value::Null);
            break;
        }
    }
    (page, bytes)
}

/// Adds one partition's page to the pages before it.
fn append_page(mut acc: Value, page: Value) -> Value {
    for field in ["Count", "ScannedCount"] {
        let sum =
            acc.get(field).and_then(Value::as_u64).unwrap_or(0) + page.get(field).and_then(Value::as_u64).unwrap_or(0);
        acc[field] = json!(sum);
    }
    if let Some(items) = page.get("Items").and_then(Value::as_array) {
        if let Some(acc_items) = acc.get_mut("Items").and_then(Value::as_array_mut) {
            acc_items.extend(items.iter().cloned());
        }
    }
    match page.get("LastEvaluatedKey") {
        Some(key) => acc["LastEvaluatedKey"] = key.clone(),
        None => {
            if let Some(map) = acc.as_object_mut() {
                map.remove("LastEvaluatedKey");
            }
        }
    }
    merge_capacity(&mut acc, &page);
    acc
}

/// Sums `ConsumedCapacity` (a single object for Query and Scan, a list for batches).
fn merge_capacity(acc: &mut Value, page: &Value) {
    let (Some(a), Some(b)) = (acc.get("ConsumedCapacity").cloned(), page.get("ConsumedCapacity")) else {
        if acc.get("ConsumedCapacity").is_none() {
            if let Some(b) = page.get("ConsumedCapacity") {
                acc["ConsumedCapacity"] = b.clone();
            }
        }
        return;
    };
    acc["ConsumedCapacity"] = match (a, b) {
        (Value::Array(mut list), Value::Array(more)) => {
            for entry in more {
                let table = entry.get("TableName").cloned();
                match list.iter_mut().find(|e| e.get("TableName") == table.as_ref()) {
                    Some(existing) => sum_units(existing, entry),
                    None => list.push(entry.clone()),
                }
            }
            Value::Array(list)
        }
        (mut one, other) => {
            sum_units(&mut one, other);
            one
        }
    };
}

fn sum_units(into: &mut Value, from: &Value) {
    for field in ["CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits"] {
        if let Some(b) = from.get(field).and_then(Value::as_f64) {
            let a = into.get(field).and_then(Value::as_f64).unwrap_or(0.0);
            into[field] = json!(a + b);
        }
    }
}

/// The answers of a batch's per-partition parts as they arrive.
#[derive(Default)]
struct BatchParts {
    responses: Vec<Value>,
    /// Whether any part ran (in whole or in part).
    ran: bool,
    /// The first refusal for capacity, answered when no part ran at all.
    throttled: Option<ApiError>,
}

impl BatchParts {
    /// Adds one part's answer. A part refused for capacity, or without a leader, comes back
    /// unprocessed (`unprocessed` builds that answer), so the client retries just its items;
    /// any other error fails the batch.
    fn add(&mut self, response: ApiResult, unprocessed: impl FnOnce() -> Value) -> Result<(), ApiError> {
        match response {
            Ok(response) => {
                self.ran = true;
                self.responses.push(response);
            }
            Err(error @ (ApiError::ProvisionedThroughputExceeded(_) | ApiError::Throttling(_))) => {
                self.throttled.get_or_insert(error);
                self.responses.push(unprocessed());
            }
            Err(ApiError::ServiceUnavailable(_)) => self.responses.push(unprocessed()),
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// The merged answer; DynamoDB's error when capacity refused the batch and nothing ran.
    fn finish(self, unprocessed_field: &str) -> ApiResult {
        match self.throttled {
            Some(error) if !self.ran => Err(error),
            _ => Ok(merge_batch(self.responses, unprocessed_field)),
        }
    }
}

/// Merges the answers of a batch's per-partition parts.
fn merge_batch(responses: Vec<Value>, unprocessed_field: &str) -> Value {
    let mut merged = json!({ unprocessed_field: {} });
    for response in responses {
        for field in [unprocessed_field, "Responses", "ItemCollectionMetrics"] {
            let Some(tables) = response.get(field).and_then(Value::as_object) else { continue };
            let target = merged
                .as_object_mut()
                .map(|m| m.entry(field.to_string()).or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut);
            let Some(target) = target else { continue };
            for (table, value) in tables {
                match (target.get_mut(table), value) {
                    (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more.iter().cloned()),
                    (Some(Value::Object(existing)), Value::Object(more)) => {
                        // UnprocessedKeys: {"Keys": [...], ...}
                        if let (Some(Value::Array(keys)), Some(Value::Array(more_keys))) =
                            (existing.get_mut("Keys"), more.get("Keys"))
                        {
                            keys.extend(more_keys.iter().cloned());
                        }
                    }
                    _ => {
                        target.insert(table.clone(), value.clone());
                    }
                }
            }
        }
        merge_capacity(&mut merged, &response);
    }
    merged
}

/// The position of an item (or a LastEvaluatedKey) in a global index: the index key's hash
/// and value, the index sort key, then the table key — the order of the stored index entries.
/// `None` when the item lacks a key attribute (a projection that leaves keys out).
fn index_position(table: &TableMeta, index: &IndexMeta, item: &Value) -> Option<Vec<u8>> {
    let value = |name: &str| item.get(name).and_then(|v| AttributeValue::from_json(v).ok());
    let mut out = Vec::new();
    let index_pk = value(&index.key_schema.partition.name)?;
    out.extend_from_slice(&routing::hash_of(&index_pk).to_be_bytes());
    encode_key_value(&mut out, &index_pk);
    if let Some(sort) = &index.key_schema.sort {
        encode_key_value(&mut out, &value(&sort.name)?);
    }
    for attribute in table.key_schema.attributes() {
        encode_key_value(&mut out, &value(&attribute.name)?);
    }
    Some(out)
}

/// The key DynamoDB returns as LastEvaluatedKey for an item of a global index: the index key
/// and the table key.
fn index_last_key(table: &TableMeta, index: &IndexMeta, item: &Value) -> Value {
    let mut key = Map::new();
    for attribute in index.key_schema.attributes().chain(table.key_schema.attributes()) {
        if let Some(v) = item.get(&attribute.name) {
            key.insert(attribute.name.clone(), v.clone());
        }
    }
    Value::Object(key)
}

/// One entry a partition's page evaluated, as the merge of a global index's pages sees it.
struct Evaluated {
    /// Where the entry sorts in the index.
    position: Vec<u8>,
    /// Its key (the index key and the table key): the LastEvaluatedKey of a page ending at it.
    key: Value,
    matched: bool,
    size: u64,
    /// The item returned for it (a matched entry, unless only counted).
    item: Option<Value>,
}

/// Merges global-index pages from every partition into the page one partition holding the
/// whole index would return. Each page lists every entry it evaluated, in reading order
/// (`read::EVALUATED_FIELD`), and returns one item per matched entry. The merge walks the
/// entries in index order and stops, as a single read does, after `Limit` entries or at 1 MB
/// read; since every partition read at most that much, the entries before that point are all
/// known. (Should a partition have stopped earlier, the merge stops at its last entry.)
fn merge_pages(pages: Vec<Value>, request: &Value, table: &TableMeta, index: &IndexMeta) -> Value {
    let forward = request.get("ScanIndexForward").and_then(Value::as_bool).unwrap_or(true);
    let limit = request.get("Limit").and_then(Value::as_u64);
    let count_only = request.get("Select").and_then(Value::as_str) == Some("COUNT");
    let mut merged = json!({});
    let mut entries: Vec<Evaluated> = Vec::new();
    let in_order = |a: &[u8], b: &[u8]| if forward { a.cmp(b) } else { b.cmp(a) };
    // The earliest (in reading order) last entry of a page that stopped early.
    let mut cut: Option<Vec<u8>> = None;
    for page in &pages {
        let mut items = page.get("Items").and_then(Value::as_array).into_iter().flatten();
        let listed = page.get(crate::api::read::EVALUATED_FIELD).and_then(Value::as_array).into_iter().flatten();
        for entry in listed {
            let key = entry.get("Key").cloned().unwrap_or(Value::Null);
            let matched = entry.get("Matched").and_then(Value::as_bool).unwrap_or(false);
            let item = if matched && !count_only { items.next().cloned() } else { None };
            entries.push(Evaluated {
                position: index_position(table, index, &key).unwrap_or_default(),
                key,
                matched,
                size: entry.get("Size").and_then(Value::as_u64).unwrap_or(0),
                item,
            });
        }
        if let Some(last) = page.get("LastEvaluatedKey").and_then(|k| index_position(table, index, k)) {
            if cut.as_ref().is_none_or(|c| in_order(&last, c).is_lt()) {
                cut = Some(last);
            }
        }
        merge_capacity(&mut merged, page);
    }
    entries.sort_by(|a, b| in_order(&a.position, &b.position));
    let (mut scanned, mut count, mut bytes) = (0u64, 0u64, 0u64);
    let mut items = Vec::new();
    let mut last_key = None;
    for entry in entries {
        if cut.as_ref().is_some_and(|c| in_order(&entry.position, c).is_gt()) {
            break;
        }
        scanned += 1;
        bytes += entry.size;
        if entry.matched {
            count += 1;
            items.extend(entry.item);
        }
        let at_cut = cut.as_ref() == Some(&entry.position);
        if limit.is_some_and(|l| scanned >= l) || bytes >= crate::api::PAGE_BYTES_MAX || at_cut {
            last_key = Some(index_last_key(table, index, &entry.key));
            break;
        }
    }
    merged["Count"] = json!(count);
    merged["ScannedCount"] = json!(scanned);
    if !count_only {
        merged["Items"] = Value::Array(items);
    }
    if let Some(key) = last_key {
        merged["LastEvaluatedKey"] = key;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{KeyAttribute, KeySchema, Projection};
    use crate::model::ScalarType;

    fn schema(pk: &str, sk: Option<&str>) -> KeySchema {
        KeySchema {
            partition: KeyAttribute { name: pk.into(), kind: ScalarType::S },
            sort: sk.map(|s| KeyAttribute { name: s.into(), kind: ScalarType::N }),
        }
    }

    fn metas() -> (TableMeta, IndexMeta) {
        let index = IndexMeta {
            name: "by_status".into(),
            id: 1,
            kind: IndexKind::Global,
            key_schema: schema("status", Some("at")),
            projection: Projection::All,
            throughput: None,
            on_demand: Default::default(),
            throughput_changes: Default::default(),
        };
        let table = TableMeta {
            name: "t".into(),
            id: 1,
            key_schema: schema("pk", None),
            attribute_definitions: vec![],
            billing_mode: crate::catalog::BillingMode::PayPerRequest,
            throughput: crate::catalog::Throughput { read_units: 0, write_units: 0 },
            indexes: vec![index.clone()],
            created_at_ms: 0,
            next_index_id: 2,
            deletion_protection: false,
            tags: Default::default(),
            on_demand: Default::default(),
            throughput_changes: Default::default(),
            on_demand_since_ms: None,
        };
        (table, index)
    }

    fn item(pk: &str, at: u64) -> Value {
        json!({"pk": {"S": pk}, "status": {"S": "open"}, "at": {"N": at.to_string()}})
    }

    fn ats(page: &Value) -> Vec<u64> {
        page["Items"].as_array().unwrap().iter().map(|i| i["at"]["N"].as_str().unwrap().parse().unwrap()).collect()
    }

    /// A partition's page as an index read returns it: `entries` (at, matched) evaluated in
    /// order, the matched ones as items, and a LastEvaluatedKey at its last entry if it stopped.
    fn page(pk: &str, entries: &[(u64, bool)], stopped: bool) -> Value {
        let key =
            |at: u64| json!({"pk": {"S": format!("{pk}{at}")}, "status": {"S": "open"}, "at": {"N": at.to_string()}});
        let evaluated: Vec<Value> =
            entries.iter().map(|(at, matched)| json!({"Key": key(*at), "Matched": matched, "Size": 100})).collect();
        let items: Vec<Value> =
            entries.iter().filter(|(_, m)| *m).map(|(at, _)| item(&format!("{pk}{at}"), *at)).collect();
        let mut page = json!({"Items": items, "Count": 0, "ScannedCount": entries.len(), "SquallEvaluated": evaluated});
        if stopped {
            page["LastEvaluatedKey"] = key(entries.last().unwrap().0);
        }
        page
    }

    #[test]
    fn index_pages_merge_in_index_order() {
        let (table, index) = metas();
        let pages = vec![page("a", &[(1, true), (5, true)], false), page("b", &[(2, true), (9, true)], false)];
        let merged = merge_pages(pages.clone(), &json!({}), &table, &index);
        assert_eq!(ats(&merged), vec![1, 2, 5, 9]);
        assert_eq!((merged["Count"].clone(), merged["ScannedCount"].clone()), (json!(4), json!(4)));
        assert!(merged.get("LastEvaluatedKey").is_none());
        let backwards = merge_pages(pages, &json!({"ScanIndexForward": false}), &table, &index);
        assert_eq!(ats(&backwards), vec![9, 5, 2, 1]);
    }

    #[test]
    fn limit_counts_the_merged_entries_evaluated_filtered_or_not() {
        let (table, index) = metas();
        // Each partition evaluated up to the Limit (3) of entries; the filter kept odd ones.
        let pages = vec![
            page("a", &[(1, true), (2, false), (4, false)], true),
            page("b", &[(3, true), (5, true), (6, false)], true),
        ];
        let merged = merge_pages(pages.clone(), &json!({"Limit": 3}), &table, &index);
        assert_eq!(ats(&merged), vec![1, 3]);
        assert_eq!((merged["Count"].clone(), merged["ScannedCount"].clone()), (json!(2), json!(3)));
        assert_eq!(merged["LastEvaluatedKey"], json!({"status": {"S": "open"}, "at": {"N": "3"}, "pk": {"S": "b3"}}));
        // Counting only: the same entries, no items.
        let counted = merge_pages(pages, &json!({"Limit": 3, "Select": "COUNT"}), &table, &index);
        assert_eq!((counted["Count"].clone(), counted["ScannedCount"].clone()), (json!(2), json!(3)));
        assert!(counted.get("Items").is_none());
    }

    #[test]
    fn a_partition_that_stopped_early_cuts_the_merge_at_its_last_entry() {
        let (table, index) = metas();
        let pages = vec![page("a", &[(1, true), (3, true)], true), page("b", &[(2, true), (9, true)], false)];
        let merged = merge_pages(pages, &json!({}), &table, &index);
        assert_eq!(ats(&merged), vec![1, 2, 3]);
        assert_eq!(merged["LastEvaluatedKey"]["at"]["N"], "3");
    }

    #[test]
    fn batch_answers_merge_per_table() {
        let merged = merge_batch(
            vec![
                json!({"Responses": {"t": [{"k": 1}]}, "UnprocessedKeys": {},
                       "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 0.5}]}),
                json!({"Responses": {"t": [{"k": 2}], "u": [{"k": 3}]},
                       "UnprocessedKeys": {"u": {"Keys": [{"k": 4}]}},
                       "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 1.0}]}),
            ],
            "UnprocessedKeys",
        );
        assert_eq!(merged["Responses"]["t"].as_array().unwrap().len(), 2);
        assert_eq!(merged["Responses"]["u"].as_array().unwrap().len(), 1);
        assert_eq!(merged["UnprocessedKeys"]["u"]["Keys"].as_array().unwrap().len(), 1);
        assert_eq!(merged["ConsumedCapacity"][0]["CapacityUnits"], 1.5);
    }

    #[test]
    fn a_throttled_batch_part_comes_back_unprocessed_and_fails_the_batch_only_alone() {
        let throttled = || Err(ApiError::table_throughput_exceeded());
        let mut parts = BatchParts::default();
        parts.add(Ok(json!({"UnprocessedItems": {}})), || unreachable!("ran")).unwrap();
        parts.add(throttled(), || json!({"UnprocessedItems": {"t": [{"PutRequest": 1}]}})).unwrap();
        let merged = parts.finish("UnprocessedItems").expect("one part ran");
        assert_eq!(merged["UnprocessedItems"]["t"], json!([{"PutRequest": 1}]));

        let mut parts = BatchParts::default();
        parts.add(throttled(), || json!({"UnprocessedItems": {"t": [1]}})).unwrap();
        parts
            .add(Err(ApiError::ServiceUnavailable("no leader".into())), || json!({"UnprocessedItems": {"t": [2]}}))
            .unwrap();
        assert_eq!(parts.finish("UnprocessedItems"), Err(ApiError::table_throughput_exceeded()));

        let mut parts = BatchParts::default();
        assert!(parts.add(Err(ApiError::validation("bad")), || json!({})).is_err());
    }

    #[test]
    fn scan_pages_append_and_keep_the_last_key_of_the_last_page() {
        let a = json!({"Items": [{"k": 1}], "Count": 1, "ScannedCount": 3});
        let b = json!({"Items": [{"k": 2}], "Count": 1, "ScannedCount": 1, "LastEvaluatedKey": {"k": 2}});
        let merged = append_page(a, b);
        assert_eq!(merged["Count"], 2);
        assert_eq!(merged["ScannedCount"], 4);
        assert_eq!(merged["LastEvaluatedKey"], json!({"k": 2}));
    }

    #[test]
    fn a_scan_over_partitions_stops_where_the_read_reaches_a_megabyte() {
        let listed = |sizes: &[u64]| -> Vec<Value> {
            sizes
                .iter()
                .enumerate()
                .map(|(n, size)| json!({"Key": {"k": n}, "Matched": n % 2 == 0, "Size": size}))
                .collect()
        };
        let page = json!({"Items": [{"k": 0}, {"k": 2}], "Count": 2, "ScannedCount": 4,
                          "SquallEvaluated": listed(&[200_000, 200_000, 200_000, 200_000])});
        // Alone, the page stays whole (and loses its listing).
        let (whole, bytes) = cut_at_page_size(page.clone(), 0);
        assert_eq!(bytes, 800_000);
        assert!(whole.get("SquallEvaluated").is_none() && whole.get("LastEvaluatedKey").is_none());
        assert_eq!(whole["ScannedCount"], 4);
        // After 500,000 bytes of earlier pages, it ends at its third entry.
        let (cut, bytes) = cut_at_page_size(page, 500_000);
        assert_eq!(bytes, 600_000);
        assert_eq!((cut["Count"].clone(), cut["ScannedCount"].clone()), (json!(2), json!(3)));
        assert_eq!(cut["Items"], json!([{"k": 0}, {"k": 2}]));
        assert_eq!(cut["LastEvaluatedKey"], json!({"k": 2}));
    }

    #[test]
    fn segments_map_to_hash_ranges() {
        let whole = segment_range(&json!({"Segment": 0, "TotalSegments": 1})).unwrap();
        assert_eq!((whole.start(), whole.end()), (0, None));
        let second = segment_range(&json!({"Segment": 1, "TotalSegments": 2})).unwrap();
        assert_eq!(second.end(), None);
        assert!(segment_range(&json!({"Segment": 2, "TotalSegments": 2})).is_none());
    }
}
