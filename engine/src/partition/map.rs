//! The partition map: which partition owns which hash range, and where its replicas live.
//!
//! A map is a value: every change (a split, a moved replica) returns a new map with the next
//! version, so routers can compare versions and the control plane can publish maps atomically.
//!
//! Architecture Invariant: a `PartitionMap` that exists satisfies `validate_ranges` — its ranges are
//! sorted, contiguous and tile the whole hash space — because every constructor checks it. That
//! is what lets `lookup` binary search without a fallback.

use super::ids::{NodeId, PartitionId, ZoneId};
use super::range::{end_u128, HashRange};
use std::collections::{BTreeMap, BTreeSet};

/// Replicas per partition: three, one per zone, so a whole zone can fail and a majority remains.
pub const REPLICA_COUNT: usize = 3;

/// One replica of a partition: the node that holds it and that node's zone.
///
/// The zone is recorded beside the node so the map alone can check zone diversity, without a
/// membership table that might disagree with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaPlacement {
    /// The node that holds the replica.
    pub node: NodeId,
    /// The node's zone.
    pub zone: ZoneId,
}

/// One partition: its id, its hash range and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescriptor {
    /// The partition's id, unique within the map and never reused.
    pub id: PartitionId,
    /// The hashes the partition owns.
    pub range: HashRange,
    /// Where the partition's replicas live.
    pub replicas: Vec<ReplicaPlacement>,
}

impl PartitionDescriptor {
    /// Whether `node` holds a replica of the partition.
    pub fn has_replica_on(&self, node: NodeId) -> bool {
        self.replicas.iter().any(|replica| replica.node == node)
    }

    /// The distinct zones the replicas are in.
    pub fn zones(&self) -> BTreeSet<ZoneId> {
        self.replicas.iter().map(|replica| replica.zone).collect()
    }
}

/// Why a partition map or a change to it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// A map needs at least one partition to cover the space.
    #[error("a partition map needs at least one partition")]
    Empty,
    /// The first range does not start at hash 0, or a range does not start where the previous one
    /// ends (a gap or an overlap).
    #[error("{0} does not start where the previous range ends")]
    NotContiguous(PartitionId),
    /// The last range does not reach the top of the hash space.
    #[error("{0} is the last partition but does not reach the top of the hash space")]
    TopNotCovered(PartitionId),
    /// Two partitions share an id.
    #[error("{0} appears twice")]
    DuplicateId(PartitionId),
    /// No partition has this id.
    #[error("{0} is not in the map")]
    UnknownPartition(PartitionId),
    /// A split point must lie strictly inside the partition's range.
    #[error("hash {at_hash:#018x} is not strictly inside the range of {partition}")]
    SplitPointOutsideRange {
        /// The partition being split.
        partition: PartitionId,
        /// The refused split point.
        at_hash: u64,
    },
    /// A new partition id is already in the map, or both halves were given the same id.
    #[error("{0} is already in use")]
    IdInUse(PartitionId),
    /// A partition has no replicas or more than `REPLICA_COUNT`.
    #[error("{partition} has {count} replicas")]
    ReplicaCount {
        /// The partition.
        partition: PartitionId,
        /// How many replicas it has.
        count: usize,
    },
    /// Two replicas of one partition are on the same node, so one node failure loses both.
    #[error("{partition} has two replicas on {node}")]
    DuplicateReplicaNode {
        /// The partition.
        partition: PartitionId,
        /// The node holding two replicas.
        node: NodeId,
    },
    /// The map spans at least three zones but a partition's replicas are not in three distinct
    /// zones, so one zone failure can take its majority.
    #[error("{0} does not have {REPLICA_COUNT} replicas in distinct zones")]
    ZonesNotDistinct(PartitionId),
    /// The node holds no replica of the partition.
    #[error("{node} holds no replica of {partition}")]
    NotAReplica {
        /// The partition.
        partition: PartitionId,
        /// The node.
        node: NodeId,
    },
    /// The map's version cannot be incremented.
    #[error("the partition map version is exhausted")]
    VersionExhausted,
}

