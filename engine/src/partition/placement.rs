//! Choosing which nodes hold a partition's replicas.
//!
//! Decisions as data: each function looks at the live nodes (and the map) and returns what to do;
//! the control plane carries it out and records it in a new map version. Nothing here reads a
//! clock or a random source: where nodes tie, a seed supplied by the caller (derived from the run's
//! seed) breaks the tie, so the same inputs always give the same choice.
//!
//! Preference order for a node, least loaded first: its reported load (a node that reports none
//! counts as idle, which favours newly joined nodes), then its replica count, then a seeded hash
//! of its id, then its id. The seeded hash is there because ordering ties by id alone would always
//! pile ties onto the lowest ids, and the seed would never matter.
//!
//! A cluster of one or two nodes (a development node, a calibration run, a simulated single
//! node) places every partition on all of its nodes: fewer replicas than `REPLICA_COUNT`, each
//! on its own node, reported `Degraded` like a placement that lacks zones. Refusing would leave
//! such a cluster unable to create a table at all.

use super::ids::{NodeId, PartitionId, ZoneId};
use super::map::{PartitionDescriptor, PartitionMap, ReplicaPlacement, REPLICA_COUNT};
use std::collections::{BTreeMap, BTreeSet};

/// A live node as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node.
    pub id: NodeId,
    /// Its zone.
    pub zone: ZoneId,
    /// Replicas it holds now (of every table).
    pub replica_count: u64,
    /// Measured load in any unit the caller compares consistently (e.g. consumed capacity units
    /// per second); `None` when not measured.
    pub load: Option<u64>,
}

/// Whether a placement keeps the zone-diversity invariant: `REPLICA_COUNT` replicas in distinct
/// zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The replicas are in `REPLICA_COUNT` distinct zones.
    Complete,
    /// Fewer than `REPLICA_COUNT` zones are available, so some replicas share a zone, or fewer
    /// than `REPLICA_COUNT` nodes, so the partition has fewer replicas; it should be re-placed
    /// when zones or nodes are added.
    Degraded,
}

/// The replicas chosen for a new partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReplicas {
    /// The chosen replicas, most preferred first.
    pub replicas: Vec<ReplicaPlacement>,
    /// Whether they are in distinct zones.
    pub placement: Placement,
}

/// The replica chosen to replace a failed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replacement {
    /// Where the new replica goes.
    pub replica: ReplicaPlacement,
    /// Whether the partition's replicas are in distinct zones once it is in place.
    pub placement: Placement,
}

/// A proposed move of one replica between two nodes of the same zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The partition whose replica moves.
    pub partition: PartitionId,
    /// The node giving up the replica.
    pub from: NodeId,
    /// The node receiving it.
    pub to: NodeId,
    /// The zone of both nodes.
    pub zone: ZoneId,
}

/// Why no placement could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// No live node to place a replica on.
    #[error("placing a partition needs at least {needed} live node, {available} are live")]
    NotEnoughNodes {
        /// Nodes needed.
        needed: usize,
        /// Live nodes given.
        available: usize,
    },
    /// The same node id was given twice.
    #[error("{0} is listed twice")]
    DuplicateNode(NodeId),
    /// The failed node holds no replica of the partition.
    #[error("{node} holds no replica of {partition}")]
    NotAReplica {
        /// The partition.
        partition: PartitionId,
        /// The node said to have failed.
        node: NodeId,
    },
    /// Every live node already holds a replica of the partition.
    #[error("no live node can take a replica of {0}")]
    NoCandidate(PartitionId),
}

