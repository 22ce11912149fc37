//! `FaultyStore`: a `KvStore` wrapper that injects disk faults, for the simulator and tests.
//!
//! The faults are switched on and off through a shared [`StorageFaults`] (the simulator's
//! nemesis holds one per node; the store a node opens wraps its real store with it), and every
//! choice is drawn from a SplitMix64 stream of the seed it was made with, so a run replays.
//!
//! - **EIO on write**: the batch is refused with `StorageError::Io` and not applied.
//! - **EIO on sync**: a `Sync` write fails with `StorageError::Io`, is not applied, and the store
//!   is poisoned, as a real failed fsync poisons `RocksStore`: every later write returns
//!   `Poisoned`, reads continue. A new `FaultyStore` over the same disk (the node restarting)
//!   starts unpoisoned.
//! - **Corruption on read**: one byte of a returned value is flipped. Only keys under a chosen
//!   prefix are touched, so a run can aim at data the engine checksums (items) and check that
//!   the CRC catches every flip.
//! - **Rot on write**: a value written under the same prefix is stored with one byte flipped,
//!   and stays damaged on the disk (bit rot, a misdirected write): every later read of it sees
//!   the damage, until the key is written again.
//! - **Slow operations**: the store is synchronous and cannot sleep, so a slow operation adds
//!   its delay to a debt the caller collects with [`StorageFaults::take_delay`] and sleeps off
//!   (the simulator pauses the node for that long).
//! - **Full disk**: every write is refused with `StorageError::Full`; reads continue.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{Direction, Durability, KvPair, KvStore, StorageError, WriteBatch, WriteOp};

/// Probabilities are in parts per million, so the draws use integers only.
pub const PER_MILLION: u32 = 1_000_000;

/// Which faults are on and how often they strike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSettings {
    /// Chance (per million) that a write fails with EIO.
    pub write_eio_per_million: u32,
    /// Chance (per million) that a `Sync` write fails its sync.
    pub sync_eio_per_million: u32,
    /// Chance (per million) that a value read under `corrupt_key_prefix` comes back with a
    /// flipped byte.
    pub read_corrupt_per_million: u32,
    /// Only values of keys starting with this prefix are corrupted (empty: every key).
    pub corrupt_key_prefix: Vec<u8>,
    /// Chance (per million) that a value written under `corrupt_key_prefix` is stored with a
    /// flipped byte.
    pub write_rot_per_million: u32,
    /// Chance (per million) that an operation is slow.
    pub slow_per_million: u32,
    /// How slow a slow operation is.
    pub slow_delay_us: u64,
    /// The disk is full: writes are refused, reads continue.
    pub full: bool,
}

/// How many faults of each kind were injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InjectedFaults {
    /// Writes failed with EIO.
    pub write_eio: u64,
    /// Syncs failed with EIO.
    pub sync_eio: u64,
    /// Values returned with a flipped byte.
    pub read_corrupt: u64,
    /// Values stored with a flipped byte.
    pub write_rot: u64,
    /// Operations made slow.
    pub slow: u64,
    /// Writes refused because the disk was full.
    pub full: u64,
}

#[derive(Debug)]
struct State {
    settings: FaultSettings,
    rng: u64,
    owed_delay_us: u64,
    injected: InjectedFaults,
}

impl State {
    /// SplitMix64: small, fast, and enough for fault draws.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `per_million` / 10^6. Draws nothing when the chance is 0, so that
    /// switching one fault on does not shift the draws of runs that never use it.
    fn strikes(&mut self, per_million: u32) -> bool {
        match per_million {
            0 => false,
            p if p >= PER_MILLION => true,
            p => self.next() % u64::from(PER_MILLION) < u64::from(p),
        }
    }

    fn maybe_slow(&mut self) {
        let slow = self.settings.slow_per_million;
        if self.strikes(slow) {
            self.injected.slow += 1;
            self.owed_delay_us = self.owed_delay_us.saturating_add(self.settings.slow_delay_us);
        }
    }

