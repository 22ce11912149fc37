//! CreateTable: validates the key schema, attribute definitions, billing and indexes, then
//! records the table. Tables are ACTIVE as soon as the call returns.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::api::common::{camel, missing, validate_name, Request};
use crate::api::{ApiError, GLOBAL_INDEXES_MAX, LOCAL_INDEXES_MAX, PROJECTED_ATTRIBUTES_MAX};
use crate::catalog::{
    BillingMode, IndexKind, IndexMeta, KeyAttribute, KeySchema, OnDemandThroughput, Projection, TableMeta, Throughput,
};
use crate::db::Database;
use crate::model::ScalarType;

/// Runs CreateTable.
pub fn run(db: &Database, request: Request) -> Result<Value, ApiError> {
    let meta = table_meta(&request)?;
    let table = db.create_table(meta)?;
    Ok(json!({"TableDescription": table.describe("ACTIVE")}))
}

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {message}"))
}

/// Decodes and validates the request into table metadata (id left 0).
pub fn table_meta(request: &Request) -> Result<TableMeta, ApiError> {
    let name = request.table_name()?.to_string();
    let definitions = attribute_definitions(request)?;
    let key_schema_json = request.array("KeySchema")?.ok_or_else(|| missing("KeySchema"))?;
    let key_schema = key_schema(key_schema_json, &definitions, "keySchema")?;
    let billing_mode = match request.choice("BillingMode", &["PROVISIONED", "PAY_PER_REQUEST"], "PROVISIONED")? {
        "PAY_PER_REQUEST" => BillingMode::PayPerRequest,
        _ => BillingMode::Provisioned,
    };
    let throughput = throughput_for_mode(request, billing_mode, "ProvisionedThroughput")?;

    let mut indexes = Vec::new();
    let mut next_index_id = 1u16;
    let mut used: BTreeSet<String> = key_schema.attributes().map(|a| a.name.clone()).collect();
    if let Some(list) = request.array("LocalSecondaryIndexes")? {
        if list.is_empty() {
            return Err(invalid("List of LocalSecondaryIndexes is empty"));
        }
        if list.len() > LOCAL_INDEXES_MAX {
            return Err(invalid(format!(
                "Cannot have more than {LOCAL_INDEXES_MAX} local secondary indexes per table"
            )));
        }
        if key_schema.sort.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        for entry in list {
            let index = index_meta(entry, &definitions, IndexKind::Local, next_index_id, billing_mode)?;
            if index.key_schema.partition != key_schema.partition {
                return Err(invalid(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                    index.name, index.key_schema.partition.name, key_schema.partition.name
                )));
            }
            if index.key_schema.sort.is_none() {
                return Err(invalid(format!("Index KeySchema must have a range key for index: {}", index.name)));
            }
            used.extend(index.key_schema.attributes().map(|a| a.name.clone()));
            next_index_id += 1;
            indexes.push(index);
        }
    }
    if let Some(list) = request.array("GlobalSecondaryIndexes")? {
        if list.is_empty() {
            return Err(invalid("List of GlobalSecondaryIndexes is empty"));
        }
        if list.len() > GLOBAL_INDEXES_MAX {
            return Err(ApiError::LimitExceeded(format!(
                "Subscriber limit exceeded: Cannot have more than {GLOBAL_INDEXES_MAX} global secondary indexes per table"
            )));
        }
        for entry in list {
            let index = index_meta(entry, &definitions, IndexKind::Global, next_index_id, billing_mode)?;
            used.extend(index.key_schema.attributes().map(|a| a.name.clone()));
            next_index_id += 1;
            indexes.push(index);
        }
    }
    let mut names = BTreeSet::new();
    for index in &indexes {
        if !names.insert(index.name.clone()) {
            return Err(invalid(format!("Duplicate index name: {}", index.name)));
        }
    }
    check_projection_limit(&indexes)?;
    if used.len() != definitions.len() {
        return Err(invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let deletion_protection = request.bool("DeletionProtectionEnabled")?.unwrap_or(false);
    let mut tags = std::collections::BTreeMap::new();
    if let Some(list) = request.array("Tags")? {
        crate::api::ops::tag_resource::apply_tags(&mut tags, list)?;
    }
    Ok(TableMeta {
        name,
        id: 0,
        key_schema,
        attribute_definitions: definitions,
        billing_mode,
        throughput,
        indexes,
        created_at_ms: now_ms(),
        next_index_id,
        deletion_protection,
        tags,
        on_demand: on_demand_for_mode(
            request.get("OnDemandThroughput"),
            billing_mode,
            OnDemandThroughput::default(),
            "table",
            "table",
        )?,
        throughput_changes: Default::default(),
        on_demand_since_ms: None,
    })
}

/// Decodes an `OnDemandThroughput` (`value`, when given) over `current` (a maximum of -1
/// removes it), as the billing mode allows it: only an on-demand table and its global indexes
/// have one. `the_table` is how the refusal names the table ("table" at CreateTable, "the table"
/// at UpdateTable, as DynamoDB words them); `whose` names the owner in a range error ("table",
/// or "index : NAME").
pub fn on_demand_for_mode(
    value: Option<&Value>,
    mode: BillingMode,
    current: OnDemandThroughput,
    the_table: &str,
    whose: &str,
) -> Result<OnDemandThroughput, ApiError> {
    let Some(value) = value else {
        return Ok(if mode == BillingMode::PayPerRequest { current } else { OnDemandThroughput::default() });
    };
    if mode == BillingMode::Provisioned {
        return Err(invalid(format!(
            "MaxReadRequestUnits for OnDemandThroughput cannot be specified when {the_table} BillingMode is PROVISIONED."
        )));
    }
    let entry = Request::sub(value, "OnDemandThroughput")?;
    let mut out = current;
    for (slot, name) in
        [(&mut out.max_read_units, "MaxReadRequestUnits"), (&mut out.max_write_units, "MaxWriteRequestUnits")]
    {
        match entry.int(name)? {
            None => {}
            Some(-1) => *slot = None,
            Some(units) if units >= 1 => *slot = Some(units as u64),
            Some(_) => {
                return Err(invalid(format!(
                    "Requested {name} for OnDemandThroughput for {whose} is outside of valid range"
                )))
            }
        }
    }
    Ok(out)
}

/// Milliseconds since the Unix epoch: the scope's clock inside a replicated apply (the same on
/// every replica), otherwise the system clock.
pub fn now_ms() -> u64 {
    if let Some(now) = crate::scope::now_ms() {
        return now;
    }
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    elapsed.as_millis() as u64
}

/// Checks the total of projected non-key attributes across indexes.
pub fn check_projection_limit(indexes: &[IndexMeta]) -> Result<(), ApiError> {
    let projected: usize = indexes
        .iter()
        .map(|i| match &i.projection {
            Projection::Include(names) => names.len(),
            _ => 0,
        })
        .sum();
    if projected > PROJECTED_ATTRIBUTES_MAX {
        return Err(ApiError::LimitExceeded(format!(
            "One or more parameter values were invalid: Number of projected attributes in all indexes exceeds limit of {PROJECTED_ATTRIBUTES_MAX}, number of projected attributes: {projected}"
        )));
    }
    Ok(())
}

/// Decodes `AttributeDefinitions`.
pub fn attribute_definitions(request: &Request) -> Result<Vec<KeyAttribute>, ApiError> {
    let list = request.array("AttributeDefinitions")?.ok_or_else(|| missing("AttributeDefinitions"))?;
    let mut definitions: Vec<KeyAttribute> = Vec::new();
    for entry in list {
        let entry = Request::sub(entry, "AttributeDefinitions")?;
        let name = entry.required_str("AttributeName")?.to_string();
        let kind_text = entry.required_str("AttributeType")?;
        let kind = ScalarType::parse(kind_text).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{kind_text}' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))
        })?;
        if definitions.iter().any(|d| d.name == name) {
            return Err(invalid(format!("Duplicate AttributeName: {name}")));
        }
        definitions.push(KeyAttribute { name, kind });
    }
    Ok(definitions)
}

