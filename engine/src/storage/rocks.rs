//! `RocksStore`: the SSD engine, a `KvStore` over RocksDB.
//!
//! Durability comes from RocksDB's write-ahead log, which is always on. A `Durability::Sync`
//! write is appended to the WAL and fsynced before `write` returns; a `Durability::Buffered`
//! write is appended (so it survives a process crash) but not fsynced (so a power failure may
//! lose it, together with every later write, never a batch without the batches before it).
//! Closing the store (dropping it) flushes nothing extra: recovery replays the WAL.
//!
//! A failed `Sync` write poisons the store: after a failed fsync the kernel may have dropped the
//! dirty pages and a retry could report success for data that is not on the disk, so the only
//! safe reaction is to stop writing and let the node recover from its replicas.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, DBCompactionStyle, DBCompressionType, DBRecoveryMode, ErrorKind, Options, ReadOptions,
    WriteOptions, DB,
};

use super::{Direction, Durability, KvPair, KvStore, StorageError, WriteBatch, WriteOp};

/// Block cache size: uncompressed data, index and filter blocks of hot SST files stay in memory,
/// so a working set that fits is served without touching the SSD.
pub const BLOCK_CACHE_BYTES_DEFAULT: usize = 256 << 20;

/// Memtable size: writes are absorbed in memory up to this size before a flush to an SST file.
/// Larger means fewer, larger level-0 files and less write amplification, at the cost of memory
/// and of WAL replay time after a crash.
pub const WRITE_BUFFER_BYTES_DEFAULT: usize = 64 << 20;

/// Memtables allowed at once (one active, the rest waiting for flush): absorbs a write burst
/// while a flush is running instead of stalling writers.
const WRITE_BUFFERS_MAX: i32 = 4;

/// Bloom filter bits per key: about 1% false positives, so a point read (GetItem) of an absent
/// key reads almost no data block of files that cannot hold it.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Data block size. Items are typically hundreds of bytes to a few KiB; 16 KiB blocks make the
/// index and the block cache's per-block overhead four times smaller than the 4 KiB default,
/// while one random read of 16 KiB costs an SSD little more than 4 KiB.
const BLOCK_BYTES: usize = 16 << 10;

/// Background flush and compaction jobs. The target machines have few cores that also serve
/// requests; two jobs let one flush and one compaction run at once.
const BACKGROUND_JOBS: i32 = 2;

/// Incremental sync of SST files while they are written: spreads the writeback of a flush or
/// compaction over time so it does not stall the WAL fsyncs of foreground writes.
const SST_BYTES_PER_SYNC: u64 = 1 << 20;

/// Opens tried when RocksDB's shared timer refuses to schedule the new store's periodic tasks.
const OPEN_ATTEMPTS_MAX: u32 = 100;

/// Real time between those tries.
const OPEN_RETRY_PAUSE_US: u64 = 500;

/// Whether an open failed only because RocksDB's process-wide timer thread refused the store's
/// periodic tasks. The timer, shared by every store of the process, refuses a task whose start
/// (read from the opening thread's clock) comes before the next run of the task it is executing
/// (read from its own). With one clock that is a rare race; in simulation the opening thread
/// reads simulated time and the timer real time, so every open that coincides with a timer task
/// is refused. The refusal says nothing about the store, and another try moments later (in real
/// time, which a simulation does not see) succeeds, so a node's start does not depend on what a
/// background thread happened to be doing.
fn is_timer_refusal(kind: ErrorKind, message: &str) -> bool {
    kind == ErrorKind::Aborted && message.contains("periodic task")
}

/// Settings of one store; `RocksConfig::default()` suits a storage node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RocksConfig {
    /// Block cache capacity in bytes.
    pub block_cache_bytes: usize,
    /// Memtable size in bytes (small values force flushes and compactions in tests).
    pub write_buffer_bytes: usize,
}

impl Default for RocksConfig {
    fn default() -> RocksConfig {
        RocksConfig { block_cache_bytes: BLOCK_CACHE_BYTES_DEFAULT, write_buffer_bytes: WRITE_BUFFER_BYTES_DEFAULT }
    }
}