    /// Flips one byte of `value` with probability `per_million` when `key` is under the
    /// corruption prefix; returns whether it did.
    fn maybe_flip(&mut self, key: &[u8], value: &mut [u8], per_million: u32) -> bool {
        if value.is_empty() || !key.starts_with(&self.settings.corrupt_key_prefix) || !self.strikes(per_million) {
            return false;
        }
        let position = (self.next() % value.len() as u64) as usize;
        // A non-zero mask, so the byte always changes.
        let mask = (self.next() % 255) as u8 + 1;
        value[position] ^= mask;
        true
    }

    fn maybe_corrupt(&mut self, key: &[u8], value: &mut [u8]) {
        let corrupt = self.settings.read_corrupt_per_million;
        if self.maybe_flip(key, value, corrupt) {
            self.injected.read_corrupt += 1;
        }
    }

    /// Damages the values of `batch` that rot strikes, for good.
    fn maybe_rot(&mut self, batch: &mut WriteBatch) {
        let rot = self.settings.write_rot_per_million;
        if rot == 0 {
            return;
        }
        for op in &mut batch.ops {
            if let WriteOp::Put { key, value } = op {
                if self.maybe_flip(key, value, rot) {
                    self.injected.write_rot += 1;
                }
            }
        }
    }
}

/// The switchboard of one disk's faults; shared by the nemesis and every store opened on the
/// disk.
#[derive(Debug)]
pub struct StorageFaults {
    state: Mutex<State>,
}

impl StorageFaults {
    /// No fault switched on; draws come from `seed`.
    pub fn new(seed: u64) -> StorageFaults {
        StorageFaults {
            state: Mutex::new(State {
                settings: FaultSettings::default(),
                rng: seed,
                owed_delay_us: 0,
                injected: InjectedFaults::default(),
            }),
        }
    }

    /// Replaces the fault settings.
    pub fn set(&self, settings: FaultSettings) {
        self.lock().settings = settings;
    }

    /// Switches every fault off.
    pub fn clear(&self) {
        self.set(FaultSettings::default());
    }

    /// The current settings.
    pub fn settings(&self) -> FaultSettings {
        self.lock().settings.clone()
    }

    /// The delay slow operations have run up since the last call, which the caller should
    /// sleep off; resets it to zero.
    pub fn take_delay(&self) -> Duration {
        Duration::from_micros(std::mem::take(&mut self.lock().owed_delay_us))
    }

