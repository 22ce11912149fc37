//! One replica of one raft group, without I/O of its own: the caller feeds it ticks, messages and
//! proposals, and calls [`Replica::process_ready`], which persists what raft asks for in the
//! node's store, applies committed entries through a [`StateMachine`], and returns the messages to
//! send. The async driver around it lives in the cluster layer; tests drive it by hand.
//!
//! # Durability
//!
//! New log entries, the hard state and the conf state of one `Ready` are written in one
//! `Durability::Sync` batch before any message that depends on them leaves (a vote, an append
//! acknowledgement) and before anything is applied. Applied data is written `Buffered` by the
//! state machine together with the group's applied index; after a crash the entries after the
//! last durable applied index are applied again, so the log is the only record that must be
//! synced. Because the store writes in order, a later synced write also makes every earlier
//! buffered write durable.
//!
//! A hard state whose only change is the commit index is written `Buffered`, as etcd's raft
//! decides (`MustSync`): raft's safety rests on the log, the term and the vote, and a replica
//! that lost its latest commit index after a power failure learns it again from the leader. The
//! commit index is always written before the entries it lets apply, so whatever prefix of the
//! store survives holds an applied index no greater than the commit index, which reopening
//! requires. That halves the fsyncs of every replicated write.

use std::sync::Arc;

use protobuf::Message as PbMessage;
use raft::prelude::{ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, StateRole};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::log_store::{tag_key, RaftLogStore};
use crate::storage::{Durability, KvStore, WriteBatch};

/// The key tag of a group's applied index (`03 <group> 'a'`).
pub const APPLIED_TAG: u8 = b'a';
/// The log index (and term) at which a new group starts: its initial membership is a snapshot
/// there, and its first entry follows it.
pub const BOOTSTRAP_INDEX: u64 = 1;

/// Timing and flow-control settings of a replica.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    /// Ticks without a leader's heartbeat before a follower starts an election (the minimum; the
    /// seeded jitter adds up to as many again).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Largest total size of entries in one append message.
    pub append_bytes_max: u64,
    /// Append messages in flight to one follower before the leader waits.
    pub inflight_appends_max: usize,
    /// A leader whose log holds more entries than this proposes to compact it through what
    /// every replica holds (0: never).
    pub log_entries_max: u64,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            election_ticks: 10,
            heartbeat_ticks: 2,
            append_bytes_max: 1 << 20,
            inflight_appends_max: 64,
            log_entries_max: 10_000,
        }
    }
}

/// Errors of the replication layer.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// raft refused an operation or its storage failed.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The node's store failed; the replica must stop.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

/// What a group replicates: every replica applies the same committed entries in the same order.
pub trait StateMachine {
    /// Applies one committed normal entry with data. `applied` is the `(key, value)` recording
    /// this entry's index as applied: the state machine must write it in the same batch as the
    /// entry's data, if it writes anything. An error means the entry's writes did not reach the
    /// store: the replica stops, and reopened it applies the entry again.
    fn apply(&mut self, group: u64, entry: &Entry, applied: (Vec<u8>, Vec<u8>)) -> Result<(), ReplicationError>;

    /// Everything this replica's state for `group` holds, as applied so far: what a replica
    /// that lacks the log's compacted entries installs to continue from the applied index.
    fn snapshot(&mut self, group: u64) -> Result<Vec<u8>, ReplicationError>;

    /// Adds to `batch` the writes that replace this replica's state for `group` by a
    /// snapshot's `data`, and `applied` (the snapshot's index as the group's applied index).
    /// The replica writes the batch, synced, with the log's own changes.
    fn restore(
        &mut self,
        group: u64,
        data: &[u8],
        applied: (Vec<u8>, Vec<u8>),
        batch: &mut WriteBatch,
    ) -> Result<(), ReplicationError>;

    /// Called once a restored snapshot is durable, so state kept in memory follows the store.
    fn restored(&mut self, group: u64);
}

/// What one call to [`Replica::process_ready`] produced.
#[derive(Debug, Default)]
pub struct ReadyOutcome {
    /// Messages to send to other replicas, in order.
    pub messages: Vec<Message>,
    /// Whether this replica's role or the leader changed.
    pub leadership_changed: bool,
    /// Entries with data applied to the state machine.
    pub entries_applied: u64,
    /// Bytes of those entries.
    pub applied_bytes: u64,
    /// Whether a snapshot from the leader replaced this replica's state.
    pub snapshot_restored: bool,
    /// Bytes of snapshot data prepared for followers.
    pub snapshot_bytes_prepared: u64,
    /// Whether the group's membership changed (a membership change applied, or a snapshot
    /// brought one).
    pub membership_changed: bool,
}

