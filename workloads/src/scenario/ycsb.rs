//! YCSB's core workloads on a DynamoDB table, as YCSB's DynamoDB binding maps them: a table with
//! partition key `id` (S), one string attribute per field; read = GetItem, update = UpdateItem of
//! the chosen fields, insert = PutItem, scan = Scan from the start key with a Limit,
//! read-modify-write = GetItem then UpdateItem.
//!
//! Invariant: every insert acknowledged (load and run phase) is in the table.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::CheckReport;
use crate::api::{failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::op::{get_s, s, scan_all, Ack, Call, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;
use crate::ycsb::{FieldValues, LoadPhase, Operation, YcsbSpec, YcsbWorkload};

/// The table's partition key attribute.
pub const KEY_ATTRIBUTE: &str = "id";

/// A YCSB workload as a scenario.
#[derive(Debug, Clone)]
pub struct YcsbScenario {
    name: String,
    workload: YcsbWorkload,
    load: LoadPhase,
    consistent_reads: bool,
    /// Key numbers of acknowledged inserts.
    acknowledged: BTreeSet<u64>,
    /// Inserts that failed or timed out.
    unacknowledged: u64,
}

impl YcsbScenario {
    /// The workload `spec` under `name`, seeded; reads are strongly consistent when asked.
    pub fn new(name: &str, spec: YcsbSpec, seed: u64, consistent_reads: bool) -> Result<Self, crate::ycsb::SpecError> {
        let workload = YcsbWorkload::new(spec, seed)?;
        let load = workload.load_phase();
        Ok(YcsbScenario {
            name: name.to_owned(),
            workload,
            load,
            consistent_reads,
            acknowledged: BTreeSet::new(),
            unacknowledged: 0,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The YCSB spec.
    pub fn spec(&self) -> &YcsbSpec {
        self.workload.spec()
    }

    fn table(&self) -> &str {
        &self.workload.spec().table
    }

    /// The one table.
    pub fn tables(&self) -> Vec<TableDef> {
        vec![TableDef {
            name: self.table().to_owned(),
            partition_key: KeyAttribute::new(KEY_ATTRIBUTE, "S"),
            sort_key: None,
            indexes: Vec::new(),
        }]
    }

    /// The DynamoDB operations it issues: PutItem for inserts (the load phase has them), and
    /// those of the operation kinds with a share of the mix.
    pub fn operations(&self) -> Vec<&'static str> {
        let spec = self.workload.spec();
        let mut operations = vec!["PutItem"];
        if spec.read_proportion > 0.0 || spec.read_modify_write_proportion > 0.0 {
            operations.push("GetItem");
        }
        if spec.update_proportion > 0.0 || spec.read_modify_write_proportion > 0.0 {
            operations.push("UpdateItem");
        }
        if spec.scan_proportion > 0.0 {
            operations.push("Scan");
        }
        operations
    }

    /// The next load insert.
    pub fn next_load(&mut self) -> Option<Op> {
        let operation = self.load.next()?;
        Some(self.to_op(operation, true))
    }

    /// The next run-phase operation.
    pub fn next_op(&mut self) -> Op {
        let operation = self.workload.next_operation();
        self.to_op(operation, false)
    }

    /// Keeps insert acknowledgements (and lets later reads target run-phase inserts).
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        if let Ack::YcsbInsert(key_number) = op.ack {
            match result {
                Ok(_) => {
                    self.acknowledged.insert(key_number);
                }
                Err(_) => self.unacknowledged += 1,
            }
            // YCSB acknowledges whatever the outcome; the load phase's keys are not counted.
            if op.name == "INSERT" {
                let _ = self.workload.acknowledge_insert(key_number);
            }
        }
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) => failure_outcome(error),
        }
    }

    fn key(&self, key: &str) -> Value {
        json!({ KEY_ATTRIBUTE: s(key) })
    }

    fn get(&self, key: &str, fields: &Option<Vec<String>>) -> Call {
        let mut body =
            json!({"TableName": self.table(), "Key": self.key(key), "ConsistentRead": self.consistent_reads});
        project(&mut body, fields);
        Call { operation: "GetItem", body }
    }

    fn update(&self, key: &str, values: &FieldValues) -> Call {
        let mut names = Map::new();
        let mut attribute_values = Map::new();
        let mut sets = Vec::new();
        for (i, (field, value)) in values.iter().enumerate() {
            names.insert(format!("#f{i}"), json!(field));
            attribute_values.insert(format!(":v{i}"), s(value.as_str()));
            sets.push(format!("#f{i} = :v{i}"));
        }
        Call {
            operation: "UpdateItem",
            body: json!({
                "TableName": self.table(),
                "Key": self.key(key),
                "UpdateExpression": format!("SET {}", sets.join(", ")),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": attribute_values,
            }),
        }
    }

    fn to_op(&self, operation: Operation, load: bool) -> Op {
        let name = operation.kind().name();
        match operation {
            Operation::Read { key, fields } => Op { name, calls: vec![self.get(&key, &fields)], ack: Ack::None },
            Operation::Update { key, values } => Op { name, calls: vec![self.update(&key, &values)], ack: Ack::None },
            Operation::Insert { key, key_number, values } => {
                let mut item = Map::new();
                item.insert(KEY_ATTRIBUTE.to_owned(), s(key.as_str()));
                for (field, value) in values {
                    item.insert(field, s(value));
                }
                Op {
                    name: if load { "LOAD" } else { name },
                    calls: vec![Call { operation: "PutItem", body: json!({"TableName": self.table(), "Item": item}) }],
                    ack: Ack::YcsbInsert(key_number),
                }
            }
            Operation::Scan { start_key, count, fields } => {
                let mut body = json!({
                    "TableName": self.table(),
                    "ExclusiveStartKey": self.key(&start_key),
                    "Limit": count,
                    "ConsistentRead": self.consistent_reads,
                });
                project(&mut body, &fields);
                Op { name, calls: vec![Call { operation: "Scan", body }], ack: Ack::None }
            }
            Operation::ReadModifyWrite { key, fields, values } => {
                Op { name, calls: vec![self.get(&key, &fields), self.update(&key, &values)], ack: Ack::None }
            }
        }
    }

    /// Every acknowledged insert is in the table.
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let items = scan_all(api, self.table(), None).await?;
        let present: BTreeSet<&str> = items.iter().filter_map(|item| get_s(item, KEY_ATTRIBUTE)).collect();
        let missing: Vec<String> = self
            .acknowledged
            .iter()
            .map(|&number| self.workload.key(number))
            .filter(|key| !present.contains(key.as_str()))
            .map(|key| format!("acknowledged insert {key} is missing"))
            .collect();
        let mut report = CheckReport::new(&self.name);
        report.count("inserts_acknowledged", self.acknowledged.len() as u64);
        report.count("inserts_unacknowledged", self.unacknowledged);
        report.count("items", items.len() as u64);
        report.check(
            "every acknowledged insert is in the table",
            missing,
            format!("{} acknowledged inserts, {} items", self.acknowledged.len(), items.len()),
        );
        Ok(report)
    }
}

