//! Where things live in the key-value store. Pure functions over bytes.
//!
//! ```text
//! catalog entry   00 'c' <table name>                                  -> TableMeta JSON
//! item            01 <table id u64 BE> <index id u16 BE> <hash u64 BE> <partition key> [<sort key>]
//! index entry     01 <table id> <index id> <hash of index pk> <index pk> [<index sk>] <table pk> [<table sk>]
//! collection size 02 <table id> <hash> <partition key>                  -> u64 BE bytes
//! client token    07 <table id> <hash> <token>                           -> request hash, completion ms
//! ```
//!
//! Key values use the order-preserving, self-delimiting encoding of `model::key`, so a sort-key
//! range within one partition key is one contiguous byte range. The hash in front of the
//! partition key spreads partition keys evenly over the key space: Scan segments are hash
//! ranges, and partitioning by hash range keeps a Query inside one range.

use crate::catalog::KeySchema;
use crate::model::{encode_key_value, AttributeValue, Item};

/// Prefix of catalog entries.
pub const CATALOG_PREFIX: &[u8] = b"\x00c";
/// Prefix of item and index entries.
pub const DATA_PREFIX: u8 = 0x01;
/// Prefix of item-collection size counters (tables with local secondary indexes).
pub const COLLECTION_PREFIX: u8 = 0x02;
/// Key of the counter that hands out table ids.
pub const NEXT_TABLE_ID_KEY: &[u8] = b"\x00n";
/// Key of the catalog a node's data matched before a metadata snapshot replaced its catalog
/// records, present until the data follows the new catalog (see `Database::reload_catalog`).
/// Node-local: no snapshot carries it.
pub const CATALOG_FOLLOW_UP_KEY: &[u8] = b"\x00f";
/// Index id of the table itself.
pub const TABLE_INDEX_ID: u16 = 0;

/// The catalog key of a table.
pub fn catalog_key(table_name: &str) -> Vec<u8> {
    let mut key = CATALOG_PREFIX.to_vec();
    key.extend_from_slice(table_name.as_bytes());
    key
}

/// Prefix of every entry of one index (or of the table, with `TABLE_INDEX_ID`).
pub fn index_prefix(table_id: u64, index_id: u16) -> Vec<u8> {
    let mut key = Vec::with_capacity(11);
    key.push(DATA_PREFIX);
    key.extend_from_slice(&table_id.to_be_bytes());
    key.extend_from_slice(&index_id.to_be_bytes());
    key
}

