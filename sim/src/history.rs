//! The history of a run: every client operation with its invoke and completion times and its
//! outcome, the input of every checker.
//!
//! The workload's writes are versioned: each write carries a version number that is unique
//! across the run and drawn in increasing order, and is conditional on the stored version being
//! lower (`attribute_not_exists(ver) OR ver < :ver`). A key's stored version can therefore only
//! grow, which is what makes "no acknowledged write lost" checkable from versions alone.

use std::fmt;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    /// Conditional PutItem of a whole item with version `ver`.
    Put,
    /// Conditional UpdateItem setting `ver` and counting writes.
    Update,
    /// Strongly consistent GetItem.
    Get,
}

impl OpKind {
    /// Whether the operation writes.
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Put | OpKind::Update)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Put => "put",
            OpKind::Update => "update",
            OpKind::Get => "get",
        })
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged. For a read, the version it saw (`None`: no item); for a write, `None`.
    Ok(Option<u64>),
    /// The condition was false: definitely not applied.
    ConditionFailed,
    /// Refused with a client error (4xx other than the condition): definitely not applied.
    Refused(String),
    /// No router could even be connected to: never sent, so definitely not applied, and worth
    /// trying again.
    Unsent(String),
    /// Timed out, the connection failed mid-request, or the server failed (5xx): a write may or
    /// may not have been applied.
    Indeterminate(String),
}

impl Outcome {
    /// The operation finished with an answer the workload accepts (acknowledged, or a
    /// condition that was false, which is an answer too).
    pub fn is_definite_answer(&self) -> bool {
        matches!(self, Outcome::Ok(_) | Outcome::ConditionFailed)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(None) => f.write_str("ok"),
            Outcome::Ok(Some(ver)) => write!(f, "ok ver={ver}"),
            Outcome::ConditionFailed => f.write_str("condition-failed"),
            Outcome::Refused(why) => write!(f, "refused ({why})"),
            Outcome::Unsent(why) => write!(f, "unsent ({why})"),
            Outcome::Indeterminate(why) => write!(f, "indeterminate ({why})"),
        }
    }
}

/// Which phase of a run an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Faults are being injected.
    Chaos,
    /// Every fault has healed; operations must succeed within a bound.
    Heal,
    /// Reads of every key after the workload, for the lost-write check.
    Final,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Chaos => "chaos",
            Phase::Heal => "heal",
            Phase::Final => "final",
        })
    }
}

/// One attempt of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Client number.
    pub client: u32,
    /// Operation number within the client; retries of one operation share it.
    pub seq: u64,
    /// Attempt number, from 0.
    pub attempt: u32,
    /// Phase it was invoked in.
    pub phase: Phase,
    /// What it does.
    pub kind: OpKind,
    /// Key number.
    pub key: u32,
    /// Version written (writes); 0 for reads.
    pub ver: u64,
    /// Simulated time of the invocation, in nanoseconds since the run started.
    pub invoke_ns: u64,
    /// Simulated time of the completion.
    pub complete_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Op {
    /// The version this operation made durable-and-visible, if it is an acknowledged write.
    pub fn acked_write(&self) -> Option<u64> {
        (self.kind.is_write() && self.outcome == Outcome::Ok(None)).then_some(self.ver)
    }

    /// The version an acknowledged read saw (`Some(None)`: no item).
    pub fn read_result(&self) -> Option<Option<u64>> {
        match (&self.kind, &self.outcome) {
            (OpKind::Get, Outcome::Ok(seen)) => Some(*seen),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} op {}", self.client, self.seq)?;
        if self.attempt > 0 {
            write!(f, " attempt {}", self.attempt)?;
        }
        write!(f, " {} k{}", self.kind, self.key)?;
        if self.kind.is_write() {
            write!(f, " ver={}", self.ver)?;
        }
        write!(f, " -> {} ({} us)", self.outcome, self.complete_ns.saturating_sub(self.invoke_ns) / 1_000)
    }
}

/// Every operation of a run, in completion order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The operations.
    pub ops: Vec<Op>,
}

impl History {
    /// Operations on `key`, in completion order.
    pub fn ops_on(&self, key: u32) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(move |op| op.key == key)
    }

    /// Every key touched, ascending.
    pub fn keys(&self) -> Vec<u32> {
        let mut keys: Vec<u32> = self.ops.iter().map(|op| op.key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}
