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

/// Milliseconds in a UTC day.
const DAY_MS: u64 = 86_400_000;
/// Decreases of provisioned capacity allowed in a UTC day before they are spaced.
pub const DECREASES_PER_DAY_FREE: u32 = 4;
/// After those, one decrease per this long.
pub const DECREASE_SPACING_MS: u64 = 3_600_000;

/// When a table's (or a global index's) provisioned capacity last went up and down, and how
/// many decreases today has seen: what DescribeTable shows, and what limits decreases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputChanges {
    /// Last increase, milliseconds since the Unix epoch.
    pub last_increase_ms: Option<u64>,
    /// Last decrease, milliseconds since the Unix epoch.
    pub last_decrease_ms: Option<u64>,
    /// Decreases on the UTC day of the last decrease.
    pub decreases_on_day: u32,
}

impl ThroughputChanges {
    /// Whether nothing was ever changed.
    pub fn is_unset(&self) -> bool {
        *self == ThroughputChanges::default()
    }

    /// Decreases made on the UTC day of `now_ms`.
    pub fn decreases_today(&self, now_ms: u64) -> u32 {
        match self.last_decrease_ms {
            Some(last) if last / DAY_MS == now_ms / DAY_MS => self.decreases_on_day,
            _ => 0,
        }
    }

    /// Records a change from `old` to `new` at `now_ms`, refusing a decrease beyond DynamoDB's
    /// limit: four a UTC day, then one an hour. `whose` names the table or index in the
    /// refusal.
    pub fn record(&mut self, old: Throughput, new: Throughput, now_ms: u64) -> Result<(), String> {
        let increased = new.read_units > old.read_units || new.write_units > old.write_units;
        let decreased = new.read_units < old.read_units || new.write_units < old.write_units;
        if decreased {
            let today = self.decreases_today(now_ms);
            let last = self.last_decrease_ms.unwrap_or(0);
            if today >= DECREASES_PER_DAY_FREE && now_ms < last + DECREASE_SPACING_MS {
                return Err(format!(
                    "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. After the first {DECREASES_PER_DAY_FREE} decreases, each subsequent decrease in the same UTC day can be performed at most once every {} seconds. Number of decreases today: {today}. Last decrease at {}. Next decrease can be made at {}",
                    DECREASE_SPACING_MS / 1000,
                    utc_text(last),
                    utc_text(last + DECREASE_SPACING_MS)
                ));
            }
            self.decreases_on_day = today + 1;
            self.last_decrease_ms = Some(now_ms);
        }
        if increased {
            self.last_increase_ms = Some(now_ms);
        }
        Ok(())
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_text(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
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
    /// Changes of a global index's provisioned capacity.
    #[serde(default, skip_serializing_if = "ThroughputChanges::is_unset")]
    pub throughput_changes: ThroughputChanges,
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
    /// Changes of the provisioned capacity (left out of the record until there is one).
    #[serde(default, skip_serializing_if = "ThroughputChanges::is_unset")]
    pub throughput_changes: ThroughputChanges,
    /// When the table last switched to on-demand capacity, if it did after its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_since_ms: Option<u64>,
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
            "ProvisionedThroughput": throughput_json(self.throughput, &self.throughput_changes),
            "DeletionProtectionEnabled": self.deletion_protection,
        });
        if self.billing_mode == BillingMode::PayPerRequest {
            description["BillingModeSummary"] = json!({
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": self.on_demand_since_ms.unwrap_or(self.created_at_ms) as f64 / 1000.0,
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
                let throughput = index.throughput.unwrap_or(Throughput { read_units: 0, write_units: 0 });
                entry["ProvisionedThroughput"] = throughput_json(throughput, &index.throughput_changes);
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

fn throughput_json(throughput: Throughput, changes: &ThroughputChanges) -> Value {
    let now_ms = crate::api::ops::create_table::now_ms();
    let mut out = json!({
        "NumberOfDecreasesToday": changes.decreases_today(now_ms),
        "ReadCapacityUnits": throughput.read_units,
        "WriteCapacityUnits": throughput.write_units,
    });
    if let Some(ms) = changes.last_increase_ms {
        out["LastIncreaseDateTime"] = json!(ms as f64 / 1000.0);
    }
    if let Some(ms) = changes.last_decrease_ms {
        out["LastDecreaseDateTime"] = json!(ms as f64 / 1000.0);
    }
    out
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

    #[test]
    fn decreases_are_counted_per_utc_day_and_spaced_after_the_fourth() {
        let t = |r: u64| Throughput { read_units: r, write_units: 5 };
        let day = 20_000 * DAY_MS;
        let mut changes = ThroughputChanges::default();
        changes.record(t(5), t(10), day + 1_000).unwrap();
        assert_eq!((changes.last_increase_ms, changes.last_decrease_ms), (Some(day + 1_000), None));
        for n in 0..4 {
            changes.record(t(10 - n), t(9 - n), day + 2_000 + n).unwrap();
        }
        assert_eq!(changes.decreases_today(day + 10_000), 4);
        let error = changes.record(t(6), t(5), day + 60_000).unwrap_err();
        assert!(
            error.starts_with("Subscriber limit exceeded: Provisioned throughput decreases are limited"),
            "{error}"
        );
        assert!(error.contains("Number of decreases today: 4. Last decrease at 2024-10-04 00:00:02 UTC"), "{error}");
        // An hour after the last one, one more; increases are never limited.
        changes.record(t(6), t(5), day + 2_003 + DECREASE_SPACING_MS).unwrap();
        assert!(changes.record(t(5), t(4), day + 2_004 + DECREASE_SPACING_MS).is_err());
        changes.record(t(5), t(50), day + 2_004 + DECREASE_SPACING_MS).unwrap();
        // A new UTC day starts the count again.
        assert_eq!(changes.decreases_today(day + DAY_MS), 0);
        changes.record(t(50), t(40), day + DAY_MS).unwrap();
        assert_eq!(changes.decreases_today(day + DAY_MS + 1), 1);
    }
}
