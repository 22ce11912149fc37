//! The history a run records: every client operation on a per-key register, with the time it was
//! invoked and how (and when) it completed.
//!
//! The register models one DynamoDB item per key, reduced to the attribute the workload checks:
//! PutItem is [`Input::Write`], a strongly consistent GetItem is [`Input::Read`], DeleteItem is
//! [`Input::Delete`], a PutItem with a condition on the current value is
//! [`Input::CompareAndSet`] and `UpdateItem SET n = if_not_exists(n, 0) + :n` with
//! `ReturnValues: UPDATED_NEW` is [`Input::Add`].
//!
//! Times are nanoseconds of the run's clock (simulated or real), passed in by the recorder; nothing
//! here reads a clock.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Which client issued an operation. A client issues one operation at a time.
pub type ClientId = u64;

/// Index of an operation in [`History::ops`]; reports name operations by it.
pub type OpIndex = usize;

/// The key of a register: an item's partition key, as bytes or as a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    /// A binary (`B`) key.
    Bytes(Vec<u8>),
    /// A string (`S`) key.
    Str(String),
}

impl From<&str> for Key {
    fn from(key: &str) -> Self {
        Key::Str(key.to_owned())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => write!(f, "{s:?}"),
            Key::Bytes(bytes) => {
                f.write_str("0x")?;
                for byte in bytes {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A register's value: small, so that histories stay readable (version numbers, client tags).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// A number; [`Input::Add`] works on these.
    Int(u64),
    /// A string.
    Str(String),
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Writes `absent` for a register with no value.
pub(crate) struct ShowState<'a>(pub &'a Option<Value>);

impl fmt::Display for ShowState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("absent"),
        }
    }
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Set the value (PutItem). Completes with [`Output::Done`].
    Write(Value),
    /// Read the value (GetItem, strongly consistent). Completes with [`Output::Read`].
    Read,
    /// Remove the value (DeleteItem). Completes with [`Output::Done`].
    Delete,
    /// Set `new` if the current value equals `expected` (`None`: the item does not exist), else
    /// fail with [`Failure::ConditionFailed`] and change nothing. Completes with [`Output::Done`].
    CompareAndSet {
        /// The value the condition requires; `None` is `attribute_not_exists`.
        expected: Option<Value>,
        /// The value written when the condition holds.
        new: Value,
    },
    /// Add to a counter (absent counts as 0) and return the new value. Completes with
    /// [`Output::Counter`]. Adding to a string value fails definitely, as DynamoDB's does.
    Add(u64),
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Write(value) => write!(f, "write {value}"),
            Input::Read => f.write_str("read"),
            Input::Delete => f.write_str("delete"),
            Input::CompareAndSet { expected, new } => write!(f, "cas {} → {new}", ShowState(expected)),
            Input::Add(n) => write!(f, "add {n}"),
        }
    }
}

/// What a successful operation answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// A write, delete or compare-and-set took effect.
    Done,
    /// The value a read saw (`None`: absent).
    Read(Option<Value>),
    /// The counter's value after an add.
    Counter(u64),
}

/// Why an operation failed definitely: either way it had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A compare-and-set's condition did not hold (ConditionalCheckFailedException): this tells
    /// the checker the value differed from `expected` at some instant of the operation.
    ConditionFailed,
    /// Refused before it was applied (a validation error, throttling): no effect and nothing
    /// learnt, so the checkers ignore it.
    Rejected,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect once, between invocation and completion, and answered this.
    Ok(Output),
    /// It had no effect.
    Failed(Failure),
    /// Timed out or lost its connection: it may take effect at any time after its invocation,
    /// even after the client gave up, or never.
    Indeterminate,
}

/// When and how an operation completed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Completion {
    /// When the client saw the outcome (for [`Outcome::Indeterminate`], when it gave up).
    pub at_ns: u64,
    /// The outcome.
    pub outcome: Outcome,
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    /// The client that issued it.
    pub client: ClientId,
    /// The register it touched.
    pub key: Key,
    /// What was asked.
    pub input: Input,
    /// When the client sent it.
    pub invoke_ns: u64,
    /// `None` while it is in flight; the checkers treat an operation still in flight as
    /// [`Outcome::Indeterminate`].
    pub completion: Option<Completion>,
}

