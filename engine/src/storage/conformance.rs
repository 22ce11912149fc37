//! The `KvStore` conformance suite: every function takes an empty store and checks one part of
//! the trait's contract against a plain `BTreeMap` model. The same functions run against
//! `MemStore` and `RocksStore` (see the `conformance_tests!` list at the bottom), so the two
//! engines cannot drift apart.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Direction, Durability, KvPair, KvStore, WriteBatch, WriteOp};

/// A small seeded PRNG (SplitMix64) so randomized tests are reproducible from their seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is irrelevant for tests.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A short key over a tiny alphabet that includes 0x00 and 0xFF, so random operations
    /// collide often and exercise prefix and boundary ordering.
    pub(crate) fn key(&mut self) -> Vec<u8> {
        const ALPHABET: [u8; 4] = [0x00, 0x01, b'a', 0xFF];
        let len = self.below(4) as usize;
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
            .collect()
    }

    /// A value of 0 to 40 bytes.
    pub(crate) fn value(&mut self) -> Vec<u8> {
        let len = self.below(41) as usize;
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    pub(crate) fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.key()),
            _ => Bound::Excluded(self.key()),
        }
    }

    /// A batch of one to five random operations.
    pub(crate) fn batch(&mut self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for _ in 0..=self.below(5) {
            match self.below(10) {
                0..=5 => batch.put(self.key(), self.value()),
                6..=8 => batch.delete(self.key()),
                _ => batch.delete_range(self.key(), self.key()),
            }
        }
        batch
    }
}

pub(crate) type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Applies a batch to the model, written independently of `MemStore`'s own code.
pub(crate) fn model_apply(model: &mut Model, batch: &WriteBatch) {
    for op in &batch.ops {
        match op {
            WriteOp::Put { key, value } => {
                model.insert(key.clone(), value.clone());
            }
            WriteOp::Delete { key } => {
                model.remove(key);
            }
            WriteOp::DeleteRange { start, end } => model.retain(|k, _| !(start <= k && k < end)),
        }
    }
}

fn in_bounds(key: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
        Bound::Unbounded => true,
    };
    above && below
}

/// What a scan of the model returns, by filtering rather than `BTreeMap::range`.
pub(crate) fn model_scan(
    model: &Model,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    direction: Direction,
    limit: usize,
) -> Vec<KvPair> {
    let hits = model.iter().filter(|(k, _)| in_bounds(k, lower, upper));
    let pairs: Vec<KvPair> = match direction {
        Direction::Forward => hits
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Direction::Reverse => hits
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    pairs
}

/// Asserts that the whole store equals the model, by point reads and by full scans both ways.
pub(crate) fn assert_matches_model(store: &dyn KvStore, model: &Model) {
    let all = store.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
        usize::MAX,
    );
    let expected: Vec<KvPair> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(
        all.expect("full forward scan"),
        expected,
        "forward scan differs from model"
    );
    let reversed = store.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Reverse,
        usize::MAX,
    );
    let expected_rev: Vec<KvPair> = expected.iter().rev().cloned().collect();
    assert_eq!(
        reversed.expect("full reverse scan"),
        expected_rev,
        "reverse scan differs"
    );
    for (key, value) in model {
        assert_eq!(
            store.get(key).expect("get"),
            Some(value.clone()),
            "get {key:?}"
        );
    }
}

fn put(store: &dyn KvStore, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    store.write(batch, Durability::Sync).expect("put");
}

fn delete(store: &dyn KvStore, key: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.delete(key);
    store.write(batch, Durability::Sync).expect("delete");
}

fn delete_range(store: &dyn KvStore, start: &[u8], end: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.delete_range(start, end);
    store.write(batch, Durability::Sync).expect("delete_range");
}

fn keys(pairs: &[KvPair]) -> Vec<Vec<u8>> {
    pairs.iter().map(|(k, _)| k.clone()).collect()
}

fn all_keys(store: &dyn KvStore) -> Vec<Vec<u8>> {
    let pairs = store.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
        usize::MAX,
    );
    keys(&pairs.expect("scan"))
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

