//! The ambient context of one synchronous call into the API: set by the cluster layer around
//! the application of a replicated entry or a routed read, and read by the database and the
//! operations that need it.
//!
//! It is ambient (a thread-local) rather than a parameter of every operation because only three
//! places read it — the database's batch commit, CreateTable's clock and the range walks of Scan
//! and Query — while every operation would otherwise carry it. A call runs synchronously on one
//! thread without yielding, so the context cannot leak into another call.
//!
//! The capacity meter ([`measure`]) is ambient for the same reason: every operation reports its
//! consumption in one place (`Consumed::report`), and only capacity enforcement reads it.

use std::cell::RefCell;

use crate::capacity::{Access, Units, Usage};
use crate::partition::HashRange;
use crate::storage::Durability;

/// What a replicated or routed call adds to a plain single-node call.
#[derive(Clone, Debug, Default)]
pub struct CallScope {
    /// Records to add to every write batch of the call (a group's applied index), so that the
    /// data and the record that it was applied become durable together.
    pub batch_extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// Durability of the call's writes (`Buffered` when a synced raft log already holds them).
    pub durability: Option<Durability>,
    /// The time the call is deemed to run at, in milliseconds since the Unix epoch; the same on
    /// every replica.
    pub now_ms: Option<u64>,
    /// Partition-key hashes the call may see: a partition's range. Scans stop at its ends, and
    /// reads of global indexes skip entries of items outside it.
    pub hash_range: Option<HashRange>,
    /// The call must not write: it runs outside replication on a clustered node (a read, or a
    /// request that failed to route and runs only to produce its validation error).
    pub read_only: bool,
    /// Evaluate and validate, but write nothing: a transaction's prepare phase.
    pub dry_run: bool,
    /// The cross-partition transaction the call belongs to: its own item locks do not block it.
    pub txid: Option<u64>,
    /// The client request token of the whole transaction whose part the call runs (the part
    /// itself carries none): its primary remembers it.
    pub client_token: Option<crate::api::idempotency::ClientToken>,
    /// A Query or Scan also lists every entry it evaluated (key, whether it matched the filter,
    /// size), in reading order, so a router merging several partitions' pages of a global index
    /// can apply `Limit` and the page size to the merged entries (`SquallEvaluated`).
    pub report_evaluated: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<CallScope>> = const { RefCell::new(None) };
    static STORAGE_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static USAGE: RefCell<Option<Usage>> = const { RefCell::new(None) };
    static DEFERRED: RefCell<Option<crate::storage::WriteBatch>> = const { RefCell::new(None) };
}

/// Starts collecting the writes of the code that runs next on this thread into one batch
/// instead of writing them (see [`take_deferred`]). A replicated apply uses it so that an
/// entry's writes — a BatchWriteItem's items, a transaction's commit and release — reach the
/// store as one atomic batch with the applied index: an entry is then either wholly applied
/// or not at all, whatever the store does midway.
///
/// Collection ends when the returned guard is finished or dropped (a panic midway must not
/// leave later, unrelated writes on this thread collected and never written).
pub fn begin_deferred() -> DeferredWrites {
    DEFERRED.with(|d| *d.borrow_mut() = Some(crate::storage::WriteBatch::new()));
    DeferredWrites { _not_send: std::marker::PhantomData }
}

/// Collection of an apply's writes on this thread; see [`begin_deferred`].
pub struct DeferredWrites {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl DeferredWrites {
    /// Ends collecting and returns what was collected.
    pub fn finish(self) -> crate::storage::WriteBatch {
        DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default()
    }
}

impl Drop for DeferredWrites {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.borrow_mut().take());
    }
}

/// Whether a storage failure has been noted since the last [`take_storage_failure`], without
/// clearing it.
pub fn storage_failure_noted() -> bool {
    STORAGE_FAILED.with(|f| f.get())
}

/// Adds `batch` to the collected one; gives it back when collection is off.
pub fn defer(batch: crate::storage::WriteBatch) -> Option<crate::storage::WriteBatch> {
    DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(collected) => {
            collected.ops.extend(batch.ops);
            None
        }
        None => Some(batch),
    })
}

/// What the collected batch says about `key`: `Some(Some(value))` written, `Some(None)`
/// deleted, `None` untouched (or collection off), so reads see the entry's own writes.
pub fn deferred_value(key: &[u8]) -> Option<Option<Vec<u8>>> {
    DEFERRED.with(|d| {
        let collected = d.borrow();
        let ops = &collected.as_ref()?.ops;
        ops.iter().rev().find_map(|op| match op {
            crate::storage::WriteOp::Put { key: k, value } if k.as_slice() == key => Some(Some(value.clone())),
            crate::storage::WriteOp::Delete { key: k } if k.as_slice() == key => Some(None),
            crate::storage::WriteOp::DeleteRange { start, end } if start.as_slice() <= key && key < end.as_slice() => {
                Some(None)
            }
            _ => None,
        })
    })
}

/// Runs `f` and returns, with its result, the capacity the operations inside it reported
/// (`api::common::Consumed::report`): what capacity enforcement charges afterwards. A
/// measurement inside another one also counts toward the outer one.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    /// Puts the outer measurement back with the inner one added to it, even if `f` panics.
    struct Restore {
        previous: Option<Usage>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.previous.take();
            USAGE.with(|u| {
                let mut slot = u.borrow_mut();
                let inner = slot.take();
                *slot = previous;
                if let (Some(outer), Some(inner)) = (slot.as_mut(), inner) {
                    outer.merge(&inner);
                }
            });
        }
    }
    let previous = USAGE.with(|u| u.borrow_mut().replace(Usage::default()));
    let restore = Restore { previous };
    let result = f();
    let usage = USAGE.with(|u| u.borrow().clone().unwrap_or_default());
    drop(restore);
    (result, usage)
}

