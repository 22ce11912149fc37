//! `MemStore`: an in-memory, deterministic `KvStore` that models power failure.
//!
//! The model is deliberately the simplest one that is obviously correct:
//!
//! - `visible` is what reads see: every batch that `write` accepted, applied in order.
//! - `durable` is what survives a power failure.
//! - `unsynced` is the log of batches written with `Durability::Buffered` since the last sync,
//!   in write order.
//!
//! A `Sync` write replays the unsynced log and then its own batch onto `durable` and empties the
//! log, as a write-ahead-log fsync makes every earlier append durable. `power_fail` throws the
//! log away and makes `visible` a copy of `durable` again.
//!
//! Invariant: `visible == durable` with every batch of `unsynced` applied in order.
//!
//! There are no threads, clocks or random numbers here, so the store runs unchanged under the
//! madsim simulator and the same operations always give the same state.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use super::{Direction, Durability, KvPair, KvStore, StorageError, WriteBatch, WriteOp};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
struct State {
    durable: Map,
    visible: Map,
    unsynced: Vec<WriteBatch>,
}

impl State {
    /// Checks the invariant by replaying the log: O(size of the store), so it runs in debug
    /// builds only, and on every write only in this crate's unit tests.
    fn check_invariant(&self) {
        if cfg!(debug_assertions) {
            let mut replayed = self.durable.clone();
            for batch in &self.unsynced {
                apply(&mut replayed, batch);
            }
            assert!(replayed == self.visible, "MemStore: visible state is not durable + unsynced log");
        }
    }
}