impl Operation {
    /// The outcome, with an operation still in flight counted as indeterminate.
    pub fn outcome(&self) -> &Outcome {
        match &self.completion {
            Some(completion) => &completion.outcome,
            None => &Outcome::Indeterminate,
        }
    }

    /// When the operation's effect is known to be over: its completion time, or `None` (never) when
    /// it is indeterminate.
    pub fn definite_end_ns(&self) -> Option<u64> {
        match &self.completion {
            Some(Completion { at_ns, outcome: Outcome::Ok(_) | Outcome::Failed(_) }) => Some(*at_ns),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} {}", self.client, self.input)?;
        match self.outcome() {
            Outcome::Ok(Output::Done) => f.write_str(" → ok")?,
            Outcome::Ok(Output::Read(value)) => write!(f, " → {}", ShowState(value))?,
            Outcome::Ok(Output::Counter(n)) => write!(f, " → {n}")?,
            Outcome::Failed(Failure::ConditionFailed) => f.write_str(" → condition failed")?,
            Outcome::Failed(Failure::Rejected) => f.write_str(" → rejected")?,
            Outcome::Indeterminate => f.write_str(" → indeterminate")?,
        }
        match &self.completion {
            Some(completion) => write!(f, " [{} ns, {} ns]", self.invoke_ns, completion.at_ns),
            None => write!(f, " [{} ns, in flight]", self.invoke_ns),
        }
    }
}

/// A malformed history: a recording bug, reported instead of a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// An operation completed before it was invoked.
    #[error("operation {index} completes at {complete_ns} ns, before its invocation at {invoke_ns} ns")]
    CompletesBeforeInvoke {
        /// The operation.
        index: OpIndex,
        /// Its invocation.
        invoke_ns: u64,
        /// Its completion.
        complete_ns: u64,
    },
    /// A successful operation's output does not fit its input (a read answering a counter).
    #[error("operation {index} ({input}) cannot answer {output:?}")]
    OutputMismatch {
        /// The operation.
        index: OpIndex,
        /// Its input.
        input: Input,
        /// Its output.
        output: Output,
    },
    /// A condition failure on an operation that has no condition.
    #[error("operation {index} ({input}) has no condition but failed one")]
    ConditionFailedWithoutCondition {
        /// The operation.
        index: OpIndex,
        /// Its input.
        input: Input,
    },
    /// [`History::complete`] of an operation that does not exist or already completed.
    #[error("operation {index} does not exist or already completed")]
    NotInFlight {
        /// The operation.
        index: OpIndex,
    },
}

/// Every operation of a run, in invocation order, with each key's value before the first one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The operations; an operation's position is its [`OpIndex`].
    pub ops: Vec<Operation>,
    /// The value of each key the run loaded before it started; other keys start absent.
    /// Serialised as a list of pairs, since JSON object keys are strings only.
    #[serde(default, with = "pairs")]
    pub initial: BTreeMap<Key, Value>,
}

impl History {
    /// An empty history in which every key starts absent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an invocation and returns the operation's index, for [`History::complete`].
    pub fn invoke(&mut self, client: ClientId, key: Key, input: Input, invoke_ns: u64) -> OpIndex {
        self.ops.push(Operation { client, key, input, invoke_ns, completion: None });
        self.ops.len() - 1
    }

    /// Records the completion of an operation in flight.
    pub fn complete(&mut self, index: OpIndex, at_ns: u64, outcome: Outcome) -> Result<(), HistoryError> {
        match self.ops.get_mut(index) {
            Some(op) if op.completion.is_none() => {
                op.completion = Some(Completion { at_ns, outcome });
                Ok(())
            }
            _ => Err(HistoryError::NotInFlight { index }),
        }
    }

