//! Helpers shared by the operations: typed access to request fields with DynamoDB's errors,
//! key and item validation, expression contexts, return values and consumed capacity.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{ApiError, ITEM_BYTES_MAX, PARTITION_KEY_BYTES_MAX, SORT_KEY_BYTES_MAX};
use crate::catalog::{IndexKind, TableMeta};
use crate::expr::ExprContext;
use crate::model::{item_from_json, item_size_bytes, AttributeValue, Item, ScalarType};

/// Parses a request body into a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Request, ApiError> {
    // An empty body is an empty request, as for ListTables sent with no parameters.
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Request(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Request(map)),
        Ok(_) => Err(ApiError::Serialization("Start of structure or map found where not expected".into())),
        Err(e) => Err(ApiError::Serialization(format!("malformed request body: {e}"))),
    }
}

/// A decoded request: a JSON object with typed accessors that answer DynamoDB's errors.
#[derive(Debug, Clone)]
pub struct Request(pub Map<String, Value>);

/// DynamoDB names fields in validation messages in lower camel case (`tableName`).
pub fn camel(field: &str) -> String {
    let mut chars = field.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn wrong_type(field: &str, expected: &str) -> ApiError {
    ApiError::Serialization(format!("Unexpected value type in payload for {field}: expected {expected}"))
}

/// The message DynamoDB gives for a missing required member.
pub fn missing(field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
        camel(field)
    ))
}

impl Request {
    /// A field, treating JSON null as absent.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// An optional string field.
    pub fn str(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(field, "a string")),
        }
    }

    /// A required string field.
    pub fn required_str(&self, field: &str) -> Result<&str, ApiError> {
        self.str(field)?.ok_or_else(|| missing(field))
    }

    /// An optional boolean field.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(field, "a boolean")),
        }
    }

    /// An optional integer field.
    pub fn int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong_type(field, "an integer")),
            Some(_) => Err(wrong_type(field, "an integer")),
        }
    }

    /// An optional object field.
    pub fn object(&self, field: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(wrong_type(field, "an object")),
        }
    }

    /// An optional array field.
    pub fn array(&self, field: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(list)) => Ok(Some(list)),
            Some(_) => Err(wrong_type(field, "a list")),
        }
    }

    /// A nested object as a request of its own.
    pub fn sub(value: &Value, field: &str) -> Result<Request, ApiError> {
        match value {
            Value::Object(map) => Ok(Request(map.clone())),
            _ => Err(wrong_type(field, "an object")),
        }
    }

    /// The `TableName` field, validated.
    pub fn table_name(&self) -> Result<&str, ApiError> {
        let name = self.required_str("TableName")?;
        validate_name(name, "tableName")?;
        Ok(name)
    }

    /// An enumerated string field with its allowed values and default.
    pub fn choice<'a>(&'a self, field: &str, allowed: &[&str], default: &'a str) -> Result<&'a str, ApiError> {
        match self.str(field)? {
            None => Ok(default),
            Some(value) if allowed.contains(&value) => Ok(value),
            Some(value) => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                camel(field),
                allowed.join(", ")
            ))),
        }
    }
}

/// Checks a table or index name against DynamoDB's rules.
pub fn validate_name(name: &str, field: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        ));
    }
    if name.len() < 3 {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 3"
        ));
    }
    if name.len() > 255 {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to 255"
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let count = errors.len();
        let noun = if count == 1 { "error" } else { "errors" };
        Err(ApiError::validation(format!("{count} validation {noun} detected: {}", errors.join("; "))))
    }
}

/// Decodes an item-shaped field (`Item`, `Key`, `ExclusiveStartKey`).
pub fn item_field(request: &Request, field: &str) -> Result<Option<Item>, ApiError> {
    match request.get(field) {
        None => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(item_from_json(value)?)),
        Some(_) => Err(wrong_type(field, "a map")),
    }
}

/// Decodes and validates a `Key`: exactly the table's key attributes, with the right types.
pub fn key_field(meta: &TableMeta, request: &Request) -> Result<Item, ApiError> {
    let key = item_field(request, "Key")?.ok_or_else(|| missing("Key"))?;
    validate_key(meta, &key)?;
    Ok(key)
}

/// Checks that `key` holds exactly the table's key attributes with the right types and sizes.
pub fn validate_key(meta: &TableMeta, key: &Item) -> Result<(), ApiError> {
    let schema = &meta.key_schema;
    let matches = key.len() == schema.attributes().count()
        && schema.attributes().all(|a| key.get(&a.name).map(ScalarType::of) == Some(Some(a.kind)));
    if !matches {
        return Err(ApiError::validation("The provided key element does not match the schema"));
    }
    validate_key_values(meta, key)
}

