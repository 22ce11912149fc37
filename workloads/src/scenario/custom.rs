//! A custom mix from a scenario file: tables with key types, item shapes and indexes, and
//! weighted operations (get, put, update, delete, query, scan) over keys of a chosen popularity.
//!
//! Keys: item number k of a table with `sort_keys_per_partition = m` has partition key k / m and
//! sort key k % m; S keys are `k<number>` zero-padded, N keys the number itself.
//!
//! Invariant: every stored item has a key the scenario generated; every item whose put was
//! acknowledged and that no delete ever targeted is stored; every index holds exactly the items
//! that have its key attributes.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{payload, CheckReport, KeyChooser, KeyDistribution, Mix};
use crate::api::{failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::keygen::{seeded_rng, uniform_below};
use crate::op::{scan_all, Ack, Call, IndexDef, Item, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;

/// Most items a custom table may declare.
pub const ITEMS_MAX: u64 = 1_000_000_000;
/// Largest attribute size, bytes (DynamoDB's item limit).
pub const ATTRIBUTE_BYTES_MAX: usize = 400 * 1024;
/// Largest Limit of a query or scan.
pub const LIMIT_MAX: u64 = 10_000;

/// A table of a custom scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Partition key as `name:type`, type S or N.
    pub partition_key: String,
    /// Sort key as `name:type`, if any.
    #[serde(default)]
    pub sort_key: Option<String>,
    /// Items loaded (item numbers 0..items); operations choose among them.
    pub items: u64,
    /// Items per partition key (needs a sort key when above 1).
    #[serde(default = "one")]
    pub sort_keys_per_partition: u64,
    /// Which items operations choose.
    #[serde(default = "uniform")]
    pub key_distribution: KeyDistribution,
    /// Attributes besides the keys.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// Global secondary indexes.
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
}

fn one() -> u64 {
    1
}

fn uniform() -> KeyDistribution {
    KeyDistribution::Uniform
}

/// A non-key attribute: its name and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", deny_unknown_fields)]
pub enum AttributeSpec {
    /// Text of `size` bytes (or uniform in size_min..=size).
    String {
        /// Attribute name.
        name: String,
        /// Length in bytes (the largest when size_min is set).
        size: usize,
        /// Smallest length, if lengths vary.
        #[serde(default)]
        size_min: Option<usize>,
    },
    /// A number uniform in 0..max.
    Number {
        /// Attribute name.
        name: String,
        /// Exclusive upper bound.
        max: u64,
    },
    /// One of `choices` strings `c0`..: a low-cardinality attribute for index keys.
    Choice {
        /// Attribute name.
        name: String,
        /// Number of values.
        choices: u64,
    },
}

impl AttributeSpec {
    /// The attribute's name.
    pub fn name(&self) -> &str {
        match self {
            AttributeSpec::String { name, .. }
            | AttributeSpec::Number { name, .. }
            | AttributeSpec::Choice { name, .. } => name,
        }
    }
}

/// A global secondary index of a custom table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// `name:type`.
    pub partition_key: String,
    /// `name:type`, if any.
    #[serde(default)]
    pub sort_key: Option<String>,
}

/// An operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// GetItem of a chosen item.
    Get,
    /// PutItem of a chosen item with fresh attribute values.
    Put,
    /// UpdateItem of the chosen item's attributes.
    Update,
    /// DeleteItem of a chosen item.
    Delete,
    /// Query of the chosen item's partition (or, with `index`, of a chosen index partition).
    Query,
    /// Scan of one page.
    Scan,
}

/// A weighted operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// Name its latencies are recorded under (default: the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// What it does.
    pub kind: OperationKind,
    /// The table.
    pub table: String,
    /// Relative weight.
    pub weight: f64,
    /// Strongly consistent read (get, query and scan of the table).
    #[serde(default)]
    pub consistent_read: bool,
    /// Index to query.
    #[serde(default)]
    pub index: Option<String>,
    /// Limit of a query or scan.
    #[serde(default)]
    pub limit: Option<u64>,
}

/// The custom part of a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    /// Tables.
    pub tables: Vec<TableSpec>,
    /// Operations.
    pub operations: Vec<OperationSpec>,
}

