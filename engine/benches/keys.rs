//! Key encoding, which every item read and write does at least once: the order-preserving
//! encoding of key values (strings and numbers, both ways), the partition-key hash, and the full
//! storage key of a table entry and of a global secondary index entry.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use squall_engine::catalog::{KeyAttribute, KeySchema};
use squall_engine::db::keys::{entry_key, partition_hash, TABLE_INDEX_ID};
use squall_engine::model::{decode_key_value, encode_key_value, ScalarType};

mod common;
use common::n;

fn keys(c: &mut Criterion) {
    let item = common::order_item();
    let table = common::orders_table(42);
    let partition_key = item["pk"].clone();
    let sort_key = item["sk"].clone();
    // A number key with a fraction and a sign, the costlier kind of number to encode.
    let number_key = n("-123456.789012");
    let mut encoded_partition = Vec::new();
    encode_key_value(&mut encoded_partition, &partition_key);
    let mut encoded_number = Vec::new();
    encode_key_value(&mut encoded_number, &number_key);
    // A global secondary index keyed by status and creation time: its entries carry the table's
    // key after the index key, so the key is built from four values.
    let index_schema = KeySchema {
        partition: KeyAttribute { name: "status".into(), kind: ScalarType::S },
        sort: Some(KeyAttribute { name: "created_at".into(), kind: ScalarType::N }),
    };

    let mut group = c.benchmark_group("keys");
    group.bench_function("encode_string_key", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(64);
            encode_key_value(&mut out, black_box(&sort_key));
            out
        })
    });
    group.bench_function("encode_number_key", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(32);
            encode_key_value(&mut out, black_box(&number_key));
            out
        })
    });
    group.bench_function("decode_number_key", |b| {
        b.iter(|| {
            let mut input = black_box(encoded_number.as_slice());
            decode_key_value(&mut input, ScalarType::N).expect("decodes")
        })
    });
    group.bench_function("partition_hash", |b| b.iter(|| partition_hash(black_box(&encoded_partition))));
    group.bench_function("table_entry_key", |b| {
        b.iter(|| entry_key(table.id, TABLE_INDEX_ID, &table.key_schema, None, black_box(&item)))
    });
    group.bench_function("gsi_entry_key", |b| {
        b.iter(|| entry_key(table.id, 1, &index_schema, Some(&table.key_schema), black_box(&item)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = keys
}
criterion_main!(benches);
