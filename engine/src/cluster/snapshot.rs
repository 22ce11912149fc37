//! Snapshots of a group's state, for replicas that need entries the log no longer holds (a
//! replica that was away while the log was compacted, a replica whose store was lost).
//!
//! A snapshot is the list of records the group owns in the node's store, at the applied index
//! raft's snapshot metadata names:
//!
//! - a partition group: what [`digest`](super::digest) counts (items, index entries, collection
//!   counters, locks, transaction records and outcomes) and the group's retired marker, so a
//!   replica that learns a split from a snapshot starts the children as one that applied it;
//! - the metadata group: the catalog, the table-id counter, partition counts and recorded
//!   splits (the `00` records other than the node's own).
//!
//! # Encoding
//!
//! ```text
//! snapshot = magic "SQS1", records u64 LE, { key_len u32 LE, key, value_len u32 LE, value }*,
//!            crc32 u32 LE (of everything before it)
//! ```
//!
//! Records are in ascending key order with no duplicates; a decoder refuses anything else, so
//! a damaged snapshot is never installed.

use std::collections::BTreeSet;

use crate::catalog::TableMeta;
use crate::db::{keys, Database};
use crate::partition::HashRange;
use crate::storage::{StorageError, WriteBatch};

const MAGIC: &[u8; 4] = b"SQS1";

/// Key prefixes of the metadata group's records: everything its applied commands write.
pub(crate) const META_PREFIXES: [&[u8]; 5] = [
    keys::CATALOG_PREFIX,
    super::node::PARTITION_COUNT_PREFIX,
    keys::NEXT_TABLE_ID_KEY,
    super::split::SPLIT_RECORDS_PREFIX,
    super::membership::MEMBERSHIP_RECORDS_PREFIX,
];

/// Encodes `records` (ascending keys) as a snapshot.
pub fn encode_records(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let size: usize = records.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(16 + size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for (key, value) in records {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn malformed(detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corruption(format!("snapshot: {detail}"))
}

/// Reads a snapshot's fields in order.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.0.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// A length-prefixed key or value.
    fn part(&mut self) -> Result<Vec<u8>, StorageError> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().map_err(malformed)?) as usize;
        Ok(self.take(len)?.to_vec())
    }
}

