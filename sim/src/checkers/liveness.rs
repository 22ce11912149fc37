//! Progress after the heal: once every fault has healed, every operation gets an answer
//! (acknowledged, or a false condition) within a bound, counted from its first attempt to the
//! attempt that answered.

use std::collections::BTreeMap;

use super::{Checker, Violation};
use crate::history::{History, Phase};

/// The attempts of one operation, summed up.
struct Attempts {
    first_ns: u64,
    answered_ns: Option<u64>,
    last: String,
    key: u32,
}

/// See the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct ProgressAfterHeal {
    /// Longest an operation may take, retries included.
    pub bound_ns: u64,
}

impl Checker for ProgressAfterHeal {
    fn name(&self) -> &'static str {
        "progress-after-heal"
    }

    fn check(&self, history: &History) -> Vec<Violation> {
        let mut operations: BTreeMap<(u32, u64), Attempts> = BTreeMap::new();
        for op in history.ops.iter().filter(|op| op.phase != Phase::Chaos) {
            let entry = operations.entry((op.client, op.seq)).or_insert(Attempts {
                first_ns: op.invoke_ns,
                answered_ns: None,
                last: String::new(),
                key: op.key,
            });
            entry.first_ns = entry.first_ns.min(op.invoke_ns);
            if op.outcome.is_definite_answer() && entry.answered_ns.is_none() {
                entry.answered_ns = Some(op.complete_ns);
            }
            entry.last = op.outcome.to_string();
        }
        let mut violations = Vec::new();
        for ((client, seq), Attempts { first_ns, answered_ns, last, key }) in operations {
            let message = match answered_ns {
                None => format!("client {client} op {seq} never succeeded after the heal (last: {last})"),
                Some(done) if done - first_ns > self.bound_ns => format!(
                    "client {client} op {seq} took {} ms after the heal, over the {} ms bound",
                    (done - first_ns) / 1_000_000,
                    self.bound_ns / 1_000_000
                ),
                Some(_) => continue,
            };
            violations.push(Violation { checker: self.name(), key: Some(key), message });
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::testing::op;
    use crate::history::{Op, OpKind, Outcome};

    fn heal(mut op: Op, seq: u64, attempt: u32) -> Op {
        op.phase = Phase::Heal;
        op.seq = seq;
        op.attempt = attempt;
        op
    }

    #[test]
    fn answered_in_time_after_retries_passes_and_chaos_is_ignored() {
        let ops = vec![
            op(OpKind::Put, 1, 3, 0, 900, Outcome::Indeterminate("timeout".into())),
            heal(op(OpKind::Put, 1, 5, 1000, 1500, Outcome::Indeterminate("timeout".into())), 1, 0),
            heal(op(OpKind::Put, 1, 5, 1500, 1600, Outcome::ConditionFailed), 1, 1),
        ];
        assert_eq!(ProgressAfterHeal { bound_ns: 1_000_000_000 }.check(&History { ops }), []);
    }

    #[test]
    fn too_slow_or_never_answered_fails() {
        let ops = vec![
            heal(op(OpKind::Get, 1, 0, 1000, 2500, Outcome::Ok(None)), 1, 0),
            heal(op(OpKind::Get, 2, 0, 1000, 1100, Outcome::Indeterminate("io".into())), 2, 0),
        ];
        let violations = ProgressAfterHeal { bound_ns: 1_000_000_000 }.check(&History { ops });
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations[0].message.contains("over the 1000 ms bound"));
        assert!(violations[1].message.contains("never succeeded"));
    }
}
