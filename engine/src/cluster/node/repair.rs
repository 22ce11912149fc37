//! Repair of a replica whose stored items are damaged: a scrubber finds the damage, and the
//! replica is rebuilt from a healthy one.
//!
//! Every node checks the item checksums of one partition replica it hosts per
//! `ClusterSettings::scrub_interval_ms`, round robin. A damaged item it reads twice the same way
//! is damaged on the disk (a damaged read differs from one read to the next). Such a replica
//! cannot be mended item by item: a value copied from another replica would come from another
//! applied index. It discards its state and rejoins its group as a replica that lost its store
//! does (removed, added back as a learner, caught up from the leader's snapshot, promoted),
//! but only with the leader's grant: the leader grants it when its group has every voter, no
//! learner, no membership change under way, and the other voter holds everything committed, and
//! holds further grants back for a while. So a quorum holding every committed entry remains
//! while the replica is rebuilt, and no two replicas of a group rebuild at once. A leader whose
//! own copy is damaged hands its leadership to a caught-up voter first.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{lock, snapshot, to_outcome, ClusterNode, GroupEvent, Outcome, StartFrom, META_GROUP, REJOINING_TAG};
use crate::api::ApiError;
use crate::cluster::wire::Mode;
use crate::replication::Replica;
use crate::storage::{Durability, WriteBatch};
use raft::prelude::ConfChangeType;

/// The operation a damaged replica sends to its group's nodes for a grant: body `{"Node": id}`.
pub const REPAIR_REPLICA: &str = "Squall.RepairReplica";
/// Attempts a damaged replica makes to be granted its rebuild before it waits for the next scrub.
const REPAIR_ATTEMPTS_MAX: u32 = 30;
/// Pause between a damaged replica's attempts.
const REPAIR_RETRY_MS: u64 = 1_000;
/// Ticks a leader refuses other grants after one, which covers the granted replica's rebuild
/// until the leader removes it (from then on its group's membership refuses them).
pub(super) const REPAIR_GRANT_HOLD_TICKS: u64 = 100;

/// A group leader's answer to a damaged replica asking to rebuild itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RepairAnswer {
    /// Not now (or not this node's to give).
    Refuse,
    /// The voter may discard its state and rejoin.
    Grant,
    /// The replica is a learner (a move's target damaged while it joined): it counts in no
    /// quorum, so it may always rebuild, and the leader removes it first, since its progress
    /// there would not fit the empty replica that comes back.
    GrantRemovingLearner,
}

/// Whether a group's leader lets the replica on `peer` discard its damaged state and rejoin.
/// `matched` gives a voter's matched index; `full` is the group's voter count; `held`: a grant
/// made a short while ago to another replica.
pub(super) fn repair_grant(
    (leads, me, peer): (bool, u64, u64),
    (voters, learners, pending): (&[u64], &[u64], bool),
    (commit, matched): (u64, &dyn Fn(u64) -> Option<u64>),
    full: Option<usize>,
    held: bool,
) -> RepairAnswer {
    if !leads || peer == me || pending || full.is_none() {
        return RepairAnswer::Refuse;
    }
    if learners.contains(&peer) {
        return RepairAnswer::GrantRemovingLearner;
    }
    let grant = !held
        && learners.is_empty()
        && full.is_some_and(|full| voters.len() == full)
        && voters.contains(&peer)
        && voters.iter().filter(|v| **v != me && **v != peer).all(|v| matched(*v).is_some_and(|m| m >= commit));
    if grant {
        RepairAnswer::Grant
    } else {
        RepairAnswer::Refuse
    }
}

/// A leader's answer to a damaged replica on `peer` (see [`repair_grant`]); `granted` is the
/// replica granted last and the tick it was granted at.
pub(super) fn answer_repair(replica: &mut Replica, peer: u64, ticks: u64, granted: &mut Option<(u64, u64)>) -> bool {
    let held = granted.is_some_and(|(other, at)| other != peer && ticks < at + REPAIR_GRANT_HOLD_TICKS);
    let matched = |v: u64| replica.matched(v);
    let grant = repair_grant(
        (replica.is_leader(), replica.id(), peer),
        (&replica.voters(), &replica.learners(), replica.has_pending_conf_change()),
        (replica.commit_index(), &matched),
        super::voters_full(replica.group()),
        held,
    );
    match grant {
        RepairAnswer::Refuse => return false,
        RepairAnswer::Grant => *granted = Some((peer, ticks)),
        RepairAnswer::GrantRemovingLearner => {
            if let Err(error) = replica.propose_conf_change(ConfChangeType::RemoveNode, peer) {
                tracing::debug!(group = replica.group(), peer, %error, "damaged learner not removed");
                return false;
            }
        }
    }
    tracing::info!(group = replica.group(), peer, ?grant, "a damaged replica may rebuild itself");
    true
}