// ---- the suite -------------------------------------------------------------------------------

pub(crate) fn get_put_delete(store: &dyn KvStore) {
    assert_eq!(store.get(b"k").unwrap(), None);
    put(store, b"k", b"v");
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.get(b"k2").unwrap(), None, "a neighbour stays absent");
    assert_eq!(store.get(b"").unwrap(), None);
    delete(store, b"k");
    assert_eq!(store.get(b"k").unwrap(), None);
    delete(store, b"never-written");
    assert!(all_keys(store).is_empty());
}

pub(crate) fn buffered_writes_are_visible_at_once(store: &dyn KvStore) {
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store.write(batch, Durability::Buffered).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    let mut batch = WriteBatch::new();
    batch.delete(b"a");
    store.write(batch, Durability::Buffered).unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
}

pub(crate) fn overwrite(store: &dyn KvStore) {
    put(store, b"k", b"first");
    put(store, b"k", b"second, longer");
    assert_eq!(store.get(b"k").unwrap(), Some(b"second, longer".to_vec()));
    put(store, b"k", b"3");
    assert_eq!(store.get(b"k").unwrap(), Some(b"3".to_vec()));
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"in batch 1");
    batch.put(b"k", b"in batch 2");
    store.write(batch, Durability::Buffered).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"in batch 2".to_vec()));
    assert_eq!(all_keys(store), owned(&[b"k"]));
}

/// Operations of one batch apply in order: a later op sees the effect of an earlier one.
pub(crate) fn batch_ops_apply_in_order(store: &dyn KvStore) {
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    batch.delete(b"a");
    batch.put(b"a", b"2");
    batch.put(b"b", b"1");
    batch.delete(b"b");
    batch.put(b"c", b"1");
    batch.delete_range(b"c", b"d");
    batch.delete_range(b"e", b"g");
    batch.put(b"f", b"1");
    store.write(batch, Durability::Sync).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(b"b").unwrap(), None);
    assert_eq!(
        store.get(b"c").unwrap(),
        None,
        "delete_range after put removes it"
    );
    assert_eq!(
        store.get(b"f").unwrap(),
        Some(b"1".to_vec()),
        "put after delete_range stays"
    );
    assert_eq!(all_keys(store), owned(&[b"a", b"f"]));
}

/// Concurrent readers never see half of a batch: a writer keeps setting two keys to the same
/// value in one batch while readers scan both (a scan is a consistent snapshot).
pub(crate) fn batches_are_atomic_to_readers(store: &dyn KvStore) {
    const WRITES: u32 = 500;
    put(store, b"x", &0u32.to_be_bytes());
    put(store, b"y", &0u32.to_be_bytes());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let mut reads = 0u32;
                while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                    let pairs =
                        store.scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10);
                    let pairs = pairs.expect("scan");
                    assert_eq!(keys(&pairs), owned(&[b"x", b"y"]));
                    assert_eq!(pairs[0].1, pairs[1].1, "scan saw half a batch");
                    reads += 1;
                }
            });
        }
        for i in 1..=WRITES {
            let mut batch = WriteBatch::new();
            batch.put(b"x", i.to_be_bytes());
            batch.put(b"y", i.to_be_bytes());
            store.write(batch, Durability::Buffered).expect("write");
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    assert_eq!(
        store.get(b"y").unwrap(),
        Some(WRITES.to_be_bytes().to_vec())
    );
}

