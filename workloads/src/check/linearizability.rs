//! Per-key linearizability of a register history.
//!
//! # Algorithm
//!
//! Linearizability is local: a history is linearizable exactly when each key's sub-history is
//! (Herlihy and Wing), so the history is partitioned by key, as Porcupine does, and each key is
//! searched on its own. That turns one search exponential in the whole history into many small
//! ones, each exponential only in the concurrency on one key.
//!
//! For one key, the search is Wing and Gong's, with Lowe's improvements, as in Porcupine:
//!
//! 1. Each operation becomes a call entry at its invocation and a return entry at its completion,
//!    in one doubly linked list sorted by time (calls before returns at equal times, so operations
//!    that touch are treated as concurrent, the lenient reading).
//! 2. Walking from the head, a call entry is a candidate to linearize next: if the register's
//!    sequential specification ([`history::step`]) accepts it from the current state, it is
//!    linearized — both its entries are unlinked from the list (dancing links, so undoing is
//!    O(1)), pushed on a stack with the state before it, and the walk restarts at the head.
//! 3. Reaching a return entry means that operation must already be linearized but is not, so no
//!    extension of the current prefix works: pop the last linearized operation, relink it, restore
//!    its state and try the next candidate after it. This is the "just-in-time linearization"
//!    pruning: only operations invoked before the earliest pending completion are ever candidates.
//! 4. Memoisation (Lowe): a configuration is the set of linearized operations (a bitset) and the
//!    register state; the same configuration reached by another order has the same future, so
//!    each is explored once.
//!
//! Indeterminate operations (timed out, connection lost, still in flight) have no return entry:
//! they complete at +∞, never force a backtrack, and may be linearized at any point after their
//! invocation. The search succeeds once every *definite* operation is linearized; an
//! indeterminate operation not linearized by then is dropped, which stands for "took effect after
//! everything observable, or never". Reads that did not answer change nothing and tell nothing,
//! and operations that failed definitely without a condition failure had no effect, so both are
//! left out; a compare-and-set that failed its condition is kept, as a read that the value
//! differed from `expected`.
//!
//! # Complexity
//!
//! Deciding linearizability is NP-complete in general. For a key with `n` operations of which
//! at most `c` are pending at once, candidates at each point are at most `c`, and memoisation
//! bounds the configurations to those whose linearized set is "everything completed before some
//! point plus a subset of the ≤ `c` concurrent operations", times the distinct states: about
//! `n · 2^c · |states|` configurations, each costing O(c) to scan and O(n/64) to hash. Histories
//! from clients that issue one operation at a time keep `c` at most the number of clients plus
//! the indeterminate operations, which is why a workload checked this way should bound its
//! concurrent clients per key. Every
//! candidate tried counts as one step; a key that needs more than [`Limits::max_steps_per_key`]
//! is reported [`KeyVerdict::Unknown`] — never as a pass.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;

use super::history::{
    self, Failure, History, HistoryError, Input, Key, OpIndex, Operation, Outcome, Output, ShowState, Value,
};

/// Steps (candidate linearizations tried) per key before the search gives up with
/// [`KeyVerdict::Unknown`]. It bounds memory too: each step adds at most one memo entry of about
/// `64 + n / 8` bytes for a key of `n` operations, so a key of 1,000 operations stays under
/// 400 MB, and time at roughly a second per million steps.
pub const DEFAULT_MAX_STEPS_PER_KEY: u64 = 2_000_000;

/// Operations of the furthest partial linearization that a violation's explanation lists (its
/// tail); the full sequence is in [`Violation::linearized`].
const EXPLANATION_PREFIX_OPS_MAX: usize = 8;

/// Bounds on the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Steps per key before giving up; see [`DEFAULT_MAX_STEPS_PER_KEY`].
    pub max_steps_per_key: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_steps_per_key: DEFAULT_MAX_STEPS_PER_KEY }
    }
}

/// The verdict on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A linearization exists; found after this many steps.
    Linearizable {
        /// Steps taken.
        steps: u64,
    },
    /// No linearization exists.
    Violation(Box<Violation>),
    /// The search hit the step limit before deciding: not a pass.
    Unknown {
        /// Steps taken (the limit).
        steps: u64,
    },
}

/// Why one key's history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: Key,
    /// The operation no linearization could place: every search path stops at its completion,
    /// and this one is the latest such completion over all paths (the furthest the search got).
    pub failing_op: OpIndex,
    /// The operations of the furthest partial linearization, in linearization order.
    pub linearized: Vec<OpIndex>,
    /// The register's value after [`Violation::linearized`].
    pub state: Option<Value>,
    /// The operations around the failing point, by invocation time: every operation on the key
    /// whose interval overlaps the failing operation's, and the last linearized one.
    pub slice: Vec<(OpIndex, Operation)>,
    /// A readable account of the above.
    pub explanation: String,
}