/// One replica of one raft group.
pub struct Replica {
    raw: RawNode<RaftLogStore>,
    store: Arc<dyn KvStore>,
    group: u64,
    settings: ReplicaSettings,
    rng: ChaCha8Rng,
    /// (term, role, leader) when the election timeout was last drawn.
    timing_epoch: Option<(u64, StateRole, u64)>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("group", &self.group)
            .field("id", &self.raw.raft.id)
            .field("term", &self.raw.raft.term)
            .field("role", &self.raw.raft.state)
            .finish_non_exhaustive()
    }
}

/// The applied index of `group` as stored, 0 if none.
pub fn stored_applied_index(store: &dyn KvStore, group: u64) -> Result<u64, ReplicationError> {
    Ok(match store.get(&tag_key(group, APPLIED_TAG))? {
        Some(bytes) if bytes.len() == 8 => u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()),
        Some(_) => {
            return Err(ReplicationError::Storage(crate::storage::StorageError::Corruption(format!(
                "applied index of group {group} is not 8 bytes"
            ))))
        }
        None => 0,
    })
}

impl Replica {
    /// Opens the replica `id` of `group`. A group with no stored membership starts with `voters`
    /// (every replica of a new group must be given the same list), or, given none, uninitialised
    /// until a leader's snapshot brings the membership; an existing group keeps the membership
    /// its log records. `seed` drives the election timing jitter.
    pub fn open(
        store: Arc<dyn KvStore>,
        group: u64,
        id: u64,
        voters: &[u64],
        settings: ReplicaSettings,
        seed: u64,
    ) -> Result<Replica, ReplicationError> {
        let mut log = RaftLogStore::open(store.clone(), group)?;
        // Without voters the replica starts uninitialised: it learns the group's membership from
        // a leader's snapshot (a node that lost its store and rejoins).
        if log.conf_state().voters.is_empty() && !voters.is_empty() {
            assert!(voters.contains(&id), "replica {id} of group {group} is not among its voters {voters:?}");
            // A new group starts from a snapshot at `BOOTSTRAP_INDEX` that holds its membership,
            // identical on every voter, rather than from an empty log: the membership is then part
            // of the replicated state, and a replica that joins later, with nothing, can only be
            // given a snapshot (the entries before it never existed), never a replay from the
            // first entry that would miss the membership and whatever state the group started with
            // (a split's children start with their parent's data).
            let mut bootstrap = raft::prelude::Snapshot::default();
            let metadata = bootstrap.mut_metadata();
            metadata.index = BOOTSTRAP_INDEX;
            metadata.term = BOOTSTRAP_INDEX;
            metadata.set_conf_state(ConfState::from((voters.to_vec(), vec![])));
            let mut batch = WriteBatch::new();
            log.apply_snapshot(&bootstrap, &mut batch)?;
            store.write(batch, Durability::Sync)?;
        }
        // Entries through the compaction point were applied before they were compacted, and
        // the store writes in order, so their data is as durable as the compaction; the stored
        // applied index may be behind it when the last entries wrote nothing (a read, the
        // compaction entry itself).
        let applied =
            stored_applied_index(&*store, group)?.max(log.compaction_point().index).min(log.hard_state().commit);
        // raft-rs draws its randomized election timeout from an unseeded thread RNG whenever it
        // changes role or term; `settle_timing` replaces every such draw with one from the
        // seeded RNG before the next tick can use it.
        let config = Config {
            id,
            election_tick: settings.election_ticks,
            heartbeat_tick: settings.heartbeat_ticks,
            min_election_tick: settings.election_ticks,
            max_election_tick: 2 * settings.election_ticks,
            applied,
            max_size_per_msg: settings.append_bytes_max,
            max_inflight_msgs: settings.inflight_appends_max,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, log, &logger)?;
        // One stream per (group, replica): replicas of a group must not draw the same timeouts.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.set_stream(group);
        let mut replica = Replica { raw, store, group, settings, rng, timing_epoch: None };
        replica.settle_timing();
        Ok(replica)
    }