fn validate_key_values(meta: &TableMeta, item: &Item) -> Result<(), ApiError> {
    let schema = &meta.key_schema;
    for attribute in schema.attributes() {
        let value = &item[&attribute.name];
        if key_value_is_empty(value) {
            return Err(ApiError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
                if attribute.kind == ScalarType::S { "string" } else { "binary" },
                attribute.name
            )));
        }
    }
    if key_value_bytes(&item[&schema.partition.name]) > PARTITION_KEY_BYTES_MAX {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{PARTITION_KEY_BYTES_MAX} bytes"
        )));
    }
    if let Some(sort) = &schema.sort {
        if key_value_bytes(&item[&sort.name]) > SORT_KEY_BYTES_MAX {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {SORT_KEY_BYTES_MAX} bytes"
            )));
        }
    }
    Ok(())
}

fn key_value_is_empty(value: &AttributeValue) -> bool {
    matches!(value, AttributeValue::S(s) if s.is_empty()) || matches!(value, AttributeValue::B(b) if b.is_empty())
}

fn key_value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        other => other.size_bytes(),
    }
}

/// Validates an item about to be written: key attributes present with the right types, key and
/// item sizes, and index key attributes of the right types.
pub fn validate_item(meta: &TableMeta, item: &Item) -> Result<(), ApiError> {
    for attribute in meta.key_schema.attributes() {
        match item.get(&attribute.name) {
            None => {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attribute.name
                )))
            }
            Some(value) if ScalarType::of(value) != Some(attribute.kind) => {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                    attribute.name,
                    attribute.kind.as_str(),
                    value.type_name()
                )))
            }
            Some(_) => {}
        }
    }
    validate_key_values(meta, item)?;
    for index in &meta.indexes {
        for attribute in index.key_schema.attributes() {
            if let Some(value) = item.get(&attribute.name) {
                if ScalarType::of(value) != Some(attribute.kind) {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                        attribute.name,
                        attribute.kind.as_str(),
                        value.type_name(),
                        index.name
                    )));
                }
                if key_value_is_empty(value) {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {} value. IndexName: {}, IndexKey: {}",
                        if attribute.kind == ScalarType::S { "string" } else { "binary" },
                        index.name,
                        attribute.name
                    )));
                }
            }
        }
    }
    if item_size_bytes(item) > ITEM_BYTES_MAX {
        return Err(ApiError::validation("Item size has exceeded the maximum allowed size"));
    }
    Ok(())
}

/// Builds the expression context of a request from `ExpressionAttributeNames` and
/// `ExpressionAttributeValues`, refusing them when the request has no expression.
pub fn expression_context(request: &Request, expression_fields: &[&str]) -> Result<ExprContext, ApiError> {
    let has_expression = expression_fields.iter().any(|f| request.get(f).is_some());
    let names = match request.object("ExpressionAttributeNames")? {
        None => None,
        Some(map) => {
            if !has_expression {
                return Err(ApiError::validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if map.is_empty() {
                return Err(ApiError::validation("ExpressionAttributeNames must not be empty"));
            }
            let mut names = BTreeMap::new();
            for (placeholder, name) in map {
                match name {
                    Value::String(name) => names.insert(placeholder.clone(), name.clone()),
                    _ => return Err(wrong_type("ExpressionAttributeNames", "a map of strings")),
                };
            }
            Some(names)
        }
    };
    let values = match request.object("ExpressionAttributeValues")? {
        None => None,
        Some(map) => {
            if !has_expression {
                return Err(ApiError::validation(
                    "ExpressionAttributeValues can only be specified when using expressions",
                ));
            }
            if map.is_empty() {
                return Err(ApiError::validation("ExpressionAttributeValues must not be empty"));
            }
            let mut values = BTreeMap::new();
            for (placeholder, value) in map {
                let value = AttributeValue::from_json(value).map_err(|e| match e {
                    crate::model::ValueError::Validation(message) => ApiError::validation(format!(
                        "ExpressionAttributeValues contains invalid value: {message} for key {placeholder}"
                    )),
                    other => other.into(),
                })?;
                values.insert(placeholder.clone(), value);
            }
            Some(values)
        }
    };
    Ok(ExprContext::new(names, values)?)
}

impl From<crate::expr::ExprError> for ApiError {
    fn from(error: crate::expr::ExprError) -> ApiError {
        ApiError::Validation(error.0)
    }
}

/// `ReturnConsumedCapacity`: what capacity detail to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityDetail {
    /// Nothing.
    None,
    /// The total for the table.
    Total,
    /// The total plus a breakdown by table and index.
    Indexes,
}

impl CapacityDetail {
    /// Reads `ReturnConsumedCapacity`.
    pub fn from_request(request: &Request) -> Result<CapacityDetail, ApiError> {
        Ok(match request.choice("ReturnConsumedCapacity", &["INDEXES", "TOTAL", "NONE"], "NONE")? {
            "INDEXES" => CapacityDetail::Indexes,
            "TOTAL" => CapacityDetail::Total,
            _ => CapacityDetail::None,
        })
    }
}

/// Capacity consumed by one request on one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumed {
    /// Units charged to the table itself.
    pub table_units: f64,
    /// Units per local secondary index.
    pub local: BTreeMap<String, f64>,
    /// Units per global secondary index.
    pub global: BTreeMap<String, f64>,
}

