//! The session store: small items under a session id, heavy writes, reads by id.
//!
//! Each write stores the session's next version with a payload derived from (id, version), under
//! `attribute_not_exists(id) OR version < :v`, so a late write never replaces a newer one.
//!
//! Invariant: every session with an acknowledged write is present with a version at least the
//! highest acknowledged one and at most the highest issued one, and its payload is the one of
//! its version; every read returned a payload matching its version, no newer than issued.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{payload, CheckReport, KeyChooser, KeyDistribution, Mix};
use crate::api::{failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::keygen::seeded_rng;
use crate::op::{get_n, get_s, n, s, scan_all, Ack, Call, Item, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;

/// Largest payload, bytes: sessions are small items.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024;

/// Settings of the session store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Table name.
    pub table: String,
    /// Sessions (ids 0..sessions).
    pub sessions: u64,
    /// Payload bytes per item.
    pub payload_bytes: usize,
    /// Which sessions are used.
    pub distribution: KeyDistribution,
    /// Strongly consistent reads.
    pub consistent_reads: bool,
    /// Weight of writes.
    pub write: f64,
    /// Weight of reads by id.
    pub read: f64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            table: "sessions".into(),
            sessions: 10_000,
            payload_bytes: 200,
            distribution: KeyDistribution::Zipfian,
            consistent_reads: true,
            write: 0.7,
            read: 0.3,
        }
    }
}

impl SessionsConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.sessions == 0 {
            return Err("sessions must be at least 1".into());
        }
        if self.payload_bytes > PAYLOAD_BYTES_MAX {
            return Err(format!("payload_bytes {} exceeds {PAYLOAD_BYTES_MAX}", self.payload_bytes));
        }
        self.distribution.validate()?;
        Mix::new(&[(0, self.write), (1, self.read)]).map(|_| ())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    issued: u64,
    acknowledged: u64,
}

/// The session store.
#[derive(Debug, Clone)]
pub struct Sessions {
    name: String,
    config: SessionsConfig,
    mix: Mix<bool>,
    chooser: KeyChooser,
    rng: ChaCha8Rng,
    sessions: Vec<Session>,
    load_next: u64,
    stale_writes_refused: u64,
    read_violations: Vec<String>,
    reads_checked: u64,
}

const STREAM: u64 = 22;