/// Prefix of everything a table stores (items, indexes), for DeleteTable.
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(DATA_PREFIX);
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// Prefix of a table's item-collection counters.
pub fn collection_table_prefix(table_id: u64) -> Vec<u8> {
    let mut key = vec![COLLECTION_PREFIX];
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// A 64-bit hash of an encoded partition key: FNV-1a followed by a 64-bit finaliser so that
/// nearby keys land far apart. Stable across versions: it is part of the on-disk layout.
pub fn partition_hash(encoded_partition_key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in encoded_partition_key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Encodes one key value.
pub fn encode_value(value: &AttributeValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_value(&mut out, value);
    out
}

/// `index prefix ++ hash(pk) ++ pk`: the prefix shared by every entry with this partition key.
pub fn partition_prefix(table_id: u64, index_id: u16, partition_value: &AttributeValue) -> Vec<u8> {
    let encoded = encode_value(partition_value);
    let mut key = index_prefix(table_id, index_id);
    key.extend_from_slice(&partition_hash(&encoded).to_be_bytes());
    key.extend_from_slice(&encoded);
    key
}

/// The storage key of an entry: `schema` is the schema the entry is ordered by (the table's or
/// the index's), `table_schema` adds the table's key after an index key so index entries are
/// unique. `item` must hold every attribute of both schemas with the right types.
pub fn entry_key(
    table_id: u64,
    index_id: u16,
    schema: &KeySchema,
    table_schema: Option<&KeySchema>,
    item: &Item,
) -> Vec<u8> {
    let partition = &item[&schema.partition.name];
    let mut key = partition_prefix(table_id, index_id, partition);
    if let Some(sort) = &schema.sort {
        encode_key_value(&mut key, &item[&sort.name]);
    }
    if let Some(table_schema) = table_schema {
        encode_key_value(&mut key, &item[&table_schema.partition.name]);
        if let Some(sort) = &table_schema.sort {
            encode_key_value(&mut key, &item[&sort.name]);
        }
    }
    key
}

/// The item-collection counter key of a partition key.
pub fn collection_key(table_id: u64, partition_value: &AttributeValue) -> Vec<u8> {
    let encoded = encode_value(partition_value);
    let mut key = collection_table_prefix(table_id);
    key.extend_from_slice(&partition_hash(&encoded).to_be_bytes());
    key.extend_from_slice(&encoded);
    key
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when no such string exists (the prefix is all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Start of hash range `segment` of `total` equal ranges of the 64-bit hash space.
pub fn segment_start_hash(segment: u64, total: u64) -> u64 {
    debug_assert!(segment <= total && total > 0);
    ((u128::from(segment) << 64) / u128::from(total)) as u64
}

/// First byte of transaction lock records: `04 <item storage key>` holds the id of the
/// cross-partition transaction that has prepared a change of that item.
pub const LOCK_PREFIX: u8 = 0x04;

/// The lock record key of the item stored at `storage_key`.
pub fn lock_key(storage_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(storage_key.len() + 1);
    key.push(LOCK_PREFIX);
    key.extend_from_slice(storage_key);
    key
}

/// First byte of client request token records: `07 <table id> <hash> <token>` remembers a
/// TransactWriteItems that carried the token, under the hash of its first item's partition key
/// (so the partition that owns that item owns the record).
pub const TOKEN_PREFIX: u8 = 0x07;

/// The prefix of table `table_id`'s client request token records.
pub fn token_table_prefix(table_id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(TOKEN_PREFIX);
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// The key of the record of client request token `token`, kept by table `table_id` under
/// partition-key hash `hash`.
pub fn token_key(table_id: u64, hash: u64, token: &str) -> Vec<u8> {
    let mut key = token_table_prefix(table_id);
    key.extend_from_slice(&hash.to_be_bytes());
    key.extend_from_slice(token.as_bytes());
    key
}

/// The table id and partition-key hash of an item's storage key (`01 <table> <index> <hash>…`).
pub fn table_and_hash_of(storage_key: &[u8]) -> Option<(u64, u64)> {
    if storage_key.first() != Some(&DATA_PREFIX) {
        return None;
    }
    let table = u64::from_be_bytes(storage_key.get(1..9)?.try_into().ok()?);
    let hash = u64::from_be_bytes(storage_key.get(11..19)?.try_into().ok()?);
    Some((table, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"\x01\x02"), Some(b"\x01\x03".to_vec()));
        assert_eq!(prefix_successor(b"\x01\xff\xff"), Some(b"\x02".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn segments_tile_the_hash_space() {
        for total in [1u64, 2, 3, 7, 1000, 1_000_000] {
            assert_eq!(segment_start_hash(0, total), 0);
            let mut previous = 0u64;
            for segment in 1..total.min(50) {
                let start = segment_start_hash(segment, total);
                assert!(start > previous, "segment starts must increase");
                previous = start;
            }
        }
        // The last segment ends at the top of the space: its end is the wrapped value 0, which
        // callers treat as unbounded.
        assert_eq!(segment_start_hash(4, 4), 0);
    }

    #[test]
    fn partition_hash_spreads_similar_keys() {
        let a = partition_hash(b"user1");
        let b = partition_hash(b"user2");
        assert_ne!(a >> 60, b >> 60, "neighbouring keys should differ in their top bits");
        assert_eq!(partition_hash(b"user1"), a, "hash must be stable");
    }

    #[test]
    fn index_prefixes_do_not_overlap_tables() {
        let t1 = table_prefix(1);
        assert!(index_prefix(1, 0).starts_with(&t1));
        assert!(index_prefix(1, 7).starts_with(&t1));
        assert!(!index_prefix(2, 0).starts_with(&t1));
        assert!(catalog_key("t") < index_prefix(0, 0));
    }
}
