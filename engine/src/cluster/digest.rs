//! A digest of what one replica of a partition holds, so replicas can be compared without
//! shipping their data: after faults heal, every replica of a partition that has applied the
//! same log index must hold the same records.
//!
//! A partition's records in a node's store are
//!
//! - its table items and local-index entries: `01 <table> <index> <hash>…` with the hash in the
//!   partition's range (one contiguous key range per index);
//! - its global-index entries: the entries of `01 <table> <gsi>…` whose table item's partition
//!   key hashes into the range (a node's global-index keyspace mixes every partition it hosts);
//! - item-collection counters `02 <table> <hash>…`, transaction locks `04 01 <table> 00 00
//!   <hash>…` in the range, the group's transaction records and outcomes (`05 <group>`,
//!   `06 <group>`), and client request token records `07 <table> <hash>…` in the range.
//!
//! The digest walks them in key order and folds every key and value into a 64-bit FNV-1a hash
//! with their lengths, so two replicas agree exactly when they hold the same records.

use serde::Serialize;

use crate::catalog::{IndexKind, TableMeta};
use crate::db::{keys, Database};
use crate::model::decode_item;
use crate::partition::HashRange;
use crate::storage::StorageError;

/// What one replica of a partition holds, in brief.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionDigest {
    /// Records counted.
    pub records: u64,
    /// Bytes of their keys and values.
    pub bytes: u64,
    /// FNV-1a over every record's key and value, with lengths, in key order.
    pub hash: u64,
}

impl PartitionDigest {
    fn new() -> PartitionDigest {
        PartitionDigest { records: 0, bytes: 0, hash: 0xcbf2_9ce4_8422_2325 }
    }

    fn fold_bytes(&mut self, bytes: &[u8]) {
        for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.hash ^= u64::from(*byte);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.records += 1;
        self.bytes += (key.len() + value.len()) as u64;
        self.fold_bytes(key);
        self.fold_bytes(value);
    }
}

/// The key prefix followed by a partition-key hash: the bound of a range of hashed keys.
fn with_hash(prefix: &[u8], hash: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&hash.to_be_bytes());
    key
}

/// What a walk calls for each record (key, value); an error stops the walk.
type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StorageError> + 'a;

/// Visits every record whose key starts with `prefix` followed by a hash in `range`.
fn walk_hashed(db: &Database, prefix: &[u8], range: HashRange, visit: &mut Visit<'_>) -> Result<(), StorageError> {
    let start = with_hash(prefix, range.start());
    let end = match range.end() {
        Some(end) => with_hash(prefix, end),
        None => keys::prefix_successor(prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 9]),
    };
    walk(db, &start, &end, visit)
}

