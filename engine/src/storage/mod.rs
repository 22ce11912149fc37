//! The storage seam: an ordered key-value store with atomic write batches and an explicit
//! durability flag. `RocksStore` is the SSD engine; `MemStore` is deterministic and models
//! writes that were never synced being lost on power failure.

use std::ops::Bound;

pub mod faulty;
pub mod mem;
pub mod metered;
pub mod rocks;

#[cfg(test)]
mod conformance;

pub use faulty::{FaultSettings, FaultyStore, StorageFaults};
pub use mem::MemStore;
pub use metered::MeteredStore;
pub use rocks::{RocksConfig, RocksStore};

/// A storage failure. A failed sync is fatal: the store refuses further writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The device reported an I/O error.
    #[error("storage i/o error: {0}")]
    Io(String),
    /// Stored bytes failed a checksum or could not be decoded.
    #[error("storage corruption: {0}")]
    Corruption(String),
    /// The device has no space left; reads still work.
    #[error("storage full")]
    Full,
    /// An earlier fatal error (a failed sync) poisoned the store.
    #[error("store is poisoned after an earlier fatal error")]
    Poisoned,
}

/// Whether a write must be on stable storage before `write` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced (fsync) before returning: survives power loss. Also makes every earlier buffered
    /// write durable, as a write-ahead-log sync does.
    Sync,
    /// Visible at once but may be lost on power failure until a later `Sync` write.
    Buffered,
}

/// Scan direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Reverse,
}

/// One operation in a write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` (no error if absent).
    Delete { key: Vec<u8> },
    /// Remove every key in `[start, end)`.
    DeleteRange { start: Vec<u8>, end: Vec<u8> },
}

/// An atomic group of writes: after a crash either all of it is visible or none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The operations, applied in order.
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put { key: key.into(), value: value.into() });
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete { key: key.into() });
    }

    /// Adds a range delete of `[start, end)`.
    pub fn delete_range(&mut self, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::DeleteRange { start: start.into(), end: end.into() });
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A key and its value, as returned by scans.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// An ordered key-value store.
///
/// Contract: `write` applies a batch atomically; a `Sync` write is durable when it returns;
/// reads see every write that returned; scans return keys in `direction` order within the
/// bounds, at most `limit` pairs. Errors are never silently dropped: after `StorageError::Io`
/// on a sync the store is poisoned and every later write returns `Poisoned`.
pub trait KvStore: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Reads up to `limit` pairs with keys inside the bounds, in `direction` order.
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError>;

    /// Applies a batch atomically with the given durability.
    ///
    /// An empty batch written with `Durability::Sync` writes nothing but still syncs: every
    /// earlier `Buffered` write is durable when it returns.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError>;

    /// Makes every earlier `Buffered` write durable, as a `Sync` write would.
    ///
    /// This exists for group commit: a caller that applies many batches with `Buffered` (the
    /// entries of one raft `Ready`, or writes of many partitions) pays for one fsync at the point
    /// where durability is needed, and says so by name rather than by writing an empty batch.
    /// The default writes an empty `Sync` batch, which every store must treat as a sync.
    fn sync(&self) -> Result<(), StorageError> {
        self.write(WriteBatch::new(), Durability::Sync)
    }
}