/// Chooses `REPLICA_COUNT` nodes for a new partition: the least-loaded node of each of the
/// `REPLICA_COUNT` zones whose best nodes are least loaded. With fewer zones the remaining
/// replicas go to the least-loaded other nodes, and with fewer than `REPLICA_COUNT` nodes every
/// node holds a replica; either way the placement is `Degraded`. Only an empty node list is
/// refused.
pub fn choose_replicas(nodes: &[NodeInfo], seed: u64) -> Result<NewReplicas, PlacementError> {
    check_unique(nodes)?;
    if nodes.is_empty() {
        return Err(PlacementError::NotEnoughNodes { needed: 1, available: 0 });
    }
    let wanted = REPLICA_COUNT.min(nodes.len());
    let ranked = ranked(nodes, seed);
    let mut zones = BTreeSet::new();
    let mut chosen: Vec<&NodeInfo> = Vec::new();
    // First pass: the best node of each zone, best zones first.
    for node in &ranked {
        if chosen.len() < wanted && zones.insert(node.zone) {
            chosen.push(node);
        }
    }
    // Second pass, only when fewer than REPLICA_COUNT zones exist: the best remaining nodes.
    for node in &ranked {
        if chosen.len() < wanted && !chosen.iter().any(|c| c.id == node.id) {
            chosen.push(node);
        }
    }
    let replicas: Vec<ReplicaPlacement> =
        chosen.iter().map(|node| ReplicaPlacement { node: node.id, zone: node.zone }).collect();
    debug_assert_eq!(replicas.len(), wanted);
    debug_assert_eq!(replicas.iter().map(|r| r.node).collect::<BTreeSet<_>>().len(), wanted);
    Ok(NewReplicas { placement: placement_of(&replicas), replicas })
}

/// Chooses replicas for `partition_count` new partitions in turn, counting each choice against
/// the chosen nodes so the partitions of one table spread over the cluster.
pub fn place_new_partitions(
    partition_count: u64,
    nodes: &[NodeInfo],
    seed: u64,
) -> Result<Vec<NewReplicas>, PlacementError> {
    let mut nodes = nodes.to_vec();
    let mut placed = Vec::new();
    for index in 0..partition_count {
        let choice = choose_replicas(&nodes, mix(seed, index))?;
        for replica in &choice.replicas {
            if let Some(node) = nodes.iter_mut().find(|node| node.id == replica.node) {
                node.replica_count += 1;
            }
        }
        placed.push(choice);
    }
    Ok(placed)
}

/// Chooses where to re-create the replica of `partition` that was on `failed_node`, among the live
/// `nodes`. Never the failed node, never a node already holding the partition. In order of
/// preference: the failed replica's zone, when no other replica is there (the usual case: the
/// zone keeps its replica); another zone no replica is in; and, when fewer than `REPLICA_COUNT`
/// zones are alive, any other node, reported as `Degraded`.
pub fn replace(
    partition: &PartitionDescriptor,
    failed_node: NodeId,
    nodes: &[NodeInfo],
    seed: u64,
) -> Result<Replacement, PlacementError> {
    check_unique(nodes)?;
    let failed = partition
        .replicas
        .iter()
        .find(|replica| replica.node == failed_node)
        .ok_or(PlacementError::NotAReplica { partition: partition.id, node: failed_node })?;
    let remaining: Vec<ReplicaPlacement> =
        partition.replicas.iter().copied().filter(|replica| replica.node != failed_node).collect();
    let used_zones: BTreeSet<ZoneId> = remaining.iter().map(|replica| replica.zone).collect();
    let tier = |node: &NodeInfo| {
        if used_zones.contains(&node.zone) {
            2
        } else if node.zone == failed.zone {
            0
        } else {
            1
        }
    };
    let best = ranked(nodes, seed)
        .into_iter()
        .filter(|node| node.id != failed_node && !partition.has_replica_on(node.id))
        .min_by_key(|node| tier(node))
        .ok_or(PlacementError::NoCandidate(partition.id))?;
    let replica = ReplicaPlacement { node: best.id, zone: best.zone };
    let mut after = remaining;
    after.push(replica);
    Ok(Replacement { replica, placement: placement_of(&after) })
}

