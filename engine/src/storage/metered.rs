//! `MeteredStore`: a `KvStore` wrapper that records the storage work it passes through into the
//! calling thread's work meter (`crate::resources`), so a resource model can turn it into time.
//! It changes nothing about what the store does or answers.

use std::ops::Bound;
use std::sync::Arc;

use super::{Direction, Durability, KvPair, KvStore, StorageError, WriteBatch, WriteOp};
use crate::resources::{record_work, Work};

/// Records the work done through `inner`.
pub struct MeteredStore {
    inner: Arc<dyn KvStore>,
}

impl MeteredStore {
    /// Meters `inner`.
    pub fn new(inner: Arc<dyn KvStore>) -> MeteredStore {
        MeteredStore { inner }
    }
}

/// Bytes of keys and values a batch writes.
pub fn batch_bytes(batch: &WriteBatch) -> u64 {
    batch
        .ops
        .iter()
        .map(|op| match op {
            WriteOp::Put { key, value } => key.len() + value.len(),
            WriteOp::Delete { key } => key.len(),
            WriteOp::DeleteRange { start, end } => start.len() + end.len(),
        } as u64)
        .sum()
}

impl KvStore for MeteredStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self.inner.get(key)?;
        let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
        record_work(Work { reads: 1, read_bytes: bytes as u64, ..Work::default() });
        Ok(value)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError> {
        let pairs = self.inner.scan(lower, upper, direction, limit)?;
        let bytes: usize = pairs.iter().map(|(key, value)| key.len() + value.len()).sum();
        record_work(Work { reads: 1, read_bytes: bytes as u64, ..Work::default() });
        Ok(pairs)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        let work = Work {
            writes: u64::from(!batch.is_empty()),
            write_bytes: batch_bytes(&batch),
            syncs: u64::from(durability == Durability::Sync),
            ..Work::default()
        };
        self.inner.write(batch, durability)?;
        record_work(work);
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()?;
        record_work(Work { syncs: 1, ..Work::default() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::take_work;
    use crate::storage::MemStore;

    #[test]
    fn work_is_recorded_as_it_passes() {
        let store = MeteredStore::new(Arc::new(MemStore::new()));
        take_work();
        let mut batch = WriteBatch::new();
        batch.put(b"ab".to_vec(), b"xyz".to_vec());
        batch.delete(b"c".to_vec());
        store.write(batch, Durability::Sync).unwrap();
        let mut buffered = WriteBatch::new();
        buffered.put(b"d".to_vec(), b"1".to_vec());
        store.write(buffered, Durability::Buffered).unwrap();
        store.sync().unwrap();
        assert_eq!(store.get(b"ab").unwrap().as_deref(), Some(&b"xyz"[..]));
        assert_eq!(store.get(b"zz").unwrap(), None);
        let pairs = store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            take_work(),
            Work { reads: 3, read_bytes: 5 + 2 + (5 + 2), writes: 2, write_bytes: 6 + 2, syncs: 2 }
        );
    }

    #[test]
    fn failed_writes_cost_no_recorded_work() {
        let inner = Arc::new(MemStore::new());
        let faults = Arc::new(crate::storage::StorageFaults::new(1));
        faults.set(crate::storage::FaultSettings { full: true, ..Default::default() });
        let store = MeteredStore::new(Arc::new(crate::storage::FaultyStore::new(inner, faults)));
        take_work();
        let mut batch = WriteBatch::new();
        batch.put(b"k".to_vec(), b"v".to_vec());
        assert!(store.write(batch, Durability::Sync).is_err());
        assert!(take_work().is_empty());
    }
}
