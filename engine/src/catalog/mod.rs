//! Table metadata: key schemas, indexes, billing, and the `TableDescription` DynamoDB returns.
//! Pure data; persisted as JSON by the database layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{AttributeValue, Item, ScalarType};

/// Account id shown in ARNs; a single-tenant service has one.
pub const ACCOUNT_ID: &str = "000000000000";
/// Region shown in ARNs.
pub const REGION: &str = "us-east-1";

/// One key attribute: its name and scalar type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// S, N or B.
    #[serde(with = "scalar_type_text")]
    pub kind: ScalarType,
}

/// A primary key schema: a partition (HASH) key and an optional sort (RANGE) key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    /// The partition key.
    pub partition: KeyAttribute,
    /// The sort key, if any.
    pub sort: Option<KeyAttribute>,
}

impl KeySchema {
    /// The key attributes in schema order.
    pub fn attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.partition).chain(self.sort.iter())
    }

    /// True when `name` is one of the key attributes.
    pub fn contains(&self, name: &str) -> bool {
        self.attributes().any(|a| a.name == name)
    }

    /// DynamoDB's `KeySchema` list.
    pub fn to_json(&self) -> Value {
        let mut list = vec![json!({"AttributeName": self.partition.name, "KeyType": "HASH"})];
        if let Some(sort) = &self.sort {
            list.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
        }
        Value::Array(list)
    }

    /// The key attributes of `item` under this schema, if it has all of them with the right
    /// types. Index schemas use this to decide whether an item appears in the index.
    pub fn key_of(&self, item: &Item) -> Option<Item> {
        let mut key = Item::new();
        for attribute in self.attributes() {
            let value = item.get(&attribute.name)?;
            if ScalarType::of(value) != Some(attribute.kind) {
                return None;
            }
            key.insert(attribute.name.clone(), value.clone());
        }
        Some(key)
    }
}

/// Which attributes an index stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    /// Only the table's and the index's key attributes.
    KeysOnly,
    /// Keys plus the named attributes.
    Include(Vec<String>),
    /// Every attribute.
    All,
}

impl Projection {
    /// DynamoDB's `Projection` object.
    pub fn to_json(&self) -> Value {
        match self {
            Projection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            Projection::All => json!({"ProjectionType": "ALL"}),
            Projection::Include(names) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": names})
            }
        }
    }
}

/// Provisioned read and write capacity units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    /// Read capacity units per second.
    pub read_units: u64,
    /// Write capacity units per second.
    pub write_units: u64,
}

/// An on-demand table's own maximum throughput (`OnDemandThroughput`): at most this many read
/// or write request units a second, below the account's per-table quota. `None` is no maximum
/// of its own (DynamoDB's -1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnDemandThroughput {
    /// Most read request units per second.
    pub max_read_units: Option<u64>,
    /// Most write request units per second.
    pub max_write_units: Option<u64>,
}

impl OnDemandThroughput {
    /// Whether either maximum is set.
    pub fn is_set(&self) -> bool {
        self.max_read_units.is_some() || self.max_write_units.is_some()
    }

    /// Whether neither maximum is set.
    pub fn is_unset(&self) -> bool {
        !self.is_set()
    }

    /// DynamoDB's `OnDemandThroughput` description, when either maximum is set.
    pub fn to_json(&self) -> Option<Value> {
        if self.is_unset() {
            return None;
        }
        let mut out = serde_json::Map::new();
        if let Some(units) = self.max_read_units {
            out.insert("MaxReadRequestUnits".into(), json!(units));
        }
        if let Some(units) = self.max_write_units {
            out.insert("MaxWriteRequestUnits".into(), json!(units));
        }
        Some(Value::Object(out))
    }
}

/// How a table is billed, and so how it is throttled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    /// Fixed provisioned capacity.
    Provisioned,
    /// On demand.
    PayPerRequest,
}

impl BillingMode {
    /// DynamoDB's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// Local or global secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// Shares the table's partition key; strongly consistent reads allowed.
    Local,
    /// Its own partition key; eventually consistent only.
    Global,
}