impl Sessions {
    /// The session store with `config`, seeded.
    pub fn new(name: &str, config: SessionsConfig, seed: u64) -> Result<Self, String> {
        config.validate()?;
        Ok(Sessions {
            name: name.to_owned(),
            mix: Mix::new(&[(true, config.write), (false, config.read)])?,
            chooser: KeyChooser::new(config.distribution, config.sessions),
            rng: seeded_rng(seed, STREAM),
            sessions: vec![Session::default(); config.sessions as usize],
            load_next: 0,
            stale_writes_refused: 0,
            read_violations: Vec::new(),
            reads_checked: 0,
            config,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The one table.
    pub fn tables(&self) -> Vec<TableDef> {
        vec![TableDef {
            name: self.config.table.clone(),
            partition_key: KeyAttribute::new("id", "S"),
            sort_key: None,
            indexes: Vec::new(),
        }]
    }

    /// The DynamoDB operations it issues: conditional PutItem and GetItem.
    pub fn operations(&self) -> Vec<&'static str> {
        vec!["PutItem", "GetItem"]
    }

    fn write(&mut self, session: u64, name: &'static str) -> Op {
        let entry = &mut self.sessions[session as usize];
        entry.issued += 1;
        let version = entry.issued;
        let id = session_id(session);
        let body = json!({
            "TableName": self.config.table,
            "Item": {"id": s(id.as_str()), "version": n(version as i64), "data": s(payload(&id, version, self.config.payload_bytes))},
            "ConditionExpression": "attribute_not_exists(id) OR version < :v",
            "ExpressionAttributeValues": {":v": n(version as i64)},
        });
        // The session and version are recoverable from the request; the ack says it is a write.
        Op { name, calls: vec![Call { operation: "PutItem", body }], ack: Ack::Issued(session) }
    }

    /// One write of version 1 per session.
    pub fn next_load(&mut self) -> Option<Op> {
        let session = self.load_next;
        if session >= self.config.sessions {
            return None;
        }
        self.load_next += 1;
        Some(self.write(session, "load_session"))
    }

    /// A write or a read.
    pub fn next_op(&mut self) -> Op {
        let session = self.chooser.next_key(&mut self.rng, self.config.sessions);
        if self.mix.next(&mut self.rng) {
            return self.write(session, "write_session");
        }
        let body = json!({
            "TableName": self.config.table,
            "Key": {"id": s(session_id(session))},
            "ConsistentRead": self.config.consistent_reads,
        });
        Op::single("read_session", "GetItem", body, Ack::Issued(session))
    }

    /// Keeps write acknowledgements and checks what reads returned.
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        let Ack::Issued(session) = op.ack else {
            return Outcome::Error;
        };
        let call = &op.calls[0];
        match (call.operation, result) {
            ("PutItem", Ok(_)) => {
                let version = call.body["Item"]["version"]["N"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
                let entry = &mut self.sessions[session as usize];
                entry.acknowledged = entry.acknowledged.max(version);
                Outcome::Ok
            }
            ("PutItem", Err(error)) if error.is_conditional_check_failed() => {
                self.stale_writes_refused += 1;
                Outcome::Ok
            }
            ("GetItem", Ok(response)) => {
                if let Some(item) = response.get("Item").and_then(Value::as_object) {
                    self.reads_checked += 1;
                    let issued = self.sessions[session as usize].issued;
                    if let Some(violation) =
                        item_violation(item, &session_id(session), issued, self.config.payload_bytes)
                    {
                        self.read_violations.push(format!("read: {violation}"));
                    }
                }
                Outcome::Ok
            }
            (_, Ok(_)) => Outcome::Ok,
            (_, Err(error)) => failure_outcome(error),
        }
    }

    /// Checks the invariant (see the module documentation).
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let items = scan_all(api, &self.config.table, None).await?;
        let mut report = CheckReport::new(&self.name);
        let mut stored = vec![None; self.sessions.len()];
        let mut violations = Vec::new();
        for item in &items {
            match get_s(item, "id").and_then(parse_session_id).filter(|&i| i < self.config.sessions) {
                Some(session) => {
                    let issued = self.sessions[session as usize].issued;
                    if let Some(violation) =
                        item_violation(item, &session_id(session), issued, self.config.payload_bytes)
                    {
                        violations.push(violation);
                    }
                    stored[session as usize] = get_n(item, "version");
                }
                None => violations.push(format!("unexpected item {}", Value::Object(item.clone()))),
            }
        }
        for (session, entry) in self.sessions.iter().enumerate() {
            if entry.acknowledged == 0 {
                continue;
            }
            match stored[session] {
                None => violations.push(format!(
                    "{} was acknowledged at version {} but is missing",
                    session_id(session as u64),
                    entry.acknowledged
                )),
                Some(version) if (version as u64) < entry.acknowledged => violations.push(format!(
                    "{} is at version {version}, below the acknowledged {}",
                    session_id(session as u64),
                    entry.acknowledged
                )),
                Some(_) => {}
            }
        }
        let acknowledged = self.sessions.iter().filter(|e| e.acknowledged > 0).count() as u64;
        report.count("sessions_acknowledged", acknowledged);
        report.count("items", items.len() as u64);
        report.count("stale_writes_refused", self.stale_writes_refused);
        report.count("reads_checked", self.reads_checked);
        report.check(
            "every acknowledged session is stored at its latest acknowledged version or newer, with its own payload",
            violations,
            format!("{} items, {acknowledged} sessions acknowledged", items.len()),
        );
        report.check(
            "every read returned an issued version with its own payload",
            self.read_violations.clone(),
            format!("{} reads returned an item", self.reads_checked),
        );
        Ok(report)
    }
}

/// What is wrong with a stored or read session item, if anything.
fn item_violation(item: &Item, id: &str, issued: u64, payload_bytes: usize) -> Option<String> {
    let Some(version) = get_n(item, "version").filter(|&v| v >= 1) else {
        return Some(format!("{id} has no valid version"));
    };
    if version as u64 > issued {
        return Some(format!("{id} has version {version}, but only {issued} were written"));
    }
    if get_s(item, "data") != Some(payload(id, version as u64, payload_bytes).as_str()) {
        return Some(format!("{id} version {version} has another version's payload"));
    }
    None
}

fn session_id(session: u64) -> String {
    format!("session-{session:010}")
}

fn parse_session_id(id: &str) -> Option<u64> {
    id.strip_prefix("session-")?.parse().ok()
}
