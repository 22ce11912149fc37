//! No stale or invented reads: a strongly consistent read sees a version at least as new as
//! every write acknowledged, and every read answered, before the read was invoked; and the
//! version it sees was carried by a write to that key invoked before the read completed.
//!
//! Versions of a key only grow, so in any linearizable history the floor a read must reach is
//! the newest version known to be in place when it starts. This is a necessary condition for
//! linearizability that is checkable in O(n log n) per key.

use std::collections::BTreeMap;

use super::{Checker, Violation};
use crate::history::{History, Op};

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStaleReads;

impl Checker for NoStaleReads {
    fn name(&self) -> &'static str {
        "no-stale-reads"
    }

    fn check(&self, history: &History) -> Vec<Violation> {
        let mut by_key: BTreeMap<u32, Vec<&Op>> = BTreeMap::new();
        for op in &history.ops {
            by_key.entry(op.key).or_default().push(op);
        }
        let mut violations = Vec::new();
        for (key, ops) in by_key {
            // (completion time, version known to be in place from then on), sorted by time,
            // with a running maximum of the version.
            let mut known: Vec<(u64, u64)> = ops
                .iter()
                .filter_map(|op| {
                    let ver = op.acked_write().or_else(|| op.read_result().flatten())?;
                    Some((op.complete_ns, ver))
                })
                .collect();
            known.sort_unstable();
            let mut running = 0;
            for entry in &mut known {
                running = running.max(entry.1);
                entry.1 = running;
            }
            let mut write_invokes: Vec<(u64, u64)> =
                ops.iter().filter(|op| op.kind.is_write()).map(|op| (op.ver, op.invoke_ns)).collect();
            write_invokes.sort_unstable();
            for read in ops.iter().filter(|op| op.read_result().is_some()) {
                let seen = read.read_result().flatten();
                let before = known.partition_point(|(time, _)| *time < read.invoke_ns);
                let floor = if before == 0 { None } else { Some(known[before - 1].1) };
                if let Some(floor) = floor {
                    if seen.is_none_or(|seen| seen < floor) {
                        let shown = seen.map_or("no item".to_string(), |v| format!("ver={v}"));
                        violations.push(Violation {
                            checker: self.name(),
                            key: Some(key),
                            message: format!(
                                "{read} saw {shown} though ver={floor} was in place before it was invoked"
                            ),
                        });
                    }
                }
                if let Some(seen) = seen {
                    let index = write_invokes.partition_point(|(ver, _)| *ver < seen);
                    let carried = write_invokes
                        .get(index)
                        .is_some_and(|(ver, invoke_ns)| *ver == seen && *invoke_ns <= read.complete_ns);
                    if !carried {
                        violations.push(Violation {
                            checker: self.name(),
                            key: Some(key),
                            message: format!("{read} saw ver={seen}, which no write invoked before it carried"),
                        });
                    }
                }
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

    fn check(ops: Vec<Op>) -> Vec<Violation> {
        NoStaleReads.check(&History { ops })
    }

    #[test]
    fn reads_after_acks_see_them_and_concurrent_reads_may_not() {
        let ops = vec![
            op(OpKind::Put, 1, 5, 0, 10, Outcome::Ok(None)),
            // Concurrent with the write: either answer is fine.
            op(OpKind::Get, 1, 0, 5, 6, Outcome::Ok(None)),
            op(OpKind::Get, 1, 0, 7, 12, Outcome::Ok(Some(5))),
            // After the ack.
            op(OpKind::Get, 1, 0, 11, 13, Outcome::Ok(Some(5))),
        ];
        assert_eq!(check(ops), []);
    }

    #[test]
    fn a_read_older_than_an_earlier_ack_is_stale() {
        let ops = vec![
            op(OpKind::Put, 1, 5, 0, 2, Outcome::Ok(None)),
            op(OpKind::Put, 1, 8, 3, 4, Outcome::Ok(None)),
            op(OpKind::Get, 1, 0, 5, 6, Outcome::Ok(Some(5))),
        ];
        let violations = check(ops);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].message.contains("ver=8 was in place"));
    }

    #[test]
    fn reads_may_not_go_back_in_time_even_without_acks() {
        // The write of 8 timed out, but a read saw it; a later read may not see 5 again.
        let ops = vec![
            op(OpKind::Put, 1, 5, 0, 2, Outcome::Ok(None)),
            op(OpKind::Put, 1, 8, 3, 4, Outcome::Indeterminate("timeout".into())),
            op(OpKind::Get, 1, 0, 5, 6, Outcome::Ok(Some(8))),
            op(OpKind::Get, 1, 0, 7, 8, Outcome::Ok(Some(5))),
        ];
        assert_eq!(check(ops).len(), 1);
    }

    #[test]
    fn a_version_from_the_future_or_nowhere_is_invented() {
        let ops = vec![
            op(OpKind::Get, 1, 0, 0, 1, Outcome::Ok(Some(5))),
            op(OpKind::Put, 1, 5, 2, 3, Outcome::Ok(None)),
            op(OpKind::Get, 1, 0, 4, 5, Outcome::Ok(Some(6))),
        ];
        let violations = check(ops);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations.iter().all(|v| v.message.contains("no write invoked before it carried")));
    }
}
