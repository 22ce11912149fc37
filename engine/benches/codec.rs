//! The item formats every read and write goes through: the stored item codec (`encode_item`,
//! `decode_item`), DynamoDB JSON in both directions, and the item size that capacity and
//! limits are charged by. The input is one realistic order item of about 1 KB.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall_engine::model::{decode_item, encode_item, item_from_json, item_size_bytes, item_to_json};

mod common;

fn codec(c: &mut Criterion) {
    let item = common::order_item();
    common::assert_about_1kb(&item);
    let encoded = encode_item(&item);
    let json = item_to_json(&item);
    let json_text = serde_json::to_vec(&json).expect("item JSON serializes");

    let mut group = c.benchmark_group("codec");
    // Bytes of the stored encoding, so criterion also reports a rate in bytes per second.
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode_1kb_item", |b| b.iter(|| encode_item(black_box(&item))));
    group.bench_function("decode_1kb_item", |b| b.iter(|| decode_item(black_box(&encoded)).expect("the item decodes")));
    // A request body arrives as text: parsing the JSON is part of the cost of reading an item
    // from the wire, so it is measured from bytes.
    group.bench_function("from_dynamodb_json_1kb_item", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(&json_text)).expect("valid JSON");
            item_from_json(&value).expect("a valid item")
        })
    });
    group.bench_function("to_dynamodb_json_1kb_item", |b| {
        b.iter(|| serde_json::to_vec(&item_to_json(black_box(&item))).expect("item JSON serializes"))
    });
    group.bench_function("size_1kb_item", |b| b.iter(|| item_size_bytes(black_box(&item))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = codec
}
criterion_main!(benches);