fn parse_key(text: &str, what: &str) -> Result<KeyAttribute, String> {
    match text.rsplit_once(':') {
        Some((name, kind @ ("S" | "N"))) if !name.is_empty() => Ok(KeyAttribute::new(name, kind)),
        _ => Err(format!("{what} {text:?} must be name:S or name:N")),
    }
}

impl CustomSpec {
    /// Checks the spec.
    pub fn validate(&self) -> Result<(), String> {
        if self.tables.is_empty() || self.operations.is_empty() {
            return Err("a custom scenario needs [[tables]] and [[operations]]".into());
        }
        let mut names = BTreeSet::new();
        for table in &self.tables {
            let at = |message: String| format!("table {}: {message}", table.name);
            let valid_name = (3..=255).contains(&table.name.len())
                && table.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid_name {
                return Err(at("a table name is 3 to 255 of a-z, A-Z, 0-9, _, - and .".into()));
            }
            if !names.insert(table.name.as_str()) {
                return Err(at("defined twice".into()));
            }
            parse_key(&table.partition_key, "partition_key").map_err(at)?;
            let sort = table.sort_key.as_deref().map(|k| parse_key(k, "sort_key")).transpose().map_err(at)?;
            if !(1..=ITEMS_MAX).contains(&table.items) {
                return Err(at(format!("items must be from 1 to {ITEMS_MAX}")));
            }
            if table.sort_keys_per_partition == 0 || (sort.is_none() && table.sort_keys_per_partition > 1) {
                return Err(at("sort_keys_per_partition must be 1 without a sort key, and at least 1".into()));
            }
            table.key_distribution.validate().map_err(at)?;
            for attribute in &table.attributes {
                match *attribute {
                    AttributeSpec::String { size, size_min, .. }
                        if size > ATTRIBUTE_BYTES_MAX || size_min.is_some_and(|min| min > size) =>
                    {
                        return Err(at(format!(
                            "attribute {}: size_min ≤ size ≤ {ATTRIBUTE_BYTES_MAX}",
                            attribute.name()
                        )));
                    }
                    AttributeSpec::Number { max, .. } | AttributeSpec::Choice { choices: max, .. } if max == 0 => {
                        return Err(at(format!("attribute {}: needs at least one value", attribute.name())));
                    }
                    _ => {}
                }
            }
            for index in &table.indexes {
                for key in std::iter::once(&index.partition_key).chain(index.sort_key.as_ref()) {
                    let key = parse_key(key, "index key").map_err(at)?;
                    let is_table_key = key.name == parse_key(&table.partition_key, "")?.name
                        || sort.as_ref().is_some_and(|s| s.name == key.name);
                    let attribute = table.attributes.iter().find(|a| a.name() == key.name);
                    let kind_matches = match attribute {
                        Some(AttributeSpec::Number { .. }) => key.kind == "N",
                        Some(_) => key.kind == "S",
                        None => is_table_key,
                    };
                    if !kind_matches {
                        return Err(at(format!(
                            "index {}: key {} is not an attribute of that type",
                            index.name, key.name
                        )));
                    }
                }
            }
        }
        for operation in &self.operations {
            let Some(table) = self.tables.iter().find(|t| t.name == operation.table) else {
                return Err(format!("operation {:?}: no table {}", operation.kind, operation.table));
            };
            if let Some(index) = &operation.index {
                if operation.kind != OperationKind::Query || !table.indexes.iter().any(|i| &i.name == index) {
                    return Err(format!(
                        "operation {:?}: index {index} must be an index of {} and used by a query",
                        operation.kind, table.name
                    ));
                }
            }
            if operation.limit.is_some_and(|limit| !(1..=LIMIT_MAX).contains(&limit)) {
                return Err(format!("operation {:?}: limit must be from 1 to {LIMIT_MAX}", operation.kind));
            }
        }
        let weights: Vec<(usize, f64)> = self.operations.iter().map(|o| o.weight).enumerate().collect();
        Mix::new(&weights).map(|_| ())
    }
}

struct TableState {
    spec: TableSpec,
    partition: KeyAttribute,
    sort: Option<KeyAttribute>,
    chooser: KeyChooser,
}

impl std::fmt::Debug for TableState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableState").field("name", &self.spec.name).finish_non_exhaustive()
    }
}

impl Clone for TableState {
    fn clone(&self) -> Self {
        TableState {
            spec: self.spec.clone(),
            partition: self.partition.clone(),
            sort: self.sort.clone(),
            chooser: self.chooser.clone(),
        }
    }
}