/// The partitions of one table (or index), sorted by range, with a version that increases with
/// every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMap {
    version: u64,
    partitions: Vec<PartitionDescriptor>,
}

impl PartitionMap {
    /// A map of `partition_count` partitions of (as near as possible) equal width, at version 1,
    /// with ids `first_id`, `first_id + 1`, .... `replicas_for` places each partition's replicas
    /// (typically from `placement::place_new_partitions`).
    ///
    /// The replicas are checked by `validate_replicas_structure`, not the stricter zone rule, so a
    /// table can be created while a zone is down; `validate` reports the degradation.
    pub fn initial(
        partition_count: u64,
        first_id: PartitionId,
        mut replicas_for: impl FnMut(PartitionId, HashRange) -> Vec<ReplicaPlacement>,
    ) -> Result<PartitionMap, PartitionError> {
        if partition_count == 0 {
            return Err(PartitionError::Empty);
        }
        let mut partitions = Vec::new();
        for index in 0..partition_count {
            let id = PartitionId(first_id.0.checked_add(index).ok_or(PartitionError::IdInUse(first_id))?);
            let range = HashRange::even(index, partition_count);
            partitions.push(PartitionDescriptor { id, range, replicas: replicas_for(id, range) });
        }
        PartitionMap::from_parts(1, partitions)
    }

    /// A map from its parts (for instance decoded from the metadata store), refused unless the
    /// ranges tile the space, ids are unique and each partition's replicas are on distinct nodes.
    pub fn from_parts(version: u64, partitions: Vec<PartitionDescriptor>) -> Result<PartitionMap, PartitionError> {
        let map = PartitionMap { version, partitions };
        map.validate_ranges()?;
        map.validate_replicas_structure()?;
        Ok(map)
    }

    /// The map's version; every change returns a map with the next version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The partitions, sorted by range start.
    pub fn partitions(&self) -> &[PartitionDescriptor] {
        &self.partitions
    }

    /// The partition with id `id`.
    pub fn get(&self, id: PartitionId) -> Option<&PartitionDescriptor> {
        self.partitions.iter().find(|partition| partition.id == id)
    }

    /// The partition that owns `hash`. Always exists because the ranges tile the space.
    pub fn lookup(&self, hash: u64) -> &PartitionDescriptor {
        // The first range starts at 0, so at least one start is <= hash.
        let index = self.partitions.partition_point(|partition| partition.range.start() <= hash) - 1;
        let partition = &self.partitions[index];
        debug_assert!(partition.range.contains(hash));
        partition
    }

    /// The partitions whose ranges overlap `[start, end)` (`end == None` is the top of the space),
    /// in hash order: the partitions a Scan segment or a hash-range read must visit. Empty when
    /// the range is empty.
    pub fn partitions_for_range(&self, start: u64, end: Option<u64>) -> &[PartitionDescriptor] {
        if u128::from(start) >= end_u128(end) {
            return &[];
        }
        let first = self.partitions.partition_point(|partition| partition.range.end_u128() <= u128::from(start));
        let last = self.partitions.partition_point(|partition| u128::from(partition.range.start()) < end_u128(end));
        let found = &self.partitions[first..last];
        debug_assert!(found.iter().all(|partition| partition.range.overlaps(start, end)));
        found
    }

    /// Replica counts per node, over every node that holds at least one replica.
    pub fn replica_counts(&self) -> BTreeMap<NodeId, u64> {
        let mut counts = BTreeMap::new();
        for replica in self.partitions.iter().flat_map(|partition| &partition.replicas) {
            *counts.entry(replica.node).or_insert(0) += 1;
        }
        counts
    }