pub(crate) fn delete_range_bounds(store: &dyn KvStore) {
    let fill = |store: &dyn KvStore| {
        let mut batch = WriteBatch::new();
        for key in [&b""[..], b"a", b"b", b"b\x00", b"ba", b"b\xff", b"c", b"d"] {
            batch.put(key, key);
        }
        store.write(batch, Durability::Sync).unwrap();
    };
    fill(store);
    // Start is inclusive, end exclusive, and every key with the start as prefix is in range.
    delete_range(store, b"b", b"c");
    assert_eq!(all_keys(store), owned(&[b"", b"a", b"c", b"d"]));
    fill(store);
    // An empty range and an inverted range delete nothing.
    delete_range(store, b"b", b"b");
    delete_range(store, b"d", b"a");
    assert_eq!(all_keys(store).len(), 8);
    // The empty key is the smallest key and an empty start includes it.
    delete_range(store, b"", b"a");
    assert_eq!(
        all_keys(store),
        owned(&[b"a", b"b", b"b\x00", b"ba", b"b\xff", b"c", b"d"])
    );
    // The exact successor as end removes exactly one key.
    delete_range(store, b"b", b"b\x00");
    assert_eq!(
        all_keys(store),
        owned(&[b"a", b"b\x00", b"ba", b"b\xff", b"c", b"d"])
    );
    // A range over absent keys only.
    delete_range(store, b"e", b"z");
    assert_eq!(all_keys(store).len(), 6);
    // Everything up to a key above all others.
    delete_range(store, b"", b"\xff\xff");
    assert!(all_keys(store).is_empty());
}