/// A secondary index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Index name, unique within the table.
    pub name: String,
    /// Storage identifier within the table; never reused, never 0 (0 is the table itself).
    pub id: u16,
    /// Local or global.
    pub kind: IndexKind,
    /// The index's key schema.
    pub key_schema: KeySchema,
    /// Projected attributes.
    pub projection: Projection,
    /// Provisioned capacity of a global index on a provisioned table.
    pub throughput: Option<Throughput>,
    /// A global index's own maximum throughput on an on-demand table. Left out of the stored
    /// record when unset, so an index without one is stored exactly as before it existed.
    #[serde(default, skip_serializing_if = "OnDemandThroughput::is_unset")]
    pub on_demand: OnDemandThroughput,
}

impl IndexMeta {
    /// The attributes stored in an index entry for `item` (which must have the index key):
    /// table keys, index keys and the projected attributes.
    pub fn project(&self, table_keys: &KeySchema, item: &Item) -> Item {
        match &self.projection {
            Projection::All => item.clone(),
            Projection::KeysOnly | Projection::Include(_) => {
                let mut entry = Item::new();
                for attribute in table_keys.attributes().chain(self.key_schema.attributes()) {
                    if let Some(value) = item.get(&attribute.name) {
                        entry.insert(attribute.name.clone(), value.clone());
                    }
                }
                if let Projection::Include(names) = &self.projection {
                    for name in names {
                        if let Some(value) = item.get(name) {
                            entry.insert(name.clone(), value.clone());
                        }
                    }
                }
                entry
            }
        }
    }
}

/// Everything the catalog knows about a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Table name.
    pub name: String,
    /// Storage identifier; never reused, so data of a deleted table can never reappear.
    pub id: u64,
    /// Primary key.
    pub key_schema: KeySchema,
    /// Attribute definitions (every key attribute of the table and its indexes).
    pub attribute_definitions: Vec<KeyAttribute>,
    /// Billing mode.
    pub billing_mode: BillingMode,
    /// Provisioned capacity (zero for on-demand tables).
    pub throughput: Throughput,
    /// Secondary indexes, local and global.
    pub indexes: Vec<IndexMeta>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Next index id to hand out.
    pub next_index_id: u16,
    /// Whether DeleteTable is refused.
    #[serde(default)]
    pub deletion_protection: bool,
    /// Resource tags, key to value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// An on-demand table's own maximum throughput. Left out of the stored record when unset,
    /// so a table without one is stored (and replicated) exactly as before it existed.
    #[serde(default, skip_serializing_if = "OnDemandThroughput::is_unset")]
    pub on_demand: OnDemandThroughput,
}

/// Live counters shown in DescribeTable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeStats {
    /// Number of items.
    pub item_count: i64,
    /// Total item bytes by DynamoDB's size rules.
    pub size_bytes: i64,
}

impl TableMeta {
    /// Creation time in seconds, as DynamoDB reports it.
    pub fn created_at_s(&self) -> f64 {
        self.created_at_ms as f64 / 1000.0
    }