/// A custom scenario.
#[derive(Debug, Clone)]
pub struct Custom {
    name: String,
    spec: CustomSpec,
    tables: Vec<TableState>,
    operation_names: Vec<&'static str>,
    mix: Mix<usize>,
    rng: ChaCha8Rng,
    /// (table, item) loaded next.
    load_next: (usize, u64),
    version: u64,
    /// Per table: items whose put was acknowledged, and items a delete targeted.
    acknowledged: Vec<BTreeSet<u64>>,
    deleted: Vec<BTreeSet<u64>>,
}

const STREAM: u64 = 25;

impl Custom {
    /// The custom scenario `spec`, seeded.
    pub fn new(name: &str, spec: CustomSpec, seed: u64) -> Result<Self, String> {
        spec.validate()?;
        let tables = spec
            .tables
            .iter()
            .map(|t| TableState {
                partition: parse_key(&t.partition_key, "").expect("validated"),
                sort: t.sort_key.as_deref().map(|k| parse_key(k, "").expect("validated")),
                chooser: KeyChooser::new(t.key_distribution, t.items),
                spec: t.clone(),
            })
            .collect();
        // Operation names live as long as the run: leaked once per scenario, a few bytes.
        let operation_names = spec
            .operations
            .iter()
            .map(|o| {
                &*Box::leak(o.name.clone().unwrap_or_else(|| format!("{:?}", o.kind).to_lowercase()).into_boxed_str())
            })
            .collect();
        let weights: Vec<(usize, f64)> = spec.operations.iter().map(|o| o.weight).enumerate().collect();
        Ok(Custom {
            name: name.to_owned(),
            mix: Mix::new(&weights)?,
            operation_names,
            rng: seeded_rng(seed, STREAM),
            load_next: (0, 0),
            version: 0,
            acknowledged: vec![BTreeSet::new(); spec.tables.len()],
            deleted: vec![BTreeSet::new(); spec.tables.len()],
            tables,
            spec,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tables.
    pub fn tables(&self) -> Vec<TableDef> {
        self.tables
            .iter()
            .map(|t| TableDef {
                name: t.spec.name.clone(),
                partition_key: t.partition.clone(),
                sort_key: t.sort.clone(),
                indexes: t
                    .spec
                    .indexes
                    .iter()
                    .map(|i| IndexDef {
                        name: i.name.clone(),
                        partition_key: parse_key(&i.partition_key, "").expect("validated"),
                        sort_key: i.sort_key.as_deref().map(|k| parse_key(k, "").expect("validated")),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The DynamoDB operations it issues: PutItem to load, and those of its operations with a
    /// weight (an update of a table without attributes is a GetItem).
    pub fn operations(&self) -> Vec<&'static str> {
        let mut operations = vec!["PutItem"];
        for operation in self.spec.operations.iter().filter(|o| o.weight > 0.0) {
            operations.push(match operation.kind {
                OperationKind::Get => "GetItem",
                OperationKind::Put => "PutItem",
                OperationKind::Delete => "DeleteItem",
                OperationKind::Update => {
                    let table = self.tables.iter().find(|t| t.spec.name == operation.table);
                    if table.is_some_and(|t| t.spec.attributes.is_empty()) {
                        "GetItem"
                    } else {
                        "UpdateItem"
                    }
                }
                OperationKind::Query => "Query",
                OperationKind::Scan => "Scan",
            });
        }
        operations
    }

    fn key(&self, table: usize, item: u64) -> Map<String, Value> {
        let state = &self.tables[table];
        let per = state.spec.sort_keys_per_partition;
        let mut key = Map::new();
        key.insert(state.partition.name.clone(), key_value(&state.partition, item / per));
        if let Some(sort) = &state.sort {
            key.insert(sort.name.clone(), key_value(sort, item % per));
        }
        key
    }

    fn item(&mut self, table: usize, item: u64) -> Map<String, Value> {
        self.version += 1;
        let mut values = self.key(table, item);
        let attributes = self.tables[table].spec.attributes.clone();
        for attribute in &attributes {
            values.insert(attribute.name().to_owned(), self.value(attribute, item));
        }
        values
    }

    fn value(&mut self, attribute: &AttributeSpec, item: u64) -> Value {
        match *attribute {
            AttributeSpec::String { size, size_min, .. } => {
                let length = match size_min {
                    Some(min) => min + uniform_below(&mut self.rng, (size - min) as u64 + 1) as usize,
                    None => size,
                };
                json!({"S": payload(&item.to_string(), self.version, length)})
            }
            AttributeSpec::Number { max, .. } => json!({"N": uniform_below(&mut self.rng, max).to_string()}),
            AttributeSpec::Choice { choices, .. } => {
                json!({"S": format!("c{}", uniform_below(&mut self.rng, choices))})
            }
        }
    }

    /// Every item of every table, in order.
    pub fn next_load(&mut self) -> Option<Op> {
        let (table, item) = self.load_next;
        let state = self.tables.get(table)?;
        if item + 1 >= state.spec.items {
            self.load_next = (table + 1, 0);
        } else {
            self.load_next = (table, item + 1);
        }
        let values = self.item(table, item);
        let body = json!({"TableName": self.tables[table].spec.name, "Item": values});
        Some(Op::single("load", "PutItem", body, Ack::Issued(item)))
    }

    /// The next operation of the mix.
    pub fn next_op(&mut self) -> Op {
        let index = self.mix.next(&mut self.rng);
        let operation = self.spec.operations[index].clone();
        let name = self.operation_names[index];
        let table = self.tables.iter().position(|t| t.spec.name == operation.table).expect("validated");
        let items = self.tables[table].spec.items;
        let item = self.tables[table].chooser.next_key(&mut self.rng, items);
        let table_name = operation.table.clone();
        let key = self.key(table, item);
        let (call, body) = match operation.kind {
            OperationKind::Get => {
                ("GetItem", json!({"TableName": table_name, "Key": key, "ConsistentRead": operation.consistent_read}))
            }
            OperationKind::Put => ("PutItem", json!({"TableName": table_name, "Item": self.item(table, item)})),
            OperationKind::Delete => {
                self.deleted[table].insert(item);
                ("DeleteItem", json!({"TableName": table_name, "Key": key}))
            }
            OperationKind::Update => {
                self.version += 1;
                let attributes = self.tables[table].spec.attributes.clone();
                if attributes.is_empty() {
                    ("GetItem", json!({"TableName": table_name, "Key": key}))
                } else {
                    let mut names = Map::new();
                    let mut values = Map::new();
                    let mut sets = Vec::new();
                    for (i, attribute) in attributes.iter().enumerate() {
                        names.insert(format!("#a{i}"), json!(attribute.name()));
                        values.insert(format!(":a{i}"), self.value(attribute, item));
                        sets.push(format!("#a{i} = :a{i}"));
                    }
                    let body = json!({
                        "TableName": table_name, "Key": key, "UpdateExpression": format!("SET {}", sets.join(", ")),
                        "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                    });
                    ("UpdateItem", body)
                }
            }
            OperationKind::Query => {
                let mut body = json!({"TableName": table_name, "Limit": operation.limit.unwrap_or(10)});
                let (attribute, value) = match &operation.index {
                    Some(index) => {
                        let spec = self.tables[table]
                            .spec
                            .indexes
                            .iter()
                            .find(|i| &i.name == index)
                            .expect("validated")
                            .clone();
                        let partition = parse_key(&spec.partition_key, "").expect("validated");
                        let kind =
                            self.tables[table].spec.attributes.iter().find(|a| a.name() == partition.name).cloned();
                        body["IndexName"] = json!(index);
                        let value = match kind {
                            Some(attribute) => self.value(&attribute, item),
                            None => key.get(&partition.name).cloned().unwrap_or(Value::Null),
                        };
                        (partition.name, value)
                    }
                    None => {
                        body["ConsistentRead"] = json!(operation.consistent_read);
                        let partition = self.tables[table].partition.name.clone();
                        let value = key[&partition].clone();
                        (partition, value)
                    }
                };
                body["KeyConditionExpression"] = json!("#k = :k");
                body["ExpressionAttributeNames"] = json!({"#k": attribute});
                body["ExpressionAttributeValues"] = json!({":k": value});
                ("Query", body)
            }
            OperationKind::Scan => (
                "Scan",
                json!({"TableName": table_name, "Limit": operation.limit.unwrap_or(100), "ConsistentRead": operation.consistent_read}),
            ),
        };
        let ack = if call == "PutItem" { Ack::Issued(item) } else { Ack::None };
        Op { name, calls: vec![Call { operation: call, body }], ack }
    }

    /// Keeps put acknowledgements.
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        match result {
            Ok(_) => {
                if let Ack::Issued(item) = op.ack {
                    let table_name = op.calls[0].body["TableName"].as_str().unwrap_or("");
                    if let Some(table) = self.tables.iter().position(|t| t.spec.name == table_name) {
                        self.acknowledged[table].insert(item);
                    }
                }
                Outcome::Ok
            }
            Err(error) => failure_outcome(error),
        }
    }

    /// Checks the invariant (see the module documentation).
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let mut report = CheckReport::new(&self.name);
        for (t, state) in self.tables.iter().enumerate() {
            let items = scan_all(api, &state.spec.name, None).await?;
            let mut violations = Vec::new();
            let mut stored = BTreeSet::new();
            for item in &items {
                let key = key_only(item, state);
                match item_number(&key, state).filter(|&number| key_text(&self.key(t, number)) == key_text(&key)) {
                    Some(number) => {
                        stored.insert(number);
                    }
                    None => violations.push(format!("item with key {} was never written", Value::Object(key))),
                }
            }
            for item in self.acknowledged[t].difference(&self.deleted[t]) {
                if !stored.contains(item) {
                    violations.push(format!("acknowledged item {} is missing", Value::Object(self.key(t, *item))));
                }
            }
            report.count(&format!("{}_items", state.spec.name), items.len() as u64);
            report.check(
                &format!("{}: acknowledged items never deleted are stored, and only generated keys", state.spec.name),
                violations,
                format!("{} items", items.len()),
            );
            for index in &state.spec.indexes {
                let index_items = scan_all(api, &state.spec.name, Some(&index.name)).await?;
                let partition = parse_key(&index.partition_key, "").expect("validated");
                let sort = index.sort_key.as_deref().map(|k| parse_key(k, "").expect("validated"));
                let has_keys = |item: &Item| {
                    item.contains_key(&partition.name) && sort.as_ref().is_none_or(|s| item.contains_key(&s.name))
                };
                let expected: BTreeSet<String> = items.iter().filter(|i| has_keys(i)).map(key_text).collect();
                let found: BTreeSet<String> = index_items.iter().map(key_text).collect();
                let mut violations: Vec<String> =
                    expected.difference(&found).map(|i| format!("missing from the index: {i}")).collect();
                violations.extend(found.difference(&expected).map(|i| format!("in the index only: {i}")));
                if found.len() != index_items.len() {
                    violations.push("duplicate index entries".into());
                }
                report.check(
                    &format!("{}: index {} holds exactly the items with its keys", state.spec.name, index.name),
                    violations,
                    format!("{} entries", index_items.len()),
                );
            }
        }
        Ok(report)
    }
}

fn key_value(attribute: &KeyAttribute, number: u64) -> Value {
    if attribute.kind == "N" {
        json!({"N": number.to_string()})
    } else {
        json!({"S": format!("k{number:010}")})
    }
}

/// The item number a stored key was generated from, if it could have been.
fn item_number(key: &Map<String, Value>, state: &TableState) -> Option<u64> {
    let number = |attribute: &KeyAttribute| -> Option<u64> {
        let value = key.get(&attribute.name)?;
        match attribute.kind.as_str() {
            "N" => value.get("N")?.as_str()?.parse().ok(),
            _ => value.get("S")?.as_str()?.strip_prefix('k')?.parse().ok(),
        }
    };
    let per = state.spec.sort_keys_per_partition;
    let partition = number(&state.partition)?;
    let sort = match &state.sort {
        Some(sort) => number(sort)?,
        None => 0,
    };
    let item = partition.checked_mul(per)?.checked_add(sort)?;
    (sort < per && item < state.spec.items).then_some(item)
}

fn key_only(item: &Item, state: &TableState) -> Map<String, Value> {
    let mut key = Map::new();
    for attribute in std::iter::once(&state.partition).chain(state.sort.as_ref()) {
        if let Some(value) = item.get(&attribute.name) {
            key.insert(attribute.name.clone(), value.clone());
        }
    }
    key
}

/// A canonical text of an item or key: attributes sorted by name, whatever order the map keeps.
fn key_text(key: &Map<String, Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = key.iter().collect();
    serde_json::to_string(&sorted).expect("JSON values serialise")
}