impl RocksConfig {
    fn options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(self.block_cache_bytes));
        table.set_block_size(BLOCK_BYTES);
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
        // Index and filter blocks live in the block cache, so memory stays bounded by its
        // capacity however much data the store holds; level-0 ones are pinned because every
        // read consults every level-0 file.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(self.write_buffer_bytes);
        opts.set_max_write_buffer_number(WRITE_BUFFERS_MAX);
        // Leveled compaction bounds space amplification (~1.1x) and read amplification, which
        // matters more for an OLTP store than the lower write amplification of universal
        // compaction. Dynamic level sizes keep that bound from the first byte.
        opts.set_compaction_style(DBCompactionStyle::Level);
        opts.set_level_compaction_dynamic_level_bytes(true);
        // LZ4 is cheap enough in CPU to use at every level (the only codec built in).
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_bottommost_compression_type(DBCompressionType::Lz4);
        opts.set_max_background_jobs(BACKGROUND_JOBS);
        opts.set_bytes_per_sync(SST_BYTES_PER_SYNC);
        // After a power failure the WAL tail may be torn. Point-in-time recovery replays up to
        // the first bad record and stops, which keeps a prefix of the batches (each batch whole
        // or absent); stricter modes would refuse to open at all.
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        opts.set_paranoid_checks(true);
        opts
    }
}

/// An ordered store on disk, backed by RocksDB.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    poisoned: AtomicBool,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .field("poisoned", &self.poisoned.load(Ordering::Relaxed))
            .finish()
    }
}

impl RocksStore {
    /// Opens the store at `path` with the default settings, creating it if missing, and
    /// replays its write-ahead log.
    pub fn open(path: &Path) -> Result<RocksStore, StorageError> {
        RocksStore::open_with(path, &RocksConfig::default())
    }

    /// Opens the store at `path` with the given settings, creating it if missing.
    pub fn open_with(path: &Path, config: &RocksConfig) -> Result<RocksStore, StorageError> {
        let options = config.options();
        let mut attempt = 1;
        loop {
            match DB::open(&options, path) {
                Ok(db) => return Ok(RocksStore { db, path: path.to_path_buf(), poisoned: AtomicBool::new(false) }),
                Err(e) if is_timer_refusal(e.kind(), e.as_ref()) && attempt < OPEN_ATTEMPTS_MAX => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_micros(OPEN_RETRY_PAUSE_US));
                }
                Err(e) => return Err(map_error(e)),
            }
        }
    }

    /// The directory holding the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True after a failed `Sync` write: every later write returns `StorageError::Poisoned`.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn write_inner(&self, batch: WriteBatch, durability: Durability) -> Result<(), rocksdb::Error> {
        let sync = durability == Durability::Sync;
        if batch.is_empty() {
            // Nothing to append: a sync request still has to fsync the WAL so that earlier
            // buffered writes become durable.
            return if sync { self.db.flush_wal(true) } else { Ok(()) };
        }
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                WriteOp::Put { key, value } => rocks_batch.put(key, value),
                WriteOp::Delete { key } => rocks_batch.delete(key),
                // An empty or inverted range deletes nothing; RocksDB would reject an inverted
                // one, so it is left out rather than failing the whole batch.
                WriteOp::DeleteRange { start, end } => {
                    if start < end {
                        rocks_batch.delete_range(start, end);
                    }
                }
            }
        }
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(sync);
        self.db.write_opt(rocks_batch, &write_opts)
    }
}

/// Maps a RocksDB error onto the storage error kinds. Kinds with no counterpart (invalid
/// argument, busy, shutdown, ...) become `Io` with RocksDB's message, which names the kind.
fn map_error(error: rocksdb::Error) -> StorageError {
    let kind = error.kind();
    let message = error.into_string();
    if message.contains("No space left") {
        return StorageError::Full;
    }
    match kind {
        ErrorKind::Corruption => StorageError::Corruption(message),
        _ => StorageError::Io(message),
    }
}