    /// Faults injected so far.
    pub fn injected(&self) -> InjectedFaults {
        self.lock().injected
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters and settings, valid after any panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A store that passes every call to `inner` unless a fault of `faults` strikes.
pub struct FaultyStore {
    inner: Arc<dyn KvStore>,
    faults: Arc<StorageFaults>,
    poisoned: AtomicBool,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("faults", &self.faults)
            .field("poisoned", &self.poisoned.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wraps `inner`; `faults` decides what goes wrong.
    pub fn new(inner: Arc<dyn KvStore>, faults: Arc<StorageFaults>) -> FaultyStore {
        FaultyStore { inner, faults, poisoned: AtomicBool::new(false) }
    }

    /// Whether an injected sync failure poisoned this store.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
}

impl KvStore for FaultyStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.faults.lock().maybe_slow();
        let mut value = self.inner.get(key)?;
        if let Some(value) = value.as_mut() {
            self.faults.lock().maybe_corrupt(key, value);
        }
        Ok(value)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError> {
        self.faults.lock().maybe_slow();
        let mut pairs = self.inner.scan(lower, upper, direction, limit)?;
        let mut state = self.faults.lock();
        for (key, value) in &mut pairs {
            state.maybe_corrupt(key, value);
        }
        Ok(pairs)
    }

    fn write(&self, mut batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        {
            let mut state = self.faults.lock();
            state.maybe_slow();
            if state.settings.full {
                state.injected.full += 1;
                return Err(StorageError::Full);
            }
            let (write_eio, sync_eio) = (state.settings.write_eio_per_million, state.settings.sync_eio_per_million);
            if state.strikes(write_eio) {
                state.injected.write_eio += 1;
                return Err(StorageError::Io("injected write error".into()));
            }
            if durability == Durability::Sync && state.strikes(sync_eio) {
                state.injected.sync_eio += 1;
                self.poisoned.store(true, Ordering::Release);
                return Err(StorageError::Io("injected sync error".into()));
            }
            state.maybe_rot(&mut batch);
        }
        self.inner.write(batch, durability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    fn store(settings: FaultSettings) -> (Arc<MemStore>, Arc<StorageFaults>, FaultyStore) {
        let mem = Arc::new(MemStore::new());
        let faults = Arc::new(StorageFaults::new(7));
        faults.set(settings);
        let store = FaultyStore::new(mem.clone(), faults.clone());
        (mem, faults, store)
    }

    fn batch(key: &[u8], value: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        batch
    }

    #[test]
    fn without_faults_it_is_the_inner_store() {
        let (mem, faults, store) = store(FaultSettings::default());
        store.write(batch(b"a", b"1"), Durability::Sync).unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(mem.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10).unwrap().len(), 1);
        assert_eq!(faults.injected(), InjectedFaults::default());
        assert_eq!(faults.take_delay(), Duration::ZERO);
    }

    #[test]
    fn write_eio_refuses_the_batch_without_applying_it_and_heals() {
        let (mem, faults, store) =
            store(FaultSettings { write_eio_per_million: PER_MILLION, ..FaultSettings::default() });
        let error = store.write(batch(b"a", b"1"), Durability::Buffered).unwrap_err();
        assert!(matches!(error, StorageError::Io(ref m) if m.contains("write")), "{error}");
        assert_eq!(mem.get(b"a").unwrap(), None);
        assert_eq!(faults.injected().write_eio, 1);
        faults.clear();
        store.write(batch(b"a", b"1"), Durability::Sync).unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn sync_eio_poisons_writes_until_a_new_store_is_opened_and_reads_continue() {
        let (mem, faults, store) =
            store(FaultSettings { sync_eio_per_million: PER_MILLION, ..FaultSettings::default() });
        // Buffered writes do not sync, so they pass.
        store.write(batch(b"a", b"1"), Durability::Buffered).unwrap();
        let error = store.write(batch(b"b", b"2"), Durability::Sync).unwrap_err();
        assert!(matches!(error, StorageError::Io(ref m) if m.contains("sync")), "{error}");
        assert!(store.is_poisoned());
        assert_eq!(mem.get(b"b").unwrap(), None);
        faults.clear();
        assert_eq!(store.write(batch(b"c", b"3"), Durability::Sync), Err(StorageError::Poisoned));
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        // The node restarting opens a new store over the same disk.
        let reopened = FaultyStore::new(mem.clone(), faults.clone());
        reopened.write(batch(b"c", b"3"), Durability::Sync).unwrap();
        assert_eq!(faults.injected().sync_eio, 1);
    }

    #[test]
    fn corruption_flips_a_byte_under_the_prefix_only_and_the_item_crc_catches_it() {
        use crate::model::codec::{decode_item, encode_item};
        use crate::model::value::{AttributeValue, Item};
        let mut item = Item::new();
        item.insert("pk".to_string(), AttributeValue::S("k1".to_string()));
        item.insert("n".to_string(), AttributeValue::S("some payload".to_string()));
        let encoded = encode_item(&item);
        let (mem, faults, store) = store(FaultSettings {
            read_corrupt_per_million: PER_MILLION,
            corrupt_key_prefix: vec![1],
            ..FaultSettings::default()
        });
        mem.write(batch(b"\x01item", &encoded), Durability::Sync).unwrap();
        mem.write(batch(b"\x00meta", b"catalog"), Durability::Sync).unwrap();
        for _ in 0..50 {
            let read = store.get(b"\x01item").unwrap().unwrap();
            assert_eq!(read.len(), encoded.len());
            assert_eq!(read.iter().zip(&encoded).filter(|(a, b)| a != b).count(), 1, "exactly one byte flipped");
            assert!(decode_item(&read).is_err(), "a flipped byte must fail the item checksum");
        }
        assert_eq!(store.get(b"\x00meta").unwrap(), Some(b"catalog".to_vec()), "outside the prefix");
        let scanned = store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10).unwrap();
        assert_eq!(scanned[0].1, b"catalog");
        assert_ne!(scanned[1].1, encoded);
        assert_eq!(faults.injected().read_corrupt, 51);
        assert_eq!(mem.get(b"\x01item").unwrap(), Some(encoded), "the stored bytes are untouched");
    }

    #[test]
    fn rot_damages_stored_values_under_the_prefix_for_good_until_rewritten() {
        let (mem, faults, store) = store(FaultSettings {
            write_rot_per_million: PER_MILLION,
            corrupt_key_prefix: vec![1],
            ..FaultSettings::default()
        });
        let mut both = batch(b"\x01item", b"payload");
        both.put(b"\x00meta".to_vec(), b"catalog".to_vec());
        store.write(both, Durability::Sync).unwrap();
        faults.clear();
        let stored = mem.get(b"\x01item").unwrap().unwrap();
        assert_eq!(stored.iter().zip(b"payload").filter(|(a, b)| a != b).count(), 1, "one byte flipped on disk");
        for _ in 0..3 {
            assert_eq!(store.get(b"\x01item").unwrap(), Some(stored.clone()), "every read sees the damage");
        }
        assert_eq!(mem.get(b"\x00meta").unwrap(), Some(b"catalog".to_vec()), "outside the prefix");
        assert_eq!(faults.injected().write_rot, 1);
        store.write(batch(b"\x01item", b"payload"), Durability::Sync).unwrap();
        assert_eq!(store.get(b"\x01item").unwrap(), Some(b"payload".to_vec()), "a new write mends it");
    }

    #[test]
    fn slow_operations_run_up_a_delay_the_caller_takes_once() {
        let (_, faults, store) =
            store(FaultSettings { slow_per_million: PER_MILLION, slow_delay_us: 2_500, ..FaultSettings::default() });
        store.write(batch(b"a", b"1"), Durability::Sync).unwrap();
        store.get(b"a").unwrap();
        store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10).unwrap();
        assert_eq!(faults.take_delay(), Duration::from_micros(7_500));
        assert_eq!(faults.take_delay(), Duration::ZERO);
        assert_eq!(faults.injected().slow, 3);
    }

    #[test]
    fn a_full_disk_refuses_writes_with_a_clear_error_and_serves_reads() {
        let (mem, faults, store) = store(FaultSettings::default());
        store.write(batch(b"a", b"1"), Durability::Sync).unwrap();
        faults.set(FaultSettings { full: true, ..FaultSettings::default() });
        let error = store.write(batch(b"b", b"2"), Durability::Sync).unwrap_err();
        assert_eq!(error, StorageError::Full);
        assert_eq!(error.to_string(), "storage full");
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(mem.get(b"b").unwrap(), None);
        faults.clear();
        store.write(batch(b"b", b"2"), Durability::Sync).unwrap();
        assert!(!store.is_poisoned(), "a full disk is not fatal");
    }

    #[test]
    fn partial_probabilities_repeat_per_seed() {
        let draws = |seed| {
            let faults = Arc::new(StorageFaults::new(seed));
            faults.set(FaultSettings { write_eio_per_million: PER_MILLION / 3, ..FaultSettings::default() });
            let store = FaultyStore::new(Arc::new(MemStore::new()), faults);
            (0..200).map(|i| store.write(batch(&[i as u8], b"v"), Durability::Buffered).is_ok()).collect::<Vec<_>>()
        };
        let a = draws(1);
        assert_eq!(a, draws(1));
        assert_ne!(a, draws(2));
        let failed = a.iter().filter(|ok| !**ok).count();
        assert!((40..100).contains(&failed), "about a third of 200 writes fail, got {failed}");
    }
}