/// Adds a projection of `fields` (all when `None`).
fn project(body: &mut Value, fields: &Option<Vec<String>>) {
    if let Some(fields) = fields {
        let names: Map<String, Value> = fields.iter().enumerate().map(|(i, f)| (format!("#p{i}"), json!(f))).collect();
        let projection: Vec<String> = (0..fields.len()).map(|i| format!("#p{i}")).collect();
        body["ProjectionExpression"] = json!(projection.join(", "));
        body["ExpressionAttributeNames"] = Value::Object(names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_dynamodb_calls() {
        let spec = YcsbSpec::builtin("workloadf").unwrap();
        let mut scenario = YcsbScenario::new("ycsb-f", spec, 3, false).unwrap();
        let load = scenario.next_load().unwrap();
        assert_eq!(load.calls[0].operation, "PutItem");
        assert_eq!(load.calls[0].body["Item"].as_object().unwrap().len(), 11, "id and ten fields");
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let op = scenario.next_op();
            let operations: Vec<&str> = op.calls.iter().map(|c| c.operation).collect();
            match op.name {
                "READ" => assert_eq!(operations, ["GetItem"]),
                "READ-MODIFY-WRITE" => {
                    assert_eq!(operations, ["GetItem", "UpdateItem"]);
                    assert!(op.calls[1].body["UpdateExpression"].as_str().unwrap().starts_with("SET #f0 = :v0"));
                }
                other => panic!("workload F issued {other}"),
            }
            seen.insert(op.name);
        }
        assert_eq!(seen.len(), 2);
        let e = YcsbSpec::builtin("workloade").unwrap();
        let mut scenario = YcsbScenario::new("ycsb-e", e, 3, true).unwrap();
        let scan = (0..100).map(|_| scenario.next_op()).find(|op| op.name == "SCAN").unwrap();
        assert!(scan.calls[0].body["Limit"].as_u64().unwrap() >= 1);
        assert_eq!(scan.calls[0].body["ConsistentRead"], true);
    }
}