/// Decodes a snapshot, checking its checksum, lengths and key order.
pub fn decode_records(data: &[u8]) -> Result<Vec<crate::storage::KvPair>, StorageError> {
    if data.len() < MAGIC.len() + 12 || &data[..4] != MAGIC {
        return Err(malformed("not a snapshot"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(malformed(format!("checksum {actual:08x}, expected {stored:08x}")));
    }
    let mut cursor = Cursor(&body[4..]);
    let count = u64::from_le_bytes(cursor.take(8)?.try_into().map_err(malformed)?);
    // Every record takes at least 8 bytes: a count beyond that is a lie, not an allocation.
    if count > (data.len() / 8) as u64 {
        return Err(malformed(format!("{count} records in {} bytes", data.len())));
    }
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (key, value) = (cursor.part()?, cursor.part()?);
        if records.last().is_some_and(|(last, _)| *last >= key) {
            return Err(malformed("keys out of order"));
        }
        records.push((key, value));
    }
    if !cursor.0.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    Ok(records)
}

/// The records of partition group `group` of `table` over `range` in `db`, in key order.
///
/// A retired group (one that split) owns only what is keyed by its own id: its retired marker
/// and its transaction records and outcomes. The items, index entries, counters and locks of
/// its hash range belong to its children, which may stand further on than the parent: a
/// parent's snapshot carrying them would put older values over the children's when a replica
/// installs the parent's snapshot after its children's.
pub fn partition_records(
    db: &Database,
    table: &TableMeta,
    group: u64,
    range: HashRange,
) -> Result<Vec<crate::storage::KvPair>, StorageError> {
    let records = unverified_partition_records(db, table, group, range)?;
    // A damaged read must not travel: the follower would store it for good.
    verify_items(&records)?;
    Ok(records)
}

/// [`partition_records`] without the check of the items' checksums (the scrubber looks for
/// damaged items among them).
pub fn unverified_partition_records(
    db: &Database,
    table: &TableMeta,
    group: u64,
    range: HashRange,
) -> Result<Vec<crate::storage::KvPair>, StorageError> {
    let retired = super::split::retired_key(group);
    if db.store().get(&retired)?.is_some() {
        return group_keyed_records(db, group);
    }
    let mut records = Vec::new();
    super::digest::for_each_record(db, table, group, range, &mut |key, value| {
        records.push((key.to_vec(), value.to_vec()));
        Ok(())
    })?;
    // Global-index entries come after the table's items in the walk but may sort before
    // other records; a snapshot lists keys in order.
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(records)
}

/// The records of partition group `group` keyed by its id rather than by hash (its retired
/// marker, transaction records and outcomes), in key order.
pub fn group_keyed_records(db: &Database, group: u64) -> Result<Vec<crate::storage::KvPair>, StorageError> {
    let mut records = Vec::new();
    for (start, end) in [super::txn::record_range(group), super::txn::outcome_range(group)] {
        db.for_each_in_range(&start, &end, |key, value| {
            records.push((key.to_vec(), value.to_vec()));
            true
        })?;
    }
    let retired = super::split::retired_key(group);
    if let Some(value) = db.store().get(&retired)? {
        records.push((retired, value));
    }
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(records)
}

/// Checks the checksum of every item and index entry among `records` (keys under
/// `keys::DATA_PREFIX`), so a snapshot never carries, nor a follower installs, a value a
/// damaged read returned.
pub fn verify_items(records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
    match damaged_item(records) {
        Some(key) => {
            Err(StorageError::Corruption(format!("snapshot record {}: bad item checksum", super::router::hex_of(key))))
        }
        None => Ok(()),
    }
}

/// The key of the first item or index entry among `records` whose checksum fails.
pub fn damaged_item(records: &[(Vec<u8>, Vec<u8>)]) -> Option<&[u8]> {
    records
        .iter()
        .find(|(key, value)| key.first() == Some(&keys::DATA_PREFIX) && crate::model::decode_item(value).is_err())
        .map(|(key, _)| key.as_slice())
}

/// Whether snapshot `records` of partition group `group` are those of a retired group (see
/// [`partition_records`]).
pub fn is_retired_snapshot(group: u64, records: &[(Vec<u8>, Vec<u8>)]) -> bool {
    let retired = super::split::retired_key(group);
    records.binary_search_by(|(key, _)| key.as_slice().cmp(&retired)).is_ok()
}

/// The metadata group's records in `db`, in key order.
pub fn meta_records(db: &Database) -> Result<Vec<crate::storage::KvPair>, StorageError> {
    let mut records = Vec::new();
    for prefix in META_PREFIXES {
        let end = keys::prefix_successor(prefix).unwrap_or_else(|| vec![0x01]);
        db.for_each_in_range(prefix, &end, |key, value| {
            records.push((key.to_vec(), value.to_vec()));
            true
        })?;
    }
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(records)
}

/// Adds to `batch` what turns the records `current` into `wanted`: every wanted record, and
/// a delete of every current key that is not wanted.
pub fn replace_records(
    current: Vec<(Vec<u8>, Vec<u8>)>,
    wanted: Vec<(Vec<u8>, Vec<u8>)>,
    batch: &mut WriteBatch,
) -> ReplaceCounts {
    let keep: BTreeSet<&[u8]> = wanted.iter().map(|(k, _)| k.as_slice()).collect();
    let mut counts = ReplaceCounts::default();
    for (key, _) in &current {
        if !keep.contains(key.as_slice()) {
            batch.delete(key.clone());
            counts.deleted += 1;
        }
    }
    counts.written = wanted.len() as u64;
    for (key, value) in wanted {
        batch.put(key, value);
    }
    counts
}

/// What [`replace_records`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaceCounts {
    /// Records written.
    pub written: u64,
    /// Records deleted.
    pub deleted: u64,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sorted(mut records: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
        records.sort_by(|a, b| a.0.cmp(&b.0));
        records.dedup_by(|a, b| a.0 == b.0);
        records
    }

    proptest! {
        #[test]
        fn records_round_trip(records in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..30)
        ) {
            let records = sorted(records);
            prop_assert_eq!(decode_records(&encode_records(&records)).unwrap(), records);
        }

        #[test]
        fn damaged_snapshots_are_refused(
            records in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..10), proptest::collection::vec(any::<u8>(), 0..10)), 1..10),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut data = encode_records(&sorted(records));
            let at = position.index(data.len());
            data[at] ^= flip;
            prop_assert!(decode_records(&data).is_err());
            prop_assert!(decode_records(&data[..at]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_records(&data);
        }
    }

    #[test]
    fn a_retired_group_snapshots_only_its_own_records() {
        use std::sync::Arc;

        use crate::api::Service;
        use crate::storage::{Durability, MemStore};

        let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open"));
        let service = Service::new(db.clone());
        let create = serde_json::json!({
            "TableName": "tbl",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        });
        service.call("CreateTable", create.to_string().as_bytes()).expect("create table");
        for i in 0..10 {
            let put = serde_json::json!({"TableName": "tbl", "Item": {"pk": {"S": format!("k{i}")}}});
            service.call("PutItem", put.to_string().as_bytes()).expect("put");
        }
        let group = 7;
        let mut batch = WriteBatch::new();
        batch.put(super::super::txn::outcome_key(group, 42), b"committed".to_vec());
        db.store().write(batch, Durability::Sync).expect("outcome");
        let table = db.table("tbl").expect("table");
        let whole = HashRange::new(0, None).expect("range");

        let live = partition_records(&db, &table.meta, group, whole).expect("records");
        assert_eq!(live.len(), 11, "ten items and one outcome");
        assert!(!is_retired_snapshot(group, &live));

        let mut batch = WriteBatch::new();
        batch.put(super::super::split::retired_key(group), (1u64 << 63).to_be_bytes().to_vec());
        db.store().write(batch, Durability::Sync).expect("retire");
        let retired = partition_records(&db, &table.meta, group, whole).expect("records");
        assert_eq!(retired, group_keyed_records(&db, group).expect("own records"));
        assert_eq!(retired.len(), 2, "the outcome and the retired marker, no item: {retired:?}");
        assert!(is_retired_snapshot(group, &retired));
        assert!(!is_retired_snapshot(group + 1, &retired));

        // An item whose bytes were damaged is refused, whichever side looks.
        let mut damaged = live.clone();
        let item = damaged.iter_mut().find(|(key, _)| key[0] == keys::DATA_PREFIX).expect("an item");
        let last = item.1.len() - 1;
        item.1[last] ^= 0x40;
        assert!(verify_items(&live).is_ok());
        assert!(matches!(verify_items(&damaged), Err(StorageError::Corruption(_))));
    }

    /// Everything the metadata group's commands write travels in its snapshot (a node that
    /// caught up from one once missed the recorded memberships and started a moved replica
    /// again), and nothing a partition owns does.
    #[test]
    fn the_metadata_snapshot_carries_every_metadata_record() {
        use std::sync::Arc;

        use crate::api::Service;
        use crate::storage::{Durability, MemStore};

        let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open"));
        let service = Service::new(db.clone());
        let create = serde_json::json!({
            "TableName": "tbl",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        });
        service.call("CreateTable", create.to_string().as_bytes()).expect("create table");
        let put = serde_json::json!({"TableName": "tbl", "Item": {"pk": {"S": "k"}}});
        service.call("PutItem", put.to_string().as_bytes()).expect("put");
        let table_id = db.table("tbl").expect("table").meta.id;
        let group = (table_id << 32) | 1;
        let membership = super::super::membership::record_key(table_id, group);
        let split = super::super::split::split_record_key(table_id, group);
        let mut count = super::super::node::PARTITION_COUNT_PREFIX.to_vec();
        count.extend_from_slice(&table_id.to_be_bytes());
        let mut batch = WriteBatch::new();
        batch.put(membership.clone(), super::super::membership::encode_record(&[1, 5, 9], 7));
        batch.put(split.clone(), (1u64 << 63).to_be_bytes().to_vec());
        batch.put(count.clone(), 4u64.to_be_bytes().to_vec());
        batch.put(super::super::txn::outcome_key(group, 42), b"committed".to_vec());
        db.store().write(batch, Durability::Sync).expect("records");

        let records = meta_records(&db).expect("metadata records");
        for key in [&membership, &split, &count] {
            assert!(records.iter().any(|(k, _)| k == key), "{key:?} missing from {records:?}");
        }
        assert!(records.iter().any(|(k, _)| k.starts_with(keys::CATALOG_PREFIX)), "the catalog travels");
        assert!(
            records.iter().all(|(k, _)| META_PREFIXES.iter().any(|p| k.starts_with(p))),
            "only metadata records: {records:?}"
        );
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "records in key order");
    }

    #[test]
    fn out_of_order_keys_are_refused() {
        let records = vec![(b"b".to_vec(), vec![]), (b"a".to_vec(), vec![])];
        assert!(decode_records(&encode_records(&records)).is_err());
    }

    #[test]
    fn replacing_deletes_what_the_snapshot_lacks_and_writes_the_rest() {
        let current = vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())];
        let wanted = vec![(b"b".to_vec(), b"3".to_vec()), (b"c".to_vec(), b"4".to_vec())];
        let mut batch = WriteBatch::new();
        let counts = replace_records(current, wanted, &mut batch);
        assert_eq!(counts, ReplaceCounts { written: 2, deleted: 1 });
        let store = crate::storage::MemStore::new();
        use crate::storage::KvStore;
        let mut seed = WriteBatch::new();
        seed.put(b"a".to_vec(), b"1".to_vec());
        seed.put(b"b".to_vec(), b"2".to_vec());
        store.write(seed, crate::storage::Durability::Sync).unwrap();
        store.write(batch, crate::storage::Durability::Sync).unwrap();
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(store.get(b"b").unwrap(), Some(b"3".to_vec()));
        assert_eq!(store.get(b"c").unwrap(), Some(b"4".to_vec()));
    }
}
