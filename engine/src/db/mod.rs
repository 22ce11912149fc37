//! The single-node database: the table catalog kept in a `KvStore`, per-partition-key write
//! locks, and the item write path that keeps secondary indexes in step with their table in the
//! same atomic, synced write batch.

pub mod keys;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::api::ApiError;
use crate::capacity;
use crate::catalog::{IndexKind, IndexMeta, SizeStats, TableMeta};
use crate::model::{decode_item, encode_item, item_size_bytes, AttributeValue, Item};
use crate::storage::{Direction, Durability, KvStore, StorageError, WriteBatch};

/// Number of lock stripes serialising writes per partition key. Writes to keys in different
/// stripes proceed in parallel; more stripes mean fewer false conflicts.
pub const WRITE_LOCK_STRIPES: usize = 1024;
/// Entries read from the store per scan call while walking a range.
pub const SCAN_CHUNK_ENTRIES: usize = 256;
/// Largest item collection (items and local index entries sharing a partition key) of a table
/// with local secondary indexes: 10 GB, as in DynamoDB.
pub const ITEM_COLLECTION_BYTES_MAX: u64 = 10 * 1024 * 1024 * 1024;

/// A table as the operations see it: its metadata and live size counters.
pub struct Table {
    /// The catalog entry.
    pub meta: TableMeta,
    stats: Arc<Mutex<BTreeMap<u16, SizeStats>>>,
}

impl Table {
    /// Item count and bytes of the table (index id 0) or of an index.
    pub fn stats(&self, index_id: u16) -> SizeStats {
        lock(&self.stats).get(&index_id).copied().unwrap_or_default()
    }

    /// DynamoDB's `TableDescription` with live counters.
    pub fn describe(&self, status: &str) -> serde_json::Value {
        self.meta.describe(status, &|id| self.stats(id))
    }

    fn adjust_stats(&self, index_id: u16, old_bytes: Option<u64>, new_bytes: Option<u64>) {
        let mut stats = lock(&self.stats);
        let entry = stats.entry(index_id).or_default();
        entry.item_count += i64::from(new_bytes.is_some()) - i64::from(old_bytes.is_some());
        entry.size_bytes += new_bytes.unwrap_or(0) as i64 - old_bytes.unwrap_or(0) as i64;
    }
}

/// Write capacity consumed by the index entries of one item change, per index name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IndexWriteUnits {
    /// Units per local index.
    pub local: BTreeMap<String, f64>,
    /// Units per global index.
    pub global: BTreeMap<String, f64>,
}

/// One item change for [`Database::write_items`]: `old` is the current item (read under the
/// partition lock), `new` the replacement, `None` for a delete.
pub struct ItemChange<'a> {
    /// The table.
    pub table: &'a Table,
    /// The item before.
    pub old: Option<&'a Item>,
    /// The item after.
    pub new: Option<&'a Item>,
}

/// Size change of one table or index: (index id, old bytes, new bytes).
type StatChange = (u16, Option<u64>, Option<u64>);

/// What appending one item change to a batch implies beyond the batch itself.
struct PreparedChange {
    units: IndexWriteUnits,
    stats: Vec<StatChange>,
    /// Item-collection counter key and byte delta (tables with local indexes).
    collection: Option<(Vec<u8>, i64)>,
}

