//! The `KvStore` operations under every request, on `MemStore` and on `RocksStore` (in a
//! temporary directory): a point read that finds an item, one that does not, the read of one
//! partition key's items that a Query does, a single-item write and a 25-item batch (the
//! largest BatchWriteItem). Keys are real storage keys of the orders table and values are
//! encoded items of about 1 KB; each store holds 10,000 of them before anything is measured.

use std::hint::black_box;
use std::ops::Bound;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use squall_engine::db::keys::{entry_key, partition_prefix, prefix_successor, TABLE_INDEX_ID};
use squall_engine::model::encode_item;
use squall_engine::storage::{Direction, Durability, KvStore, MemStore, RocksConfig, RocksStore, WriteBatch};

mod common;

const TABLE_ID: u64 = 42;
/// Customers (partition keys) in the preloaded store.
const CUSTOMERS: u64 = 1_000;
/// Orders (sort keys) per customer: what the Query benchmark reads.
const ORDERS_PER_CUSTOMER: u64 = 10;
/// The largest BatchWriteItem DynamoDB accepts.
const BATCH_ITEMS: usize = 25;

/// The stored items: storage key and encoded value, in customer-major order.
fn dataset() -> Vec<(Vec<u8>, Vec<u8>)> {
    let table = common::orders_table(TABLE_ID);
    let mut pairs = Vec::with_capacity((CUSTOMERS * ORDERS_PER_CUSTOMER) as usize);
    for customer in 0..CUSTOMERS {
        for order in 0..ORDERS_PER_CUSTOMER {
            let item = common::order_item_for(customer, order);
            pairs.push((entry_key(TABLE_ID, TABLE_INDEX_ID, &table.key_schema, None, &item), encode_item(&item)));
        }
    }
    pairs
}

fn preload(store: &dyn KvStore, data: &[(Vec<u8>, Vec<u8>)]) {
    for chunk in data.chunks(100) {
        let mut batch = WriteBatch::new();
        for (key, value) in chunk {
            batch.put(key.clone(), value.clone());
        }
        store.write(batch, Durability::Buffered).expect("preload write");
    }
    store.sync().expect("preload sync");
}

/// A sequence of indexes into the data set that visits it in an order unrelated to key order
/// (a multiplicative step coprime to the length), so reads and writes are not sequential.
struct Cursor {
    next: usize,
    len: usize,
}

impl Cursor {
    fn new(len: usize) -> Cursor {
        Cursor { next: 0, len }
    }

    fn advance(&mut self) -> usize {
        self.next = (self.next + 7_919) % self.len;
        self.next
    }
}

/// Registers the read and write benchmarks of one store. `write_durability` is what a
/// single-item write and a batch are written with.
fn bench_store(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    store: &dyn KvStore,
    data: &[(Vec<u8>, Vec<u8>)],
    write_durability: Durability,
) {
    let mut cursor = Cursor::new(data.len());
    group.bench_function("get_hit_1kb", |b| {
        b.iter(|| {
            let (key, _) = &data[cursor.advance()];
            store.get(black_box(key)).expect("read").expect("present")
        })
    });
    // A key of the table that was never written: on RocksDB the bloom filters answer most of it.
    let absent: Vec<Vec<u8>> = (0..1024u64)
        .map(|i| {
            let mut key = partition_prefix(TABLE_ID, TABLE_INDEX_ID, &common::s(&format!("absent#{i}")));
            key.extend_from_slice(b"sk");
            key
        })
        .collect();
    let mut next_absent = 0usize;
    group.bench_function("get_miss", |b| {
        b.iter(|| {
            next_absent = (next_absent + 1) % absent.len();
            store.get(black_box(&absent[next_absent])).expect("read")
        })
    });
    // A Query of one customer's orders: every item under one partition key, in sort-key order.
    let prefixes: Vec<(Vec<u8>, Vec<u8>)> = (0..CUSTOMERS)
        .map(|c| {
            let prefix = partition_prefix(TABLE_ID, TABLE_INDEX_ID, &common::s(&format!("customer#{c:010}")));
            let end = prefix_successor(&prefix).expect("a prefix with a successor");
            (prefix, end)
        })
        .collect();
    let mut next_customer = 0usize;
    group.bench_function("query_10_items", |b| {
        b.iter(|| {
            next_customer = (next_customer + 13) % prefixes.len();
            let (start, end) = &prefixes[next_customer];
            let pairs =
                store.scan(Bound::Included(start), Bound::Excluded(end), Direction::Forward, 100).expect("scan");
            debug_assert_eq!(pairs.len(), ORDERS_PER_CUSTOMER as usize);
            pairs
        })
    });
    // Writes overwrite stored items, so the store's size, and with it the cost of a write, stays
    // what it was when the measurement started.
    group.bench_function("put_1kb", |b| {
        b.iter(|| {
            let (key, value) = &data[cursor.advance()];
            let mut batch = WriteBatch::new();
            batch.put(key.clone(), value.clone());
            store.write(batch, write_durability).expect("write")
        })
    });
    group.bench_function("batch_25x1kb", |b| {
        b.iter(|| {
            let mut batch = WriteBatch::new();
            for _ in 0..BATCH_ITEMS {
                let (key, value) = &data[cursor.advance()];
                batch.put(key.clone(), value.clone());
            }
            store.write(batch, write_durability).expect("write")
        })
    });
}

fn mem_store(c: &mut Criterion) {
    let data = dataset();
    let store = MemStore::new();
    preload(&store, &data);
    let mut group = c.benchmark_group("storage/mem");
    // MemStore keeps every `Buffered` batch until the next sync (to model power failure), so
    // millions of buffered writes would grow without bound; `Sync` writes apply the batch to both
    // its maps and keep no log, a bounded and slightly higher cost.
    bench_store(&mut group, &store, &data, Durability::Sync);
    group.finish();
}

fn rocks_store(c: &mut Criterion) {
    let data = dataset();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A 4 MB memtable instead of the default 64 MB, so most of the 10 MB preloaded here is in
    // SST files (read through the block cache and bloom filters) as in a store that has run for
    // a while, rather than all of it in the memtable.
    let config = RocksConfig { write_buffer_bytes: 4 << 20, ..RocksConfig::default() };
    let store = RocksStore::open_with(dir.path(), &config).expect("open RocksDB");
    preload(&store, &data);
    let mut group = c.benchmark_group("storage/rocks");
    // Applied item data is written `Buffered` (the raft log write is what is synced), so these
    // writes reach the WAL but are not fsynced.
    bench_store(&mut group, &store, &data, Durability::Buffered);
    // One fsynced single-item write: what a raft log append costs on this disk. A few
    // milliseconds each, so fewer samples keep the run short.
    group.sample_size(10);
    let mut cursor = Cursor::new(data.len());
    group.bench_function("put_1kb_sync", |b| {
        b.iter(|| {
            let (key, value) = &data[cursor.advance()];
            let mut batch = WriteBatch::new();
            batch.put(key.clone(), value.clone());
            store.write(batch, Durability::Sync).expect("write")
        })
    });
    group.finish();
    drop(store);
    drop(dir);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = mem_store, rocks_store
}
criterion_main!(benches);
