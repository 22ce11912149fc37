//! No acknowledged write is lost: after the faults heal and the cluster is whole again, the run
//! reads every key once more (strongly consistent) and each acknowledged write must still be
//! there, or have been overwritten by an operation that may have taken effect after it.
//!
//! For an acknowledged write `w` the final value must be `w`'s own, or the value of an operation
//! `x` with an effect that real time allows after `w`: `x` did not complete before `w` was
//! invoked (concurrent with `w`, after it, or indeterminate — an indeterminate operation may take
//! effect at any later time). Deletes count both ways: a later delete explains an absent final
//! value, and an acknowledged delete is lost if its key comes back with a value only earlier
//! writes wrote. An indeterminate add could leave any number, so it explains any number.
//!
//! This is a necessary condition, checked per write so that every lost write is named; the
//! linearizability checker, given the final reads as operations, is the complete one. Cost:
//! O(w · n) per key for `w` acknowledged writes among `n` operations.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{History, HistoryError, Input, Key, OpIndex, Operation, Outcome, Output, ShowState, Value};

/// An acknowledged write that the final state does not account for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrite {
    /// The key.
    pub key: Key,
    /// The write's index in the history.
    pub op: OpIndex,
    /// The write.
    pub write: Operation,
    /// What the final read saw.
    pub final_value: Option<Value>,
    /// Operations that may follow the write, whose values would also have been acceptable.
    pub may_follow: Vec<OpIndex>,
}

impl fmt::Display for LostWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {}: acknowledged #{} ({}) is lost: the final read saw {}",
            self.key,
            self.op,
            self.write,
            ShowState(&self.final_value)
        )?;
        if self.may_follow.is_empty() {
            f.write_str(", and no operation may follow it")
        } else {
            let list: Vec<String> = self.may_follow.iter().map(|i| format!("#{i}")).collect();
            write!(f, ", which none of the operations that may follow it ({}) wrote", list.join(", "))
        }
    }
}

/// The result of [`check_lost_writes`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWritesReport {
    /// Every lost write, by key, then by history index.
    pub lost: Vec<LostWrite>,
    /// Keys with acknowledged writes that the final state does not include: not checked, and a
    /// gap in the run's final read.
    pub unread_keys: Vec<Key>,
}

impl LostWritesReport {
    /// True when no write is lost and every written key was read.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.unread_keys.is_empty()
    }
}

/// What a final read may see because of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// Exactly this value (`None`: absent).
    Leaves(Option<Value>),
    /// Some number, unknown which.
    AnyNumber,
}

impl Effect {
    fn explains(&self, seen: &Option<Value>) -> bool {
        match self {
            Effect::Leaves(value) => value == seen,
            Effect::AnyNumber => matches!(seen, Some(Value::Int(_))),
        }
    }
}

/// The effect of an operation that changes the register (acknowledged or indeterminate), if any.
fn effect(op: &Operation) -> Option<Effect> {
    let outcome = op.outcome();
    if !matches!(outcome, Outcome::Ok(_) | Outcome::Indeterminate) {
        return None;
    }
    match (&op.input, outcome) {
        (Input::Write(value) | Input::CompareAndSet { new: value, .. }, _) => Some(Effect::Leaves(Some(value.clone()))),
        (Input::Delete, _) => Some(Effect::Leaves(None)),
        (Input::Add(_), Outcome::Ok(Output::Counter(n))) => Some(Effect::Leaves(Some(Value::Int(*n)))),
        (Input::Add(_), _) => Some(Effect::AnyNumber),
        (Input::Read, _) => None,
    }
}

