//! No acknowledged write is lost: after every fault has healed, the final read of each key sees
//! a version at least as new as the newest write to it that was acknowledged.
//!
//! Writes only ever raise a key's version (see `history`), so the newest acknowledged version
//! is a floor for the final state. The final read must also have been written by someone: a
//! version no write carried means the store invented or mixed up data.

use std::collections::{BTreeMap, BTreeSet};

use super::{Checker, Violation};
use crate::history::{History, Phase};

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLostWrites;

impl Checker for NoLostWrites {
    fn name(&self) -> &'static str {
        "no-lost-writes"
    }

    fn check(&self, history: &History) -> Vec<Violation> {
        let mut acked_max: BTreeMap<u32, u64> = BTreeMap::new();
        let mut written: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
        let mut final_read: BTreeMap<u32, Option<u64>> = BTreeMap::new();
        for op in &history.ops {
            if op.kind.is_write() {
                written.entry(op.key).or_default().insert(op.ver);
            }
            if let Some(ver) = op.acked_write() {
                let max = acked_max.entry(op.key).or_default();
                *max = (*max).max(ver);
            }
            if op.phase == Phase::Final {
                if let Some(seen) = op.read_result() {
                    final_read.insert(op.key, seen);
                }
            }
        }
        let violation = |key: u32, message: String| Violation { checker: self.name(), key: Some(key), message };
        let mut violations = Vec::new();
        for key in history.keys() {
            let acked = acked_max.get(&key).copied();
            match (final_read.get(&key), acked) {
                (None, Some(acked)) => violations.push(violation(
                    key,
                    format!("no final read succeeded, so acknowledged ver={acked} cannot be confirmed"),
                )),
                (None, None) => {}
                (Some(None), Some(acked)) => {
                    violations.push(violation(key, format!("final read found no item; ver={acked} was acknowledged")))
                }
                (Some(Some(seen)), acked) => {
                    if let Some(acked) = acked.filter(|acked| seen < acked) {
                        violations.push(violation(
                            key,
                            format!("final read saw ver={seen}, older than acknowledged ver={acked}"),
                        ));
                    }
                    if !written.get(&key).is_some_and(|vers| vers.contains(seen)) {
                        violations.push(violation(key, format!("final read saw ver={seen}, which no write carried")));
                    }
                }
                (Some(None), None) => {}
            }
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::testing::op;
    use crate::history::{OpKind, Outcome};

    fn final_read(key: u32, seen: Option<u64>, at_ms: u64) -> crate::history::Op {
        let mut read = op(OpKind::Get, key, 0, at_ms, at_ms + 1, Outcome::Ok(seen));
        read.phase = Phase::Final;
        read
    }

    fn check(ops: Vec<crate::history::Op>) -> Vec<Violation> {
        NoLostWrites.check(&History { ops })
    }

    #[test]
    fn a_final_read_at_or_above_the_newest_ack_passes() {
        let ops = vec![
            op(OpKind::Put, 1, 5, 0, 2, Outcome::Ok(None)),
            op(OpKind::Update, 1, 7, 3, 4, Outcome::Indeterminate("timeout".into())),
            final_read(1, Some(7), 10),
        ];
        assert_eq!(check(ops), []);
    }

    #[test]
    fn an_older_final_version_is_a_lost_write() {
        let ops = vec![
            op(OpKind::Put, 1, 5, 0, 2, Outcome::Ok(None)),
            op(OpKind::Put, 1, 9, 3, 4, Outcome::Ok(None)),
            final_read(1, Some(5), 10),
        ];
        let violations = check(ops);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].message.contains("older than acknowledged ver=9"));
    }

    #[test]
    fn a_missing_item_or_a_missing_final_read_fails() {
        let ops = vec![op(OpKind::Put, 1, 5, 0, 2, Outcome::Ok(None)), final_read(1, None, 10)];
        assert!(check(ops)[0].message.contains("no item"));
        let ops = vec![op(OpKind::Put, 2, 5, 0, 2, Outcome::Ok(None))];
        assert!(check(ops)[0].message.contains("no final read"));
    }

    #[test]
    fn a_version_nobody_wrote_fails_and_unacked_writes_need_nothing() {
        let ops = vec![op(OpKind::Put, 1, 5, 0, 2, Outcome::Indeterminate("io".into())), final_read(1, Some(6), 10)];
        assert!(check(ops)[0].message.contains("no write carried"));
        let ops = vec![op(OpKind::Put, 1, 5, 0, 2, Outcome::ConditionFailed), final_read(1, None, 10)];
        assert_eq!(check(ops), []);
    }
}