    /// The group id.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// This replica's id (its node id).
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Whether this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this replica knows of (0 if none).
    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The voters of the group.
    pub fn voters(&self) -> Vec<u64> {
        let mut voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        voters
    }

    /// The learners of the group (replicas catching up before they vote).
    pub fn learners(&self) -> Vec<u64> {
        let mut learners: Vec<u64> = self.raw.raft.prs().conf().learners().iter().copied().collect();
        learners.sort_unstable();
        learners
    }

    /// Leader only: the highest index `peer` is known to hold, if it is a member.
    pub fn matched(&self, peer: u64) -> Option<u64> {
        self.raw.raft.prs().get(peer).map(|pr| pr.matched)
    }

    /// Whether a membership change is proposed and not yet applied (raft takes one at a time).
    pub fn has_pending_conf_change(&self) -> bool {
        self.raw.raft.has_pending_conf()
    }

    /// Leader only: hands leadership to `peer` (a voter that has caught up) before this
    /// replica leaves the group.
    pub fn transfer_leadership(&mut self, peer: u64) {
        if self.is_leader() {
            self.raw.transfer_leader(peer);
            self.settle_timing();
        }
    }

    /// Proposes a membership change of one replica (leader only; see [`Replica::propose`]).
    pub fn propose_conf_change(&mut self, change: ConfChangeType, node: u64) -> Result<(), ReplicationError> {
        if !self.is_leader() {
            return Err(ReplicationError::Raft(raft::Error::ProposalDropped));
        }
        let change = ConfChange { change_type: change, node_id: node, ..Default::default() };
        self.raw.propose_conf_change(Vec::new(), change)?;
        self.settle_timing();
        Ok(())
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.raw.raft.raft_log.applied
    }