/// Reports every acknowledged write that `final_values` (each key's value read after the faults
/// healed; `None`: absent) does not account for.
pub fn check_lost_writes(
    history: &History,
    final_values: &BTreeMap<Key, Option<Value>>,
) -> Result<LostWritesReport, HistoryError> {
    history.validate()?;
    let mut report = LostWritesReport::default();
    for (key, indices) in history.by_key() {
        let writers: Vec<(OpIndex, Effect)> =
            indices.iter().filter_map(|&i| effect(&history.ops[i]).map(|effect| (i, effect))).collect();
        let acknowledged: Vec<&(OpIndex, Effect)> =
            writers.iter().filter(|(i, _)| matches!(history.ops[*i].outcome(), Outcome::Ok(_))).collect();
        if acknowledged.is_empty() {
            continue;
        }
        let Some(seen) = final_values.get(key) else {
            report.unread_keys.push(key.clone());
            continue;
        };
        for (w, w_effect) in acknowledged {
            let w = *w;
            if w_effect.explains(seen) {
                continue;
            }
            let invoke_ns = history.ops[w].invoke_ns;
            let may_follow: Vec<&(OpIndex, Effect)> = writers
                .iter()
                .filter(|(x, _)| *x != w && history.ops[*x].definite_end_ns().is_none_or(|end| end >= invoke_ns))
                .collect();
            if may_follow.iter().any(|(_, effect)| effect.explains(seen)) {
                continue;
            }
            report.lost.push(LostWrite {
                key: key.clone(),
                op: w,
                write: history.ops[w].clone(),
                final_value: seen.clone(),
                may_follow: may_follow.iter().map(|(x, _)| *x).collect(),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{Completion, Failure};

    fn op(client: u64, key: &str, input: Input, invoke_ns: u64, end_ns: u64, outcome: Outcome) -> Operation {
        Operation { client, key: key.into(), input, invoke_ns, completion: Some(Completion { at_ns: end_ns, outcome }) }
    }

    fn ok() -> Outcome {
        Outcome::Ok(Output::Done)
    }

    fn finals(entries: &[(&str, Option<u64>)]) -> BTreeMap<Key, Option<Value>> {
        entries.iter().map(|(k, v)| (Key::from(*k), v.map(Value::Int))).collect()
    }

    #[test]
    fn the_last_acknowledged_write_survives() {
        let mut h = History::new();
        h.push(op(1, "a", Input::Write(1.into()), 0, 10, ok()));
        h.push(op(1, "a", Input::Write(2.into()), 20, 30, ok()));
        h.push(op(2, "b", Input::Add(5), 0, 10, Outcome::Ok(Output::Counter(5))));
        let report = check_lost_writes(&h, &finals(&[("a", Some(2)), ("b", Some(5))])).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    #[test]
    fn an_older_value_after_an_acknowledged_write_is_a_lost_write() {
        let mut h = History::new();
        h.push(op(1, "a", Input::Write(1.into()), 0, 10, ok()));
        h.push(op(1, "a", Input::Write(2.into()), 20, 30, ok()));
        h.push(op(2, "b", Input::Write(7.into()), 0, 10, ok()));
        let report = check_lost_writes(&h, &finals(&[("a", Some(1)), ("b", Some(7))])).unwrap();
        assert_eq!(report.lost.len(), 1, "{report:?}");
        assert_eq!(report.lost[0].key, Key::from("a"));
        assert_eq!(report.lost[0].op, 1);
        assert!(report.lost[0].to_string().contains("acknowledged #1"), "{}", report.lost[0]);
        // The final read saw write 1's own value, so only write 2 is lost.
    }

    #[test]
    fn an_absent_key_loses_every_write_that_no_delete_follows() {
        let mut h = History::new();
        h.push(op(1, "a", Input::Write(1.into()), 0, 10, ok()));
        h.push(op(2, "a", Input::Write(2.into()), 5, 15, ok()));
        let report = check_lost_writes(&h, &finals(&[("a", None)])).unwrap();
        assert_eq!(report.lost.iter().map(|l| l.op).collect::<Vec<_>>(), vec![0, 1]);

        h.push(op(3, "a", Input::Delete, 40, 50, Outcome::Indeterminate));
        let report = check_lost_writes(&h, &finals(&[("a", None)])).unwrap();
        assert!(report.is_clean(), "an indeterminate delete may follow both writes: {report:?}");
    }

    #[test]
    fn concurrent_and_indeterminate_writes_may_win() {
        let mut h = History::new();
        // Write 1 and write 2 overlap, so either may be last.
        h.push(op(1, "a", Input::Write(1.into()), 0, 10, ok()));
        h.push(op(2, "a", Input::Write(2.into()), 5, 15, ok()));
        assert!(check_lost_writes(&h, &finals(&[("a", Some(1))])).unwrap().is_clean());
        assert!(check_lost_writes(&h, &finals(&[("a", Some(2))])).unwrap().is_clean());
        // An indeterminate write invoked before both may take effect after them.
        h.push(op(3, "a", Input::Write(3.into()), 0, 1, Outcome::Indeterminate));
        assert!(check_lost_writes(&h, &finals(&[("a", Some(3))])).unwrap().is_clean());
        // A failed write never took effect.
        h.push(op(4, "a", Input::Write(4.into()), 20, 30, Outcome::Failed(Failure::Rejected)));
        let report = check_lost_writes(&h, &finals(&[("a", Some(4))])).unwrap();
        assert_eq!(report.lost.iter().map(|l| l.op).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn a_resurrected_item_loses_the_acknowledged_delete() {
        let mut h = History::new();
        h.push(op(1, "a", Input::Write(1.into()), 0, 10, ok()));
        h.push(op(1, "a", Input::Delete, 20, 30, ok()));
        let report = check_lost_writes(&h, &finals(&[("a", Some(1))])).unwrap();
        assert_eq!(report.lost.iter().map(|l| l.op).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn counters_and_unread_keys() {
        let mut h = History::new();
        h.push(op(1, "c", Input::Add(1), 0, 10, Outcome::Ok(Output::Counter(1))));
        h.push(op(1, "c", Input::Add(1), 20, 30, Outcome::Ok(Output::Counter(2))));
        h.push(op(2, "d", Input::Write(1.into()), 0, 10, ok()));
        let report = check_lost_writes(&h, &finals(&[("c", Some(1))])).unwrap();
        assert_eq!(report.lost.iter().map(|l| l.op).collect::<Vec<_>>(), vec![1]);
        assert_eq!(report.unread_keys, vec![Key::from("d")]);

        h.push(op(2, "c", Input::Add(4), 40, 50, Outcome::Indeterminate));
        let report = check_lost_writes(&h, &finals(&[("c", Some(6)), ("d", Some(1))])).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }
}