    /// Records an operation that has already completed; returns its index.
    pub fn push(&mut self, op: Operation) -> OpIndex {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// Checks that every operation is well formed: completes no earlier than it was invoked, and
    /// answers what its input can answer.
    pub fn validate(&self) -> Result<(), HistoryError> {
        for (index, op) in self.ops.iter().enumerate() {
            let Some(completion) = &op.completion else { continue };
            if completion.at_ns < op.invoke_ns {
                return Err(HistoryError::CompletesBeforeInvoke {
                    index,
                    invoke_ns: op.invoke_ns,
                    complete_ns: completion.at_ns,
                });
            }
            match (&op.input, &completion.outcome) {
                (Input::Write(_) | Input::Delete | Input::CompareAndSet { .. }, Outcome::Ok(Output::Done))
                | (Input::Read, Outcome::Ok(Output::Read(_)))
                | (Input::Add(_), Outcome::Ok(Output::Counter(_)))
                | (Input::CompareAndSet { .. }, Outcome::Failed(Failure::ConditionFailed))
                | (_, Outcome::Failed(Failure::Rejected) | Outcome::Indeterminate) => {}
                (input, Outcome::Failed(Failure::ConditionFailed)) => {
                    return Err(HistoryError::ConditionFailedWithoutCondition { index, input: input.clone() });
                }
                (input, Outcome::Ok(output)) => {
                    return Err(HistoryError::OutputMismatch { index, input: input.clone(), output: output.clone() });
                }
            }
        }
        Ok(())
    }

    /// The indices of each key's operations, in invocation order, keys in order.
    pub fn by_key(&self) -> BTreeMap<&Key, Vec<OpIndex>> {
        let mut keys: BTreeMap<&Key, Vec<OpIndex>> = BTreeMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            keys.entry(&op.key).or_default().push(index);
        }
        keys
    }
}

/// Serde for a map whose keys are not strings: a list of `[key, value]` pairs, in key order.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// The register's sequential specification: the state after `input` takes effect on `state`
/// answering `outcome`, or `None` when that answer is impossible from `state`.
///
/// An indeterminate operation took effect without an answer the client saw, so any answer fits;
/// a compare-and-set whose condition does not hold then changes nothing.
pub fn step(state: &Option<Value>, input: &Input, outcome: &Outcome) -> Option<Option<Value>> {
    match (input, outcome) {
        (Input::Write(value), Outcome::Ok(_) | Outcome::Indeterminate) => Some(Some(value.clone())),
        (Input::Read, Outcome::Ok(Output::Read(seen))) => (seen == state).then(|| state.clone()),
        (Input::Read, _) => Some(state.clone()),
        (Input::Delete, Outcome::Ok(_) | Outcome::Indeterminate) => Some(None),
        (Input::CompareAndSet { expected, new }, Outcome::Ok(_)) => (expected == state).then(|| Some(new.clone())),
        (Input::CompareAndSet { expected, .. }, Outcome::Failed(Failure::ConditionFailed)) => {
            (expected != state).then(|| state.clone())
        }
        (Input::CompareAndSet { expected, new }, Outcome::Indeterminate) => {
            Some(if expected == state { Some(new.clone()) } else { state.clone() })
        }
        (Input::Add(n), Outcome::Ok(Output::Counter(answer))) => {
            let sum = counter(state)?.checked_add(*n)?;
            (sum == *answer).then_some(Some(Value::Int(sum)))
        }
        (Input::Add(n), Outcome::Indeterminate) => match counter(state).and_then(|c| c.checked_add(*n)) {
            Some(sum) => Some(Some(Value::Int(sum))),
            // The add failed (string value, overflow): no effect.
            None => Some(state.clone()),
        },
        // Outputs that do not fit the input are refused by `History::validate`; failed operations
        // other than a condition failure had no effect and are never stepped.
        _ => None,
    }
}