/// Appends one item change and its index entries to `batch`.
fn prepare_item_change(change: &ItemChange<'_>, batch: &mut WriteBatch) -> PreparedChange {
    let ItemChange { table, old, new } = *change;
    let meta = &table.meta;
    let key_source = new.or(old).expect("an item change needs an old or a new item");
    let base_key = keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, key_source);
    match new {
        Some(item) => batch.put(base_key, encode_item(item)),
        None => batch.delete(base_key),
    }
    let mut units = IndexWriteUnits::default();
    let old_size = old.map(|i| item_size_bytes(i) as u64);
    let new_size = new.map(|i| item_size_bytes(i) as u64);
    let mut stat_changes = vec![(keys::TABLE_INDEX_ID, old_size, new_size)];
    let mut collection_delta: i64 = new_size.unwrap_or(0) as i64 - old_size.unwrap_or(0) as i64;
    for index in &meta.indexes {
        let entry_of = |item: Option<&Item>| {
            item.filter(|i| index.key_schema.key_of(i).is_some()).map(|i| {
                (
                    keys::entry_key(meta.id, index.id, &index.key_schema, Some(&meta.key_schema), i),
                    index.project(&meta.key_schema, i),
                )
            })
        };
        let old_entry = entry_of(old);
        let new_entry = entry_of(new);
        let mut index_units = 0.0;
        match (&old_entry, &new_entry) {
            (Some((old_key, old_value)), Some((new_key, new_value))) => {
                if old_key != new_key {
                    batch.delete(old_key.clone());
                    index_units += capacity::write_units_for_item(item_size_bytes(old_value) as u64);
                }
                if old_key != new_key || old_value != new_value {
                    batch.put(new_key.clone(), encode_item(new_value));
                    index_units += capacity::write_units_for_item(item_size_bytes(new_value) as u64);
                }
            }
            (Some((old_key, old_value)), None) => {
                batch.delete(old_key.clone());
                index_units += capacity::write_units_for_item(item_size_bytes(old_value) as u64);
            }
            (None, Some((new_key, new_value))) => {
                batch.put(new_key.clone(), encode_item(new_value));
                index_units += capacity::write_units_for_item(item_size_bytes(new_value) as u64);
            }
            (None, None) => {}
        }
        let old_bytes = old_entry.as_ref().map(|(_, v)| item_size_bytes(v) as u64);
        let new_bytes = new_entry.as_ref().map(|(_, v)| item_size_bytes(v) as u64);
        stat_changes.push((index.id, old_bytes, new_bytes));
        if index.kind == IndexKind::Local {
            collection_delta += new_bytes.unwrap_or(0) as i64 - old_bytes.unwrap_or(0) as i64;
            units.local.insert(index.name.clone(), index_units);
        } else {
            units.global.insert(index.name.clone(), index_units);
        }
    }
    let collection = meta.has_local_index().then(|| {
        let partition = &key_source[&meta.key_schema.partition.name];
        (keys::collection_key(meta.id, partition), collection_delta)
    });
    PreparedChange { units, stats: stat_changes, collection }
}

/// The database over one store.
pub struct Database {
    store: Arc<dyn KvStore>,
    tables: RwLock<BTreeMap<String, Arc<Table>>>,
    ddl: Mutex<()>,
    stripes: Vec<Mutex<()>>,
}

/// A record to write with a batch of items: its key, and its new value or `None` to delete it.
pub type RecordChange = (Vec<u8>, Option<Vec<u8>>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves only counters behind, never half a write
    // (writes are single atomic batches), so a poisoned lock is safe to reuse.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> ApiError {
    crate::scope::note_storage_failure();
    ApiError::Internal(format!("corrupt {what}: {error}"))
}