impl Consumed {
    /// Adds another request's consumption on the same table.
    pub fn add(&mut self, other: &Consumed) {
        self.table_units += other.table_units;
        for (name, units) in &other.local {
            *self.local.entry(name.clone()).or_default() += units;
        }
        for (name, units) in &other.global {
            *self.global.entry(name.clone()).or_default() += units;
        }
    }

    /// Charges units to an index of `meta` by name.
    pub fn charge_index(&mut self, meta: &TableMeta, index_name: &str, units: f64) {
        match meta.index(index_name).map(|i| i.kind) {
            Some(IndexKind::Local) => *self.local.entry(index_name.to_string()).or_default() += units,
            Some(IndexKind::Global) => *self.global.entry(index_name.to_string()).or_default() += units,
            None => self.table_units += units,
        }
    }

    /// Total units.
    pub fn total(&self) -> f64 {
        self.table_units + self.local.values().sum::<f64>() + self.global.values().sum::<f64>()
    }

    /// Reports this consumption on `table_name`: records it for capacity enforcement (see
    /// `scope::measure`) and returns DynamoDB's `ConsumedCapacity` object, or `None` when the
    /// request did not ask for it. Every operation reports each table it consumed on exactly
    /// once, whatever it returns to the client.
    pub fn report(&self, table_name: &str, detail: CapacityDetail, write: bool) -> Option<Value> {
        let access = if write { crate::capacity::Access::Write } else { crate::capacity::Access::Read };
        let units = crate::capacity::Units {
            table: self.table_units + self.local.values().sum::<f64>(),
            indexes: self.global.clone(),
        };
        crate::scope::record_usage(table_name, access, &units);
        self.to_json(table_name, detail, write)
    }

    /// DynamoDB's `ConsumedCapacity` object, or `None` when not asked for.
    fn to_json(&self, table_name: &str, detail: CapacityDetail, write: bool) -> Option<Value> {
        let field = if write { "WriteCapacityUnits" } else { "ReadCapacityUnits" };
        let units = |u: f64| json!({"CapacityUnits": u, field: u});
        let mut out = json!({"TableName": table_name, "CapacityUnits": self.total(), field: self.total()});
        match detail {
            CapacityDetail::None => return None,
            CapacityDetail::Total => {}
            CapacityDetail::Indexes => {
                out["Table"] = units(self.table_units);
                if !self.local.is_empty() {
                    out["LocalSecondaryIndexes"] =
                        Value::Object(self.local.iter().map(|(n, u)| (n.clone(), units(*u))).collect());
                }
                if !self.global.is_empty() {
                    out["GlobalSecondaryIndexes"] =
                        Value::Object(self.global.iter().map(|(n, u)| (n.clone(), units(*u))).collect());
                }
            }
        }
        Some(out)
    }
}

/// Reads `ReturnValuesOnConditionCheckFailure`: true for ALL_OLD.
pub fn return_old_on_condition_failure(request: &Request) -> Result<bool, ApiError> {
    Ok(request.choice("ReturnValuesOnConditionCheckFailure", &["ALL_OLD", "NONE"], "NONE")? == "ALL_OLD")
}

/// The `ItemCollectionMetrics` of a write to a table with local secondary indexes.
pub fn item_collection_metrics(meta: &TableMeta, key: &Item, size_bytes: u64) -> Value {
    let partition = &meta.key_schema.partition.name;
    let mut key_json = Item::new();
    if let Some(value) = key.get(partition) {
        key_json.insert(partition.clone(), value.clone());
    }
    let gigabytes = size_bytes as f64 / (1024.0 * 1024.0 * 1024.0);
    json!({
        "ItemCollectionKey": crate::model::item_to_json(&key_json),
        "SizeEstimateRangeGB": [gigabytes, gigabytes + 1.0],
    })
}

/// Refuses the legacy (pre-expression) parameters this service does not implement, so a
/// client is told instead of having them silently ignored.
pub fn refuse_legacy(request: &Request, fields: &[&str]) -> Result<(), ApiError> {
    for field in fields {
        if request.get(field).is_some() {
            return Err(ApiError::validation(format!(
                "The legacy parameter {field} is not supported; use expressions instead"
            )));
        }
    }
    Ok(())
}