/// The counter value of a register: absent counts as 0, a string is not a counter.
fn counter(state: &Option<Value>) -> Option<u64> {
    match state {
        None => Some(0),
        Some(Value::Int(n)) => Some(*n),
        Some(Value::Str(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Outcome {
        Outcome::Ok(Output::Done)
    }

    #[test]
    fn step_follows_the_register_specification() {
        let one = Some(Value::Int(1));
        assert_eq!(step(&None, &Input::Write(1.into()), &done()), Some(one.clone()));
        assert_eq!(step(&one, &Input::Read, &Outcome::Ok(Output::Read(one.clone()))), Some(one.clone()));
        assert_eq!(step(&one, &Input::Read, &Outcome::Ok(Output::Read(None))), None);
        assert_eq!(step(&one, &Input::Delete, &done()), Some(None));
        let cas = Input::CompareAndSet { expected: Some(1.into()), new: 2.into() };
        assert_eq!(step(&one, &cas, &done()), Some(Some(Value::Int(2))));
        assert_eq!(step(&None, &cas, &done()), None);
        assert_eq!(step(&None, &cas, &Outcome::Failed(Failure::ConditionFailed)), Some(None));
        assert_eq!(step(&one, &cas, &Outcome::Failed(Failure::ConditionFailed)), None);
        assert_eq!(step(&None, &cas, &Outcome::Indeterminate), Some(None));
        assert_eq!(step(&one, &cas, &Outcome::Indeterminate), Some(Some(Value::Int(2))));
        assert_eq!(step(&None, &Input::Add(3), &Outcome::Ok(Output::Counter(3))), Some(Some(Value::Int(3))));
        assert_eq!(step(&one, &Input::Add(3), &Outcome::Ok(Output::Counter(3))), None);
        let text = Some(Value::from("x"));
        assert_eq!(step(&text, &Input::Add(3), &Outcome::Ok(Output::Counter(3))), None);
        assert_eq!(step(&text, &Input::Add(3), &Outcome::Indeterminate), Some(text.clone()));
        assert_eq!(step(&Some(Value::Int(u64::MAX)), &Input::Add(1), &Outcome::Ok(Output::Counter(0))), None);
    }

    #[test]
    fn validate_refuses_malformed_operations() {
        let mut history = History::new();
        let read = history.invoke(1, "k".into(), Input::Read, 10);
        history.complete(read, 20, Outcome::Ok(Output::Counter(1))).unwrap();
        assert!(matches!(history.validate(), Err(HistoryError::OutputMismatch { index: 0, .. })));

        let mut history = History::new();
        let write = history.invoke(1, "k".into(), Input::Write(1.into()), 10);
        history.complete(write, 5, done()).unwrap();
        assert!(matches!(history.validate(), Err(HistoryError::CompletesBeforeInvoke { index: 0, .. })));

        let mut history = History::new();
        let write = history.invoke(1, "k".into(), Input::Write(1.into()), 10);
        history.complete(write, 15, Outcome::Failed(Failure::ConditionFailed)).unwrap();
        assert!(matches!(history.validate(), Err(HistoryError::ConditionFailedWithoutCondition { .. })));
        assert_eq!(history.complete(write, 20, done()), Err(HistoryError::NotInFlight { index: write }));
        assert_eq!(history.complete(7, 20, done()), Err(HistoryError::NotInFlight { index: 7 }));
    }

    #[test]
    fn history_round_trips_through_json() {
        let mut history = History::new();
        history.initial.insert(Key::Bytes(vec![0xab, 0x01]), Value::Int(4));
        let a = history.invoke(1, Key::Bytes(vec![0xab, 0x01]), Input::Add(2), 5);
        history.complete(a, 9, Outcome::Ok(Output::Counter(6))).unwrap();
        let b = history.invoke(2, "k".into(), Input::CompareAndSet { expected: None, new: Value::from("v") }, 7);
        history.complete(b, 12, Outcome::Indeterminate).unwrap();
        history.invoke(3, "k".into(), Input::Read, 13);
        let json = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history);
        assert_eq!(history.ops[2].outcome(), &Outcome::Indeterminate);
        assert_eq!(history.ops[0].to_string(), "client 1 add 2 → 6 [5 ns, 9 ns]");
        assert_eq!(Key::Bytes(vec![0xab, 0x01]).to_string(), "0xab01");
    }
}