/// Records capacity consumed on `table` in the current measurement, if there is one.
pub fn record_usage(table: &str, access: Access, units: &Units) {
    USAGE.with(|u| {
        if let Some(usage) = u.borrow_mut().as_mut() {
            usage.record(table, access, units);
        }
    });
}

/// Records that a storage call on this thread failed: a write, or a read that failed or
/// returned corrupt data. A replicated apply clears the record before an entry and checks it
/// after (including the entry's own final write, made outside any scope): an entry whose
/// storage calls failed is not applied, whatever the operation answered, and must be applied
/// again — a failed or corrupt read is this replica's accident, not the entry's outcome, and
/// answering from it would make this replica's state differ from the others'.
pub fn note_storage_failure() {
    STORAGE_FAILED.with(|f| f.set(true));
}

/// Whether a storage call failed since the last call, clearing the record.
pub fn take_storage_failure() -> bool {
    STORAGE_FAILED.with(|f| f.replace(false))
}

/// Runs `f` with `scope` as the current scope, restoring the previous one afterwards.
pub fn with_scope<R>(scope: CallScope, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<CallScope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(scope));
    let _restore = Restore(previous);
    f()
}

/// Reads the current scope (`None` outside `with_scope`).
pub fn current<R>(f: impl FnOnce(Option<&CallScope>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// The current scope's hash range.
pub fn hash_range() -> Option<HashRange> {
    current(|s| s.and_then(|s| s.hash_range))
}

/// Whether the current call is a dry run.
pub fn dry_run() -> bool {
    current(|s| s.is_some_and(|s| s.dry_run))
}

/// The transaction the current call belongs to.
pub fn txid() -> Option<u64> {
    current(|s| s.and_then(|s| s.txid))
}

/// The client request token the current call runs under, if its scope sets one.
pub fn client_token() -> Option<crate::api::idempotency::ClientToken> {
    current(|s| s.and_then(|s| s.client_token.clone()))
}

/// Whether the current read lists the entries it evaluated.
pub fn report_evaluated() -> bool {
    current(|s| s.is_some_and(|s| s.report_evaluated))
}

/// The current scope's clock, if it sets one.
pub fn now_ms() -> Option<u64> {
    current(|s| s.and_then(|s| s.now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        assert!(now_ms().is_none());
        with_scope(CallScope { now_ms: Some(1), ..CallScope::default() }, || {
            assert_eq!(now_ms(), Some(1));
            with_scope(CallScope { now_ms: Some(2), ..CallScope::default() }, || assert_eq!(now_ms(), Some(2)));
            assert_eq!(now_ms(), Some(1));
        });
        assert!(now_ms().is_none());
    }

    #[test]
    fn measurements_collect_reported_usage_and_nest() {
        let units = |table: f64| Units { table, indexes: Default::default() };
        record_usage("t", Access::Read, &units(5.0));
        let (_, outer) = measure(|| {
            record_usage("t", Access::Read, &units(1.0));
            let (_, inner) = measure(|| record_usage("t", Access::Write, &units(2.0)));
            assert_eq!(inner.of("t", Access::Write).map(|u| u.table), Some(2.0));
            assert_eq!(inner.of("t", Access::Read), None);
        });
        assert_eq!(outer.of("t", Access::Read).map(|u| u.table), Some(1.0));
        assert_eq!(outer.of("t", Access::Write).map(|u| u.table), Some(2.0));
        let (_, after) = measure(|| ());
        assert!(after.is_empty());
    }

    #[test]
    fn a_panic_inside_restores_the_scope() {
        let result = std::panic::catch_unwind(|| {
            with_scope(CallScope { now_ms: Some(5), ..CallScope::default() }, || panic!("inside"));
        });
        assert!(result.is_err());
        assert!(now_ms().is_none());
    }

    #[test]
    fn deferred_writes_collect_in_order_and_reads_see_them() {
        use crate::storage::WriteBatch;
        let mut first = WriteBatch::new();
        first.put(b"a".to_vec(), b"1".to_vec());
        first.put(b"b".to_vec(), b"2".to_vec());
        // Without collection the batch is handed back to be written.
        assert!(defer(first.clone()).is_some());
        assert_eq!(deferred_value(b"a"), None);
        let collecting = begin_deferred();
        assert!(defer(first).is_none());
        let mut second = WriteBatch::new();
        second.put(b"a".to_vec(), b"3".to_vec());
        second.delete_range(b"b".to_vec(), b"c".to_vec());
        assert!(defer(second).is_none());
        assert_eq!(deferred_value(b"a"), Some(Some(b"3".to_vec())), "the latest write wins");
        assert_eq!(deferred_value(b"b"), Some(None), "a deleted range hides the earlier put");
        assert_eq!(deferred_value(b"z"), None, "untouched keys are read from the store");
        let collected = collecting.finish();
        assert_eq!(collected.ops.len(), 4);
        assert_eq!(deferred_value(b"a"), None, "collection ended");
    }

    #[test]
    fn a_dropped_collection_ends_and_storage_failures_are_noted_outside_scopes() {
        {
            let _collecting = begin_deferred();
            assert!(defer(crate::storage::WriteBatch::new()).is_none());
        }
        assert!(defer(crate::storage::WriteBatch::new()).is_some(), "dropping the guard ends collection");
        take_storage_failure();
        note_storage_failure();
        assert!(storage_failure_noted());
        assert!(take_storage_failure());
        assert!(!take_storage_failure());
    }
}