/// Decodes a `KeySchema` list against the attribute definitions.
pub fn key_schema(list: &[Value], definitions: &[KeyAttribute], field: &str) -> Result<KeySchema, ApiError> {
    if list.is_empty() || list.len() > 2 {
        let constraint = if list.is_empty() { "greater than or equal to 1" } else { "less than or equal to 2" };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at '{field}' failed to satisfy constraint: Member must have length {constraint}",
            Value::Array(list.to_vec())
        )));
    }
    let mut elements = Vec::new();
    for entry in list {
        let entry = Request::sub(entry, field)?;
        let name = entry.required_str("AttributeName")?.to_string();
        let key_type = entry.choice("KeyType", &["HASH", "RANGE"], "")?.to_string();
        if key_type.is_empty() {
            return Err(missing("KeyType"));
        }
        let definition = definitions.iter().find(|d| d.name == name).ok_or_else(|| {
            invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: [{}]",
                definitions.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        elements.push((key_type, definition.clone()));
    }
    let elements: Vec<(&str, KeyAttribute)> = elements.iter().map(|(t, d)| (t.as_str(), d.clone())).collect();
    match elements.as_slice() {
        [("HASH", partition)] => Ok(KeySchema { partition: partition.clone(), sort: None }),
        [("HASH", partition), ("RANGE", sort)] => {
            if partition.name == sort.name {
                return Err(invalid("Both the Hash Key and the Range Key element in the KeySchema have the same name"));
            }
            Ok(KeySchema { partition: partition.clone(), sort: Some(sort.clone()) })
        }
        [(_, _)] => Err(invalid("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")),
        [("HASH", _), _] => Err(invalid("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")),
        _ => Err(invalid("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")),
    }
}

/// Decodes provisioned throughput as the billing mode requires it.
pub fn throughput_for_mode(request: &Request, mode: BillingMode, field: &str) -> Result<Throughput, ApiError> {
    let given = request.get(field);
    match (mode, given) {
        (BillingMode::PayPerRequest, Some(_)) => Err(invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (BillingMode::PayPerRequest, None) => Ok(Throughput { read_units: 0, write_units: 0 }),
        (BillingMode::Provisioned, None) => Err(invalid(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        (BillingMode::Provisioned, Some(value)) => throughput(value, field),
    }
}

/// Decodes a `ProvisionedThroughput` object.
pub fn throughput(value: &Value, field: &str) -> Result<Throughput, ApiError> {
    let entry = Request::sub(value, field)?;
    let mut read_write = [0u64; 2];
    for (slot, name) in read_write.iter_mut().zip(["ReadCapacityUnits", "WriteCapacityUnits"]) {
        let units = entry.int(name)?.ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{}.{}' failed to satisfy constraint: Member must not be null",
                camel(field),
                camel(name)
            ))
        })?;
        if units < 1 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{units}' at '{}.{}' failed to satisfy constraint: Member must have value greater than or equal to 1",
                camel(field),
                camel(name)
            )));
        }
        *slot = units as u64;
    }
    Ok(Throughput { read_units: read_write[0], write_units: read_write[1] })
}