    /// The map with partition `partition` split at `at_hash` into `[start, at_hash)`, with id
    /// `new_ids[0]`, and `[at_hash, end)`, with id `new_ids[1]`. Both halves keep the parent's
    /// replicas, because a split is done in place on the nodes that already hold the data.
    ///
    /// Refused when `at_hash` is not strictly inside the range (a split at the start would leave
    /// an empty half) or when a new id is already used.
    pub fn split(
        &self,
        partition: PartitionId,
        at_hash: u64,
        new_ids: [PartitionId; 2],
    ) -> Result<PartitionMap, PartitionError> {
        let index = self.index_of(partition)?;
        let parent = &self.partitions[index];
        let (left, right) =
            parent.range.split_at(at_hash).ok_or(PartitionError::SplitPointOutsideRange { partition, at_hash })?;
        for id in new_ids {
            if self.get(id).is_some() {
                return Err(PartitionError::IdInUse(id));
            }
        }
        if new_ids[0] == new_ids[1] {
            return Err(PartitionError::IdInUse(new_ids[1]));
        }
        let halves = [
            PartitionDescriptor { id: new_ids[0], range: left, replicas: parent.replicas.clone() },
            PartitionDescriptor { id: new_ids[1], range: right, replicas: parent.replicas.clone() },
        ];
        let mut partitions = self.partitions.clone();
        partitions.splice(index..=index, halves);
        let map = PartitionMap { version: self.next_version()?, partitions };
        debug_assert_eq!(map.validate_ranges(), Ok(()));
        Ok(map)
    }

    /// The map with the replica of `partition` on `from` moved to `to` (a rebalance move or the
    /// replacement of a failed replica). Refused when `from` holds no replica of the partition or
    /// `to.node` already holds one. Zone diversity is not required, because a replacement while a
    /// zone is down may have to break it; `validate` reports that.
    pub fn move_replica(
        &self,
        partition: PartitionId,
        from: NodeId,
        to: ReplicaPlacement,
    ) -> Result<PartitionMap, PartitionError> {
        let index = self.index_of(partition)?;
        let descriptor = &self.partitions[index];
        let slot = descriptor
            .replicas
            .iter()
            .position(|replica| replica.node == from)
            .ok_or(PartitionError::NotAReplica { partition, node: from })?;
        if to.node != from && descriptor.has_replica_on(to.node) {
            return Err(PartitionError::DuplicateReplicaNode { partition, node: to.node });
        }
        let mut partitions = self.partitions.clone();
        partitions[index].replicas[slot] = to;
        Ok(PartitionMap { version: self.next_version()?, partitions })
    }

    /// Checks every invariant: `validate_ranges`, `validate_replicas_structure`, and zone
    /// diversity — when the replicas in the map span at least `REPLICA_COUNT` zones, every
    /// partition has exactly `REPLICA_COUNT` replicas in distinct zones. A map that fails only the
    /// zone rule is usable but degraded (a replica was replaced while a zone was down).
    pub fn validate(&self) -> Result<(), PartitionError> {
        self.validate_ranges()?;
        self.validate_replicas_structure()?;
        let zones: BTreeSet<ZoneId> =
            self.partitions.iter().flat_map(|partition| &partition.replicas).map(|replica| replica.zone).collect();
        if zones.len() >= REPLICA_COUNT {
            for partition in &self.partitions {
                if partition.replicas.len() != REPLICA_COUNT || partition.zones().len() != REPLICA_COUNT {
                    return Err(PartitionError::ZonesNotDistinct(partition.id));
                }
            }
        }
        Ok(())
    }

    /// Checks that there is at least one partition, the ranges are sorted and contiguous from hash
    /// 0 to the top of the space (so every hash is in exactly one range), and ids are unique.
    pub fn validate_ranges(&self) -> Result<(), PartitionError> {
        let last = self.partitions.last().ok_or(PartitionError::Empty)?;
        let mut expected_start = 0u128;
        let mut ids = BTreeSet::new();
        for partition in &self.partitions {
            if u128::from(partition.range.start()) != expected_start {
                return Err(PartitionError::NotContiguous(partition.id));
            }
            if !ids.insert(partition.id) {
                return Err(PartitionError::DuplicateId(partition.id));
            }
            expected_start = partition.range.end_u128();
        }
        if last.range.end().is_some() {
            return Err(PartitionError::TopNotCovered(last.id));
        }
        Ok(())
    }

