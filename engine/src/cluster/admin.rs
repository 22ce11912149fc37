//! The control plane's admin loop: which replica moves the cluster needs, decided from the
//! partition maps and which nodes have been heard from lately.
//!
//! The metadata group's leader runs the loop (`ClusterNode::administer`) every
//! `AdminSettings::interval_ms` and carries out what [`plan`] returns with
//! `ClusterNode::move_replica`, the same moves an operator asks for with
//! `SquallAdmin.MoveReplica`. Two kinds of move:
//!
//! - **Replacement.** A node silent for `replace_after_ms` is dead: every replica it holds is
//!   re-created on a live node of the same zone (`placement::replace`), which keeps each
//!   partition in three distinct zones. When its zone has no live node left (a zone outage), the
//!   replica waits for the zone to come back rather than put two replicas in one zone: the two
//!   other zones still make a quorum.
//! - **Balance.** With every node heard from and nothing else moving, one move at a time evens
//!   out each table's replicas between the nodes of a zone (`placement::rebalance_moves`): a
//!   node that came back after its replicas were replaced, or one added to a zone, takes its
//!   share again; so does a node whose partitions split more than the others'.
//!
//! A move that fails (its group changed leader, split, or timed out) is planned again in a later
//! round with the same source and target, so a move half done by one round is finished by the
//! next rather than refused as a concurrent one.

use std::collections::{BTreeMap, BTreeSet};

use crate::partition::{placement, NodeId, NodeInfo, PartitionMap, Placement};

/// When the admin loop runs and what it may do.
#[derive(Clone, Debug)]
pub struct AdminSettings {
    /// Time between rounds; zero turns the loop off.
    pub interval_ms: u64,
    /// Silence after which a node counts as dead and its replicas are replaced elsewhere.
    pub replace_after_ms: u64,
    /// Whether replicas move to even out each zone's nodes when no node is down.
    pub balance: bool,
    /// Moves under way at once.
    pub moves_in_flight_max: usize,
    /// Time one move may take before the round that started it gives up on it (a later round
    /// picks it up again).
    pub move_wait_ms: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            interval_ms: 1_000,
            // Long enough that a process restart or a short network partition does not move
            // data, short enough that a lost machine's partitions are back to three replicas
            // within minutes.
            replace_after_ms: 60_000,
            balance: true,
            moves_in_flight_max: 2,
            move_wait_ms: 60_000,
        }
    }
}

/// Why a move was planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The source node is dead.
    Replace,
    /// The source node holds more of the table's replicas than the target.
    Balance,
}

impl Reason {
    /// A short name for logs and traces.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Replace => "replace",
            Reason::Balance => "balance",
        }
    }
}

/// A replica move the admin loop decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    /// The partition's table.
    pub table_id: u64,
    /// The partition's group.
    pub group: u64,
    /// The node giving up its replica.
    pub from: u64,
    /// The node receiving it.
    pub to: u64,
    /// Why.
    pub reason: Reason,
}

/// What the admin loop sees in one round.
pub struct View<'a> {
    /// Every table's partition map, by table id.
    pub maps: &'a BTreeMap<u64, std::sync::Arc<PartitionMap>>,
    /// Every node of the cluster with its zone (replica counts are computed here).
    pub nodes: &'a [NodeInfo],
    /// Nodes silent for `replace_after_ms`.
    pub dead: &'a BTreeSet<u64>,
    /// Nodes silent for a little while (not dead yet): no move goes to them, and nothing is
    /// balanced while any exists.
    pub suspected: &'a BTreeSet<u64>,
    /// Moves under way, by group.
    pub in_flight: &'a BTreeMap<u64, PlannedMove>,
    /// Moves planned earlier that did not finish, by group: planned again as they were.
    pub unfinished: &'a BTreeMap<u64, PlannedMove>,
    /// Targets each group's leader refused because another membership change is under way
    /// (a move half done under an earlier metadata leader, to another node): tried last.
    pub refused: &'a BTreeMap<u64, BTreeSet<u64>>,
    /// Whether to plan balancing moves.
    pub balance: bool,
}