    /// The table's ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{}", self.name)
    }

    /// The table name in a table ARN of this service, if `arn` is one.
    pub fn name_from_arn(arn: &str) -> Option<&str> {
        let rest = arn.strip_prefix("arn:aws:dynamodb:")?;
        let mut parts = rest.splitn(3, ':');
        let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        let name = resource.strip_prefix("table/")?;
        // Index ARNs (`table/T/index/I`) are not taggable resources.
        (!name.is_empty() && !name.contains('/')).then_some(name)
    }

    /// An index by name.
    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// True when the table has a local secondary index (item collections are size-limited).
    pub fn has_local_index(&self) -> bool {
        self.indexes.iter().any(|i| i.kind == IndexKind::Local)
    }

    /// The key attributes of an item, checked against the schema.
    pub fn key_of(&self, item: &Item) -> Option<Item> {
        self.key_schema.key_of(item)
    }

    /// DynamoDB's `TableDescription`.
    pub fn describe(&self, status: &str, stats: &dyn Fn(u16) -> SizeStats) -> Value {
        let table_stats = stats(0);
        let mut description = json!({
            "TableName": self.name,
            "TableId": format!("{:08x}-0000-4000-8000-{:012x}", self.id, self.id),
            "TableArn": self.arn(),
            "TableStatus": status,
            "KeySchema": self.key_schema.to_json(),
            "AttributeDefinitions": self.attribute_definitions.iter().map(|a| json!({
                "AttributeName": a.name, "AttributeType": a.kind.as_str()
            })).collect::<Vec<_>>(),
            "CreationDateTime": self.created_at_s(),
            "ItemCount": table_stats.item_count,
            "TableSizeBytes": table_stats.size_bytes,
            "ProvisionedThroughput": throughput_json(self.throughput),
            "DeletionProtectionEnabled": self.deletion_protection,
        });
        if self.billing_mode == BillingMode::PayPerRequest {
            description["BillingModeSummary"] = json!({
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": self.created_at_s(),
            });
            if let Some(on_demand) = self.on_demand.to_json() {
                description["OnDemandThroughput"] = on_demand;
            }
        } else {
            description["BillingModeSummary"] = json!({"BillingMode": "PROVISIONED"});
        }
        let describe_index = |index: &IndexMeta| {
            let index_stats = stats(index.id);
            let mut entry = json!({
                "IndexName": index.name,
                "KeySchema": index.key_schema.to_json(),
                "Projection": index.projection.to_json(),
                "IndexSizeBytes": index_stats.size_bytes,
                "ItemCount": index_stats.item_count,
                "IndexArn": format!("{}/index/{}", self.arn(), index.name),
            });
            if index.kind == IndexKind::Global {
                entry["IndexStatus"] = json!("ACTIVE");
                entry["ProvisionedThroughput"] =
                    throughput_json(index.throughput.unwrap_or(Throughput { read_units: 0, write_units: 0 }));
                if let Some(on_demand) = index.on_demand.to_json() {
                    entry["OnDemandThroughput"] = on_demand;
                }
            }
            entry
        };
        let locals: Vec<Value> =
            self.indexes.iter().filter(|i| i.kind == IndexKind::Local).map(describe_index).collect();
        let globals: Vec<Value> =
            self.indexes.iter().filter(|i| i.kind == IndexKind::Global).map(describe_index).collect();
        if !locals.is_empty() {
            description["LocalSecondaryIndexes"] = Value::Array(locals);
        }
        if !globals.is_empty() {
            description["GlobalSecondaryIndexes"] = Value::Array(globals);
        }
        description
    }
}

fn throughput_json(throughput: Throughput) -> Value {
    json!({
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": throughput.read_units,
        "WriteCapacityUnits": throughput.write_units,
    })
}

/// Compares a key value with the type a schema expects, for error messages.
pub fn key_type_matches(attribute: &KeyAttribute, value: &AttributeValue) -> bool {
    ScalarType::of(value) == Some(attribute.kind)
}

/// Stores a `ScalarType` as DynamoDB's descriptor ("S", "N", "B").
mod scalar_type_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::ScalarType;

    pub fn serialize<S: Serializer>(kind: &ScalarType, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ScalarType, D::Error> {
        let text = String::deserialize(deserializer)?;
        ScalarType::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown scalar type {text}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::common::Request;

    fn meta(extra: Value) -> TableMeta {
        let mut request = json!({
            "TableName": "stored",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let Value::Object(map) = request else { unreachable!() };
        crate::api::ops::create_table::table_meta(&Request(map)).unwrap()
    }

    #[test]
    fn an_unset_on_demand_maximum_is_left_out_of_the_stored_record() {
        let plain = meta(json!({}));
        let stored = serde_json::to_value(&plain).unwrap();
        assert!(stored.get("on_demand").is_none(), "{stored}");
        assert_eq!(serde_json::from_value::<TableMeta>(stored).unwrap(), plain);
        let capped = meta(json!({"OnDemandThroughput": {"MaxWriteRequestUnits": 7}}));
        let stored = serde_json::to_value(&capped).unwrap();
        assert_eq!(stored["on_demand"]["max_write_units"], 7);
        assert_eq!(serde_json::from_value::<TableMeta>(stored).unwrap().on_demand.max_write_units, Some(7));
    }
}