    /// Checks that every partition has between one and `REPLICA_COUNT` replicas, on distinct
    /// nodes.
    pub fn validate_replicas_structure(&self) -> Result<(), PartitionError> {
        for partition in &self.partitions {
            let count = partition.replicas.len();
            if count == 0 || count > REPLICA_COUNT {
                return Err(PartitionError::ReplicaCount { partition: partition.id, count });
            }
            let mut nodes = BTreeSet::new();
            for replica in &partition.replicas {
                if !nodes.insert(replica.node) {
                    return Err(PartitionError::DuplicateReplicaNode { partition: partition.id, node: replica.node });
                }
            }
        }
        Ok(())
    }

    fn index_of(&self, partition: PartitionId) -> Result<usize, PartitionError> {
        self.partitions.iter().position(|p| p.id == partition).ok_or(PartitionError::UnknownPartition(partition))
    }

    fn next_version(&self) -> Result<u64, PartitionError> {
        self.version.checked_add(1).ok_or(PartitionError::VersionExhausted)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Three replicas on nodes 1, 2, 3 in zones 0, 1, 2.
    pub(crate) fn three_zones() -> Vec<ReplicaPlacement> {
        (0..3).map(|i| ReplicaPlacement { node: NodeId(i + 1), zone: ZoneId(i as u32) }).collect()
    }

    fn map_of(count: u64) -> PartitionMap {
        PartitionMap::initial(count, PartitionId(100), |_, _| three_zones()).unwrap()
    }

    #[test]
    fn initial_divides_the_space_evenly() {
        let map = map_of(4);
        assert_eq!(map.version(), 1);
        assert_eq!(map.validate(), Ok(()));
        let starts: Vec<u64> = map.partitions().iter().map(|p| p.range.start()).collect();
        assert_eq!(starts, vec![0, 1 << 62, 1 << 63, 3 << 62]);
        let ids: Vec<u64> = map.partitions().iter().map(|p| p.id.0).collect();
        assert_eq!(ids, vec![100, 101, 102, 103]);
        assert_eq!(PartitionMap::initial(0, PartitionId(0), |_, _| three_zones()), Err(PartitionError::Empty));
    }

    #[test]
    fn lookup_finds_the_owner_at_the_edges() {
        let map = map_of(4);
        assert_eq!(map.lookup(0).id, PartitionId(100));
        assert_eq!(map.lookup((1 << 62) - 1).id, PartitionId(100));
        assert_eq!(map.lookup(1 << 62).id, PartitionId(101));
        assert_eq!(map.lookup(u64::MAX).id, PartitionId(103));
    }

    #[test]
    fn split_replaces_the_parent_with_two_halves() {
        let map = map_of(2);
        let split = map.split(PartitionId(100), 1 << 62, [PartitionId(7), PartitionId(8)]).unwrap();
        assert_eq!(split.version(), 2);
        assert_eq!(split.validate(), Ok(()));
        let ids: Vec<u64> = split.partitions().iter().map(|p| p.id.0).collect();
        assert_eq!(ids, vec![7, 8, 101]);
        assert!(split.partitions().iter().all(|p| p.replicas == three_zones()));
        assert_eq!(split.lookup((1 << 62) - 1).id, PartitionId(7));
        assert_eq!(split.lookup(1 << 62).id, PartitionId(8));
    }

    #[test]
    fn split_refuses_bad_points_and_ids() {
        let map = map_of(2);
        let ids = [PartitionId(7), PartitionId(8)];
        let outside = |at_hash| PartitionError::SplitPointOutsideRange { partition: PartitionId(101), at_hash };
        assert_eq!(map.split(PartitionId(101), 1 << 63, ids), Err(outside(1 << 63)));
        assert_eq!(map.split(PartitionId(101), 5, ids), Err(outside(5)));
        assert_eq!(
            map.split(PartitionId(100), 1 << 63, ids),
            Err(PartitionError::SplitPointOutsideRange { partition: PartitionId(100), at_hash: 1 << 63 })
        );
        assert_eq!(map.split(PartitionId(9), 5, ids), Err(PartitionError::UnknownPartition(PartitionId(9))));
        assert_eq!(
            map.split(PartitionId(100), 5, [PartitionId(101), PartitionId(8)]),
            Err(PartitionError::IdInUse(PartitionId(101)))
        );
        assert_eq!(
            map.split(PartitionId(100), 5, [PartitionId(8), PartitionId(8)]),
            Err(PartitionError::IdInUse(PartitionId(8)))
        );
        // The parent's own id is retired by the split, but reusing it would let a stale router
        // entry name the wrong range.
        assert_eq!(
            map.split(PartitionId(100), 5, [PartitionId(100), PartitionId(8)]),
            Err(PartitionError::IdInUse(PartitionId(100)))
        );
    }

    #[test]
    fn partitions_for_range_returns_the_overlapping_run() {
        let map = map_of(4);
        let ids = |start, end| map.partitions_for_range(start, end).iter().map(|p| p.id.0).collect::<Vec<_>>();
        assert_eq!(ids(0, None), vec![100, 101, 102, 103]);
        assert_eq!(ids(0, Some(1)), vec![100]);
        assert_eq!(ids(0, Some(1 << 62)), vec![100]);
        assert_eq!(ids(0, Some((1 << 62) + 1)), vec![100, 101]);
        assert_eq!(ids((1 << 63) - 1, Some((1 << 63) + 1)), vec![101, 102]);
        assert_eq!(ids(u64::MAX, None), vec![103]);
        assert_eq!(ids(5, Some(5)), Vec::<u64>::new());
        // Found by the property test: a reversed, hence empty, range once matched everything.
        assert_eq!(ids(2622116588185659129, Some(1)), Vec::<u64>::new());
    }

    #[test]
    fn validate_catches_each_broken_invariant() {
        let map = map_of(2);
        let mut parts = map.partitions().to_vec();
        parts[1].id = parts[0].id;
        assert_eq!(PartitionMap::from_parts(1, parts), Err(PartitionError::DuplicateId(PartitionId(100))));

        let mut parts = map.partitions().to_vec();
        parts[1].range = HashRange::new((1 << 63) + 1, None).unwrap();
        assert_eq!(PartitionMap::from_parts(1, parts), Err(PartitionError::NotContiguous(PartitionId(101))));

        let mut parts = map.partitions().to_vec();
        parts[1].range = HashRange::new(1 << 63, Some(u64::MAX)).unwrap();
        assert_eq!(PartitionMap::from_parts(1, parts), Err(PartitionError::TopNotCovered(PartitionId(101))));

        let mut parts = map.partitions().to_vec();
        parts.swap(0, 1);
        assert_eq!(PartitionMap::from_parts(1, parts), Err(PartitionError::NotContiguous(PartitionId(101))));

        assert_eq!(PartitionMap::from_parts(1, Vec::new()), Err(PartitionError::Empty));

        let mut parts = map.partitions().to_vec();
        parts[0].replicas[1].node = NodeId(1);
        assert_eq!(
            PartitionMap::from_parts(1, parts),
            Err(PartitionError::DuplicateReplicaNode { partition: PartitionId(100), node: NodeId(1) })
        );

        let mut parts = map.partitions().to_vec();
        parts[0].replicas.clear();
        assert_eq!(
            PartitionMap::from_parts(1, parts),
            Err(PartitionError::ReplicaCount { partition: PartitionId(100), count: 0 })
        );

        // Two replicas in zone 0 while the map spans three zones: structurally fine, degraded.
        let mut parts = map.partitions().to_vec();
        parts[1].replicas[1].zone = ZoneId(0);
        let degraded = PartitionMap::from_parts(1, parts).unwrap();
        assert_eq!(degraded.validate(), Err(PartitionError::ZonesNotDistinct(PartitionId(101))));
    }

    #[test]
    fn fewer_than_three_zones_do_not_require_diversity() {
        let replicas = vec![
            ReplicaPlacement { node: NodeId(1), zone: ZoneId(0) },
            ReplicaPlacement { node: NodeId(2), zone: ZoneId(0) },
            ReplicaPlacement { node: NodeId(3), zone: ZoneId(1) },
        ];
        let map = PartitionMap::initial(3, PartitionId(0), |_, _| replicas.clone()).unwrap();
        assert_eq!(map.validate(), Ok(()));
    }

    #[test]
    fn move_replica_swaps_one_replica() {
        let map = map_of(2);
        let to = ReplicaPlacement { node: NodeId(9), zone: ZoneId(1) };
        let moved = map.move_replica(PartitionId(101), NodeId(2), to).unwrap();
        assert_eq!(moved.version(), 2);
        assert_eq!(moved.validate(), Ok(()));
        assert!(moved.get(PartitionId(101)).unwrap().has_replica_on(NodeId(9)));
        assert!(!moved.get(PartitionId(101)).unwrap().has_replica_on(NodeId(2)));
        assert!(moved.get(PartitionId(100)).unwrap().has_replica_on(NodeId(2)));
        assert_eq!(
            map.move_replica(PartitionId(101), NodeId(9), to),
            Err(PartitionError::NotAReplica { partition: PartitionId(101), node: NodeId(9) })
        );
        let onto_holder = ReplicaPlacement { node: NodeId(3), zone: ZoneId(2) };
        assert_eq!(
            map.move_replica(PartitionId(101), NodeId(2), onto_holder),
            Err(PartitionError::DuplicateReplicaNode { partition: PartitionId(101), node: NodeId(3) })
        );
    }

    /// A random sequence of split attempts: (which partition, where in its range).
    fn split_steps() -> impl Strategy<Value = Vec<(usize, u64, bool)>> {
        proptest::collection::vec((any::<usize>(), any::<u64>(), proptest::bool::weighted(0.1)), 0..60)
    }

    proptest! {
        #[test]
        fn random_splits_keep_the_map_valid(count in 1u64..6, steps in split_steps(), probes in proptest::collection::vec(any::<u64>(), 32)) {
            let mut map = map_of(count);
            let mut next_id = 1000u64;
            for (pick, offset, invalid) in steps {
                let parent = &map.partitions()[pick % map.partitions().len()];
                let width = parent.range.width();
                let at = if invalid || width < 2 {
                    // The range start itself, which every split must refuse.
                    parent.range.start()
                } else {
                    (u128::from(parent.range.start()) + 1 + u128::from(offset) % (width - 1)) as u64
                };
                let ids = [PartitionId(next_id), PartitionId(next_id + 1)];
                match map.split(parent.id, at, ids) {
                    Ok(split) => {
                        prop_assert_eq!(split.version(), map.version() + 1);
                        prop_assert_eq!(split.partitions().len(), map.partitions().len() + 1);
                        next_id += 2;
                        map = split;
                    }
                    Err(error) => {
                        prop_assert_eq!(at, parent.range.start());
                        prop_assert_eq!(error, PartitionError::SplitPointOutsideRange { partition: parent.id, at_hash: at });
                    }
                }
                prop_assert_eq!(map.validate(), Ok(()));
            }
            let boundaries = map.partitions().iter().flat_map(|p| [p.range.start(), p.range.start().wrapping_sub(1)]);
            for hash in probes.into_iter().chain(boundaries).chain([0, u64::MAX]) {
                let owners: Vec<PartitionId> =
                    map.partitions().iter().filter(|p| p.range.contains(hash)).map(|p| p.id).collect();
                prop_assert_eq!(owners.len(), 1, "hash {:#x} has owners {:?}", hash, owners);
                prop_assert_eq!(map.lookup(hash).id, owners[0]);
            }
        }

        #[test]
        fn partitions_for_range_agrees_with_a_linear_scan(
            count in 1u64..12, start in any::<u64>(), end in proptest::option::of(any::<u64>()),
        ) {
            let map = map_of(count);
            let expected: Vec<PartitionId> =
                map.partitions().iter().filter(|p| p.range.overlaps(start, end)).map(|p| p.id).collect();
            let found: Vec<PartitionId> = map.partitions_for_range(start, end).iter().map(|p| p.id).collect();
            prop_assert_eq!(found, expected);
        }
    }
}