/// Proposes at most `max_moves` replica moves that even out replica counts between the live
/// `nodes` of each zone: each move takes a replica from the zone's fullest node to its emptiest,
/// until counts within every zone differ by at most one. Moves stay inside a zone, so they never
/// change which zones a partition is in. Replicas on nodes not in `nodes` (dead) are left to
/// `replace`. Moves are in the order they should run and assume the earlier ones have.
pub fn rebalance_moves(map: &PartitionMap, nodes: &[NodeInfo], max_moves: usize) -> Result<Vec<Move>, PlacementError> {
    check_unique(nodes)?;
    // Per zone, per node: the partitions it holds. Sorted maps keep every tie deterministic.
    let mut zones: BTreeMap<ZoneId, BTreeMap<NodeId, BTreeSet<PartitionId>>> = BTreeMap::new();
    for node in nodes {
        zones.entry(node.zone).or_default().insert(node.id, BTreeSet::new());
    }
    let zone_of: BTreeMap<NodeId, ZoneId> = nodes.iter().map(|node| (node.id, node.zone)).collect();
    for partition in map.partitions() {
        for replica in &partition.replicas {
            if let Some(zone) = zone_of.get(&replica.node) {
                if let Some(held) = zones.get_mut(zone).and_then(|zone| zone.get_mut(&replica.node)) {
                    held.insert(partition.id);
                }
            }
        }
    }
    let mut moves = Vec::new();
    while moves.len() < max_moves {
        // The zone with the widest spread goes first, so a small budget is spent where it helps
        // most.
        let widest = zones
            .iter()
            .filter_map(|(zone, held)| {
                let fullest = held.iter().max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(a.0)))?;
                let emptiest = held.iter().min_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(b.0)))?;
                Some((fullest.1.len() - emptiest.1.len(), *zone, *fullest.0, *emptiest.0))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((spread, zone, from, to)) = widest else { break };
        if spread <= 1 {
            break;
        }
        let held = &zones[&zone];
        // The fullest node holds more partitions than the emptiest, so at least one of them is
        // not on the emptiest node.
        let partition = *held[&from]
            .iter()
            .find(|partition| !held[&to].contains(partition))
            .expect("a fuller node always holds a partition the emptier one lacks");
        let held = zones.get_mut(&zone).expect("zone chosen above");
        held.get_mut(&from).expect("node chosen above").remove(&partition);
        held.get_mut(&to).expect("node chosen above").insert(partition);
        moves.push(Move { partition, from, to, zone });
    }
    Ok(moves)
}

/// Nodes from most to least preferred.
fn ranked(nodes: &[NodeInfo], seed: u64) -> Vec<&NodeInfo> {
    let mut ranked: Vec<&NodeInfo> = nodes.iter().collect();
    ranked.sort_by_key(|node| (node.load.unwrap_or(0), node.replica_count, mix(seed, node.id.0), node.id));
    ranked
}

fn placement_of(replicas: &[ReplicaPlacement]) -> Placement {
    let zones: BTreeSet<ZoneId> = replicas.iter().map(|replica| replica.zone).collect();
    if replicas.len() == REPLICA_COUNT && zones.len() == REPLICA_COUNT {
        Placement::Complete
    } else {
        Placement::Degraded
    }
}

fn check_unique(nodes: &[NodeInfo]) -> Result<(), PlacementError> {
    let mut seen = BTreeSet::new();
    for node in nodes {
        if !seen.insert(node.id) {
            return Err(PlacementError::DuplicateNode(node.id));
        }
    }
    Ok(())
}