/// Has a leader with a damaged copy hand its leadership to a voter holding everything
/// committed, other than one it let rebuild (`granted`, which may have discarded its state
/// already); returns whether it led.
pub(super) fn step_down(replica: &mut Replica, granted: Option<u64>) -> bool {
    if !replica.is_leader() {
        return false;
    }
    let commit = replica.commit_index();
    let me = replica.id();
    let successor = replica
        .voters()
        .into_iter()
        .find(|v| *v != me && Some(*v) != granted && replica.matched(*v).is_some_and(|m| m >= commit));
    if let Some(successor) = successor {
        tracing::info!(group = replica.group(), successor, "leader with a damaged copy hands over");
        replica.transfer_leadership(successor);
    }
    true
}

impl ClusterNode {
    /// Scrubs one hosted partition replica every `interval_ms`, round robin.
    pub(super) async fn scrub(node: Weak<ClusterNode>, interval_ms: u64) {
        let mut last = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            let Some(node) = node.upgrade() else { return };
            // A rejoining replica is scrubbed too: one rebuilt while its disk still damaged
            // what it wrote can otherwise never apply its log again, nor be rebuilt.
            let candidates: Vec<u64> =
                lock(&node.groups).iter().filter(|(g, h)| **g != META_GROUP && !h.retired).map(|(g, _)| *g).collect();
            let Some(group) = candidates.iter().copied().find(|g| *g > last).or_else(|| candidates.first().copied())
            else {
                continue;
            };
            last = group;
            // The scrub's reads are its own work on the modelled disk, not the next request's.
            let ((), work) = crate::resources::work_of(|| node.scrub_group(group));
            if let Some(resources) = &node.settings.resources {
                if !work.is_empty() {
                    resources.0.pay(crate::resources::Stage::Local, work).await;
                }
            }
        }
    }

    /// Checks the items of this node's replica of `group`, and starts its repair when one is
    /// damaged on the disk.
    fn scrub_group(self: &Arc<Self>, group: u64) {
        // A failed read is a failing disk: the next round looks again.
        let Ok(records) = self.unverified_records(group) else { return };
        let Some(key) = snapshot::damaged_item(&records) else { return };
        if !self.damaged_on_disk(key) {
            return;
        }
        if lock(&self.repairing).insert(group) {
            let key = crate::cluster::router::hex_of(key);
            tracing::warn!(group, %key, "item damaged on the disk; the replica will be rebuilt");
            let node = self.clone();
            tokio::spawn(async move {
                node.repair(group).await;
                lock(&node.repairing).remove(&group);
            });
        }
    }

    /// Whether the item at `key` reads back damaged twice, the same way.
    fn damaged_on_disk(&self, key: &[u8]) -> bool {
        let store = self.db.store();
        match (store.get(key), store.get(key)) {
            (Ok(Some(first)), Ok(Some(second))) => first == second && crate::model::decode_item(&first).is_err(),
            _ => false,
        }
    }

    /// Has this node's damaged replica of `group` rebuilt from a healthy one once its leader
    /// grants it.
    async fn repair(self: &Arc<Self>, group: u64) {
        for _ in 0..REPAIR_ATTEMPTS_MAX {
            let Some(inbox) = lock(&self.groups).get(&group).map(|h| h.inbox.clone()) else { return };
            let (reply, answer) = oneshot::channel();
            if inbox.try_send(GroupEvent::StepDown { reply }).is_ok()
                && !answer.await.unwrap_or(true)
                && self.repair_granted(group).await
            {
                self.rebuild(group);
                return;
            }
            tokio::time::sleep(Duration::from_millis(REPAIR_RETRY_MS)).await;
        }
        tracing::warn!(group, "no grant to rebuild a damaged replica yet; the next scrub asks again");
    }

    /// Asks the other nodes for a grant (only the group's leader answers yes).
    async fn repair_granted(&self, group: u64) -> bool {
        let body = serde_json::to_vec(&json!({"Node": self.me})).unwrap_or_default();
        let timeout = Duration::from_millis(self.settings.request_timeout_ms);
        // The leader this node knows of first, then every other node: a damaged replica that
        // cannot apply its log may hold a hint that is long out of date (that node may have
        // moved the replica away), and only the real leader grants.
        let leader = lock(&self.leader_hints).get(&group).copied().filter(|l| *l != self.me);
        let mut peers: Vec<u64> = leader.into_iter().collect();
        peers.extend(self.spec.ids().into_iter().filter(|p| *p != self.me && Some(*p) != leader));
        for peer in peers {
            let outcome = self.transport.request(peer, group, Mode::Replicated, None, REPAIR_REPLICA, &body, timeout);
            if let Ok(Outcome::Ok(answer)) = outcome.await {
                if serde_json::from_slice::<Value>(&answer).is_ok_and(|a| a["Granted"] == json!(true)) {
                    return true;
                }
            }
        }
        false
    }

    /// A damaged replica's request for a grant, passed to this node's replica of the group.
    pub(super) async fn repair_requested(&self, group: u64, body: &[u8]) -> Outcome {
        let peer = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["Node"].as_u64());
        let Some(peer) = peer.filter(|p| self.spec.node(*p).is_some()) else {
            return to_outcome(Err(ApiError::validation("Node must be a node of the cluster")));
        };
        let Some(inbox) = lock(&self.groups).get(&group).map(|h| h.inbox.clone()) else {
            return Outcome::NoReplica;
        };
        let (reply, answer) = oneshot::channel();
        if inbox.try_send(GroupEvent::Repair { node: peer, reply }).is_err() {
            return to_outcome(Ok(json!({"Granted": false})));
        }
        to_outcome(Ok(json!({"Granted": answer.await.unwrap_or(false)})))
    }

    /// Discards this node's replica of `group` (its raft state and the partition's records)
    /// and starts it again as a rejoining replica, which its leader takes back as a learner
    /// and fills from a snapshot.
    fn rebuild(self: &Arc<Self>, group: u64) {
        let records = match self.unverified_records(group) {
            Ok(records) => records,
            // The damaged item is not what failed here; the next scrub tries again.
            Err(error) => {
                tracing::warn!(group, %error, "cannot list the damaged replica's records");
                return;
            }
        };
        let Some(handle) = self.discard_replica(group, records, Some(REJOINING_TAG)) else { return };
        match self.start_group(group, &handle.voters, handle.range, false, StartFrom::Membership) {
            Ok(()) => tracing::info!(group, "damaged replica discarded; rejoining to be rebuilt"),
            Err(error) => tracing::error!(group, %error, "cannot start the damaged replica again"),
        }
    }

    /// Stops this node's replica of `group` and deletes its raft state and `records` in one
    /// synced batch, with the replica's `marker` tag written in the same batch; returns the
    /// stopped replica's handle (none when it is not hosted here or the write failed).
    pub(super) fn discard_replica(
        &self,
        group: u64,
        records: Vec<(Vec<u8>, Vec<u8>)>,
        marker: Option<u8>,
    ) -> Option<super::GroupHandle> {
        let handle = lock(&self.groups).remove(&group)?;
        handle.task.abort();
        lock(&self.leader_hints).remove(&group);
        let mut batch = WriteBatch::new();
        for (key, _) in records {
            batch.delete(key);
        }
        let raft_start = crate::replication::log_store::tag_key(group, 0);
        let raft_end = crate::replication::log_store::tag_key(group + 1, 0);
        batch.delete_range(raft_start, raft_end);
        if let Some(tag) = marker {
            batch.put(crate::replication::log_store::tag_key(group, tag), Vec::new());
        }
        if let Err(error) = self.db.store().write(batch, Durability::Sync) {
            tracing::error!(group, %error, "cannot delete a discarded replica's state");
            return None;
        }
        if let Err(error) = self.db.recount_table(super::table_of_group(group)) {
            tracing::warn!(group, %error, "cannot count the table's items after discarding a replica");
        }
        Some(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_grants_a_rebuild_only_while_the_rest_of_its_group_is_whole_and_current() {
        let caught_up = |_: u64| Some(100);
        let voters = [1, 2, 3];
        let grant = |peer: u64, voters: &[u64], learners: &[u64], matched: &dyn Fn(u64) -> Option<u64>, held: bool| {
            repair_grant((true, 1, peer), (voters, learners, false), (100, matched), Some(3), held)
                == RepairAnswer::Grant
        };
        assert!(grant(2, &voters, &[], &caught_up, false));
        assert!(!grant(1, &voters, &[], &caught_up, false), "a leader hands over before it rebuilds");
        assert!(!grant(2, &voters, &[], &caught_up, true), "another replica is being rebuilt");
        assert!(!grant(2, &[1, 2], &[], &caught_up, false), "a voter is missing");
        assert!(!grant(2, &voters, &[4], &caught_up, false), "a learner is joining");
        assert!(!grant(4, &voters, &[], &caught_up, false), "not a voter");
        let behind = |v: u64| if v == 3 { Some(90) } else { Some(100) };
        assert!(!grant(2, &voters, &[], &behind, false), "the other voter lacks committed entries");
        assert!(grant(3, &voters, &[], &behind, false), "the lagging voter itself may rebuild");
        let answer = |leads: bool, learners: &[u64], pending: bool, full: Option<usize>, peer: u64| {
            repair_grant((leads, 1, peer), (&voters, learners, pending), (100, &caught_up), full, false)
        };
        assert_eq!(answer(false, &[], false, Some(3), 2), RepairAnswer::Refuse, "not the leader");
        assert_eq!(answer(true, &[], true, Some(3), 2), RepairAnswer::Refuse, "change pending");
        assert_eq!(answer(true, &[], false, None, 2), RepairAnswer::Refuse, "metadata group");
        // A damaged learner (a move's target) counts in no quorum: it is removed and rebuilt,
        // even while another replica rebuilds.
        assert_eq!(answer(true, &[4], false, Some(3), 4), RepairAnswer::GrantRemovingLearner);
        assert_eq!(
            repair_grant((true, 1, 4), (&voters, &[4], false), (100, &caught_up), Some(3), true),
            RepairAnswer::GrantRemovingLearner
        );
        assert_eq!(answer(false, &[4], false, Some(3), 4), RepairAnswer::Refuse, "not the leader");
    }
}