/// An in-memory ordered store that loses unsynced writes on `power_fail`.
///
/// Thread-safe behind one mutex; every operation is atomic with respect to the others.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Simulates a power failure followed by a restart: every write made with
    /// `Durability::Buffered` since the last `Sync` write is lost, everything else is kept.
    pub fn power_fail(&self) {
        self.power_fail_keeping(0);
    }

    /// Simulates a power failure in which the first `batches_kept` unsynced batches happened to
    /// reach the disk before power was lost (a real write-ahead log may keep any prefix of its
    /// unsynced tail, never a batch without the batches before it). `batches_kept` is clamped
    /// to the number of unsynced batches. Lets a simulator choose the prefix from its seed.
    pub fn power_fail_keeping(&self, batches_kept: usize) {
        let mut state = self.lock();
        state.check_invariant();
        let log = std::mem::take(&mut state.unsynced);
        let kept = batches_kept.min(log.len());
        for batch in &log[..kept] {
            apply(&mut state.durable, batch);
        }
        state.visible = state.durable.clone();
    }

    /// Simulates the disk being replaced by an empty one: every record is gone.
    pub fn wipe(&self) {
        *self.lock() = State::default();
    }

    /// The number of batches written with `Durability::Buffered` since the last sync: the ones a
    /// power failure would lose.
    pub fn unsynced_batches(&self) -> usize {
        self.lock().unsynced.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the maps half-updated in a way that
        // matters to callers (the panicking writer's batch was never acknowledged), so a
        // poisoned mutex is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Applies a batch's operations in order.
fn apply(map: &mut Map, batch: &WriteBatch) {
    for op in &batch.ops {
        match op {
            WriteOp::Put { key, value } => {
                map.insert(key.clone(), value.clone());
            }
            WriteOp::Delete { key } => {
                map.remove(key);
            }
            WriteOp::DeleteRange { start, end } => {
                if start < end {
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
    }
}

/// True when no key can lie between the bounds (`BTreeMap::range` panics on such bounds).
pub(crate) fn bounds_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u))
        | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
    }
}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().visible.get(key).cloned())
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError> {
        if limit == 0 || bounds_empty(lower, upper) {
            return Ok(Vec::new());
        }
        let state = self.lock();
        let range = state.visible.range::<[u8], _>((lower, upper));
        let pairs: Vec<KvPair> = match direction {
            Direction::Forward => range.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect(),
            Direction::Reverse => range.rev().take(limit).map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        Ok(pairs)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        let mut state = self.lock();
        apply(&mut state.visible, &batch);
        match durability {
            Durability::Buffered => {
                // An empty buffered batch changes nothing and need not be remembered.
                if !batch.is_empty() {
                    state.unsynced.push(batch);
                }
            }
            Durability::Sync => {
                let log = std::mem::take(&mut state.unsynced);
                for earlier in &log {
                    apply(&mut state.durable, earlier);
                }
                apply(&mut state.durable, &batch);
            }
        }
        #[cfg(test)]
        state.check_invariant();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{assert_matches_model, model_apply, Model, Rng};

    fn put(store: &MemStore, key: &[u8], value: &[u8], durability: Durability) {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        store.write(batch, durability).unwrap();
    }

    #[test]
    fn buffered_writes_are_lost_on_power_failure() {
        let store = MemStore::new();
        put(&store, b"a", b"1", Durability::Buffered);
        put(&store, b"b", b"1", Durability::Buffered);
        assert_eq!(store.unsynced_batches(), 2);
        store.power_fail();
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(store.get(b"b").unwrap(), None);
        assert_eq!(store.unsynced_batches(), 0);
    }

    #[test]
    fn synced_writes_survive_power_failure() {
        let store = MemStore::new();
        put(&store, b"a", b"1", Durability::Sync);
        put(&store, b"a", b"2", Durability::Buffered);
        put(&store, b"b", b"2", Durability::Buffered);
        store.power_fail();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()), "buffered overwrite lost");
        assert_eq!(store.get(b"b").unwrap(), None);
        // A lost delete brings the key back.
        let mut batch = WriteBatch::new();
        batch.delete(b"a");
        store.write(batch, Durability::Buffered).unwrap();
        assert_eq!(store.get(b"a").unwrap(), None);
        store.power_fail();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn sync_makes_earlier_buffered_writes_durable() {
        let store = MemStore::new();
        put(&store, b"a", b"1", Durability::Buffered);
        put(&store, b"b", b"1", Durability::Buffered);
        put(&store, b"c", b"1", Durability::Sync);
        put(&store, b"d", b"1", Durability::Buffered);
        store.power_fail();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"b").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"c").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"d").unwrap(), None);

        put(&store, b"e", b"1", Durability::Buffered);
        store.sync().unwrap();
        put(&store, b"f", b"1", Durability::Buffered);
        store.power_fail();
        assert_eq!(store.get(b"e").unwrap(), Some(b"1".to_vec()), "sync() is a sync write");
        assert_eq!(store.get(b"f").unwrap(), None);
    }

    #[test]
    fn power_failure_can_keep_a_prefix_of_unsynced_batches() {
        let store = MemStore::new();
        for key in [b"a", b"b", b"c"] {
            put(&store, key, b"1", Durability::Buffered);
        }
        store.power_fail_keeping(2);
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"b").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"c").unwrap(), None);
        // The kept prefix is durable now: a second failure does not lose it.
        store.power_fail();
        assert_eq!(store.get(b"b").unwrap(), Some(b"1".to_vec()));
        // More than there are keeps everything.
        put(&store, b"d", b"1", Durability::Buffered);
        store.power_fail_keeping(usize::MAX);
        assert_eq!(store.get(b"d").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn a_batch_is_lost_or_kept_whole() {
        let store = MemStore::new();
        let mut batch = WriteBatch::new();
        batch.put(b"x", b"1");
        batch.put(b"y", b"1");
        batch.delete_range(b"a", b"b");
        store.write(batch, Durability::Buffered).unwrap();
        store.power_fail();
        assert_eq!(store.get(b"x").unwrap(), None);
        assert_eq!(store.get(b"y").unwrap(), None);
    }

    /// Random writes, syncs and power failures (some keeping a prefix of the unsynced batches)
    /// against a model of the durable state plus the log of unsynced batches.
    #[test]
    fn power_failures_match_model_randomized() {
        const SEED: u64 = 0x5EED_0002;
        const STEPS: usize = 3000;
        let mut rng = Rng::new(SEED);
        let store = MemStore::new();
        let mut durable = Model::new();
        let mut unsynced: Vec<WriteBatch> = Vec::new();
        let visible = |durable: &Model, unsynced: &[WriteBatch]| {
            let mut model = durable.clone();
            for batch in unsynced {
                model_apply(&mut model, batch);
            }
            model
        };
        for _ in 0..STEPS {
            match rng.below(20) {
                0..=13 => {
                    let batch = rng.batch();
                    if rng.chance(20) {
                        store.write(batch.clone(), Durability::Sync).unwrap();
                        for earlier in unsynced.drain(..) {
                            model_apply(&mut durable, &earlier);
                        }
                        model_apply(&mut durable, &batch);
                    } else {
                        store.write(batch.clone(), Durability::Buffered).unwrap();
                        unsynced.push(batch);
                    }
                }
                14..=16 => assert_matches_model(&store, &visible(&durable, &unsynced)),
                17 => {
                    store.sync().unwrap();
                    for earlier in unsynced.drain(..) {
                        model_apply(&mut durable, &earlier);
                    }
                }
                _ => {
                    let kept = if rng.chance(50) { 0 } else { rng.below(4) as usize };
                    store.power_fail_keeping(kept);
                    for earlier in unsynced.drain(..).take(kept) {
                        model_apply(&mut durable, &earlier);
                    }
                    assert_matches_model(&store, &durable);
                }
            }
            assert_eq!(store.unsynced_batches(), unsynced.iter().filter(|b| !b.is_empty()).count());
        }
        assert_matches_model(&store, &visible(&durable, &unsynced));
    }
}