/// A fixed, well-mixed hash of `seed` and `value` (SplitMix64's finaliser), used only to break
/// ties: different seeds order tied nodes differently, the same seed always the same way.
fn mix(seed: u64, value: u64) -> u64 {
    let mut z = seed ^ value.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::range::HashRange;
    use proptest::prelude::*;

    fn node(id: u64, zone: u32, replica_count: u64) -> NodeInfo {
        NodeInfo { id: NodeId(id), zone: ZoneId(zone), replica_count, load: None }
    }

    fn nodes_of(replicas: &[ReplicaPlacement]) -> Vec<NodeId> {
        replicas.iter().map(|replica| replica.node).collect()
    }

    #[test]
    fn new_partitions_take_the_least_loaded_node_of_each_zone() {
        let nodes = [node(1, 0, 5), node(2, 0, 1), node(3, 1, 0), node(4, 1, 3), node(5, 2, 2), node(6, 2, 9)];
        let choice = choose_replicas(&nodes, 0).unwrap();
        assert_eq!(choice.placement, Placement::Complete);
        assert_eq!(nodes_of(&choice.replicas), vec![NodeId(3), NodeId(2), NodeId(5)]);
    }

    #[test]
    fn measured_load_outranks_replica_count() {
        let mut nodes = [node(1, 0, 0), node(2, 0, 9), node(3, 1, 0), node(4, 2, 0)];
        nodes[0].load = Some(500);
        nodes[1].load = Some(10);
        let choice = choose_replicas(&nodes, 0).unwrap();
        assert!(nodes_of(&choice.replicas).contains(&NodeId(2)));
        assert!(!nodes_of(&choice.replicas).contains(&NodeId(1)));
    }

    #[test]
    fn with_more_zones_the_least_loaded_zones_win() {
        let nodes = [node(1, 0, 4), node(2, 1, 1), node(3, 2, 2), node(4, 3, 0)];
        let choice = choose_replicas(&nodes, 0).unwrap();
        assert_eq!(nodes_of(&choice.replicas), vec![NodeId(4), NodeId(2), NodeId(3)]);
    }

    #[test]
    fn ties_are_broken_by_the_seed_and_repeat_for_the_same_seed() {
        let nodes: Vec<NodeInfo> = (0..30).map(|i| node(i, (i % 3) as u32, 0)).collect();
        let first = choose_replicas(&nodes, 42).unwrap();
        assert_eq!(choose_replicas(&nodes, 42).unwrap(), first);
        let differs = (0..20).any(|seed| choose_replicas(&nodes, seed).unwrap() != first);
        assert!(differs, "the seed should change which of the tied nodes is chosen");
    }

    #[test]
    fn two_zones_give_a_degraded_placement() {
        let nodes = [node(1, 0, 0), node(2, 0, 0), node(3, 1, 0)];
        let choice = choose_replicas(&nodes, 0).unwrap();
        assert_eq!(choice.placement, Placement::Degraded);
        assert_eq!(nodes_of(&choice.replicas).into_iter().collect::<BTreeSet<_>>().len(), 3);
        assert_eq!(choose_replicas(&[nodes[0], nodes[0], nodes[1]], 0), Err(PlacementError::DuplicateNode(NodeId(1))));
    }

    #[test]
    fn one_or_two_nodes_hold_every_replica_degraded() {
        let nodes = [node(1, 0, 0), node(2, 1, 0)];
        let two = choose_replicas(&nodes, 3).unwrap();
        assert_eq!(two.placement, Placement::Degraded);
        assert_eq!(
            nodes_of(&two.replicas).into_iter().collect::<BTreeSet<_>>(),
            BTreeSet::from([NodeId(1), NodeId(2)])
        );
        // Two nodes of one zone as well.
        let same_zone = choose_replicas(&[node(1, 0, 0), node(2, 0, 0)], 3).unwrap();
        assert_eq!(same_zone.replicas.len(), 2);
        assert_eq!(same_zone.placement, Placement::Degraded);
        let one = choose_replicas(&nodes[..1], 3).unwrap();
        assert_eq!(one.replicas, vec![ReplicaPlacement { node: NodeId(1), zone: ZoneId(0) }]);
        assert_eq!(one.placement, Placement::Degraded);
        assert_eq!(choose_replicas(&[], 3), Err(PlacementError::NotEnoughNodes { needed: 1, available: 0 }));
    }

    #[test]
    fn a_table_on_one_or_two_nodes_has_a_valid_map() {
        for count in 1..=2u64 {
            let nodes: Vec<NodeInfo> = (1..=count).map(|i| node(i, (i - 1) as u32, 0)).collect();
            let placed = place_new_partitions(4, &nodes, 11).unwrap();
            let map = PartitionMap::initial(4, PartitionId(0), |id, _| placed[id.0 as usize].replicas.clone()).unwrap();
            assert_eq!(map.validate(), Ok(()));
            for partition in map.partitions() {
                assert_eq!(partition.replicas.len() as u64, count, "every node holds every partition");
            }
        }
    }

    #[test]
    fn three_nodes_or_more_still_get_three_replicas() {
        for count in 3..=7u64 {
            let nodes: Vec<NodeInfo> = (1..=count).map(|i| node(i, (i % 3) as u32, 0)).collect();
            let choice = choose_replicas(&nodes, 5).unwrap();
            assert_eq!(choice.replicas.len(), REPLICA_COUNT);
            assert_eq!(choice.placement, Placement::Complete);
        }
    }

    #[test]
    fn new_partitions_spread_over_the_cluster() {
        let nodes: Vec<NodeInfo> = (0..9).map(|i| node(i, (i % 3) as u32, 0)).collect();
        let placed = place_new_partitions(6, &nodes, 7).unwrap();
        let mut counts: BTreeMap<NodeId, u64> = BTreeMap::new();
        for choice in &placed {
            assert_eq!(choice.placement, Placement::Complete);
            for replica in &choice.replicas {
                *counts.entry(replica.node).or_default() += 1;
            }
        }
        // 18 replicas on 9 nodes: two each.
        assert!(counts.values().all(|&count| count == 2), "{counts:?}");
        let map = PartitionMap::initial(6, PartitionId(0), |id, _| placed[id.0 as usize].replicas.clone()).unwrap();
        assert_eq!(map.validate(), Ok(()));
    }

    fn partition(replicas: &[(u64, u32)]) -> PartitionDescriptor {
        PartitionDescriptor {
            id: PartitionId(1),
            range: HashRange::FULL,
            replicas: replicas.iter().map(|&(n, z)| ReplicaPlacement { node: NodeId(n), zone: ZoneId(z) }).collect(),
        }
    }

    #[test]
    fn replacement_stays_in_the_failed_zone() {
        let p = partition(&[(1, 0), (2, 1), (3, 2)]);
        let nodes = [node(2, 1, 0), node(3, 2, 0), node(4, 0, 9), node(5, 3, 0), node(6, 1, 0)];
        let replacement = replace(&p, NodeId(1), &nodes, 0).unwrap();
        assert_eq!(replacement.replica, ReplicaPlacement { node: NodeId(4), zone: ZoneId(0) });
        assert_eq!(replacement.placement, Placement::Complete);
    }

    #[test]
    fn replacement_moves_to_an_unused_zone_when_the_failed_zone_is_down() {
        let p = partition(&[(1, 0), (2, 1), (3, 2)]);
        let nodes = [node(2, 1, 0), node(3, 2, 0), node(6, 1, 0), node(5, 3, 7)];
        let replacement = replace(&p, NodeId(1), &nodes, 0).unwrap();
        assert_eq!(replacement.replica, ReplicaPlacement { node: NodeId(5), zone: ZoneId(3) });
        assert_eq!(replacement.placement, Placement::Complete);
    }

    #[test]
    fn replacement_with_two_zones_alive_is_degraded() {
        let p = partition(&[(1, 0), (2, 1), (3, 2)]);
        let nodes = [node(2, 1, 0), node(3, 2, 0), node(6, 1, 0)];
        let replacement = replace(&p, NodeId(1), &nodes, 0).unwrap();
        assert_eq!(replacement.replica, ReplicaPlacement { node: NodeId(6), zone: ZoneId(1) });
        assert_eq!(replacement.placement, Placement::Degraded);
    }

    #[test]
    fn replacement_restores_diversity_of_a_degraded_partition() {
        // Zone 0 holds two replicas after an earlier degraded replacement; the failed one is in
        // zone 0, so the replacement must go to zone 2, not back into zone 0.
        let p = partition(&[(1, 0), (7, 0), (2, 1)]);
        let nodes = [node(7, 0, 0), node(2, 1, 0), node(4, 0, 0), node(3, 2, 5)];
        let replacement = replace(&p, NodeId(1), &nodes, 0).unwrap();
        assert_eq!(replacement.replica, ReplicaPlacement { node: NodeId(3), zone: ZoneId(2) });
        assert_eq!(replacement.placement, Placement::Complete);
    }

    #[test]
    fn replacement_errors() {
        let p = partition(&[(1, 0), (2, 1), (3, 2)]);
        assert_eq!(
            replace(&p, NodeId(9), &[node(4, 0, 0)], 0),
            Err(PlacementError::NotAReplica { partition: PartitionId(1), node: NodeId(9) })
        );
        assert_eq!(
            replace(&p, NodeId(1), &[node(1, 0, 0), node(2, 1, 0), node(3, 2, 0)], 0),
            Err(PlacementError::NoCandidate(PartitionId(1)))
        );
    }

    #[test]
    fn rebalance_moves_within_a_zone_from_fullest_to_emptiest() {
        let nodes = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0)];
        let map = PartitionMap::initial(4, PartitionId(10), |_, _| {
            nodes.iter().map(|n| ReplicaPlacement { node: n.id, zone: n.zone }).collect()
        })
        .unwrap();
        // A new node joins zone 0: two of node 1's four replicas should move to it.
        let mut joined = nodes.to_vec();
        joined.push(node(4, 0, 0));
        let moves = rebalance_moves(&map, &joined, 10).unwrap();
        assert_eq!(
            moves,
            vec![
                Move { partition: PartitionId(10), from: NodeId(1), to: NodeId(4), zone: ZoneId(0) },
                Move { partition: PartitionId(11), from: NodeId(1), to: NodeId(4), zone: ZoneId(0) },
            ]
        );
        assert_eq!(rebalance_moves(&map, &joined, 1).unwrap().len(), 1);
        assert_eq!(rebalance_moves(&map, &nodes, 10).unwrap(), Vec::new());
    }

    /// Up to five zones of up to four nodes each, with random replica counts and loads.
    fn cluster() -> impl Strategy<Value = Vec<NodeInfo>> {
        proptest::collection::vec((0u32..5, 0u64..20, proptest::option::of(0u64..4)), 1..20).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (zone, replica_count, load))| NodeInfo {
                    id: NodeId(i as u64 * 7 + 1),
                    zone: ZoneId(zone),
                    replica_count,
                    load,
                })
                .collect()
        })
    }

    fn distinct_zones(nodes: &[NodeInfo]) -> usize {
        nodes.iter().map(|node| node.zone).collect::<BTreeSet<_>>().len()
    }

    /// Sum over zones of the squared replica counts of its live nodes: each move from a node with
    /// at least two more replicas than the receiver lowers it.
    fn imbalance(map: &PartitionMap, nodes: &[NodeInfo]) -> u64 {
        let counts = map.replica_counts();
        nodes.iter().map(|node| counts.get(&node.id).copied().unwrap_or(0).pow(2)).sum()
    }

    proptest! {
        #[test]
        fn placement_uses_distinct_nodes_and_zones(nodes in cluster(), seed in any::<u64>()) {
            match choose_replicas(&nodes, seed) {
                Ok(choice) => {
                    let chosen: BTreeSet<NodeId> = choice.replicas.iter().map(|r| r.node).collect();
                    prop_assert_eq!(chosen.len(), REPLICA_COUNT.min(nodes.len()));
                    prop_assert_eq!(choice.replicas.len(), chosen.len());
                    let zones: BTreeSet<ZoneId> = choice.replicas.iter().map(|r| r.zone).collect();
                    prop_assert_eq!(zones.len(), distinct_zones(&nodes).min(REPLICA_COUNT));
                    prop_assert_eq!(choice.placement == Placement::Complete, distinct_zones(&nodes) >= REPLICA_COUNT);
                    for replica in &choice.replicas {
                        prop_assert!(nodes.iter().any(|n| n.id == replica.node && n.zone == replica.zone));
                    }
                }
                Err(error) => {
                    prop_assert!(nodes.is_empty());
                    prop_assert_eq!(error, PlacementError::NotEnoughNodes { needed: 1, available: 0 });
                }
            }
        }

        #[test]
        fn replacement_never_reuses_a_holder(nodes in cluster(), seed in any::<u64>(), failed_pick in 0usize..3) {
            let Ok(choice) = choose_replicas(&nodes, seed) else { return Ok(()) };
            // The diversity reasoning below is about full replica sets; smaller clusters have
            // no node left to replace onto anyway.
            if choice.replicas.len() < REPLICA_COUNT {
                return Ok(());
            }
            let p = PartitionDescriptor { id: PartitionId(1), range: HashRange::FULL, replicas: choice.replicas.clone() };
            let failed = p.replicas[failed_pick];
            let live: Vec<NodeInfo> = nodes.iter().copied().filter(|n| n.id != failed.node).collect();
            match replace(&p, failed.node, &live, seed) {
                Ok(replacement) => {
                    prop_assert_ne!(replacement.replica.node, failed.node);
                    prop_assert!(!p.has_replica_on(replacement.replica.node));
                    let mut after: Vec<ReplicaPlacement> =
                        p.replicas.iter().copied().filter(|r| r.node != failed.node).collect();
                    after.push(replacement.replica);
                    let zones: BTreeSet<ZoneId> = after.iter().map(|r| r.zone).collect();
                    prop_assert_eq!(replacement.placement == Placement::Complete, zones.len() == REPLICA_COUNT);
                    // Diversity is restored whenever the live nodes make it possible.
                    let possible = live.iter().any(|n| !p.has_replica_on(n.id)
                        && after[..2].iter().all(|r| r.zone != n.zone))
                        && after[0].zone != after[1].zone;
                    prop_assert_eq!(replacement.placement == Placement::Complete, possible);
                    // The failed zone is kept when a live node there can take the replica.
                    let same_zone = live.iter().any(|n| n.zone == failed.zone && !p.has_replica_on(n.id));
                    if same_zone && after[..2].iter().all(|r| r.zone != failed.zone) {
                        prop_assert_eq!(replacement.replica.zone, failed.zone);
                    }
                }
                Err(error) => {
                    prop_assert_eq!(error, PlacementError::NoCandidate(PartitionId(1)));
                    prop_assert!(live.iter().all(|n| p.has_replica_on(n.id)));
                }
            }
        }

        #[test]
        fn rebalancing_keeps_zones_and_reduces_imbalance(
            nodes in cluster(), count in 1u64..12, seed in any::<u64>(), extra in cluster(), max_moves in 0usize..40,
        ) {
            let Ok(placed) = place_new_partitions(count, &nodes, seed) else { return Ok(()) };
            let map = PartitionMap::initial(count, PartitionId(0), |id, _| placed[id.0 as usize].replicas.clone()).unwrap();
            // Nodes join (ids offset so they are new), making the cluster uneven.
            let mut live = nodes.clone();
            live.extend(extra.into_iter().map(|n| NodeInfo { id: NodeId(n.id.0 + 1_000), ..n }));
            let moves = rebalance_moves(&map, &live, max_moves).unwrap();
            prop_assert!(moves.len() <= max_moves);
            let mut current = map.clone();
            for step in &moves {
                let before = current.get(step.partition).unwrap().zones();
                let to = live.iter().find(|n| n.id == step.to).unwrap();
                prop_assert_eq!(to.zone, step.zone);
                let next = current.move_replica(step.partition, step.from, ReplicaPlacement { node: to.id, zone: to.zone });
                prop_assert!(next.is_ok(), "{:?}", next);
                let next = next.unwrap();
                prop_assert_eq!(next.validate_replicas_structure(), Ok(()));
                prop_assert_eq!(next.get(step.partition).unwrap().zones(), before);
                prop_assert!(imbalance(&next, &live) < imbalance(&current, &live));
                current = next;
            }
            if moves.len() < max_moves {
                // Done before the budget ran out: every zone is within one replica.
                let counts = current.replica_counts();
                for zone in live.iter().map(|n| n.zone).collect::<BTreeSet<_>>() {
                    let in_zone: Vec<u64> = live.iter().filter(|n| n.zone == zone)
                        .map(|n| counts.get(&n.id).copied().unwrap_or(0)).collect();
                    prop_assert!(in_zone.iter().max().unwrap() - in_zone.iter().min().unwrap() <= 1);
                }
            }
            if map.validate().is_ok() && distinct_zones(&nodes) >= REPLICA_COUNT {
                prop_assert_eq!(current.validate(), Ok(()));
            }
        }
    }
}
