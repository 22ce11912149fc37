//! Splitting a partition in place, without moving data.
//!
//! Every replica of a partition holds the partition's items in its node's store under keys that
//! carry the partition-key hash, never the group. A split is therefore a log entry of the
//! partition, [`SPLIT`] with a hash inside its range: every replica applies it at the same point
//! of the log, retires the parent group (it answers every later request with
//! [`stale_partition`], so a router with an old map looks again), and starts two child groups
//! on the same nodes, one per half, whose state at their first entry is exactly the parent's at
//! the split. Nothing is copied but the parent's transaction outcomes, so no item can be lost or
//! duplicated at the boundary: each key hashes into exactly one half.
//!
//! The parent's replica that proposed the split then records it in the metadata group
//! ([`RECORD_SPLIT`]), which every node applies to its partition map; every replica of the
//! parent keeps proposing the record until it is applied, so a crash between the two steps only
//! delays routers. A split waits while the parent holds prepared transactions, so none is ever
//! cut in two.
//!
//! # Keys
//!
//! ```text
//! 03 <group u64 BE> 'r'               -> split hash u64 BE   this node's replica of group retired
//! 00 's' <table u64 BE> <group u64 BE> -> split hash u64 BE   the metadata group recorded the split
//! ```
//!
//! # Group ids
//!
//! A table's partition groups are `table << 32 | n`. Initial partitions have `n = index + 1`
//! (7 bits, at most 127); a split child has `n = root | heap << 7`, where `root` is its initial
//! ancestor's `n` and `heap` its position in a binary tree under that ancestor (the ancestor is
//! 1; the children of `h` are `2h` and `2h + 1`). Ids are therefore unique without any
//! coordination, and a split is refused when the tree is 24 levels deep.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::api::ApiError;
use crate::db::{keys, Database};
use crate::partition::{HashRange, HashSample, PartitionId, PartitionMap};
use crate::replication::log_store::tag_key;
use crate::storage::{Direction, StorageError};

/// The partition-log operation that splits the partition: body `{"At": hash}`.
pub const SPLIT: &str = "Squall.Split";
/// The metadata-log operation that records a split in the partition map: body
/// `{"TableId": id, "Group": parent, "At": hash}`.
pub const RECORD_SPLIT: &str = "Squall.RecordSplit";
/// Start of the message of [`stale_partition`] errors, by which routers recognise them.
pub const STALE_PARTITION_MESSAGE: &str = "partition group was split; look up the partition map again";

/// The key tag of a retired replica's split hash.
const RETIRED_TAG: u8 = b'r';
/// Bits of a group id's low half that hold the initial partition.
const ROOT_BITS: u32 = 7;
/// Largest heap position a child may take (the low half of a group id is 32 bits).
const HEAP_MAX: u64 = (1 << (32 - ROOT_BITS)) - 1;

/// When a partition's leader splits it on its own (see [`HeatTracker`] and
/// [`oversized`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSettings {
    /// How often each leader looks at its partitions' size and heat; 0 turns automatic splits
    /// off (a split can still be asked for with `SquallAdmin.SplitPartition`).
    pub check_interval_ms: u64,
    /// A partition estimated larger than this splits by size (DynamoDB's 10 GB).
    pub size_bytes_max: u64,
    /// A partition whose load, as a share of one partition's capacity (3,000 read and 1,000
    /// write units a second), stays at or above this for `heat_checks_min` checks in a row
    /// splits for heat.
    pub heat_load_min: f64,
    /// Consecutive hot checks before a split for heat.
    pub heat_checks_min: u32,
    /// Sampled request hashes kept per partition to choose a heat split point.
    pub heat_samples_max: usize,
}

impl Default for SplitSettings {
    fn default() -> Self {
        SplitSettings {
            check_interval_ms: 10_000,
            size_bytes_max: crate::partition::sizing::PARTITION_BYTES_MAX,
            heat_load_min: 0.8,
            heat_checks_min: 3,
            heat_samples_max: 256,
        }
    }
}