/// The moves to start this round, at most `budget` of them, none for a group already moving.
/// Replacements come first; balance only when no node is dead or suspected and nothing moves.
pub fn plan(view: &View<'_>, budget: usize, seed: u64) -> Vec<PlannedMove> {
    let mut counts: BTreeMap<NodeId, u64> = BTreeMap::new();
    for map in view.maps.values() {
        for partition in map.partitions() {
            for replica in &partition.replicas {
                *counts.entry(replica.node).or_default() += 1;
            }
        }
    }
    let live: Vec<NodeInfo> = view
        .nodes
        .iter()
        .filter(|n| !view.dead.contains(&n.id.0) && !view.suspected.contains(&n.id.0))
        .map(|n| NodeInfo { replica_count: counts.get(&n.id).copied().unwrap_or(0), ..*n })
        .collect();
    let mut moves = Vec::new();
    let room = |moves: &Vec<PlannedMove>| moves.len() + view.in_flight.len() < budget;
    for (&table_id, map) in view.maps {
        for partition in map.partitions() {
            if !room(&moves) {
                return moves;
            }
            let group = partition.id.0;
            if view.in_flight.contains_key(&group) {
                continue;
            }
            let Some(failed) = partition.replicas.iter().find(|r| view.dead.contains(&r.node.0)) else { continue };
            let earlier = view.unfinished.get(&group).filter(|m| {
                m.from == failed.node.0
                    && live.iter().any(|n| n.id.0 == m.to)
                    && !partition.has_replica_on(NodeId(m.to))
            });
            if let Some(earlier) = earlier {
                moves.push(*earlier);
                continue;
            }
            // Only a placement that keeps three zones: without a live node in the failed
            // replica's zone, the partition waits for the zone rather than doubling up. A
            // target the group refused goes last: the half-done move that made it refuse is
            // to another node, which a later round then tries.
            let refused = view.refused.get(&group);
            let untried: Vec<NodeInfo> =
                live.iter().copied().filter(|n| refused.is_none_or(|r| !r.contains(&n.id.0))).collect();
            let complete = |nodes: &[NodeInfo]| {
                placement::replace(partition, failed.node, nodes, seed)
                    .ok()
                    .filter(|choice| choice.placement == Placement::Complete)
            };
            if let Some(choice) = complete(&untried).or_else(|| complete(&live)) {
                moves.push(PlannedMove {
                    table_id,
                    group,
                    from: failed.node.0,
                    to: choice.replica.node.0,
                    reason: Reason::Replace,
                });
            }
        }
    }
    let calm = view.balance
        && view.dead.is_empty()
        && view.suspected.is_empty()
        && view.in_flight.is_empty()
        && moves.is_empty();
    if !calm || !room(&moves) {
        return moves;
    }
    // One balancing move per round, finishing an unfinished one first.
    if let Some(earlier) = view.unfinished.values().find(|m| m.reason == Reason::Balance) {
        let still_there = view
            .maps
            .get(&earlier.table_id)
            .and_then(|map| map.get(crate::partition::PartitionId(earlier.group)))
            .is_some_and(|p| p.has_replica_on(NodeId(earlier.from)) && !p.has_replica_on(NodeId(earlier.to)));
        if still_there {
            moves.push(*earlier);
            return moves;
        }
    }
    for (&table_id, map) in view.maps {
        if let Ok(balance) = placement::rebalance_moves(map, &live, 1) {
            if let Some(step) = balance.first() {
                moves.push(PlannedMove {
                    table_id,
                    group: step.partition.0,
                    from: step.from.0,
                    to: step.to.0,
                    reason: Reason::Balance,
                });
                break;
            }
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{HashRange, PartitionDescriptor, PartitionId, ReplicaPlacement, ZoneId};
    use std::sync::Arc;

    /// Nodes 1..=count, node `n` in zone `n % 3`.
    fn nodes(count: u64) -> Vec<NodeInfo> {
        (1..=count)
            .map(|n| NodeInfo { id: NodeId(n), zone: ZoneId((n % 3) as u32), replica_count: 0, load: None })
            .collect()
    }

    fn zone(n: u64) -> ZoneId {
        ZoneId((n % 3) as u32)
    }

    /// A table whose partitions `1..` sit on the given nodes.
    fn map(placements: &[[u64; 3]]) -> Arc<PartitionMap> {
        let count = placements.len() as u64;
        let partitions = placements
            .iter()
            .enumerate()
            .map(|(i, nodes)| PartitionDescriptor {
                id: PartitionId(i as u64 + 1),
                range: HashRange::even(i as u64, count),
                replicas: nodes.iter().map(|n| ReplicaPlacement { node: NodeId(*n), zone: zone(*n) }).collect(),
            })
            .collect();
        Arc::new(PartitionMap::from_parts(1, partitions).expect("valid map"))
    }

    fn run(
        maps: &BTreeMap<u64, Arc<PartitionMap>>,
        count: u64,
        dead: &[u64],
        unfinished: &[PlannedMove],
    ) -> Vec<PlannedMove> {
        let nodes = nodes(count);
        let dead: BTreeSet<u64> = dead.iter().copied().collect();
        let unfinished: BTreeMap<u64, PlannedMove> = unfinished.iter().map(|m| (m.group, *m)).collect();
        let view = View {
            maps,
            nodes: &nodes,
            dead: &dead,
            suspected: &BTreeSet::new(),
            in_flight: &BTreeMap::new(),
            unfinished: &unfinished,
            refused: &BTreeMap::new(),
            balance: true,
        };
        plan(&view, 8, 7)
    }

    #[test]
    fn a_dead_nodes_replicas_go_to_the_survivor_of_its_zone() {
        // Six nodes: zone 1 holds nodes 1 and 4.
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3], [4, 5, 6], [1, 5, 3]]))]);
        let moves = run(&maps, 6, &[1], &[]);
        assert_eq!(moves.len(), 2, "{moves:?}");
        for m in &moves {
            assert_eq!((m.from, m.to, m.reason), (1, 4, Reason::Replace));
        }
        assert_eq!(moves.iter().map(|m| m.group).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn a_zone_without_survivors_waits_rather_than_doubling_up() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3], [4, 5, 6]]))]);
        assert!(run(&maps, 6, &[1, 4], &[]).is_empty());
    }

    #[test]
    fn nothing_is_balanced_while_a_node_is_dead() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3], [1, 5, 6], [1, 2, 6]]))]);
        // Node 4 is dead but holds nothing; the zone-1 imbalance waits.
        assert!(run(&maps, 6, &[4], &[]).is_empty());
    }

    #[test]
    fn a_calm_cluster_balances_one_move_at_a_time() {
        // Node 1 holds all three zone-1 replicas; node 4 none.
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3], [1, 5, 6], [1, 2, 6]]))]);
        let moves = run(&maps, 6, &[], &[]);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!((moves[0].from, moves[0].to, moves[0].reason), (1, 4, Reason::Balance));
        // A balanced table moves nothing.
        let even = BTreeMap::from([(1, map(&[[1, 2, 3], [4, 5, 6]]))]);
        assert!(run(&even, 6, &[], &[]).is_empty());
    }

    #[test]
    fn an_unfinished_move_is_planned_again_as_it_was() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3]]))]);
        // Nine nodes: zone 1 holds 1, 4 and 7; an earlier round chose 7.
        let earlier = PlannedMove { table_id: 1, group: 1, from: 1, to: 7, reason: Reason::Replace };
        assert_eq!(run(&maps, 9, &[1], &[earlier]), vec![earlier]);
        // Unless its target died meanwhile.
        let moves = run(&maps, 9, &[1, 7], &[earlier]);
        assert_eq!(moves.iter().map(|m| m.to).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn moves_under_way_count_against_the_budget_and_are_not_planned_twice() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3], [1, 5, 6], [1, 2, 6]]))]);
        let nodes = nodes(6);
        let dead = BTreeSet::from([1]);
        let in_flight =
            BTreeMap::from([(1, PlannedMove { table_id: 1, group: 1, from: 1, to: 4, reason: Reason::Replace })]);
        let view = View {
            maps: &maps,
            nodes: &nodes,
            dead: &dead,
            suspected: &BTreeSet::new(),
            in_flight: &in_flight,
            unfinished: &BTreeMap::new(),
            refused: &BTreeMap::new(),
            balance: true,
        };
        let moves = plan(&view, 2, 7);
        assert_eq!(moves.iter().map(|m| m.group).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_refused_target_is_tried_after_the_others() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3]]))]);
        let nodes = nodes(9);
        let dead = BTreeSet::from([1]);
        let plan_with = |refused: &[u64]| {
            let refused = BTreeMap::from([(1, refused.iter().copied().collect::<BTreeSet<u64>>())]);
            let view = View {
                maps: &maps,
                nodes: &nodes,
                dead: &dead,
                suspected: &BTreeSet::new(),
                in_flight: &BTreeMap::new(),
                unfinished: &BTreeMap::new(),
                refused: &refused,
                balance: true,
            };
            plan(&view, 2, 7).iter().map(|m| m.to).collect::<Vec<_>>()
        };
        let first = plan_with(&[]);
        assert_eq!(first.len(), 1);
        let other = if first[0] == 4 { 7 } else { 4 };
        assert_eq!(plan_with(&first), vec![other]);
        // Every candidate refused: the first is tried again.
        assert_eq!(plan_with(&[4, 7]), first);
    }

    #[test]
    fn suspected_nodes_receive_nothing() {
        let maps = BTreeMap::from([(1, map(&[[1, 2, 3]]))]);
        let nodes = nodes(9);
        let dead = BTreeSet::from([1]);
        let suspected = BTreeSet::from([4]);
        let view = View {
            maps: &maps,
            nodes: &nodes,
            dead: &dead,
            suspected: &suspected,
            in_flight: &BTreeMap::new(),
            unfinished: &BTreeMap::new(),
            refused: &BTreeMap::new(),
            balance: true,
        };
        assert_eq!(plan(&view, 2, 7).iter().map(|m| m.to).collect::<Vec<_>>(), vec![7]);
    }
}
