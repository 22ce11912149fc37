//! Checkers over a run's history. Each checker states one property in its own file and returns
//! every violation it finds; a run fails when any checker returns one.
//!
//! A new checker implements [`Checker`] in a file of its own here and is added to [`all`].

use std::fmt;

use crate::history::History;

pub mod linearizable;
pub mod liveness;
pub mod lost_writes;
pub mod replicas;
pub mod stale_reads;

/// One broken property, with enough context to find it in the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it.
    pub checker: &'static str,
    /// The key involved, if one.
    pub key: Option<u32>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key {
            Some(key) => write!(f, "{}: k{key}: {}", self.checker, self.message),
            None => write!(f, "{}: {}", self.checker, self.message),
        }
    }
}

/// A property of histories.
pub trait Checker {
    /// Short name, printed with each violation.
    fn name(&self) -> &'static str;
    /// Every violation of the property in `history`.
    fn check(&self, history: &History) -> Vec<Violation>;
}

/// Settings the checkers need from the run.
#[derive(Clone, Copy, Debug)]
pub struct CheckSettings {
    /// Longest an operation after the heal may take, from its first attempt to its answer.
    pub heal_op_bound_ns: u64,
}

/// Every checker a run applies, in the order their violations are reported.
pub fn all(settings: CheckSettings) -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(lost_writes::NoLostWrites),
        Box::new(stale_reads::NoStaleReads),
        Box::new(linearizable::Linearizable),
        Box::new(liveness::ProgressAfterHeal { bound_ns: settings.heal_op_bound_ns }),
    ]
}

/// Runs every checker of `checkers` over `history`.
pub fn check_all(checkers: &[Box<dyn Checker>], history: &History) -> Vec<Violation> {
    checkers.iter().flat_map(|checker| checker.check(history)).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::history::{Op, OpKind, Outcome, Phase};

    /// An operation for checker tests; times in milliseconds.
    pub fn op(kind: OpKind, key: u32, ver: u64, invoke_ms: u64, complete_ms: u64, outcome: Outcome) -> Op {
        Op {
            client: 0,
            seq: 0,
            attempt: 0,
            phase: Phase::Chaos,
            kind,
            key,
            ver,
            invoke_ns: invoke_ms * 1_000_000,
            complete_ns: complete_ms * 1_000_000,
            outcome,
        }
    }
}