/// Decodes one index definition.
pub fn index_meta(
    value: &Value,
    definitions: &[KeyAttribute],
    kind: IndexKind,
    id: u16,
    billing_mode: BillingMode,
) -> Result<IndexMeta, ApiError> {
    let field = if kind == IndexKind::Local { "localSecondaryIndexes" } else { "globalSecondaryIndexes" };
    let entry = Request::sub(value, field)?;
    let name = entry.required_str("IndexName")?.to_string();
    validate_name(&name, &format!("{field}.member.indexName"))?;
    let key_list = entry.array("KeySchema")?.ok_or_else(|| missing("KeySchema"))?;
    let key_schema = key_schema(key_list, definitions, &format!("{field}.member.keySchema"))?;
    let projection = projection(&entry, &key_schema)?;
    let throughput = if kind == IndexKind::Global {
        match billing_mode {
            BillingMode::Provisioned => Some(
                entry
                    .get("ProvisionedThroughput")
                    .map(|v| throughput(v, "ProvisionedThroughput"))
                    .transpose()?
                    .ok_or_else(|| invalid(format!("ProvisionedThroughput must be specified for index: {name}")))?,
            ),
            BillingMode::PayPerRequest => {
                if entry.get("ProvisionedThroughput").is_some() {
                    return Err(invalid(format!(
                        "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                    )));
                }
                None
            }
        }
    } else {
        None
    };
    let on_demand = match kind {
        IndexKind::Global => on_demand_for_mode(
            entry.get("OnDemandThroughput"),
            billing_mode,
            OnDemandThroughput::default(),
            "table",
            &format!("index : {name}"),
        )?,
        IndexKind::Local => OnDemandThroughput::default(),
    };
    Ok(IndexMeta {
        name,
        id,
        kind,
        key_schema,
        projection,
        throughput,
        on_demand,
        throughput_changes: Default::default(),
    })
}

fn projection(entry: &Request, key_schema: &KeySchema) -> Result<Projection, ApiError> {
    let projection = entry.object("Projection")?.ok_or_else(|| missing("Projection"))?;
    let projection = Request(projection.clone());
    let kind = projection.choice("ProjectionType", &["ALL", "KEYS_ONLY", "INCLUDE"], "")?;
    let non_key = projection.array("NonKeyAttributes")?;
    match (kind, non_key) {
        ("ALL", None) => Ok(Projection::All),
        ("KEYS_ONLY", None) => Ok(Projection::KeysOnly),
        ("INCLUDE", Some(names)) => {
            let mut list = Vec::new();
            for name in names {
                let name =
                    name.as_str().ok_or_else(|| ApiError::Serialization("NonKeyAttributes must be strings".into()))?;
                if key_schema.contains(name) {
                    continue;
                }
                if list.iter().any(|n| n == name) {
                    return Err(invalid(format!("Duplicate attribute name in NonKeyAttributes: {name}")));
                }
                list.push(name.to_string());
            }
            Ok(Projection::Include(list))
        }
        ("INCLUDE", None) => Err(invalid("ProjectionType is INCLUDE, but NonKeyAttributes is not specified")),
        ("", _) => Err(invalid("Unknown ProjectionType: null")),
        (other, Some(_)) => Err(invalid(format!("ProjectionType is {other}, but NonKeyAttributes is specified"))),
        (other, None) => Err(invalid(format!("Unknown ProjectionType: {other}"))),
    }
}