/// The verdict on every key of a history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One verdict per key, keys in order.
    pub keys: BTreeMap<Key, KeyVerdict>,
}

impl Report {
    /// True when every key is linearizable (an unknown key is not a pass).
    pub fn is_linearizable(&self) -> bool {
        self.keys.values().all(|verdict| matches!(verdict, KeyVerdict::Linearizable { .. }))
    }

    /// The violations, in key order.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.keys.values().filter_map(|verdict| match verdict {
            KeyVerdict::Violation(violation) => Some(&**violation),
            _ => None,
        })
    }

    /// The keys whose search hit the step limit.
    pub fn unknown_keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter_map(|(key, verdict)| matches!(verdict, KeyVerdict::Unknown { .. }).then_some(key))
    }
}

/// Checks every key of `history`; a malformed history is an error, not a verdict.
pub fn check(history: &History, limits: &Limits) -> Result<Report, HistoryError> {
    history.validate()?;
    let mut report = Report::default();
    for (key, indices) in history.by_key() {
        let verdict = check_key_ops(history, key, &indices, limits);
        report.keys.insert(key.clone(), verdict);
    }
    Ok(report)
}

/// Checks one key of `history`.
pub fn check_key(history: &History, key: &Key, limits: &Limits) -> Result<KeyVerdict, HistoryError> {
    history.validate()?;
    let indices: Vec<OpIndex> = (0..history.ops.len()).filter(|&i| history.ops[i].key == *key).collect();
    Ok(check_key_ops(history, key, &indices, limits))
}

/// Whether the search must consider `op` at all (see the module documentation).
fn relevant(op: &Operation) -> bool {
    !matches!(
        (&op.input, op.outcome()),
        (_, Outcome::Failed(Failure::Rejected)) | (Input::Read, Outcome::Indeterminate)
    )
}

const NIL: usize = usize::MAX;

/// A fixed-size bitset of linearized operations, the memo's first half.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The search's list: node 0 is the head sentinel, then one node per entry in time order.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per node: the local operation and whether it is the call entry.
    node: Vec<(usize, bool)>,
    /// Per local operation: its call node and return node (`NIL` for indeterminate ones).
    call: Vec<usize>,
    ret: Vec<usize>,
}

impl Entries {
    fn new(ops: &[&Operation]) -> Self {
        // (time, returns after calls, operation, is_call), sorted.
        let mut events: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoke_ns, 0, i, true));
            if let Some(end_ns) = op.definite_end_ns() {
                events.push((end_ns, 1, i, false));
            }
        }
        events.sort_unstable();
        let count = events.len() + 1;
        let mut entries = Entries {
            next: (1..=count).map(|n| if n == count { NIL } else { n }).collect(),
            prev: (0..count).map(|n| if n == 0 { NIL } else { n - 1 }).collect(),
            node: vec![(NIL, false); count],
            call: vec![NIL; ops.len()],
            ret: vec![NIL; ops.len()],
        };
        for (n, &(_, _, op, is_call)) in events.iter().enumerate() {
            let node = n + 1;
            entries.node[node] = (op, is_call);
            if is_call {
                entries.call[op] = node;
            } else {
                entries.ret[op] = node;
            }
        }
        entries
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Removes both entries of `op`; [`Entries::restore`] undoes the most recent lift.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        if self.ret[op] != NIL {
            self.unlink(self.ret[op]);
        }
    }

    fn restore(&mut self, op: usize) {
        if self.ret[op] != NIL {
            self.relink(self.ret[op]);
        }
        self.relink(self.call[op]);
    }
}

/// The furthest point the search reached: a return entry it could not pass.
struct Furthest {
    node: usize,
    op: usize,
    linearized: Vec<usize>,
    state: Option<Value>,
}