    /// The commit index.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.settle_timing();
    }

    /// Steps a message from another replica. Messages for another group or from a stale
    /// configuration are refused by raft and dropped here.
    pub fn step(&mut self, message: Message) {
        // A leader never sends a commit index past what it saw this replica hold, so a heartbeat
        // carrying one was meant for an earlier replica of the group on this node (dropped
        // after a move, then hosted again) and arrived late; raft-rs would panic on it. Raft
        // tolerates a lost message, so it is dropped.
        let last_index = self.raw.raft.raft_log.last_index();
        if message.get_msg_type() == MessageType::MsgHeartbeat && message.commit > last_index {
            tracing::warn!(
                group = self.group,
                from = message.from,
                commit = message.commit,
                last_index,
                "heartbeat beyond this replica's log dropped"
            );
            return;
        }
        if let Err(e) = self.raw.step(message) {
            tracing::debug!(group = self.group, error = %e, "raft message dropped");
        }
        self.settle_timing();
    }

    /// Proposes `data` with `context` (which comes back with the entry when it is applied).
    /// Fails with `ProposalDropped` when this replica is not the leader.
    pub fn propose(&mut self, context: Vec<u8>, data: Vec<u8>) -> Result<(), ReplicationError> {
        // raft-rs would forward a follower's proposal to the leader; here the replica a request
        // was given to answers for it, and the router finds leaders.
        if !self.is_leader() {
            return Err(ReplicationError::Raft(raft::Error::ProposalDropped));
        }
        self.raw.propose(context, data)?;
        self.settle_timing();
        Ok(())
    }

    /// Starts an election now instead of waiting for the election timeout: a new group's first
    /// replica does this so the group serves at once.
    pub fn campaign(&mut self) -> Result<(), ReplicationError> {
        self.raw.campaign()?;
        self.settle_timing();
        Ok(())
    }

    /// Whether the group's log holds nothing beyond its bootstrap here (a replica that has
    /// never taken part).
    pub fn is_new(&self) -> bool {
        self.raw.raft.raft_log.last_index() <= BOOTSTRAP_INDEX
    }

    /// The first index still in the log (one past the compaction point).
    pub fn first_index(&self) -> u64 {
        self.raw.store().compaction_point().index + 1
    }

    /// Entries in the log.
    pub fn log_entries(&self) -> u64 {
        self.raw.raft.raft_log.last_index().saturating_sub(self.first_index() - 1)
    }

    /// Leader only: the index through which the log may be compacted. That is the highest
    /// index every replica holds durably (a follower's acknowledged match, the leader's own
    /// persisted entries), so that no replica that keeps up needs a snapshot; but a replica
    /// lagging more than `retain_entries` behind what this replica applied does not hold the
    /// log back: it will catch up from a snapshot. Never past what this replica applied.
    /// `None` on a follower, whose view of the others is stale.
    pub fn compactable_index(&self, retain_entries: u64) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        let matched = self.raw.raft.prs().iter().map(|(_, pr)| pr.matched).min()?;
        let applied = self.applied_index();
        Some(matched.max(applied.saturating_sub(retain_entries)).min(applied))
    }

    /// Leader only: the followers that were sent a snapshot and have not acknowledged it.
    pub fn snapshots_in_flight(&self) -> Vec<u64> {
        if !self.is_leader() {
            return Vec::new();
        }
        let mut peers: Vec<u64> = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(_, pr)| pr.state == raft::ProgressState::Snapshot)
            .map(|(id, _)| *id)
            .collect();
        peers.sort_unstable();
        peers
    }

    /// Tells raft a snapshot sent to `peer` was lost (its acknowledgement never came): the
    /// leader probes the peer again and sends a new one if it still needs it.
    pub fn report_snapshot_lost(&mut self, peer: u64) {
        self.raw.report_snapshot(peer, raft::SnapshotStatus::Failure);
    }

    /// Removes the log's entries through `through` (never beyond what this replica applied).
    /// Only the log shrinks: the applied data holds everything those entries did.
    pub fn compact_log(&mut self, through: u64) -> Result<(), ReplicationError> {
        let through = through.min(self.applied_index());
        let mut batch = WriteBatch::new();
        self.raw.mut_store().compact(through + 1, &mut batch)?;
        if !batch.is_empty() {
            self.store.write(batch, Durability::Buffered)?;
        }
        Ok(())
    }

    /// Tells raft a peer could not be reached, so the leader probes it instead of streaming.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// Persists, applies and collects messages until raft has nothing ready.
    pub fn process_ready(&mut self, machine: &mut dyn StateMachine) -> Result<ReadyOutcome, ReplicationError> {
        let mut outcome = ReadyOutcome::default();
        while self.raw.has_ready() {
            let mut ready = self.raw.ready();
            if ready.ss().is_some() {
                outcome.leadership_changed = true;
            }
            // A leader may send appends before its own log is durable (raft counts its own
            // acknowledgement only after persistence); every other message waits below.
            outcome.messages.extend(ready.take_messages());

            let mut batch = WriteBatch::new();
            let restoring = !ready.snapshot().is_empty();
            if restoring {
                let snapshot = ready.snapshot();
                let index = snapshot.get_metadata().index;
                let applied = (tag_key(self.group, APPLIED_TAG), index.to_be_bytes().to_vec());
                machine.restore(self.group, &snapshot.data, applied, &mut batch)?;
                self.raw.mut_store().apply_snapshot(snapshot, &mut batch)?;
            }
            let log = self.raw.mut_store();
            let must_sync = restoring
                || !ready.entries().is_empty()
                || ready.hs().is_some_and(|hs| hs.term != log.hard_state().term || hs.vote != log.hard_state().vote);
            log.append(ready.entries(), &mut batch)?;
            if let Some(hard_state) = ready.hs() {
                log.set_hard_state(hard_state, &mut batch)?;
            }
            if !batch.is_empty() {
                // A new commit index alone is not synced: a replica that loses it learns it
                // again from the leader, and the store's order keeps it ahead of the applied
                // index written after it (see the module's documentation).
                let durability = if must_sync { log_durability() } else { Durability::Buffered };
                self.store.write(batch, durability)?;
            }
            if restoring {
                machine.restored(self.group);
                outcome.snapshot_restored = true;
                outcome.membership_changed = true;
            }
            outcome.messages.extend(ready.take_persisted_messages());
            let committed = ready.take_committed_entries();
            self.apply(machine, committed, &mut outcome)?;

            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                let mut hard_state = self.raw.store().hard_state().clone();
                hard_state.commit = commit;
                let mut batch = WriteBatch::new();
                self.raw.mut_store().set_hard_state(&hard_state, &mut batch)?;
                self.store.write(batch, Durability::Buffered)?;
            }
            outcome.messages.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(machine, committed, &mut outcome)?;
            self.raw.advance_apply();
        }
        if self.raw.store().snapshot_wanted() {
            match self.prepare_snapshot(machine) {
                Ok(bytes) => outcome.snapshot_bytes_prepared += bytes,
                // A read came back damaged: no snapshot this time. raft asks again, and a
                // later Ready reads the records again rather than send damaged ones.
                Err(ReplicationError::Storage(crate::storage::StorageError::Corruption(error))) => {
                    tracing::warn!(group = self.group, %error, "snapshot not prepared: a record read back damaged");
                }
                Err(error) => return Err(error),
            }
        }
        self.settle_timing();
        Ok(outcome)
    }

    /// Has the state machine produce a snapshot at the applied index for raft to send, and
    /// returns its size in bytes. Everything applied is in the store already (applied writes
    /// are buffered, never held back), so the machine's state is exactly the applied index's.
    fn prepare_snapshot(&mut self, machine: &mut dyn StateMachine) -> Result<u64, ReplicationError> {
        let index = self.applied_index();
        let term = self.raw.raft.raft_log.term(index)?;
        let data = machine.snapshot(self.group)?;
        let bytes = data.len() as u64;
        let mut snapshot = raft::prelude::Snapshot { data: data.into(), ..Default::default() };
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(self.raw.store().conf_state().clone());
        self.raw.mut_store().prepare_snapshot(snapshot);
        Ok(bytes)
    }

    fn apply(
        &mut self,
        machine: &mut dyn StateMachine,
        entries: Vec<Entry>,
        outcome: &mut ReadyOutcome,
    ) -> Result<(), ReplicationError> {
        for entry in entries {
            assert!(
                entry.index <= self.raw.raft.raft_log.committed,
                "group {} applies entry {} beyond the commit index",
                self.group,
                entry.index
            );
            match entry.get_entry_type() {
                EntryType::EntryNormal if !entry.data.is_empty() => {
                    let applied = (tag_key(self.group, APPLIED_TAG), entry.index.to_be_bytes().to_vec());
                    machine.apply(self.group, &entry, applied)?;
                    outcome.entries_applied += 1;
                    outcome.applied_bytes += entry.data.len() as u64;
                }
                // A membership change takes effect when applied, on every replica at the same
                // log position; the new membership is stored with the applied index.
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let conf_state = if entry.get_entry_type() == EntryType::EntryConfChange {
                        let change = ConfChange::parse_from_bytes(&entry.data).map_err(raft::Error::from)?;
                        self.raw.apply_conf_change(&change)?
                    } else {
                        let change = ConfChangeV2::parse_from_bytes(&entry.data).map_err(raft::Error::from)?;
                        self.raw.apply_conf_change(&change)?
                    };
                    let mut batch = WriteBatch::new();
                    self.raw.mut_store().set_conf_state(&conf_state, &mut batch)?;
                    batch.put(tag_key(self.group, APPLIED_TAG), entry.index.to_be_bytes().to_vec());
                    self.store.write(batch, Durability::Buffered)?;
                    outcome.membership_changed = true;
                    // A leader elected before it applied its own removal (the leader that
                    // proposed it failed first) would stay leader of a group without it, and
                    // raft-rs panics on the next acknowledgement it counts. It steps down.
                    if self.raw.raft.state == raft::StateRole::Leader && !conf_state.voters.contains(&self.id()) {
                        let term = self.raw.raft.term;
                        self.raw.raft.become_follower(term, raft::INVALID_ID);
                    }
                }
                // Empty entries (a new leader's first entry) change no data.
                _ => {}
            }
        }
        Ok(())
    }

    /// Draws raft's randomized election timeout from the seeded RNG (between one and two times
    /// the minimum) whenever term, role or leader changed since the last draw: raft resets its
    /// own unseeded draw exactly on such changes, and no tick can use that draw before this runs.
    fn settle_timing(&mut self) {
        let epoch = (self.raw.raft.term, self.raw.raft.state, self.raw.raft.leader_id);
        if self.timing_epoch == Some(epoch) {
            return;
        }
        self.timing_epoch = Some(epoch);
        let min = self.settings.election_ticks;
        let timeout = min + (self.rng.next_u64() % min as u64) as usize;
        self.raw.raft.set_randomized_election_timeout(timeout);
    }
}

/// Durability of raft's log and hard state: synced, unless the simulator planted the bug that
/// skips it.
fn log_durability() -> Durability {
    if crate::planted::active(crate::planted::Bug::SkipLogFsync) {
        Durability::Buffered
    } else {
        Durability::Sync
    }
}

#[cfg(test)]
mod tests;