/// Read units one partition serves a second.
const PARTITION_READ_UNITS_PER_S: f64 = crate::partition::sizing::PARTITION_READ_UNITS_MAX as f64;
/// Write units one partition serves a second.
const PARTITION_WRITE_UNITS_PER_S: f64 = crate::partition::sizing::PARTITION_WRITE_UNITS_MAX as f64;

/// The load a partition's leader has seen since its last check, with a bounded sample of the
/// hashes its requests addressed (weighted by the units they consumed). Pure: the node feeds
/// it and asks it at each check.
#[derive(Clone, Debug, Default)]
pub struct HeatTracker {
    read_units: f64,
    write_units: f64,
    samples: Vec<HashSample>,
    recorded: u64,
    hot_checks: u32,
}

impl HeatTracker {
    /// Records one request on `hash` that consumed these units. Once `samples_max` samples
    /// are kept, each new one replaces a slot chosen by a multiplicative hash of the count, so
    /// the sample keeps following the load without a random source.
    pub fn record(&mut self, hash: u64, read_units: f64, write_units: f64, samples_max: usize) {
        self.read_units += read_units;
        self.write_units += write_units;
        let weight = ((read_units + write_units) * 10.0).ceil().max(1.0) as u64;
        let sample = HashSample { hash, weight };
        if self.samples.len() < samples_max {
            self.samples.push(sample);
        } else if samples_max > 0 {
            let slot = (self.recorded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % samples_max;
            self.samples[slot] = sample;
        }
        self.recorded += 1;
    }

    /// Ends a check window of `window_s` seconds: the samples to choose a heat split point
    /// from when the partition has been hot for `heat_checks_min` windows in a row (the count
    /// starts again after), `None` otherwise.
    pub fn check(&mut self, window_s: f64, settings: &SplitSettings) -> Option<Vec<HashSample>> {
        let load = if window_s > 0.0 {
            self.read_units / window_s / PARTITION_READ_UNITS_PER_S
                + self.write_units / window_s / PARTITION_WRITE_UNITS_PER_S
        } else {
            0.0
        };
        self.read_units = 0.0;
        self.write_units = 0.0;
        if load < settings.heat_load_min {
            self.hot_checks = 0;
            return None;
        }
        self.hot_checks += 1;
        if self.hot_checks < settings.heat_checks_min {
            return None;
        }
        self.hot_checks = 0;
        Some(std::mem::take(&mut self.samples))
    }
}

/// Whether a partition of `range` is estimated over the size limit, from its table's bytes on
/// this node spread over the ranges this node hosts (hashing spreads items evenly, so the
/// share of the hosted width is the share of the bytes).
pub fn oversized(table_bytes_here: u64, range: HashRange, hosted_width: u128, settings: &SplitSettings) -> bool {
    if hosted_width == 0 {
        return false;
    }
    let estimate = u128::from(table_bytes_here) * range.width() / hosted_width;
    estimate > u128::from(settings.size_bytes_max)
}

/// The partitions of `map` to split, each at its midpoint, so that the table grows towards
/// `needed` partitions: the widest first (the lowest start among equals), at most one split
/// each per round, so a round never overshoots. Used when UpdateTable raises a provisioned
/// table's capacity past what its partitions serve (3,000 read and 1,000 write units each).
pub fn capacity_splits(map: &PartitionMap, needed: u64) -> Vec<PartitionId> {
    let missing = needed.saturating_sub(map.partitions().len() as u64) as usize;
    let mut widest: Vec<&crate::partition::PartitionDescriptor> =
        map.partitions().iter().filter(|p| p.range.midpoint().is_some()).collect();
    widest.sort_by_key(|p| (std::cmp::Reverse(p.range.width()), p.range.start()));
    widest.into_iter().take(missing).map(|p| p.id).collect()
}

/// The error a retired partition answers with; routers look the partition up again.
pub fn stale_partition(group: u64) -> ApiError {
    ApiError::ServiceUnavailable(format!("{STALE_PARTITION_MESSAGE} (group {group:#x})"))
}

/// Whether `error` is a retired partition's answer.
pub fn is_stale_partition(error: &ApiError) -> bool {
    matches!(error, ApiError::ServiceUnavailable(message) if message.starts_with(STALE_PARTITION_MESSAGE))
}

/// The two child groups of `group` (left half, right half), or `None` when its split tree is
/// as deep as group ids allow.
pub fn children_of(group: u64) -> Option<[u64; 2]> {
    let table = group >> 32;
    let low = group & 0xffff_ffff;
    let root = low & ((1 << ROOT_BITS) - 1);
    let heap = (low >> ROOT_BITS).max(1);
    let left = heap.checked_mul(2).filter(|h| *h < HEAP_MAX)?;
    let child = |heap: u64| (table << 32) | (heap << ROOT_BITS) | root;
    Some([child(left), child(left + 1)])
}

/// Whether `descendant` is `group` or a child, grandchild... of it.
pub fn descends_from(descendant: u64, group: u64) -> bool {
    if descendant >> 32 != group >> 32 {
        return false;
    }
    let root = |g: u64| g & ((1 << ROOT_BITS) - 1);
    let heap = |g: u64| ((g & 0xffff_ffff) >> ROOT_BITS).max(1);
    if root(descendant) != root(group) {
        return false;
    }
    let (mut d, g) = (heap(descendant), heap(group));
    while d > g {
        d /= 2;
    }
    d == g
}

/// The key recording that this node's replica of `group` retired at a split.
pub fn retired_key(group: u64) -> Vec<u8> {
    tag_key(group, RETIRED_TAG)
}

/// Prefix of every recorded split (the metadata group's records).
pub const SPLIT_RECORDS_PREFIX: &[u8] = b"\x00s";

/// The prefix of a table's recorded splits.
fn split_records_prefix(table_id: u64) -> Vec<u8> {
    let mut key = SPLIT_RECORDS_PREFIX.to_vec();
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// The key of the recorded split of `group` of table `table_id`.
pub fn split_record_key(table_id: u64, group: u64) -> Vec<u8> {
    let mut key = split_records_prefix(table_id);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

fn hash_value(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// The split hash at which this node's replica of `group` retired, if it did.
pub fn retired_at(db: &Database, group: u64) -> Result<Option<u64>, StorageError> {
    Ok(db.store().get(&retired_key(group))?.as_deref().and_then(hash_value))
}

/// The recorded splits of table `table_id`: parent group to split hash.
pub fn recorded_splits(db: &Database, table_id: u64) -> Result<BTreeMap<u64, u64>, StorageError> {
    let prefix = split_records_prefix(table_id);
    let end = keys::prefix_successor(&prefix).unwrap_or_else(|| vec![0x00, b's' + 1]);
    let pairs = db.store().scan(Bound::Included(&prefix), Bound::Excluded(&end), Direction::Forward, usize::MAX)?;
    Ok(pairs
        .into_iter()
        .filter_map(|(key, value)| Some((hash_value(key.get(prefix.len()..)?)?, hash_value(&value)?)))
        .collect())
}

/// The map after every split of `splits` (parent group to split hash) whose parent is, or
/// comes to be, in `map`. The order of `splits` does not matter: a child's split applies once
/// its parent's has, so every node that knows the same splits derives the same partitions.
pub fn apply_splits(mut map: PartitionMap, splits: &BTreeMap<u64, u64>) -> PartitionMap {
    let mut pending: Vec<(u64, u64)> = splits.iter().map(|(g, at)| (*g, *at)).collect();
    loop {
        let before = pending.len();
        pending.retain(|(group, at)| {
            let Some(children) = children_of(*group) else { return false };
            if map.get(PartitionId(*group)).is_none() {
                return true;
            }
            match map.split(PartitionId(*group), *at, children.map(PartitionId)) {
                Ok(split) => map = split,
                Err(error) => tracing::error!(group, at, %error, "recorded split does not fit the map"),
            }
            false
        });
        if pending.len() == before {
            return map;
        }
    }
}

/// The hash of every item key of table `table_id` in `range` on this node (at most
/// `samples_max`, evenly spread over the first ones), weighted by key and value bytes: what a
/// split for size divides.
pub fn size_samples(
    db: &Database,
    table_id: u64,
    range: HashRange,
    samples_max: usize,
) -> Result<Vec<HashSample>, StorageError> {
    let prefix = keys::index_prefix(table_id, keys::TABLE_INDEX_ID);
    let bound = |hash: u64| {
        let mut key = prefix.clone();
        key.extend_from_slice(&hash.to_be_bytes());
        key
    };
    let end = match range.end() {
        Some(end) => bound(end),
        None => keys::prefix_successor(&prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 9]),
    };
    let mut samples = Vec::new();
    db.for_each_in_range(&bound(range.start()), &end, |key, value| {
        if let Some(hash) = key.get(prefix.len()..prefix.len() + 8).and_then(hash_value) {
            samples.push(HashSample { hash, weight: (key.len() + value.len()) as u64 });
        }
        samples.len() < samples_max * 4
    })?;
    if samples.len() > samples_max {
        let step = samples.len().div_ceil(samples_max);
        samples = samples.into_iter().step_by(step).collect();
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::routing::partition_group;
    use crate::partition::{NodeId, ReplicaPlacement, ZoneId};

    #[test]
    fn children_are_unique_and_descend_from_their_parent() {
        let mut seen = std::collections::BTreeSet::new();
        let mut frontier: Vec<u64> = (0..4).map(|i| partition_group(3, i)).collect();
        seen.extend(frontier.iter().copied());
        for _ in 0..6 {
            let mut next = Vec::new();
            for group in frontier {
                let children = children_of(group).expect("shallow trees split");
                for child in children {
                    assert!(seen.insert(child), "child {child:#x} of {group:#x} reused an id");
                    assert!(descends_from(child, group));
                    assert_eq!(child >> 32, 3, "children stay in their table");
                    next.push(child);
                }
            }
            frontier = next;
        }
        let (a, b) = (partition_group(3, 0), partition_group(3, 1));
        assert!(!descends_from(children_of(a).unwrap()[0], b));
        assert!(!descends_from(a, children_of(a).unwrap()[0]), "a parent does not descend from its child");
    }

    #[test]
    fn a_tree_too_deep_for_the_ids_refuses_to_split() {
        let mut group = partition_group(1, 5);
        let mut depth = 0;
        while let Some(children) = children_of(group) {
            group = children[1];
            depth += 1;
        }
        assert_eq!(depth, 24);
    }

    #[test]
    fn recorded_splits_rebuild_the_same_map_in_any_order() {
        let replicas = |_: PartitionId, _: HashRange| vec![ReplicaPlacement { node: NodeId(1), zone: ZoneId(0) }];
        let initial = PartitionMap::initial(2, PartitionId(partition_group(1, 0)), replicas).expect("map");
        let first = partition_group(1, 0);
        let [left, right] = children_of(first).unwrap();
        let mut splits = BTreeMap::new();
        // The child's split sorts before its parent's (ids grow with depth), and still applies.
        splits.insert(first, 1 << 61);
        splits.insert(right, 1 << 62);
        let map = apply_splits(initial, &splits);
        let ids: Vec<u64> = map.partitions().iter().map(|p| p.id.0).collect();
        let [right_left, right_right] = children_of(right).unwrap();
        assert_eq!(ids, vec![left, right_left, right_right, partition_group(1, 1)]);
        assert_eq!(map.lookup(1 << 62).id.0, right_right);
        assert_eq!(map.lookup((1 << 62) - 1).id.0, right_left);
        assert_eq!(map.lookup(5).id.0, left);
        assert_eq!(map.validate_ranges(), Ok(()));
    }

    #[test]
    fn sustained_heat_yields_samples_and_a_cool_window_starts_over() {
        let settings = SplitSettings { heat_checks_min: 2, heat_samples_max: 8, ..SplitSettings::default() };
        let mut tracker = HeatTracker::default();
        // 900 write units a second for 1 s: 90% of a partition.
        let hot = |tracker: &mut HeatTracker| {
            for i in 0..900u64 {
                tracker.record(i * 1_000_003, 0.0, 1.0, settings.heat_samples_max);
            }
        };
        hot(&mut tracker);
        assert_eq!(tracker.check(1.0, &settings), None, "one hot window is not sustained");
        tracker.record(1, 10.0, 0.0, 8);
        assert_eq!(tracker.check(1.0, &settings), None, "a cool window resets the count");
        hot(&mut tracker);
        assert_eq!(tracker.check(1.0, &settings), None);
        hot(&mut tracker);
        let samples = tracker.check(1.0, &settings).expect("two hot windows in a row");
        assert_eq!(samples.len(), 8, "the sample is bounded");
        assert!(samples.iter().all(|s| s.weight == 10));
        // Reads count against 3,000 units a second: 2,000 read units is 67%, not hot.
        for _ in 0..2 {
            for i in 0..2_000u64 {
                tracker.record(i, 1.0, 0.0, 8);
            }
            assert_eq!(tracker.check(1.0, &settings), None);
        }
    }

    #[test]
    fn size_estimates_share_the_table_bytes_by_range_width() {
        let settings = SplitSettings { size_bytes_max: 1_000, ..SplitSettings::default() };
        let whole = HashRange::new(0, None).unwrap();
        let (half, _) = whole.split_at(1 << 63).unwrap();
        assert!(oversized(1_001, whole, whole.width(), &settings));
        assert!(!oversized(1_000, whole, whole.width(), &settings));
        assert!(!oversized(1_800, half, whole.width(), &settings), "half of 1,800 bytes is 900");
        assert!(oversized(2_400, half, whole.width(), &settings));
        assert!(!oversized(5_000, half, 0, &settings));
    }

    #[test]
    fn capacity_splits_take_the_widest_partitions_and_never_overshoot() {
        let replicas = |_: PartitionId, _: HashRange| vec![ReplicaPlacement { node: NodeId(1), zone: ZoneId(0) }];
        let first = partition_group(1, 0);
        let map = PartitionMap::initial(2, PartitionId(first), replicas).expect("map");
        assert_eq!(capacity_splits(&map, 2), vec![]);
        assert_eq!(capacity_splits(&map, 1), vec![]);
        // Five needed from two: both split this round (three missing, two partitions).
        assert_eq!(capacity_splits(&map, 5).len(), 2);
        let halves = apply_splits(map, &BTreeMap::from([(first, 1 << 62)]));
        // Now [0, 2^62), [2^62, 2^63), [2^63, top): the last is the widest.
        assert_eq!(capacity_splits(&halves, 4), vec![PartitionId(partition_group(1, 1))]);
        let [left, right] = children_of(first).unwrap();
        assert_eq!(
            capacity_splits(&halves, 6),
            vec![PartitionId(partition_group(1, 1)), PartitionId(left), PartitionId(right)]
        );
    }

    #[test]
    fn stale_partition_errors_are_recognised_after_crossing_the_wire() {
        let error = stale_partition(0x1_0000_0001);
        let crossed = ApiError::from_json(&error.to_json());
        assert!(is_stale_partition(&crossed));
        assert!(!is_stale_partition(&ApiError::ServiceUnavailable("no leader".into())));
    }
}