/// Visits every record in `[start, end)` in key order, stopping at the first error.
fn walk(db: &Database, start: &[u8], end: &[u8], visit: &mut Visit<'_>) -> Result<(), StorageError> {
    let mut failure = None;
    db.for_each_in_range(start, end, |key, value| match visit(key, value) {
        Ok(()) => true,
        Err(error) => {
            failure = Some(error);
            false
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// The digest of the records partition group `group` of `table` owns in `db` over `range`
/// (see the module docs for which records those are).
pub fn partition_digest(
    db: &Database,
    table: &TableMeta,
    group: u64,
    range: HashRange,
) -> Result<PartitionDigest, StorageError> {
    let mut digest = PartitionDigest::new();
    for_each_record(db, table, group, range, &mut |key, value| {
        digest.add(key, value);
        Ok(())
    })?;
    Ok(digest)
}

/// The FNV-1a hash of one record's value, as [`partition_records`] lists it.
pub fn value_hash(value: &[u8]) -> u64 {
    let mut one = PartitionDigest::new();
    one.fold_bytes(value);
    one.hash
}

/// The digest of the metadata group's records in `db` (what its snapshots carry).
pub fn meta_digest(db: &Database) -> Result<PartitionDigest, StorageError> {
    let mut digest = PartitionDigest::new();
    for (key, value) in super::snapshot::meta_records(db)? {
        digest.add(&key, &value);
    }
    Ok(digest)
}

/// Every record of the partition (as [`partition_digest`] counts them), each as its key and
/// the FNV-1a hash of its value: what two replicas that disagree can compare key by key.
pub fn partition_records(
    db: &Database,
    table: &TableMeta,
    group: u64,
    range: HashRange,
) -> Result<Vec<(Vec<u8>, u64)>, StorageError> {
    let mut records = Vec::new();
    for_each_record(db, table, group, range, &mut |key, value| {
        records.push((key.to_vec(), value_hash(value)));
        Ok(())
    })?;
    Ok(records)
}

/// Visits every record of the partition in the module docs' order.
pub(crate) fn for_each_record(
    db: &Database,
    table: &TableMeta,
    group: u64,
    range: HashRange,
    add: &mut Visit<'_>,
) -> Result<(), StorageError> {
    walk_hashed(db, &keys::index_prefix(table.id, keys::TABLE_INDEX_ID), range, add)?;
    let mut indexes: Vec<_> = table.indexes.iter().collect();
    indexes.sort_by_key(|index| index.id);
    for index in indexes {
        let prefix = keys::index_prefix(table.id, index.id);
        match index.kind {
            IndexKind::Local => walk_hashed(db, &prefix, range, add)?,
            IndexKind::Global => {
                let partition = &table.key_schema.partition.name;
                let end = keys::prefix_successor(&prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 1]);
                walk(db, &prefix, &end, &mut |key, value| {
                    // A damaged entry's owner cannot be told: every partition's walk lists it,
                    // so a snapshot refuses it and the scrubber finds it whichever partition
                    // it belongs to.
                    let owned = decode_item(value).map_or(true, |entry| {
                        entry
                            .get(partition)
                            .is_some_and(|pk| range.contains(keys::partition_hash(&keys::encode_value(pk))))
                    });
                    if owned {
                        add(key, value)?;
                    }
                    Ok(())
                })?;
            }
        }
    }
    walk_hashed(db, &keys::collection_table_prefix(table.id), range, add)?;
    let mut locks = vec![keys::LOCK_PREFIX];
    locks.extend_from_slice(&keys::index_prefix(table.id, keys::TABLE_INDEX_ID));
    walk_hashed(db, &locks, range, add)?;
    for (start, end) in [super::txn::record_range(group), super::txn::outcome_range(group)] {
        walk(db, &start, &end, add)?;
    }
    walk_hashed(db, &keys::token_table_prefix(table.id), range, add)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::api::Service;
    use crate::scope::{with_scope, CallScope};
    use crate::storage::MemStore;

    fn service() -> Service {
        let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open"));
        let service = Service::new(db);
        let create = json!({
            "TableName": "tbl",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        });
        service.call("CreateTable", create.to_string().as_bytes()).expect("create table");
        service
    }

    fn put(service: &Service, pk: &str, g: &str) {
        let body = json!({"TableName": "tbl", "Item": {"pk": {"S": pk}, "g": {"S": g}}});
        let scope = CallScope::default();
        with_scope(scope, || service.call("PutItem", body.to_string().as_bytes())).expect("put");
    }

    fn digest(service: &Service, range: HashRange) -> PartitionDigest {
        let db = service.database();
        let table = db.table("tbl").expect("table");
        partition_digest(db, &table.meta, 7, range).expect("digest")
    }

    #[test]
    fn equal_contents_give_equal_digests_and_any_difference_shows() {
        let (a, b) = (service(), service());
        let whole = HashRange::new(0, None).expect("range");
        for i in 0..50 {
            put(&a, &format!("k{i}"), &format!("g{}", i % 7));
            put(&b, &format!("k{i}"), &format!("g{}", i % 7));
        }
        assert_eq!(digest(&a, whole), digest(&b, whole));
        // Each item is one table record and one global-index record.
        assert_eq!(digest(&a, whole).records, 100);
        put(&b, "k3", "changed");
        assert_ne!(digest(&a, whole), digest(&b, whole));
    }

    #[test]
    fn halves_of_the_hash_space_partition_the_records() {
        let a = service();
        for i in 0..80 {
            put(&a, &format!("k{i}"), &format!("g{}", i % 5));
        }
        let whole = HashRange::new(0, None).expect("range");
        let (low, high) = whole.split_at(1 << 63).expect("split");
        let (d_low, d_high) = (digest(&a, low), digest(&a, high));
        assert_eq!(d_low.records + d_high.records, 160);
        assert!(d_low.records > 0 && d_high.records > 0);
        // A record outside the range does not change its digest.
        let before = digest(&a, low);
        let high_key = (0..).map(|i| format!("x{i}")).find(|k| {
            high.contains(keys::partition_hash(&keys::encode_value(&crate::model::AttributeValue::S(k.clone()))))
        });
        put(&a, &high_key.expect("a key in the upper half"), "g0");
        assert_eq!(digest(&a, low), before);
        assert_ne!(digest(&a, high), d_high);
    }
}