/// Every combination of bound kinds on both ends, at probe keys that exist, fall between keys,
/// lie outside the data or are empty, in both directions and with several limits.
pub(crate) fn scan_bound_combinations(store: &dyn KvStore) {
    let mut model = Model::new();
    let mut batch = WriteBatch::new();
    for key in [&b"b"[..], b"d", b"d\x00", b"f", b"h", b"j"] {
        batch.put(key, [key, b"-value"].concat());
        model.insert(key.to_vec(), [key, b"-value"].concat());
    }
    store.write(batch, Durability::Sync).unwrap();

    let probes: [&[u8]; 9] = [b"", b"a", b"b", b"c", b"d", b"d\x00", b"e", b"j", b"z"];
    let mut bounds: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
    for probe in probes {
        bounds.push(Bound::Included(probe));
        bounds.push(Bound::Excluded(probe));
    }
    let mut checked = 0;
    for &lower in &bounds {
        for &upper in &bounds {
            for direction in [Direction::Forward, Direction::Reverse] {
                for limit in [0, 1, 2, 5, usize::MAX] {
                    let got = store.scan(lower, upper, direction, limit).expect("scan");
                    let want = model_scan(&model, lower, upper, direction, limit);
                    assert_eq!(
                        got, want,
                        "scan {lower:?}..{upper:?} {direction:?} limit {limit}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 19 * 19 * 2 * 5);
}

pub(crate) fn scan_limits(store: &dyn KvStore) {
    let mut batch = WriteBatch::new();
    for i in 0u16..300 {
        batch.put(i.to_be_bytes(), b"v");
    }
    store.write(batch, Durability::Sync).unwrap();
    let all = |direction, limit| {
        store
            .scan(Bound::Unbounded, Bound::Unbounded, direction, limit)
            .expect("scan")
    };
    assert!(all(Direction::Forward, 0).is_empty());
    assert!(all(Direction::Reverse, 0).is_empty());
    let first = all(Direction::Forward, 7);
    assert_eq!(
        keys(&first),
        (0u16..7)
            .map(|i| i.to_be_bytes().to_vec())
            .collect::<Vec<_>>()
    );
    let last = all(Direction::Reverse, 7);
    let want: Vec<Vec<u8>> = (293u16..300)
        .rev()
        .map(|i| i.to_be_bytes().to_vec())
        .collect();
    assert_eq!(keys(&last), want);
    assert_eq!(all(Direction::Forward, 300).len(), 300);
    assert_eq!(all(Direction::Forward, 301).len(), 300);
    assert_eq!(all(Direction::Reverse, usize::MAX).len(), 300);
    // Paging: resume after the last key returned, as a Query with ExclusiveStartKey does.
    let mut seen = Vec::new();
    let mut start: Option<Vec<u8>> = None;
    for _ in 0..100 {
        let lower = start.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let page = store
            .scan(lower, Bound::Unbounded, Direction::Forward, 32)
            .expect("page");
        if page.is_empty() {
            break;
        }
        start = page.last().map(|(k, _)| k.clone());
        seen.extend(keys(&page));
    }
    assert_eq!(seen, keys(&all(Direction::Forward, usize::MAX)));
}

pub(crate) fn empty_keys_and_values(store: &dyn KvStore) {
    put(store, b"", b"empty key");
    put(store, b"k", b"");
    assert_eq!(store.get(b"").unwrap(), Some(b"empty key".to_vec()));
    assert_eq!(
        store.get(b"k").unwrap(),
        Some(Vec::new()),
        "an empty value is not absence"
    );
    let pairs = store
        .scan(Bound::Unbounded, Bound::Unbounded, Direction::Forward, 10)
        .unwrap();
    assert_eq!(
        pairs,
        vec![
            (b"".to_vec(), b"empty key".to_vec()),
            (b"k".to_vec(), Vec::new())
        ]
    );
    let after_empty = store.scan(
        Bound::Excluded(b""),
        Bound::Unbounded,
        Direction::Forward,
        10,
    );
    assert_eq!(keys(&after_empty.unwrap()), owned(&[b"k"]));
    let up_to_empty = store.scan(
        Bound::Unbounded,
        Bound::Included(b""),
        Direction::Reverse,
        10,
    );
    assert_eq!(keys(&up_to_empty.unwrap()), owned(&[b""]));
    let below_empty = store.scan(
        Bound::Unbounded,
        Bound::Excluded(b""),
        Direction::Reverse,
        10,
    );
    assert!(
        below_empty.unwrap().is_empty(),
        "nothing sorts before the empty key"
    );
    delete(store, b"");
    assert_eq!(store.get(b"").unwrap(), None);
    assert_eq!(store.get(b"k").unwrap(), Some(Vec::new()));
}

pub(crate) fn binary_keys(store: &dyn KvStore) {
    let sorted: [&[u8]; 9] = [
        b"\x00",
        b"\x00\x00",
        b"\x00\xff",
        b"\x01",
        b"a\x00b",
        b"a\xff",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff\xff\xff",
    ];
    // Written in a scrambled order, read back in bytewise order.
    let mut batch = WriteBatch::new();
    for i in [4, 8, 0, 6, 2, 7, 1, 5, 3] {
        batch.put(sorted[i], [sorted[i], b"\x00\xff"].concat());
    }
    store.write(batch, Durability::Sync).unwrap();
    assert_eq!(all_keys(store), owned(&sorted));
    for key in sorted {
        assert_eq!(store.get(key).unwrap(), Some([key, b"\x00\xff"].concat()));
    }
    assert_eq!(store.get(b"\x00\x00\x00").unwrap(), None);
    assert_eq!(store.get(b"a").unwrap(), None);
    let top = store.scan(
        Bound::Included(b"\xff"),
        Bound::Unbounded,
        Direction::Reverse,
        usize::MAX,
    );
    assert_eq!(
        keys(&top.unwrap()),
        owned(&[b"\xff\xff\xff\xff", b"\xff\x00", b"\xff"])
    );
    let upper = Bound::Included(&b"\xff\xff\xff\xff"[..]);
    let top_inclusive = store.scan(Bound::Excluded(b"\xff"), upper, Direction::Forward, 10);
    assert_eq!(
        keys(&top_inclusive.unwrap()),
        owned(&[b"\xff\x00", b"\xff\xff\xff\xff"])
    );
    let zeros = store.scan(
        Bound::Unbounded,
        Bound::Excluded(b"\x01"),
        Direction::Forward,
        10,
    );
    assert_eq!(keys(&zeros.unwrap()), owned(&sorted[..3]));
}

pub(crate) fn large_values(store: &dyn KvStore) {
    const MIB: usize = 1 << 20;
    let value = |seed: u64| {
        let mut rng = Rng::new(seed);
        (0..MIB).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
    };
    let mut batch = WriteBatch::new();
    batch.put(b"big1", value(1));
    batch.put(b"big2", value(2));
    store.write(batch, Durability::Sync).unwrap();
    put(store, b"big3", &value(3));
    assert_eq!(store.get(b"big1").unwrap(), Some(value(1)));
    assert_eq!(store.get(b"big2").unwrap(), Some(value(2)));
    put(store, b"big1", &value(4));
    assert_eq!(store.get(b"big1").unwrap(), Some(value(4)));
    let pairs = store
        .scan(Bound::Unbounded, Bound::Unbounded, Direction::Reverse, 10)
        .unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[0], (b"big3".to_vec(), value(3)));
    assert_eq!(pairs[2], (b"big1".to_vec(), value(4)));
}

pub(crate) fn empty_batches_and_sync(store: &dyn KvStore) {
    store
        .write(WriteBatch::new(), Durability::Buffered)
        .unwrap();
    store.write(WriteBatch::new(), Durability::Sync).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"v");
    store.write(batch, Durability::Buffered).unwrap();
    store.sync().unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(all_keys(store), owned(&[b"k"]));
}

/// Thousands of random batches, point reads and scans, each checked against a `BTreeMap`.
pub(crate) fn matches_model_randomized(store: &dyn KvStore) {
    const SEED: u64 = 0x5EED_0001;
    const STEPS: usize = 4000;
    let mut rng = Rng::new(SEED);
    let mut model = Model::new();
    for step in 0..STEPS {
        match rng.below(10) {
            0..=4 => {
                let batch = rng.batch();
                let durability = if rng.chance(30) {
                    Durability::Sync
                } else {
                    Durability::Buffered
                };
                model_apply(&mut model, &batch);
                store.write(batch, durability).expect("write");
            }
            5..=6 => {
                let key = rng.key();
                assert_eq!(
                    store.get(&key).unwrap(),
                    model.get(&key).cloned(),
                    "step {step}"
                );
            }
            7..=8 => {
                let (lower, upper) = (rng.bound(), rng.bound());
                let direction = if rng.chance(50) {
                    Direction::Forward
                } else {
                    Direction::Reverse
                };
                let limit = if rng.chance(20) {
                    usize::MAX
                } else {
                    rng.below(8) as usize
                };
                let lower = bound_ref(&lower);
                let upper = bound_ref(&upper);
                let got = store.scan(lower, upper, direction, limit).expect("scan");
                let want = model_scan(&model, lower, upper, direction, limit);
                assert_eq!(
                    got, want,
                    "step {step}: scan {lower:?}..{upper:?} {direction:?}"
                );
            }
            _ => {
                if rng.chance(10) {
                    store.sync().expect("sync");
                }
            }
        }
    }
    assert_matches_model(store, &model);
}

pub(crate) fn bound_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key),
        Bound::Excluded(key) => Bound::Excluded(key),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Runs every suite function against a fresh store of each engine.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod mem_store {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::storage::MemStore::new());
                }
            )*
        }

        mod rocks_store {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().expect("create temp dir");
                    // A small memtable makes the suite exercise flushed SST files and
                    // compactions, not only the memtable.
                    let config = crate::storage::RocksConfig {
                        block_cache_bytes: 8 << 20,
                        write_buffer_bytes: 64 << 10,
                    };
                    let store = crate::storage::RocksStore::open_with(dir.path(), &config)
                        .expect("open rocksdb");
                    super::$name(&store);
                }
            )*
        }
    };
}

conformance_tests!(
    get_put_delete,
    buffered_writes_are_visible_at_once,
    overwrite,
    batch_ops_apply_in_order,
    batches_are_atomic_to_readers,
    delete_range_bounds,
    scan_bound_combinations,
    scan_limits,
    empty_keys_and_values,
    binary_keys,
    large_values,
    empty_batches_and_sync,
    matches_model_randomized,
);

#[test]
fn rng_is_reproducible() {
    let a: Vec<u64> = {
        let mut rng = Rng::new(7);
        (0..4).map(|_| rng.next_u64()).collect()
    };
    let mut rng = Rng::new(7);
    assert_eq!(a, (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>());
    assert_ne!(a[0], a[1]);
}