/// The bytewise successor of `key`: the smallest key greater than it.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Turns any pair of bounds into an inclusive lower and an exclusive upper bound (`None` for
/// unbounded), the form RocksDB's iterate bounds take.
fn half_open(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let lower = match lower {
        Bound::Included(key) => Some(key.to_vec()),
        Bound::Excluded(key) => Some(successor(key)),
        Bound::Unbounded => None,
    };
    let upper = match upper {
        Bound::Included(key) => Some(successor(key)),
        Bound::Excluded(key) => Some(key.to_vec()),
        Bound::Unbounded => None,
    };
    (lower, upper)
}

impl KvStore for RocksStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get(key).map_err(map_error)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError> {
        let (lower, upper) = half_open(lower, upper);
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let (Some(l), Some(u)) = (&lower, &upper) {
            if l >= u {
                return Ok(Vec::new());
            }
        }
        let below_upper = |key: &[u8]| upper.as_deref().is_none_or(|u| key < u);
        let above_lower = |key: &[u8]| lower.as_deref().is_none_or(|l| key >= l);

        // The iterate bounds let RocksDB skip files and tombstones outside the range; the
        // checks in the loop below make the result independent of how exactly it honours them.
        let mut read_opts = ReadOptions::default();
        if let Some(l) = &lower {
            read_opts.set_iterate_lower_bound(l.clone());
        }
        if let Some(u) = &upper {
            read_opts.set_iterate_upper_bound(u.clone());
        }
        let mut iter = self.db.raw_iterator_opt(read_opts);
        match (direction, &lower, &upper) {
            (Direction::Forward, Some(l), _) => iter.seek(l),
            (Direction::Forward, None, _) => iter.seek_to_first(),
            (Direction::Reverse, _, Some(u)) => iter.seek_for_prev(u),
            (Direction::Reverse, _, None) => iter.seek_to_last(),
        }