impl Database {
    /// Opens the database over `store`, loading the catalog and counting each table's items.
    pub fn open(store: Arc<dyn KvStore>) -> Result<Database, StorageError> {
        let db = Database {
            store,
            tables: RwLock::new(BTreeMap::new()),
            ddl: Mutex::new(()),
            stripes: (0..WRITE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        };
        db.reload_catalog()?;
        Ok(db)
    }

    /// Loads the catalog from the store again, replacing the one in memory (a replica installed
    /// a snapshot of it): tables that changed are counted again, tables that are gone dropped
    /// with their data. A table whose global indexes changed on the way (the snapshot covers an
    /// UpdateTable this node never applied) gets what applying it would have done: new indexes
    /// backfilled from its items, dropped indexes' entries removed. When the store holds a
    /// catalog follow-up record ([`Database::catalog_follow_up_record`]), the changes are those
    /// from the catalog it records, which the data matches, so a node that stopped between
    /// installing a metadata snapshot and following it does so when it opens again.
    pub fn reload_catalog(&self) -> Result<(), StorageError> {
        let _ddl = lock(&self.ddl);
        // No write may land between a backfill and the switch to the new metadata.
        let _writes: Vec<MutexGuard<'_, ()>> = self.stripes.iter().map(lock).collect();
        // What the stored data matches: the catalog recorded when a snapshot replaced it (the
        // node may have stopped before following it), else the catalog in memory.
        let follow_up = self.store.get(keys::CATALOG_FOLLOW_UP_KEY)?;
        let previous: Vec<TableMeta> = match &follow_up {
            Some(value) => serde_json::from_slice(value)
                .map_err(|e| StorageError::Corruption(format!("catalog follow-up record: {e}")))?,
            None => self.tables.read().unwrap_or_else(|p| p.into_inner()).values().map(|t| t.meta.clone()).collect(),
        };
        let end = keys::prefix_successor(keys::CATALOG_PREFIX).expect("catalog prefix has a successor");
        let mut entries = Vec::new();
        self.for_each_in_range(keys::CATALOG_PREFIX, &end, |_, value| {
            entries.push(value.to_vec());
            true
        })?;
        let mut loaded = BTreeMap::new();
        for value in entries {
            let meta: TableMeta =
                serde_json::from_slice(&value).map_err(|e| StorageError::Corruption(format!("catalog entry: {e}")))?;
            let cached = self.tables.read().unwrap_or_else(|p| p.into_inner()).get(&meta.name).cloned();
            let table = match (previous.iter().find(|old| old.name == meta.name), cached) {
                (Some(old), Some(table)) if *old == meta && table.meta == meta => table,
                (Some(old), _) if old.id == meta.id && *old != meta => {
                    self.change_indexes(old, &meta).map_err(|e| StorageError::Io(e.to_string()))?;
                    let stats = self.count_table(&meta)?;
                    Arc::new(Table { meta, stats: Arc::new(Mutex::new(stats)) })
                }
                _ => {
                    let stats = self.count_table(&meta)?;
                    Arc::new(Table { meta, stats: Arc::new(Mutex::new(stats)) })
                }
            };
            loaded.insert(table.meta.name.clone(), table);
        }
        let live: Vec<u64> = loaded.values().map(|t| t.meta.id).collect();
        for table_id in previous.iter().map(|t| t.id).filter(|id| !live.contains(id)) {
            let mut batch = WriteBatch::new();
            Self::delete_table_data(&mut batch, table_id);
            self.commit(batch, Durability::Buffered)?;
        }
        if follow_up.is_some() {
            // Buffered: were it lost, following the same record again changes nothing.
            let mut batch = WriteBatch::new();
            batch.delete(keys::CATALOG_FOLLOW_UP_KEY.to_vec());
            self.commit(batch, Durability::Buffered)?;
        }
        *self.tables.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// The record a metadata snapshot's installation writes with the new catalog records, in
    /// the same batch: the catalog in memory, which the stored data matches. If the node stops
    /// before [`Database::reload_catalog`] brings the data in line with the new catalog, the
    /// next open does it from this record.
    pub fn catalog_follow_up_record(&self) -> (Vec<u8>, Vec<u8>) {
        let existing: Vec<TableMeta> =
            self.tables.read().unwrap_or_else(|p| p.into_inner()).values().map(|t| t.meta.clone()).collect();
        let value = serde_json::to_vec(&existing).expect("table metadata serializes");
        (keys::CATALOG_FOLLOW_UP_KEY.to_vec(), value)
    }

    /// Adds to `batch` the deletion of every item, index entry, collection counter and client
    /// request token record of table `table_id`.
    fn delete_table_data(batch: &mut WriteBatch, table_id: u64) {
        let data = keys::table_prefix(table_id);
        batch.delete_range(data.clone(), keys::prefix_successor(&data).expect("table prefix has a successor"));
        for prefix in [keys::collection_table_prefix(table_id), keys::token_table_prefix(table_id)] {
            batch.delete_range(prefix.clone(), keys::prefix_successor(&prefix).expect("prefix has a successor"));
        }
    }

    /// Brings the stored index entries of a table from `old`'s global indexes to `new`'s:
    /// dropped indexes' entries removed, new ones backfilled from the table's items. Returns
    /// the sizes of the new indexes. The caller holds the DDL lock and every write lock.
    fn change_indexes(&self, old: &TableMeta, new: &TableMeta) -> Result<BTreeMap<u16, SizeStats>, ApiError> {
        let added: Vec<&IndexMeta> = new.indexes.iter().filter(|i| old.index(&i.name).is_none()).collect();
        let removed: Vec<&IndexMeta> = old.indexes.iter().filter(|i| new.index(&i.name).is_none()).collect();
        for index in &removed {
            let prefix = keys::index_prefix(new.id, index.id);
            let mut batch = WriteBatch::new();
            batch.delete_range(prefix.clone(), keys::prefix_successor(&prefix).expect("prefix has a successor"));
            self.commit(batch, Durability::Buffered)?;
        }
        let mut added_stats = BTreeMap::new();
        for index in &added {
            added_stats.insert(index.id, self.backfill_index(new, index)?);
        }
        Ok(added_stats)
    }

    /// Counts the items of table `table_id` in the store again (a replica of one of its
    /// partitions installed a snapshot, replacing items without writing them one by one).
    pub fn recount_table(&self, table_id: u64) -> Result<(), StorageError> {
        let table =
            self.tables.read().unwrap_or_else(|p| p.into_inner()).values().find(|t| t.meta.id == table_id).cloned();
        if let Some(table) = table {
            let stats = self.count_table(&table.meta)?;
            *lock(&table.stats) = stats;
        }
        Ok(())
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// Writes one record outside the item and catalog layouts (cluster metadata), through the
    /// same path as every other write so that it is atomic with a replicated apply.
    pub fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.commit(batch, Durability::Sync)
    }

    /// One key's value, as the writes collected so far by the current apply leave it (see
    /// `scope::begin_deferred`), else as stored.
    fn read_key(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match crate::scope::deferred_value(key) {
            Some(value) => Ok(value),
            None => self.store.get(key),
        }
    }

    /// The transaction holding the item stored at `storage_key`, if one does.
    pub fn lock_holder(&self, storage_key: &[u8]) -> Result<Option<u64>, StorageError> {
        Ok(self
            .read_key(&keys::lock_key(storage_key))?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Writes records outside the item and catalog layouts (transaction locks and records)
    /// through the same path as every other write, so they are atomic with a replicated apply.
    pub fn write_records(&self, puts: Vec<(Vec<u8>, Vec<u8>)>, deletes: Vec<Vec<u8>>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        for (key, value) in puts {
            batch.put(key, value);
        }
        for key in deletes {
            batch.delete(key);
        }
        self.commit(batch, Durability::Sync)
    }

    /// Writes a batch with `durability`, or as the current [`scope`](crate::scope) says: inside
    /// a replicated apply the scope adds the group's applied index to the batch and lowers the
    /// durability to `Buffered`, since the synced raft log already holds the change.
    fn commit(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        if crate::scope::current(|scope| scope.is_some_and(|s| s.read_only)) {
            return Err(StorageError::Io("write attempted outside replication".into()));
        }
        // Inside an apply that collects its writes, the apply writes them all at once.
        let Some(mut batch) = crate::scope::defer(batch) else { return Ok(()) };
        let durability = crate::scope::current(|scope| match scope {
            Some(scope) => {
                for (key, value) in &scope.batch_extra {
                    batch.put(key.clone(), value.clone());
                }
                scope.durability.unwrap_or(durability)
            }
            None => durability,
        });
        let result = self.store.write(batch, durability);
        if result.is_err() {
            crate::scope::note_storage_failure();
        }
        result
    }

    fn count_table(&self, meta: &TableMeta) -> Result<BTreeMap<u16, SizeStats>, StorageError> {
        let mut stats = BTreeMap::new();
        for index_id in std::iter::once(keys::TABLE_INDEX_ID).chain(meta.indexes.iter().map(|i| i.id)) {
            let start = keys::index_prefix(meta.id, index_id);
            let end = keys::prefix_successor(&start).expect("index prefix has a successor");
            let mut counted = SizeStats::default();
            let mut damaged = 0u64;
            let mut first_damaged: Option<Vec<u8>> = None;
            self.for_each_in_range(&start, &end, |key, value| {
                counted.item_count += 1;
                counted.size_bytes += match decode_item(value) {
                    Ok(item) => item_size_bytes(&item) as i64,
                    // A damaged item still counts, at its stored length: the statistics are
                    // approximate, and refusing to open over one would keep the node down
                    // when its replicas can be repaired (the cluster's scrubber rebuilds them).
                    Err(_) => {
                        damaged += 1;
                        first_damaged.get_or_insert_with(|| key.to_vec());
                        value.len() as i64
                    }
                };
                true
            })?;
            if damaged > 0 {
                let first: String = first_damaged.unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect();
                tracing::warn!(table = %meta.name, index_id, damaged, first, "damaged items counted at their stored length");
            }
            stats.insert(index_id, counted);
        }
        Ok(stats)
    }

    /// Calls `visit` for every pair in `[start, end)` in ascending order until it returns false.
    /// Visits the stored records in `[start, end)` in key order, a chunk of the store at a
    /// time, until `visit` returns false.
    pub fn for_each_in_range(
        &self,
        start: &[u8],
        end: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let mut lower = start.to_vec();
        let mut first = true;
        loop {
            let lower_bound = if first { Bound::Included(&lower[..]) } else { Bound::Excluded(&lower[..]) };
            let chunk = self.store.scan(lower_bound, Bound::Excluded(end), Direction::Forward, SCAN_CHUNK_ENTRIES)?;
            first = false;
            let full = chunk.len() == SCAN_CHUNK_ENTRIES;
            for (key, value) in &chunk {
                if !visit(key, value) {
                    return Ok(());
                }
            }
            match chunk.into_iter().last() {
                Some((key, _)) if full => lower = key,
                _ => return Ok(()),
            }
        }
    }

    /// A table by name, or DynamoDB's not-found error.
    pub fn table(&self, name: &str) -> Result<Arc<Table>, ApiError> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::table_not_found(name))
    }

    /// All table names in ascending order.
    pub fn table_names(&self) -> Vec<String> {
        self.tables.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Creates a table. `meta.id` is assigned here.
    pub fn create_table(&self, mut meta: TableMeta) -> Result<Arc<Table>, ApiError> {
        let _ddl = lock(&self.ddl);
        if self.table(&meta.name).is_ok() {
            return Err(ApiError::ResourceInUse(format!("Table already exists: {}", meta.name)));
        }
        meta.id = self.next_table_id()?;
        let mut batch = WriteBatch::new();
        batch.put(keys::catalog_key(&meta.name), serde_json::to_vec(&meta).map_err(|e| corrupt("table metadata", e))?);
        batch.put(keys::NEXT_TABLE_ID_KEY.to_vec(), (meta.id + 1).to_be_bytes().to_vec());
        self.commit(batch, Durability::Sync)?;
        let mut stats = BTreeMap::new();
        stats.insert(keys::TABLE_INDEX_ID, SizeStats::default());
        for index in &meta.indexes {
            stats.insert(index.id, SizeStats::default());
        }
        let table = Arc::new(Table { meta, stats: Arc::new(Mutex::new(stats)) });
        self.tables.write().unwrap_or_else(|p| p.into_inner()).insert(table.meta.name.clone(), table.clone());
        Ok(table)
    }

    fn next_table_id(&self) -> Result<u64, ApiError> {
        Ok(match self.read_key(keys::NEXT_TABLE_ID_KEY)? {
            Some(bytes) => {
                let array: [u8; 8] =
                    bytes.as_slice().try_into().map_err(|_| corrupt("table id counter", "wrong length"))?;
                u64::from_be_bytes(array)
            }
            None => 1,
        })
    }

    /// Deletes a table and all its data, returning its last description.
    pub fn delete_table(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        let _ddl = lock(&self.ddl);
        let table = self.table(name)?;
        if table.meta.deletion_protection {
            return Err(ApiError::validation(format!(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first. Table: {name}"
            )));
        }
        let description = table.describe("DELETING");
        let mut batch = WriteBatch::new();
        batch.delete(keys::catalog_key(name));
        Self::delete_table_data(&mut batch, table.meta.id);
        self.commit(batch, Durability::Sync)?;
        self.tables.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        Ok(description)
    }

    /// Replaces a table's metadata (capacity, billing, indexes). New global indexes are
    /// backfilled from the table's items before the new metadata becomes visible to readers;
    /// dropped indexes have their entries removed.
    pub fn update_table(&self, meta: TableMeta) -> Result<Arc<Table>, ApiError> {
        let _ddl = lock(&self.ddl);
        let old = self.table(&meta.name)?;
        if old.meta.id != meta.id {
            return Err(ApiError::ResourceNotFound("Requested resource not found".into()));
        }
        // Hold every write lock while the index set changes, so that no write lands between the
        // backfill and the switch to the new metadata.
        let _writes: Vec<MutexGuard<'_, ()>> = self.stripes.iter().map(lock).collect();
        let mut stats = lock(&old.stats).clone();
        stats.retain(|id, _| *id == keys::TABLE_INDEX_ID || meta.indexes.iter().any(|i| i.id == *id));
        stats.extend(self.change_indexes(&old.meta, &meta)?);
        let mut batch = WriteBatch::new();
        batch.put(keys::catalog_key(&meta.name), serde_json::to_vec(&meta).map_err(|e| corrupt("table metadata", e))?);
        self.commit(batch, Durability::Sync)?;
        let table = Arc::new(Table { meta, stats: Arc::new(Mutex::new(stats)) });
        self.tables.write().unwrap_or_else(|p| p.into_inner()).insert(table.meta.name.clone(), table.clone());
        Ok(table)
    }

    fn backfill_index(&self, meta: &TableMeta, index: &IndexMeta) -> Result<SizeStats, ApiError> {
        let start = keys::index_prefix(meta.id, keys::TABLE_INDEX_ID);
        let end = keys::prefix_successor(&start).expect("prefix has a successor");
        let mut stats = SizeStats::default();
        let mut batch = WriteBatch::new();
        let mut failure: Option<ApiError> = None;
        self.for_each_in_range(&start, &end, |_, value| {
            let item = match decode_item(value) {
                Ok(item) => item,
                Err(e) => {
                    failure = Some(corrupt("item", e));
                    return false;
                }
            };
            if index.key_schema.key_of(&item).is_some() {
                let entry = index.project(&meta.key_schema, &item);
                stats.item_count += 1;
                stats.size_bytes += item_size_bytes(&entry) as i64;
                batch.put(
                    keys::entry_key(meta.id, index.id, &index.key_schema, Some(&meta.key_schema), &item),
                    encode_item(&entry),
                );
                if batch.ops.len() >= SCAN_CHUNK_ENTRIES {
                    if let Err(e) = self.commit(std::mem::take(&mut batch), Durability::Buffered) {
                        failure = Some(e.into());
                        return false;
                    }
                }
            }
            true
        })?;
        if let Some(error) = failure {
            return Err(error);
        }
        // The catalog write that follows is synced, which makes the whole backfill durable.
        self.commit(batch, Durability::Buffered)?;
        Ok(stats)
    }

    /// Locks the partition key `partition_value` of a table against concurrent writes. Hold the
    /// guard from reading the old item until its replacement is written.
    pub fn lock_partition(&self, table: &Table, partition_value: &AttributeValue) -> MutexGuard<'_, ()> {
        lock(&self.stripes[self.stripe_of(table, partition_value)])
    }

    /// Locks several partition keys at once, in a fixed order so that two callers locking
    /// overlapping sets cannot deadlock.
    pub fn lock_partitions(&self, keys: &[(&Table, &AttributeValue)]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|(table, value)| self.stripe_of(table, value)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes.into_iter().map(|i| lock(&self.stripes[i])).collect()
    }

    fn stripe_of(&self, table: &Table, partition_value: &AttributeValue) -> usize {
        let encoded = keys::encode_value(partition_value);
        let hash = keys::partition_hash(&encoded) ^ table.meta.id.rotate_left(17);
        (hash % WRITE_LOCK_STRIPES as u64) as usize
    }

    /// Reads an item by its key attributes.
    pub fn get_item(&self, table: &Table, key: &Item) -> Result<Option<Item>, ApiError> {
        let storage_key = keys::entry_key(table.meta.id, keys::TABLE_INDEX_ID, &table.meta.key_schema, None, key);
        match self.read_key(&storage_key)? {
            Some(bytes) => Ok(Some(decode_item(&bytes).map_err(|e| corrupt("item", e))?)),
            None => Ok(None),
        }
    }

    /// Replaces `old` (the current item, read under the partition lock) by `new`, or deletes it
    /// when `new` is `None`, together with every index entry, in one synced batch.
    pub fn write_item(
        &self,
        table: &Table,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<IndexWriteUnits, ApiError> {
        let mut units = self.write_items(&[ItemChange { table, old, new }])?;
        Ok(units.pop().unwrap_or_default())
    }

    /// Applies several item changes (each under its partition lock, held by the caller) as one
    /// atomic, synced batch: after a crash either all of them are visible or none.
    pub fn write_items(&self, changes: &[ItemChange<'_>]) -> Result<Vec<IndexWriteUnits>, ApiError> {
        self.write_items_with_records(changes, Vec::new())
    }

    /// [`Database::write_items`], with other records put (`Some` value) or deleted (`None`) in
    /// the same batch, so they land exactly when the items do.
    pub fn write_items_with_records(
        &self,
        changes: &[ItemChange<'_>],
        records: Vec<RecordChange>,
    ) -> Result<Vec<IndexWriteUnits>, ApiError> {
        let mut batch = WriteBatch::new();
        for (key, value) in records {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
        }
        let mut all_units = Vec::with_capacity(changes.len());
        let mut stat_changes: Vec<(&Table, u16, Option<u64>, Option<u64>)> = Vec::new();
        // Item-collection deltas are summed per counter first: two changes under one partition
        // key must not each read the old counter and overwrite the other's update.
        let mut collection_deltas: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let txid = crate::scope::txid();
        for change in changes {
            if let Some(item) = change.old.or(change.new) {
                let meta = &change.table.meta;
                if let Some(key) = meta.key_of(item) {
                    let storage_key = keys::entry_key(meta.id, keys::TABLE_INDEX_ID, &meta.key_schema, None, &key);
                    if self.lock_holder(&storage_key)?.is_some_and(|holder| Some(holder) != txid) {
                        return Err(ApiError::transaction_conflict());
                    }
                }
            }
            let PreparedChange { units, stats, collection } = prepare_item_change(change, &mut batch);
            all_units.push(units);
            stat_changes.extend(stats.into_iter().map(|(id, old, new)| (change.table, id, old, new)));
            if let Some((key, delta)) = collection {
                *collection_deltas.entry(key).or_default() += delta;
            }
        }
        for (counter_key, delta) in collection_deltas.into_iter().filter(|(_, d)| *d != 0) {
            let current = self.collection_size(&counter_key)?;
            let updated = (current as i64 + delta).max(0) as u64;
            if delta > 0 && updated > ITEM_COLLECTION_BYTES_MAX {
                return Err(ApiError::ItemCollectionSizeLimitExceeded("Item collection size limit exceeded".into()));
            }
            if updated == 0 {
                batch.delete(counter_key);
            } else {
                batch.put(counter_key, updated.to_be_bytes().to_vec());
            }
        }
        if crate::scope::dry_run() {
            return Ok(all_units);
        }
        self.commit(batch, Durability::Sync)?;
        for (table, index_id, old_bytes, new_bytes) in stat_changes {
            table.adjust_stats(index_id, old_bytes, new_bytes);
        }
        Ok(all_units)
    }

    fn collection_size(&self, counter_key: &[u8]) -> Result<u64, ApiError> {
        Ok(match self.read_key(counter_key)? {
            Some(bytes) => {
                let array: [u8; 8] =
                    bytes.as_slice().try_into().map_err(|_| corrupt("collection size", "wrong length"))?;
                u64::from_be_bytes(array)
            }
            None => 0,
        })
    }

    /// Size in bytes of the item collection of `partition_value` (tables with local indexes).
    pub fn item_collection_bytes(&self, table: &Table, partition_value: &AttributeValue) -> Result<u64, ApiError> {
        self.collection_size(&keys::collection_key(table.meta.id, partition_value))
    }

    /// Reads up to `limit` entries between the bounds in `direction` order, decoded.
    pub fn read_range(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Item)>, ApiError> {
        let pairs = self.store.scan(lower, upper, direction, limit)?;
        pairs.into_iter().map(|(key, value)| Ok((key, decode_item(&value).map_err(|e| corrupt("item", e))?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Service;
    use crate::storage::MemStore;

    /// Two tables ("kept" and "gone") of three items each, and the catalog records another
    /// node's UpdateTable (a global index `by_g` on "kept") and DeleteTable ("gone") wrote, as a
    /// metadata snapshot delivers them, in `batch`. Returns the new index and the gone table's id.
    fn tables_and_a_snapshot_of_their_change(
        db: &Database,
        service: &Service,
        batch: &mut WriteBatch,
    ) -> (crate::catalog::IndexMeta, u64) {
        for name in ["kept", "gone"] {
            let create = serde_json::json!({
                "TableName": name,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            });
            service.call("CreateTable", create.to_string().as_bytes()).expect("create table");
            for key in ["a", "b", "c"] {
                let item = serde_json::json!({"pk": {"S": key}, "g": {"S": format!("group-{}", key == "c")}});
                let put = serde_json::json!({"TableName": name, "Item": item});
                service.call("PutItem", put.to_string().as_bytes()).expect("put");
            }
        }
        let mut meta = db.table("kept").unwrap().meta.clone();
        let index = crate::catalog::IndexMeta {
            name: "by_g".into(),
            id: meta.next_index_id,
            kind: crate::catalog::IndexKind::Global,
            key_schema: crate::catalog::KeySchema {
                partition: crate::catalog::KeyAttribute { name: "g".into(), kind: crate::model::ScalarType::S },
                sort: None,
            },
            projection: crate::catalog::Projection::All,
            throughput: None,
            on_demand: Default::default(),
            throughput_changes: Default::default(),
        };
        meta.next_index_id += 1;
        meta.indexes.push(index.clone());
        let gone_id = db.table("gone").unwrap().meta.id;
        batch.put(keys::catalog_key("kept"), serde_json::to_vec(&meta).unwrap());
        batch.delete(keys::catalog_key("gone"));
        (index, gone_id)
    }

    /// Checks that `db` over `store` is as applying the change of
    /// [`tables_and_a_snapshot_of_their_change`] would have left it: the new global index
    /// backfilled and queryable, the deleted table's data gone.
    fn assert_the_change_followed(db: Arc<Database>, store: &Arc<dyn KvStore>, index: u16, gone_id: u64) {
        let kept = db.table("kept").expect("kept table");
        assert_eq!(kept.stats(index).item_count, 3, "every item with the key attribute is in the index");
        let query = serde_json::json!({
            "TableName": "kept", "IndexName": "by_g",
            "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "group-false"}}
        });
        let found = Service::new(db.clone()).call("Query", query.to_string().as_bytes()).expect("query the new index");
        assert_eq!(found["Count"], 2, "{found}");
        assert!(db.table("gone").is_err());
        let start = keys::table_prefix(gone_id);
        let end = keys::prefix_successor(&start).unwrap();
        let left = store.scan(Bound::Included(&start), Bound::Excluded(&end), Direction::Forward, 10).unwrap();
        assert!(left.is_empty(), "the deleted table's items are gone: {left:?}");
        assert_eq!(store.get(keys::CATALOG_FOLLOW_UP_KEY).unwrap(), None, "the follow-up is done");
    }

    /// A catalog reloaded from a snapshot that covers an UpdateTable and a DeleteTable this node
    /// never applied leaves the store as applying them would have.
    #[test]
    fn a_reloaded_catalog_backfills_new_indexes_and_drops_deleted_tables() {
        let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
        let db = Arc::new(Database::open(store.clone()).expect("open"));
        let mut batch = WriteBatch::new();
        let (index, gone_id) = tables_and_a_snapshot_of_their_change(&db, &Service::new(db.clone()), &mut batch);
        store.write(batch, Durability::Sync).unwrap();

        db.reload_catalog().expect("reload");
        assert_the_change_followed(db, &store, index.id, gone_id);
    }

    /// A node that stops after installing a metadata snapshot (with its follow-up record, as a
    /// replica's restore writes them) and before following it, follows it when it opens again:
    /// without the record, the reopened node would know nothing of the old catalog, so the new
    /// index would stay empty and the deleted table's items would stay in the store for good.
    #[test]
    fn a_node_stopped_before_following_a_metadata_snapshot_follows_it_when_it_opens() {
        let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
        let db = Arc::new(Database::open(store.clone()).expect("open"));
        let mut batch = WriteBatch::new();
        let (index, gone_id) = tables_and_a_snapshot_of_their_change(&db, &Service::new(db.clone()), &mut batch);
        let (key, value) = db.catalog_follow_up_record();
        batch.put(key, value);
        store.write(batch, Durability::Sync).unwrap();
        drop(db);

        let reopened = Arc::new(Database::open(store.clone()).expect("reopen"));
        assert_the_change_followed(reopened.clone(), &store, index.id, gone_id);
        // Opening once more changes nothing.
        drop(reopened);
        assert_the_change_followed(Arc::new(Database::open(store.clone()).expect("reopen")), &store, index.id, gone_id);
    }

    /// A store holding an item damaged on the disk still opens (the cluster's scrubber repairs
    /// such replicas), the item still counts, and reading it is refused as corruption.
    #[test]
    fn a_store_with_a_damaged_item_opens_and_refuses_only_that_item() {
        let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
        let db = Arc::new(Database::open(store.clone()).expect("open"));
        let service = Service::new(db.clone());
        let create = serde_json::json!({
            "TableName": "tbl",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        });
        service.call("CreateTable", create.to_string().as_bytes()).expect("create table");
        for key in ["a", "b"] {
            let put = serde_json::json!({"TableName": "tbl", "Item": {"pk": {"S": key}, "v": {"S": "payload"}}});
            service.call("PutItem", put.to_string().as_bytes()).expect("put");
        }
        let items =
            store.scan(Bound::Included(&[keys::DATA_PREFIX][..]), Bound::Unbounded, Direction::Forward, 10).unwrap();
        let (key, mut value) = items.into_iter().next().expect("an item");
        let last = value.len() - 1;
        value[last] ^= 0x5a;
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        store.write(batch, Durability::Sync).unwrap();

        let reopened = Arc::new(Database::open(store).expect("a damaged item does not stop the store opening"));
        assert_eq!(reopened.table("tbl").unwrap().stats(keys::TABLE_INDEX_ID).item_count, 2);
        let service = Service::new(reopened);
        let mut refused = 0;
        for key in ["a", "b"] {
            let get = serde_json::json!({"TableName": "tbl", "Key": {"pk": {"S": key}}});
            if service.call("GetItem", get.to_string().as_bytes()).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 1, "only the damaged item is refused");
    }
}