fn check_key_ops(history: &History, key: &Key, indices: &[OpIndex], limits: &Limits) -> KeyVerdict {
    let global: Vec<OpIndex> = indices.iter().copied().filter(|&i| relevant(&history.ops[i])).collect();
    let ops: Vec<&Operation> = global.iter().map(|&i| &history.ops[i]).collect();
    let initial = history.initial.get(key).cloned();

    let mut entries = Entries::new(&ops);
    let mut definite_left = ops.iter().filter(|op| op.definite_end_ns().is_some()).count();
    let mut linearized = Bits::new(ops.len());
    // `DefaultHasher` with fixed keys rather than `RandomState`: nothing random under the simulator.
    let mut memo: HashSet<(Bits, Option<Value>), BuildHasherDefault<DefaultHasher>> = HashSet::default();
    // (operation, state before it)
    let mut stack: Vec<(usize, Option<Value>)> = Vec::new();
    let mut state = initial;
    let mut furthest: Option<Furthest> = None;
    let mut steps: u64 = 0;
    let mut node = entries.next[0];

    while definite_left > 0 {
        // A definite operation is left, so its return entry is still in the list, ahead.
        debug_assert_ne!(node, NIL);
        let (op, is_call) = entries.node[node];
        if is_call {
            steps += 1;
            if steps > limits.max_steps_per_key {
                return KeyVerdict::Unknown { steps: limits.max_steps_per_key };
            }
            if let Some(next_state) = history::step(&state, &ops[op].input, ops[op].outcome()) {
                linearized.set(op);
                if memo.insert((linearized.clone(), next_state.clone())) {
                    stack.push((op, std::mem::replace(&mut state, next_state)));
                    entries.lift(op);
                    if entries.ret[op] != NIL {
                        definite_left -= 1;
                    }
                    node = entries.next[0];
                    continue;
                }
                linearized.clear(op);
            }
            node = entries.next[node];
        } else {
            if furthest.as_ref().is_none_or(|f| node > f.node) {
                furthest = Some(Furthest {
                    node,
                    op,
                    linearized: stack.iter().map(|&(op, _)| op).collect(),
                    state: state.clone(),
                });
            }
            let Some((last, before)) = stack.pop() else {
                let furthest = furthest.expect("recorded just above");
                return KeyVerdict::Violation(Box::new(violation(history, key, &global, &ops, furthest)));
            };
            state = before;
            linearized.clear(last);
            entries.restore(last);
            if entries.ret[last] != NIL {
                definite_left += 1;
            }
            node = entries.next[entries.call[last]];
        }
    }
    KeyVerdict::Linearizable { steps }
}

fn violation(history: &History, key: &Key, global: &[OpIndex], ops: &[&Operation], furthest: Furthest) -> Violation {
    let failing = ops[furthest.op];
    let failing_end_ns = failing.definite_end_ns().expect("only definite operations have return entries");
    let last_linearized = furthest.linearized.last().map(|&op| global[op]);
    let mut slice: Vec<(OpIndex, Operation)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            let overlaps =
                op.invoke_ns <= failing_end_ns && op.definite_end_ns().is_none_or(|end| end >= failing.invoke_ns);
            op.key == *key && (overlaps || Some(*i) == last_linearized)
        })
        .map(|(i, op)| (i, op.clone()))
        .collect();
    slice.sort_by_key(|(i, op)| (op.invoke_ns, *i));

    let failing_op = global[furthest.op];
    let linearized: Vec<OpIndex> = furthest.linearized.iter().map(|&op| global[op]).collect();
    let mut text = String::new();
    let _ = writeln!(text, "key {key}: no linearization explains #{failing_op} ({failing})");
    let _ = write!(
        text,
        "the furthest partial linearization has {} operation{} and leaves the register at {} when #{failing_op} \
         completes",
        linearized.len(),
        if linearized.len() == 1 { "" } else { "s" },
        ShowState(&furthest.state)
    );
    let skipped = linearized.len().saturating_sub(EXPLANATION_PREFIX_OPS_MAX);
    text.push_str(match (linearized.is_empty(), skipped) {
        (true, _) => "\n",
        (false, 0) => ":\n",
        (false, _) => "; its last ones:\n",
    });
    for &i in &linearized[skipped..] {
        let _ = writeln!(text, "  #{i} {}", history.ops[i]);
    }
    if let Some(value) = claimed_value(failing) {
        if !written_on(history, key, &value) {
            let _ = writeln!(text, "no operation on key {key} ever writes {value}");
        }
    }
    let _ = writeln!(text, "operations around #{failing_op} (overlapping it, or linearized last):");
    for (i, op) in &slice {
        let _ = writeln!(text, "  #{i} {op}");
    }
    Violation { key: key.clone(), failing_op, linearized, state: furthest.state, slice, explanation: text }
}

/// The value a successful read claims it saw, if any.
fn claimed_value(op: &Operation) -> Option<Value> {
    match op.outcome() {
        Outcome::Ok(Output::Read(Some(value))) => Some(value.clone()),
        _ => None,
    }
}

/// Whether any operation on `key` (or its initial value) could have produced `value`.
fn written_on(history: &History, key: &Key, value: &Value) -> bool {
    history.initial.get(key) == Some(value)
        || history.ops.iter().filter(|op| op.key == *key).any(|op| match (&op.input, op.outcome()) {
            (Input::Write(v) | Input::CompareAndSet { new: v, .. }, _) => v == value,
            (Input::Add(_), Outcome::Ok(Output::Counter(n))) => *value == Value::Int(*n),
            // An unanswered add could have produced any number.
            (Input::Add(_), Outcome::Indeterminate) => matches!(value, Value::Int(_)),
            _ => false,
        })
}