        let mut pairs = Vec::with_capacity(limit.min(1024));
        while pairs.len() < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            match direction {
                Direction::Forward => {
                    if !below_upper(key) {
                        break;
                    }
                    if above_lower(key) {
                        pairs.push((key.to_vec(), value.to_vec()));
                    }
                    iter.next();
                }
                Direction::Reverse => {
                    if !above_lower(key) {
                        break;
                    }
                    if below_upper(key) {
                        pairs.push((key.to_vec(), value.to_vec()));
                    }
                    iter.prev();
                }
            }
        }
        iter.status().map_err(map_error)?;
        Ok(pairs)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        self.write_inner(batch, durability).map_err(|error| {
            if durability == Durability::Sync {
                self.poisoned.store(true, Ordering::Release);
            }
            map_error(error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{assert_matches_model, model_apply, Model, Rng};

    /// Small enough that a few hundred writes flush memtables and trigger compactions.
    fn small_config() -> RocksConfig {
        RocksConfig { block_cache_bytes: 4 << 20, write_buffer_bytes: 32 << 10 }
    }

    #[test]
    fn half_open_bounds() {
        use Bound::{Excluded, Included, Unbounded};
        assert_eq!(half_open(Unbounded, Unbounded), (None, None));
        assert_eq!(half_open(Included(b"a"), Excluded(b"b")), (Some(b"a".to_vec()), Some(b"b".to_vec())));
        assert_eq!(half_open(Excluded(b"a"), Included(b"b")), (Some(b"a\x00".to_vec()), Some(b"b\x00".to_vec())));
        assert_eq!(half_open(Excluded(b""), Unbounded), (Some(vec![0]), None));
    }

    /// Write, close, reopen and verify, many times; data ends up in the WAL, in memtables
    /// flushed to SST files and in compacted files, with range deletions across all of them.
    #[test]
    fn reopen_keeps_every_write() {
        const SEED: u64 = 0x5EED_0003;
        const CYCLES: usize = 40;
        const BATCHES_PER_CYCLE: usize = 60;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(SEED);
        let mut model = Model::new();
        for cycle in 0..CYCLES {
            let store = RocksStore::open_with(dir.path(), &small_config()).expect("reopen");
            assert_matches_model(&store, &model);
            for i in 0..BATCHES_PER_CYCLE {
                let mut batch = rng.batch();
                // Some larger values and wider keys so that flushes actually happen.
                batch.put(format!("cycle{cycle:03}/{i:03}"), vec![cycle as u8; 1000]);
                if rng.chance(2) {
                    batch.delete_range(format!("cycle{:03}", rng.below(40)), "cycle999");
                }
                let durability = if rng.chance(50) { Durability::Sync } else { Durability::Buffered };
                model_apply(&mut model, &batch);
                store.write(batch, durability).expect("write");
            }
            assert_matches_model(&store, &model);
        }
        let store = RocksStore::open_with(dir.path(), &small_config()).expect("reopen");
        assert_matches_model(&store, &model);
    }

    #[test]
    fn buffered_writes_survive_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path()).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(b"k", b"v");
            store.write(batch, Durability::Buffered).unwrap();
        }
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_poisoned_store_refuses_writes_but_serves_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        store.write(batch.clone(), Durability::Sync).unwrap();
        assert!(!store.is_poisoned());
        // No portable way to make fsync fail here; set the flag as a failed sync would.
        store.poisoned.store(true, Ordering::Release);
        assert_eq!(store.write(batch.clone(), Durability::Sync), Err(StorageError::Poisoned));
        assert_eq!(store.write(batch, Durability::Buffered), Err(StorageError::Poisoned));
        assert_eq!(store.sync(), Err(StorageError::Poisoned));
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn opening_an_open_store_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let _store = RocksStore::open(dir.path()).unwrap();
        match RocksStore::open(dir.path()) {
            Err(StorageError::Io(message)) => assert!(message.contains("lock"), "{message}"),
            other => panic!("expected an i/o error for a locked store, got {other:?}"),
        }
    }

    #[test]
    fn opening_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(RocksStore::open(&file), Err(StorageError::Io(_))));
    }

    /// Flipped bytes in an SST file are caught by block checksums and reported as corruption,
    /// never returned as data.
    #[test]
    fn corrupted_sst_is_reported_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open_with(dir.path(), &small_config()).unwrap();
            let mut batch = WriteBatch::new();
            for i in 0u32..2000 {
                batch.put(i.to_be_bytes(), [i as u8; 100]);
            }
            store.write(batch, Durability::Sync).unwrap();
            store.db.flush().unwrap();
        }
        let mut sst_files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
            .collect();
        sst_files.sort();
        assert!(!sst_files.is_empty(), "flush wrote no SST file");
        for path in &sst_files {
            let mut bytes = std::fs::read(path).unwrap();
            // Damage the data blocks at the start, not the footer, so the file still opens.
            for byte in bytes.iter_mut().skip(100).take(64) {
                *byte ^= 0x5A;
            }
            std::fs::write(path, bytes).unwrap();
        }
        let result = RocksStore::open_with(dir.path(), &small_config())
            .and_then(|store| store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, usize::MAX));
        match result {
            Err(StorageError::Corruption(_)) => {}
            other => panic!("expected corruption, got {:?}", other.map(|pairs| pairs.len())),
        }
    }

    #[test]
    fn only_the_timers_refusal_is_retried() {
        let refusal = "Operation aborted: Failed to register periodic task";
        assert!(is_timer_refusal(ErrorKind::Aborted, refusal));
        assert!(!is_timer_refusal(ErrorKind::Aborted, "Operation aborted: something else"));
        assert!(!is_timer_refusal(ErrorKind::IOError, "IO error: While lock file: LOCK: periodic task"));
    }

    /// Prints write rates on this machine; run with `--ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_write_rates() {
        const WRITES: u32 = 2000;
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        for durability in [Durability::Sync, Durability::Buffered] {
            let start = std::time::Instant::now();
            for i in 0..WRITES {
                let mut batch = WriteBatch::new();
                batch.put(format!("{durability:?}/{i:08}"), [7u8; 200]);
                store.write(batch, durability).unwrap();
            }
            let elapsed = start.elapsed();
            let rate = f64::from(WRITES) / elapsed.as_secs_f64();
            println!("{durability:?}: {WRITES} one-put batches in {elapsed:?} = {rate:.0}/s");
        }
    }
}
