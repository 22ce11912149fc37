//! A clustered node: the metadata group, the partition groups it hosts, the state machine that
//! applies their committed entries to the node's [`Database`], and the router that sends every
//! API request to the group that owns it.
//!
//! # Replicated state machine
//!
//! A write is replicated as the API request itself (`operation`, body, the proposer's clock):
//! every replica of the partition applies the same requests in the same order through the same
//! [`Service`], so conditions, updates and index maintenance give the same result everywhere.
//! The proposing node answers the client with the result of its own application. A strongly
//! consistent read is a log entry too, run only by its proposer when applied: its place in the
//! log is its linearization point. Eventually consistent reads run on any replica's state.
//!
//! The metadata group (every node a voter) replicates CreateTable, UpdateTable, DeleteTable and
//! tagging the same way, so every node holds the whole catalog; applying CreateTable also fixes
//! the table's partition count, from which every node derives the same partition map.

mod repair;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raft::prelude::{ConfChangeType, Entry, Message as RaftMessage, MessageType};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::routing::{self, table_of_group};
use super::transport::{Inbound, OutcomeFuture, Transport, TransportError, TransportSettings};
use super::wire::{Mode, Outcome, PeerMessage};
use super::{admin, membership, snapshot, split, txn};
use super::{ClusterSpec, META_GROUP};
use crate::api::{ApiError, Service};
use crate::capacity::share::Demand;
use crate::capacity::{Placement, Slot, Usage};
use crate::catalog::TableMeta;
use crate::db::Database;
use crate::partition::{split_point, HashRange, PartitionMap};
use crate::replication::{Replica, ReplicaSettings, ReplicationError, StateMachine};
use crate::scope::{with_scope, CallScope};
use crate::storage::Durability;
use crate::throttle::{Admission, Throttle, Ticket};

/// Settings of a clustered node.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Real (or simulated) time between raft ticks.
    pub tick_ms: u64,
    /// Raft timing and flow control.
    pub replica: ReplicaSettings,
    /// Peer links.
    pub transport: TransportSettings,
    /// Time one routed attempt may take before it is abandoned as indeterminate.
    pub request_timeout_ms: u64,
    /// Attempts to find a partition's leader before a request fails as unavailable.
    pub route_attempts_max: u32,
    /// First wait between attempts; doubled each time up to `route_backoff_max_ms`.
    pub route_backoff_ms: u64,
    /// Longest wait between attempts.
    pub route_backoff_max_ms: u64,
    /// Events queued for one group before senders wait.
    pub group_inbox_max: usize,
    /// Events a group handles before it persists and sends (its batching window).
    pub group_batch_events_max: usize,
    /// A fixed partition count for new tables instead of DynamoDB's rule.
    pub partitions_per_table: Option<u64>,
    /// How often group leaders look for abandoned cross-partition transactions.
    pub txn_resolve_interval_ms: u64,
    /// Pause before a replica stopped by a storage failure is opened again.
    pub replica_restart_backoff_ms: u64,
    /// The node's modelled hardware, which its requests and replicas pay for their work in
    /// time (simulation only; a real node's hardware pays).
    pub resources: Option<crate::resources::Resources>,
    /// When leaders split their partitions on their own.
    pub split: split::SplitSettings,
    /// This node's store was lost and replaced by an empty one: rather than start its groups as
    /// the voter it was (it forgot its votes and the entries it acknowledged), each replica
    /// waits to be removed from its group and added back as a learner that catches up from a
    /// snapshot before it votes again. Ignored when the store is not empty.
    pub rejoin: bool,
    /// The control plane's admin loop, run by the metadata group's leader: replacing the
    /// replicas of dead nodes and balancing replicas between the nodes of each zone.
    pub admin: admin::AdminSettings,
    /// Time between two checks of a hosted partition replica's item checksums (one replica per
    /// check, round robin; 0: none). A replica damaged on the disk is rebuilt (see `repair`).
    pub scrub_interval_ms: u64,
    /// Time between two demand reports, from which the nodes divide each table's capacity
    /// among its partitions by what they are asked for (adaptive capacity, see
    /// `capacity::share`; 0: even shares). A report older than three intervals is dropped.
    pub capacity_share_interval_ms: u64,
    /// How long a partition's leader lets its group keep a member beyond its recorded
    /// membership (a learner, or a fourth voter) that makes no progress before removing it:
    /// what a move leaves behind when the router driving it stops half-way. Such a member
    /// blocks the repair of a damaged replica and every later move.
    pub stranded_member_ms: u64,
}

impl ClusterSettings {
    /// The transport's settings, with this node's modelled hardware if it has one.
    pub fn transport_settings(&self) -> TransportSettings {
        TransportSettings { resources: self.resources.clone(), ..self.transport.clone() }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            tick_ms: 100,
            replica: ReplicaSettings::default(),
            transport: TransportSettings::default(),
            request_timeout_ms: 5_000,
            route_attempts_max: 12,
            route_backoff_ms: 20,
            route_backoff_max_ms: 500,
            group_inbox_max: 4096,
            group_batch_events_max: 256,
            partitions_per_table: None,
            txn_resolve_interval_ms: 1_000,
            replica_restart_backoff_ms: 1_000,
            resources: None,
            split: split::SplitSettings::default(),
            rejoin: false,
            admin: admin::AdminSettings::default(),
            scrub_interval_ms: 10_000,
            capacity_share_interval_ms: 1_000,
            stranded_member_ms: 60_000,
        }
    }
}

/// Prefix of every table's partition count (the metadata group's records).
pub(crate) const PARTITION_COUNT_PREFIX: &[u8] = b"\x00m";

/// Key of a table's partition count (written when CreateTable is applied).
fn partition_count_key(table_id: u64) -> Vec<u8> {
    let mut key = PARTITION_COUNT_PREFIX.to_vec();
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// The partition-log operation that compacts every replica's log through an index every
/// replica holds: body `{"Through": index}`.
const COMPACT_LOG: &str = "Squall.CompactLog";
/// Ticks between a leader's checks of its log's length.
const COMPACT_CHECK_TICKS: u64 = 50;

/// Item keys a leader samples to choose a split point by size.
const SPLIT_SAMPLES_MAX: usize = 4_096;

/// Ticks a leader waits for a follower to acknowledge a snapshot before it counts the
/// snapshot as lost and lets raft send another.
const SNAPSHOT_ACK_TICKS_MAX: u64 = 100;
/// The tie-break of the admin loop's placements (see `ClusterNode::administer`).
const ADMIN_PLACEMENT_SEED: u64 = 0x5a11;
/// A Query a router sends to one of several partitions whose pages it merges (a global
/// index's): the partition's page, with every entry it evaluated listed
/// (`scope::report_evaluated`), so the merge can apply `Limit` and the page size.
pub const EVALUATED_QUERY: &str = "Squall.EvaluatedQuery";
/// A Scan, as [`EVALUATED_QUERY`] (a global index's, or a table's over several partitions).
pub const EVALUATED_SCAN: &str = "Squall.EvaluatedScan";

/// The API operation an index read of a router runs as, if `operation` is one.
fn evaluated_read(operation: &str) -> Option<&'static str> {
    match operation {
        EVALUATED_QUERY => Some("Query"),
        EVALUATED_SCAN => Some("Scan"),
        _ => None,
    }
}

/// Key of the node's start counter, which makes proposal ids unique across restarts.
const INCARNATION_KEY: &[u8] = &[0x00, b'i'];
/// Key present while this node rejoins after losing its store (see `ClusterSettings::rejoin`).
const REJOINING_KEY: &[u8] = &[0x00, b'j'];
/// Times a leader asks a stranded member's node to drop its replica before giving up.
const STRANDED_DROP_ATTEMPTS_MAX: u32 = 30;
/// Pause between the steps of a replica move.
const MOVE_STEP_INTERVAL_MS: u64 = 100;
/// The lowest incarnation of a node that restarted with an empty store (see `ClusterNode::start`).
const REJOIN_INCARNATION_MIN: u64 = 2048;
/// Key tag of a replica that is rejoining (`03 <group> 'j'`), until it votes again.
const REJOINING_TAG: u8 = b'j';
/// Ticks between a rejoining replica's requests to be replaced, and between a leader's checks
/// for learners ready to vote.
const MEMBERSHIP_CHECK_TICKS: u64 = 20;
/// The operation a rejoining replica sends to its group's nodes: body `{"Node": id}`.
pub const REPLACE_REPLICA: &str = "Squall.ReplaceReplica";
/// How long the `DelayRaftMessages` fault point holds a ready's messages: a few raft ticks'
/// worth of heartbeats late, short of an election timeout.
const BUGGIFY_DELAY_MESSAGES_MS: u64 = 150;

/// What a log entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq)]
struct Command {
    /// A strongly consistent read: only its proposer runs it.
    read_only: bool,
    /// The proposer's clock, so every replica records the same times.
    now_ms: u64,
    operation: String,
    body: Vec<u8>,
}

impl Command {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + self.operation.len() + 17);
        out.push(u8::from(self.read_only));
        out.extend_from_slice(&self.now_ms.to_le_bytes());
        out.extend_from_slice(&(self.operation.len() as u32).to_le_bytes());
        out.extend_from_slice(self.operation.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    fn decode(data: &[u8]) -> Option<Command> {
        let read_only = *data.first()? == 1;
        let now_ms = u64::from_le_bytes(data.get(1..9)?.try_into().ok()?);
        let op_len = u32::from_le_bytes(data.get(9..13)?.try_into().ok()?) as usize;
        let operation = std::str::from_utf8(data.get(13..13 + op_len)?).ok()?.to_string();
        let body = data.get(13 + op_len..)?.to_vec();
        Some(Command { read_only, now_ms, operation, body })
    }
}

/// Who proposed an entry: node, incarnation and proposal number.
fn proposal_context(node: u64, incarnation: u64, id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&node.to_le_bytes());
    out.extend_from_slice(&incarnation.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out
}

fn parse_context(context: &[u8]) -> Option<(u64, u64, u64)> {
    if context.len() != 24 {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(context[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    Some((word(0), word(1), word(2)))
}

/// An event for a group's task.
enum GroupEvent {
    Raft(RaftMessage),
    /// A rejoining replica on `node` asks to be removed and added back as a learner; the
    /// answer says whether it is a learner now.
    Replace {
        node: u64,
        reply: oneshot::Sender<RejoinStep>,
    },
    /// One step of moving the replica on `from` to `to` (`hosted`: the target runs a replica
    /// ready to be added).
    Move {
        from: u64,
        to: u64,
        hosted: bool,
        reply: oneshot::Sender<MoveStep>,
    },
    Propose {
        context: Vec<u8>,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), u64>>,
    },
    /// The group's settled voters and the applied index they were read at, if this replica
    /// leads and no membership change is under way (see `ClusterNode::record_settled_memberships`).
    Membership {
        reply: oneshot::Sender<Option<(Vec<u64>, u64)>>,
    },
    /// A damaged replica on `node` asks to rebuild itself; the answer is the leader's grant
    /// (see `repair`).
    Repair {
        node: u64,
        reply: oneshot::Sender<bool>,
    },
    /// This node's replica has a damaged copy: a leader hands its leadership over. The answer
    /// says whether it led.
    StepDown {
        reply: oneshot::Sender<bool>,
    },
}

/// What a group's task shares with the node.
struct GroupShared {
    applied: Arc<AtomicU64>,
    rejoining: Arc<std::sync::atomic::AtomicBool>,
    /// Whether a rejoining replica takes raft messages: only once a leader has told it that
    /// it is a learner. Before, the leader's view of it is the one from before its store was
    /// lost (entries it no longer holds), and what the leader sends would not fit its log.
    accepting: Arc<std::sync::atomic::AtomicBool>,
}

/// A running replica of a group on this node.
struct GroupHandle {
    inbox: mpsc::Sender<GroupEvent>,
    range: Option<HashRange>,
    /// The group's voters when it started here (a split's children get the same).
    voters: Vec<u64>,
    /// Whether this replica applied a split of the group: it refuses every later request, and
    /// keeps running only so that lagging replicas can still learn the split.
    retired: bool,
    /// The replica's applied index as its task last saw it: entries that write nothing (a
    /// read, a compaction, a leader's empty entry) count too, unlike the stored index.
    applied: Arc<AtomicU64>,
    /// Whether this replica is rejoining after the node lost its store: until its group has
    /// taken it back as a learner and promoted it, it neither votes nor campaigns nor serves
    /// reads.
    rejoining: Arc<std::sync::atomic::AtomicBool>,
    /// See `GroupShared::accepting`.
    accepting: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

type ApiResult = Result<Value, ApiError>;

/// A node of a cluster.
pub struct ClusterNode {
    me: u64,
    spec: ClusterSpec,
    settings: ClusterSettings,
    seed: u64,
    incarnation: u64,
    db: Arc<Database>,
    service: Service,
    transport: Arc<Transport>,
    groups: Mutex<BTreeMap<u64, GroupHandle>>,
    /// Partition maps by table id.
    maps: RwLock<BTreeMap<u64, Arc<PartitionMap>>>,
    /// The last leader seen per group.
    leader_hints: Mutex<BTreeMap<u64, u64>>,
    /// Results awaited by requests this node proposed, with the capacity they consumed.
    proposals: Mutex<BTreeMap<u64, oneshot::Sender<(ApiResult, Usage)>>>,
    next_proposal: AtomicU64,
    /// Capacity enforcement for the partitions this node serves; `None` when off.
    throttle: Option<Arc<Throttle>>,
    /// Splits this node's replicas applied that the metadata group has not recorded yet:
    /// parent group to (table id, split hash).
    unrecorded_splits: Mutex<BTreeMap<u64, (u64, u64)>>,
    /// Load seen per partition group since its last split check.
    heat: Mutex<BTreeMap<u64, split::HeatTracker>>,
    /// Log compactions applied and not yet carried out by their group's task: group to the
    /// index to compact through.
    compactions: Mutex<BTreeMap<u64, u64>>,
    /// Whether this node is rejoining after losing its store: groups it has no membership for
    /// start uninitialised and rejoining (see `ClusterSettings::rejoin`).
    rejoining: std::sync::atomic::AtomicBool,
    /// Moves the admin loop started and that have not ended, by group.
    admin_moves: Mutex<BTreeMap<u64, admin::PlannedMove>>,
    /// Moves the admin loop started that ended without finishing, by group: the next rounds
    /// plan them again as they were.
    admin_unfinished: Mutex<BTreeMap<u64, admin::PlannedMove>>,
    /// Targets groups refused to the admin loop as a concurrent membership change, by group.
    admin_refused: Mutex<BTreeMap<u64, std::collections::BTreeSet<u64>>>,
    /// Groups whose damaged replica here is being repaired (see `repair`).
    repairing: Mutex<BTreeSet<u64>>,
}

/// How a request sent to this node for one of its groups ended.
enum Served {
    /// It ran here: its answer, and the capacity it consumed.
    Answered(ApiResult, Usage),
    /// It did not run here (no replica, not the leader): the answer for the router.
    NotServed(Outcome),
}

/// What a request run on this node came to.
enum Handled {
    /// The operation's own answer.
    Answered(ApiResult),
    /// An answer already in the wire's terms: not served here, or an administrative reply.
    Outcome(Outcome),
}

fn to_outcome(result: ApiResult) -> Outcome {
    match result {
        Ok(value) => Outcome::Ok(serde_json::to_vec(&value).unwrap_or_default()),
        Err(error) => Outcome::Err(serde_json::to_vec(&error.to_json()).unwrap_or_default()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Errors starting a clustered node.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The node is not in the cluster description.
    #[error("node {0} is not in the cluster description")]
    NotInCluster(u64),
    /// The description is unusable.
    #[error(transparent)]
    Spec(#[from] super::SpecError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A replica could not start.
    #[error(transparent)]
    Replication(#[from] crate::replication::ReplicationError),
}

impl ClusterNode {
    /// Starts node `me` of `spec` over `db`: its metadata replica and the replicas of every
    /// partition placed on it. The caller serves the peer transport and the API. With a
    /// `throttle`, requests for a partition are admitted against its capacity where they
    /// arrive: at its leader, or for eventually consistent reads at the replica that serves
    /// them.
    pub fn start(
        me: u64,
        spec: ClusterSpec,
        db: Arc<Database>,
        settings: ClusterSettings,
        seed: u64,
        throttle: Option<Arc<Throttle>>,
    ) -> Result<Arc<ClusterNode>, ClusterError> {
        spec.validate()?;
        if spec.node(me).is_none() {
            return Err(ClusterError::NotInCluster(me));
        }
        let store = db.store().clone();
        let stored_incarnation = store.get(INCARNATION_KEY)?;
        let incarnation = match &stored_incarnation {
            Some(bytes) if bytes.len() == 8 => u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()) + 1,
            // A node that lost its store forgot which incarnations it used, and its transaction
            // and proposal ids must not repeat an earlier life's: it starts in the upper half of
            // the 12 bits a transaction id keeps, at a point drawn from the clock.
            None if settings.rejoin => REJOIN_INCARNATION_MIN + (Self::now_ms() / 1000) % REJOIN_INCARNATION_MIN,
            _ => 1,
        };
        let mut batch = crate::storage::WriteBatch::new();
        batch.put(INCARNATION_KEY.to_vec(), incarnation.to_be_bytes().to_vec());
        if settings.rejoin && stored_incarnation.is_none() {
            batch.put(REJOINING_KEY.to_vec(), Vec::new());
        } else if settings.rejoin {
            tracing::warn!(node = me, "--rejoin ignored: this node's store is not empty");
        }
        let rejoining = settings.rejoin && stored_incarnation.is_none() || store.get(REJOINING_KEY)?.is_some();
        store.write(batch, Durability::Sync)?;
        let transport = Transport::new(me, spec.peer_addresses()?, settings.transport_settings());
        let node = Arc::new(ClusterNode {
            me,
            service: Service::new(db.clone()).with_quota(throttle.as_ref().map(|t| t.quota()).unwrap_or_default()),
            db,
            spec,
            settings,
            seed,
            incarnation,
            transport,
            groups: Mutex::new(BTreeMap::new()),
            maps: RwLock::new(BTreeMap::new()),
            leader_hints: Mutex::new(BTreeMap::new()),
            proposals: Mutex::new(BTreeMap::new()),
            next_proposal: AtomicU64::new(1),
            throttle,
            unrecorded_splits: Mutex::new(BTreeMap::new()),
            heat: Mutex::new(BTreeMap::new()),
            compactions: Mutex::new(BTreeMap::new()),
            rejoining: std::sync::atomic::AtomicBool::new(rejoining),
            admin_moves: Mutex::new(BTreeMap::new()),
            admin_unfinished: Mutex::new(BTreeMap::new()),
            admin_refused: Mutex::new(BTreeMap::new()),
            repairing: Mutex::new(BTreeSet::new()),
        });
        if rejoining {
            tracing::info!(node = me, "rejoining the cluster with an empty store");
        }
        let voters = node.spec.ids();
        node.start_group(META_GROUP, &voters, None, false, StartFrom::Membership)?;
        tokio::spawn(Self::resolve_transactions(Arc::downgrade(&node), node.settings.txn_resolve_interval_ms));
        if node.settings.split.check_interval_ms > 0 {
            tokio::spawn(Self::split_when_needed(Arc::downgrade(&node), node.settings.split.clone()));
        }
        if node.settings.admin.interval_ms > 0 {
            tokio::spawn(Self::administer(Arc::downgrade(&node), node.settings.admin.clone()));
        }
        if node.settings.scrub_interval_ms > 0 {
            tokio::spawn(Self::scrub(Arc::downgrade(&node), node.settings.scrub_interval_ms));
        }
        if node.settings.capacity_share_interval_ms > 0 && node.throttle.is_some() {
            tokio::spawn(Self::share_capacity(Arc::downgrade(&node), node.settings.capacity_share_interval_ms));
        }
        node.transport.start_probes();
        for name in node.db.table_names() {
            if let Ok(table) = node.db.table(&name) {
                node.load_table(table.meta.id)?;
            }
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.me
    }

    /// The cluster description.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The database this node's replicas apply to.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// The per-table quotas this node enforces, if it enforces capacity.
    pub fn enforced_quota(&self) -> Option<crate::capacity::Quota> {
        self.throttle.as_ref().map(|throttle| throttle.quota())
    }

    /// What the peer transport delivers inbound messages to.
    pub fn inbound(self: &Arc<Self>) -> Arc<dyn Inbound> {
        Arc::new(ClusterInbound(self.clone()))
    }

    /// Groups hosted here and whether this node leads each.
    pub fn hosted_groups(&self) -> Vec<u64> {
        lock(&self.groups).keys().copied().collect()
    }

    /// Stops every group task (the node is shutting down).
    pub fn stop(&self) {
        self.transport.stop_probes();
        for (_, handle) in std::mem::take(&mut *lock(&self.groups)) {
            handle.task.abort();
        }
    }

    /// Starts this node's replica of `group`. A new group campaigns at once on its first
    /// voter, or on this node when `campaign` says so (the children of a split this node
    /// proposed), rather than after an election timeout. From a leader (`origin`), a replica with no
    /// stored membership starts uninitialised and takes its state from a leader's snapshot: the
    /// children of a split this node learned from a snapshot of the parent, whose state at the
    /// split this node never held (the parent's records here are the children's since).
    fn start_group(
        self: &Arc<Self>,
        group: u64,
        voters: &[u64],
        range: Option<HashRange>,
        campaign: bool,
        origin: StartFrom,
    ) -> Result<(), ClusterError> {
        let from_leader = origin != StartFrom::Membership;
        let retired = group != META_GROUP && split::retired_at(&self.db, group)?.is_some();
        let mut groups = lock(&self.groups);
        if groups.contains_key(&group) {
            return Ok(());
        }
        // A node that lost its store starts the groups it holds no membership of uninitialised:
        // it may have voted and acknowledged entries in them before, and forgot.
        let stored_conf = crate::replication::log_store::stored_conf_state(self.db.store().as_ref(), group)
            .map_err(|e| crate::storage::StorageError::Corruption(e.to_string()))?;
        let marker = crate::replication::log_store::tag_key(group, REJOINING_TAG);
        // A replica hosted for a move never held the group, so it has nothing it could have
        // forgotten: it joins as any move's target does, even on a node that is rejoining.
        // A replica rebuilt after damage (see `repair`) rejoins whatever the node does.
        let rejoining = origin != StartFrom::Hosted
            && ((self.rejoining.load(Ordering::Relaxed) && stored_conf.voters.is_empty())
                || self.db.store().get(&marker)?.is_some());
        if rejoining {
            // The replica stays rejoining across restarts until it votes again.
            self.db.put_record(marker, Vec::new())?;
        }
        let accepting = stored_conf.learners.contains(&self.me) || (from_leader && !rejoining);
        let accepting = Arc::new(std::sync::atomic::AtomicBool::new(accepting));
        let uninitialised = rejoining || (from_leader && stored_conf.voters.is_empty());
        let start_voters: &[u64] = if uninitialised { &[] } else { voters };
        let replica = Replica::open(
            self.db.store().clone(),
            group,
            self.me,
            start_voters,
            self.settings.replica.clone(),
            self.seed,
        )?;
        let mut replica = replica;
        if !uninitialised && replica.is_new() && (campaign || voters.first() == Some(&self.me)) {
            replica.campaign()?;
        }
        let rejoining = Arc::new(std::sync::atomic::AtomicBool::new(rejoining));
        let (tx, rx) = mpsc::channel(self.settings.group_inbox_max);
        let node = Arc::downgrade(self);
        let store = self.db.store().clone();
        let (me, settings, seed, voters_owned) = (self.me, self.settings.replica.clone(), self.seed, voters.to_vec());
        // After a storage failure the replica is opened again from what the store holds (the
        // in-memory raft state may be ahead of it), and applies again from its durable point.
        let reopen_voters = if uninitialised { Vec::new() } else { voters_owned };
        let reopen = move || Replica::open(store.clone(), group, me, &reopen_voters, settings.clone(), seed);
        let applied = Arc::new(AtomicU64::new(replica.applied_index()));
        let shared =
            GroupShared { applied: applied.clone(), rejoining: rejoining.clone(), accepting: accepting.clone() };
        let task = tokio::spawn(run_group(node, replica, rx, self.settings.clone(), reopen, shared));
        let handle =
            GroupHandle { inbox: tx, range, voters: voters.to_vec(), retired, applied, rejoining, accepting, task };
        groups.insert(group, handle);
        Ok(())
    }

    /// Loads the partition map of table `table_id` (its partition count is stored) and starts
    /// the replicas placed on this node.
    fn load_table(self: &Arc<Self>, table_id: u64) -> Result<(), ClusterError> {
        let count = match self.db.store().get(&partition_count_key(table_id))? {
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().unwrap_or([0, 0, 0, 0, 0, 0, 0, 1])),
            // A crash between applying CreateTable and recording its partition count: the count
            // follows from the table's settings, the same on every node.
            None => {
                let Some(table) = self.table_by_id(table_id) else {
                    return Ok(());
                };
                let count = routing::initial_partition_count(&table.meta, self.settings.partitions_per_table);
                self.db.put_record(partition_count_key(table_id), count.to_be_bytes().to_vec())?;
                count
            }
        };
        let initial = match routing::initial_map(table_id, count, &self.spec.node_infos()) {
            Ok(map) => map,
            Err(e) => {
                tracing::error!(table_id, error = %e, "cannot place the table's partitions");
                return Ok(());
            }
        };
        // Routing follows the splits and moves the metadata group recorded; the replicas
        // started here follow the splits this node's replicas applied, which may be ahead or
        // behind.
        let recorded = split::recorded_splits(&self.db, table_id)?;
        let memberships = membership::recorded_memberships(&self.db, table_id)?;
        let zone_of = self.zone_lookup();
        let map = membership::build_map(initial.clone(), &recorded, &memberships, &zone_of);
        self.maps.write().unwrap_or_else(|p| p.into_inner()).insert(table_id, Arc::new(map));
        // (group, range, voters, whether a split's child): a child this node has no membership
        // of was learned from a snapshot of its parent, or moved here, and must take its state
        // from a leader.
        let mut groups: Vec<(u64, HashRange, Vec<u64>, bool)> = initial
            .partitions()
            .iter()
            .map(|p| (p.id.0, p.range, p.replicas.iter().map(|r| r.node.0).collect(), false))
            .collect();
        while let Some((group, range, voters, child)) = groups.pop() {
            let voters = memberships.get(&group).cloned().unwrap_or(voters);
            let retired = split::retired_at(&self.db, group)?;
            let unrecorded_member = !voters.contains(&self.me) && self.holds_unrecorded_membership(table_id, group)?;
            if voters.contains(&self.me) || unrecorded_member {
                let origin = if unrecorded_member || child || memberships.contains_key(&group) {
                    StartFrom::Leader
                } else {
                    StartFrom::Membership
                };
                self.start_group(group, &voters, Some(range), false, origin)?;
                if let Some(at) = retired.filter(|_| !recorded.contains_key(&group)) {
                    lock(&self.unrecorded_splits).insert(group, (table_id, at));
                }
            }
            let Some(at) = retired.or_else(|| recorded.get(&group).copied()) else { continue };
            if let (Some(children), Some((left, right))) = (split::children_of(group), range.split_at(at)) {
                groups.push((children[0], left, voters.clone(), true));
                groups.push((children[1], right, voters, true));
            }
        }
        Ok(())
    }

    /// Whether this node's store holds a membership of `group` that names it and is newer than
    /// the group's record (see [`membership::restarts_unrecorded_member`]).
    fn holds_unrecorded_membership(&self, table_id: u64, group: u64) -> Result<bool, ClusterError> {
        let store = self.db.store().as_ref();
        let stored = crate::replication::log_store::stored_conf_state(store, group)
            .map_err(|e| crate::storage::StorageError::Corruption(e.to_string()))?;
        let members: Vec<u64> = stored.voters.iter().chain(&stored.learners).copied().collect();
        if !members.contains(&self.me) {
            return Ok(false);
        }
        let applied = crate::replication::replica::stored_applied_index(store, group)
            .map_err(|e| crate::storage::StorageError::Corruption(e.to_string()))?;
        let recorded_as_of = membership::recorded_membership(&self.db, table_id, group)?.map(|(_, as_of)| as_of);
        Ok(membership::restarts_unrecorded_member(self.me, &members, applied, recorded_as_of))
    }

    /// The zone of each node, as partition maps number zones.
    fn zone_lookup(&self) -> impl Fn(u64) -> crate::partition::ZoneId {
        let zones: BTreeMap<u64, crate::partition::ZoneId> =
            self.spec.node_infos().into_iter().map(|n| (n.id.0, n.zone)).collect();
        move |node| zones.get(&node).copied().unwrap_or(crate::partition::ZoneId(0))
    }

    fn drop_table(&self, table_id: u64) {
        self.maps.write().unwrap_or_else(|p| p.into_inner()).remove(&table_id);
        let mut groups = lock(&self.groups);
        let doomed: Vec<u64> =
            groups.keys().copied().filter(|g| *g != META_GROUP && table_of_group(*g) == table_id).collect();
        for group in doomed {
            if let Some(handle) = groups.remove(&group) {
                handle.task.abort();
            }
        }
    }

    /// The table with id `table_id`, if this node's catalog has it.
    fn table_by_id(&self, table_id: u64) -> Option<Arc<crate::db::Table>> {
        self.db.table_names().iter().find_map(|n| self.db.table(n).ok().filter(|t| t.meta.id == table_id))
    }

    /// The nodes partition group `group`'s replicas are on as the metadata group recorded
    /// them (empty for a group this node's maps do not hold).
    fn mapped_replicas(&self, group: u64) -> Vec<u64> {
        self.map_of(table_of_group(group))
            .and_then(|map| {
                map.get(crate::partition::PartitionId(group)).map(|p| p.replicas.iter().map(|r| r.node.0).collect())
            })
            .unwrap_or_default()
    }

    fn map_of(&self, table_id: u64) -> Option<Arc<PartitionMap>> {
        self.maps.read().unwrap_or_else(|p| p.into_inner()).get(&table_id).cloned()
    }

    fn now_ms() -> u64 {
        crate::api::ops::create_table::now_ms()
    }

    /// Applies one committed entry of `group` (see the module docs).
    fn apply_entry(self: &Arc<Self>, group: u64, entry: &Entry, applied: (Vec<u8>, Vec<u8>)) {
        let Some(command) = Command::decode(&entry.data) else {
            tracing::error!(group, index = entry.index, "undecodable log entry skipped");
            return;
        };
        let proposer = parse_context(&entry.context);
        let mine = proposer
            .and_then(|(node, incarnation, id)| (node == self.me && incarnation == self.incarnation).then_some(id));
        if command.read_only && mine.is_none() {
            return;
        }
        let (range, retired) = lock(&self.groups).get(&group).map_or((None, false), |g| (g.range, g.retired));
        let special = match command.operation.as_str() {
            // Every replica compacts at the same log position; the group's task does it, as
            // the log belongs to the replica, not to the state machine. A retired group's log
            // is compacted too, or its leader's proposals would grow it for good.
            COMPACT_LOG => {
                let through = serde_json::from_slice::<Value>(&command.body).ok().and_then(|b| b["Through"].as_u64());
                if let Some(through) = through {
                    lock(&self.compactions).insert(group, through);
                }
                Some(Ok(json!({})))
            }
            // A retired partition changes nothing more: routers look up the new partitions.
            _ if retired => Some(Err(split::stale_partition(group))),
            split::SPLIT if group != META_GROUP => {
                Some(self.apply_split(group, &command, applied.clone(), proposer.map(|p| p.0)))
            }
            split::RECORD_SPLIT if group == META_GROUP => Some(self.apply_record_split(&command, applied.clone())),
            membership::RECORD_MEMBERSHIP if group == META_GROUP => {
                Some(self.apply_record_membership(&command, applied.clone()))
            }
            _ => None,
        };
        if let Some(result) = special {
            if let Some(waiter) = mine.and_then(|id| lock(&self.proposals).remove(&id)) {
                answer_proposal(waiter, (result, Usage::default()));
            }
            return;
        }
        // A router's strongly consistent read of several partitions lists what it evaluated.
        let (operation, report_evaluated) = match evaluated_read(&command.operation) {
            Some(read) => (read, true),
            None => (command.operation.as_str(), false),
        };
        let scope = CallScope {
            batch_extra: vec![applied.clone()],
            durability: Some(Durability::Buffered),
            now_ms: Some(command.now_ms),
            hash_range: range,
            read_only: command.read_only,
            report_evaluated,
            ..CallScope::default()
        };
        // A partition entry's writes (several items of a batch, a transaction's commit and
        // release) reach the store as one batch with the applied index, so the entry is
        // wholly applied or not at all. The metadata group's catalog changes update the
        // node's catalog in memory as they write, and are written as they go.
        let collecting = (group != META_GROUP).then(crate::scope::begin_deferred);
        // The proposer's own application tells its admission what the request consumed.
        let (result, usage) = crate::scope::measure(|| {
            with_scope(scope, || {
                if txn::is_internal(operation) {
                    txn::apply(&self.service, group, operation, &command.body, command.now_ms)
                } else {
                    self.service.call(operation, &command.body)
                }
            })
        });
        if let Some(collecting) = collecting {
            let mut batch = collecting.finish();
            if !batch.is_empty() && !crate::scope::storage_failure_noted() {
                batch.put(applied.0, applied.1);
                if let Err(error) = self.db.store().write(batch, Durability::Buffered) {
                    tracing::warn!(group, index = entry.index, %error, "an applied entry's writes failed");
                    crate::scope::note_storage_failure();
                }
            }
        }
        if group == META_GROUP {
            self.after_meta_apply(&command, &result);
        }
        if let Some(id) = mine {
            if let Some(waiter) = lock(&self.proposals).remove(&id) {
                answer_proposal(waiter, (result, usage));
            }
        }
    }

    /// The partition-key hash of an item request for `group`, when automatic splits are on
    /// and its heat is to be recorded.
    fn heat_hash(&self, group: u64, operation: &str, body: &[u8]) -> Option<u64> {
        if self.settings.split.check_interval_ms == 0
            || group == META_GROUP
            || !matches!(operation, "PutItem" | "UpdateItem" | "DeleteItem" | "GetItem")
        {
            return None;
        }
        let request = serde_json::from_slice::<Value>(body).ok()?;
        let table = self.db.table(routing::table_name(&request).ok()?).ok()?;
        if table.meta.id != table_of_group(group) {
            return None;
        }
        routing::item_request_hash(&table.meta, operation, &request)
    }

    /// Adds a served item request on `hash` to its partition's heat.
    fn record_heat(&self, group: u64, hash: u64, usage: &Usage) {
        let units = |access: crate::capacity::Access| -> f64 {
            usage
                .tables
                .iter()
                .filter(|((_, a), _)| *a == access)
                .map(|(_, units)| units.table + units.indexes.values().sum::<f64>())
                .sum()
        };
        let (read, write) = (units(crate::capacity::Access::Read), units(crate::capacity::Access::Write));
        lock(&self.heat).entry(group).or_default().record(hash, read, write, self.settings.split.heat_samples_max);
    }

    /// Every `check_interval_ms`, the leader of each partition hosted here splits it when it
    /// has been hot for long enough (at the point that halves its sampled load, unless one key
    /// carries it) or has grown past the size limit (at the median of its items' bytes).
    async fn split_when_needed(node: std::sync::Weak<ClusterNode>, settings: split::SplitSettings) {
        let window_s = settings.check_interval_ms as f64 / 1_000.0;
        loop {
            tokio::time::sleep(Duration::from_millis(settings.check_interval_ms)).await;
            let Some(node) = node.upgrade() else { return };
            let hosted: Vec<(u64, HashRange, Vec<u64>)> = lock(&node.groups)
                .iter()
                .filter(|(g, h)| **g != META_GROUP && !h.retired)
                .filter_map(|(g, h)| Some((*g, h.range?, h.voters.clone())))
                .collect();
            let hints = lock(&node.leader_hints).clone();
            for (group, range, voters) in &hosted {
                if hints.get(group) != Some(&node.me) {
                    lock(&node.heat).remove(group);
                    continue;
                }
                let hot = lock(&node.heat).entry(*group).or_default().check(window_s, &settings);
                let for_capacity = node.capacity_split_point(*group).map(|at| (at, "capacity"));
                let by_heat = hot.and_then(|samples| match split_point::split_point_by_load(*range, &samples) {
                    Ok(at) => Some((at, "heat")),
                    Err(reason) => {
                        tracing::info!(group, %reason, "hot partition not split");
                        None
                    }
                });
                let split_at =
                    for_capacity.or(by_heat).or_else(|| node.size_split_point(*group, *range, &hosted, &settings));
                let Some((at, why)) = split_at else { continue };
                let body = serde_json::to_vec(&json!({"At": at})).unwrap_or_default();
                let outcome = node.route(*group, voters, Some(*range), Mode::Replicated, split::SPLIT, &body).await;
                match outcome {
                    Ok(_) => tracing::info!(group, at, why, "partition split on its own"),
                    Err(error) => tracing::info!(group, at, why, %error, "partition split refused"),
                }
            }
        }
    }

    /// The admin loop (see [`admin`]): every `interval_ms`, while this node leads the metadata
    /// group, starts the replica moves that replace dead nodes' replicas or balance a zone's
    /// nodes, up to `moves_in_flight_max` at a time.
    async fn administer(node: std::sync::Weak<ClusterNode>, settings: admin::AdminSettings) {
        loop {
            tokio::time::sleep(Duration::from_millis(settings.interval_ms)).await;
            let Some(node) = node.upgrade() else { return };
            node.record_settled_memberships().await;
            let leads = lock(&node.leader_hints).get(&META_GROUP) == Some(&node.me);
            if !leads || node.catalog_unready() {
                // A new leader plans from its own view; what this node remembered is stale.
                lock(&node.admin_unfinished).clear();
                lock(&node.admin_refused).clear();
                continue;
            }
            let ids = node.spec.ids();
            let replace_after = Duration::from_millis(settings.replace_after_ms);
            let dead: std::collections::BTreeSet<u64> =
                ids.iter().copied().filter(|n| node.transport.silent_for(*n) > replace_after).collect();
            let suspected: std::collections::BTreeSet<u64> =
                ids.iter().copied().filter(|n| !dead.contains(n) && node.transport.suspected(*n)).collect();
            let maps = node.maps.read().unwrap_or_else(|p| p.into_inner()).clone();
            let in_flight = lock(&node.admin_moves).clone();
            let unfinished = lock(&node.admin_unfinished).clone();
            let refused = lock(&node.admin_refused).clone();
            let infos = node.spec.node_infos();
            let view = admin::View {
                maps: &maps,
                nodes: &infos,
                dead: &dead,
                suspected: &suspected,
                in_flight: &in_flight,
                unfinished: &unfinished,
                refused: &refused,
                balance: settings.balance,
            };
            // One tie-break for every node, so that a new metadata leader with the same view
            // chooses the targets the old one did.
            for planned in admin::plan(&view, settings.moves_in_flight_max, ADMIN_PLACEMENT_SEED) {
                let Some(replicas) = maps
                    .get(&planned.table_id)
                    .and_then(|m| m.get(crate::partition::PartitionId(planned.group)))
                    .map(|p| p.replicas.iter().map(|r| r.node.0).collect::<Vec<_>>())
                else {
                    continue;
                };
                tracing::info!(
                    group = planned.group,
                    from = planned.from,
                    to = planned.to,
                    reason = planned.reason.name(),
                    "admin: moving a replica"
                );
                lock(&node.admin_moves).insert(planned.group, planned);
                let node = node.clone();
                let wait = Duration::from_millis(settings.move_wait_ms);
                tokio::spawn(async move {
                    let result = node
                        .move_replica(planned.table_id, planned.group, &replicas, planned.from, planned.to, wait)
                        .await;
                    lock(&node.admin_moves).remove(&planned.group);
                    match result {
                        Ok(_) => {
                            lock(&node.admin_unfinished).remove(&planned.group);
                            lock(&node.admin_refused).remove(&planned.group);
                            tracing::info!(group = planned.group, to = planned.to, "admin: replica moved");
                        }
                        Err(ApiError::ResourceInUse(reason)) => {
                            lock(&node.admin_unfinished).remove(&planned.group);
                            lock(&node.admin_refused).entry(planned.group).or_default().insert(planned.to);
                            tracing::info!(group = planned.group, %reason, "admin: move refused");
                        }
                        Err(error) => {
                            lock(&node.admin_unfinished).insert(planned.group, planned);
                            tracing::info!(group = planned.group, %error, "admin: move not finished");
                        }
                    }
                });
            }
        }
    }

    /// Records in the metadata group the voters of each group this node leads whose settled
    /// membership (no learner, no change under way, its full voter count) differs from the
    /// partition map. A move's last step, the record, is lost when the router or metadata
    /// leader driving it fails after the group removed the source; the group's own leader
    /// finishes it here, and the source node drops its replica when it applies the record.
    async fn record_settled_memberships(self: &Arc<Self>) {
        let groups: Vec<(u64, mpsc::Sender<GroupEvent>)> = lock(&self.groups)
            .iter()
            .filter(|(group, handle)| **group != META_GROUP && !handle.retired)
            .map(|(group, handle)| (*group, handle.inbox.clone()))
            .collect();
        let full = crate::partition::REPLICA_COUNT.min(self.spec.nodes.len());
        for (group, inbox) in groups {
            let table_id = table_of_group(group);
            let mapped: Option<Vec<u64>> = {
                let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
                maps.get(&table_id)
                    .and_then(|map| map.get(crate::partition::PartitionId(group)))
                    .map(|p| p.replicas.iter().map(|r| r.node.0).collect())
            };
            let Some(mut mapped) = mapped else { continue };
            mapped.sort_unstable();
            let (reply, answer) = oneshot::channel();
            if inbox.try_send(GroupEvent::Membership { reply }).is_err() {
                continue;
            }
            let Ok(Some((mut voters, as_of))) = answer.await else { continue };
            voters.sort_unstable();
            if voters.len() != full || voters == mapped {
                continue;
            }
            tracing::info!(group, ?voters, ?mapped, "recording a group's settled membership");
            let record = json!({"TableId": table_id, "Group": group, "Voters": voters, "AsOf": as_of});
            let body = serde_json::to_vec(&record).unwrap_or_default();
            if let Err(error) = self.route_meta(membership::RECORD_MEMBERSHIP, &body).await {
                tracing::debug!(group, %error, "settled membership not recorded; next round");
            }
        }
    }

    /// Where to split `group` so its provisioned table has the partitions its capacity needs
    /// (DynamoDB's rule, capped like a new table's count), if it is one of those to split now.
    fn capacity_split_point(&self, group: u64) -> Option<u64> {
        let table_id = table_of_group(group);
        let table = self.table_by_id(table_id)?;
        if table.meta.billing_mode != crate::catalog::BillingMode::Provisioned {
            return None;
        }
        let throughput = &table.meta.throughput;
        let needed =
            crate::partition::sizing::partitions_for_provisioned(throughput.read_units, throughput.write_units, 0)
                .min(routing::INITIAL_PARTITIONS_MAX);
        let map = self.map_of(table_id)?;
        let chosen = split::capacity_splits(&map, needed).contains(&crate::partition::PartitionId(group));
        chosen.then(|| map.get(crate::partition::PartitionId(group)).and_then(|p| p.range.midpoint())).flatten()
    }

    /// Where to split `group` for size, if its share of its table's bytes on this node is over
    /// the limit.
    fn size_split_point(
        &self,
        group: u64,
        range: HashRange,
        hosted: &[(u64, HashRange, Vec<u64>)],
        settings: &split::SplitSettings,
    ) -> Option<(u64, &'static str)> {
        let table_id = table_of_group(group);
        let table = self.table_by_id(table_id)?;
        let bytes = u64::try_from(table.stats(crate::db::keys::TABLE_INDEX_ID).size_bytes).unwrap_or(0);
        let hosted_width: u128 =
            hosted.iter().filter(|(g, ..)| table_of_group(*g) == table_id).map(|(_, r, _)| r.width()).sum();
        if !split::oversized(bytes, range, hosted_width, settings) {
            return None;
        }
        let samples = split::size_samples(&self.db, table_id, range, SPLIT_SAMPLES_MAX).ok()?;
        split_point::split_point_by_size(range, &samples).ok().map(|at| (at, "size"))
    }

    /// The body of a split of `group` with its hash: the one asked for, or else the weighted
    /// median of this replica's items by size (the leader's view, which every replica then
    /// applies).
    fn choose_split(&self, group: u64, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let mut request: Value = serde_json::from_slice(body).map_err(|e| ApiError::Serialization(e.to_string()))?;
        if request.get("At").is_some() {
            return Ok(body.to_vec());
        }
        let range = lock(&self.groups)
            .get(&group)
            .and_then(|g| g.range)
            .ok_or_else(|| ApiError::ResourceNotFound(format!("partition group {group:#x} is not hosted here")))?;
        let samples = split::size_samples(&self.db, table_of_group(group), range, SPLIT_SAMPLES_MAX)?;
        let at = split_point::split_point_by_size(range, &samples)
            .map_err(|reason| ApiError::validation(format!("partition group {group:#x} cannot be split: {reason}")))?;
        request["At"] = json!(at);
        Ok(serde_json::to_vec(&request).unwrap_or_default())
    }

    /// Applies a split of partition `group` (see [`split`]): every replica retires the group at
    /// this entry and starts its two children on the same nodes, which campaign at once on the
    /// proposer. Refused, the same way on every replica, when the hash is not strictly inside
    /// the range, the split tree is too deep, or the partition holds prepared transactions.
    fn apply_split(
        self: &Arc<Self>,
        group: u64,
        command: &Command,
        applied: (Vec<u8>, Vec<u8>),
        proposer: Option<u64>,
    ) -> ApiResult {
        let body: Value = serde_json::from_slice(&command.body).map_err(|e| ApiError::Serialization(e.to_string()))?;
        let at = body.get("At").and_then(Value::as_u64).ok_or_else(|| ApiError::validation("At is required"))?;
        let Some(range) = lock(&self.groups).get(&group).and_then(|g| g.range) else {
            return Err(ApiError::Internal(format!("group {group:#x} has no range")));
        };
        range
            .split_at(at)
            .ok_or_else(|| ApiError::validation(format!("split hash {at:#x} is not strictly inside {range:?}")))?;
        let children = split::children_of(group)
            .ok_or_else(|| ApiError::validation(format!("partition group {group:#x} cannot be split further")))?;
        // Read strictly: a failed read must stop this replica, not let it alone split.
        if txn::has_records(&self.db, group)? {
            return Err(ApiError::ResourceInUse(format!(
                "partition group {group:#x} holds prepared transactions; split it later"
            )));
        }
        // The children start on the group's voters: not in the middle of a move or a rejoin,
        // whose later steps the children would not take. The stored membership is the one at
        // this entry's log position on every replica.
        let conf = crate::replication::log_store::stored_conf_state(self.db.store().as_ref(), group).map_err(|e| {
            // A failed read stops this replica rather than let it alone refuse the split.
            crate::scope::note_storage_failure();
            ApiError::Internal(e.to_string())
        })?;
        let full = crate::partition::REPLICA_COUNT.min(self.spec.nodes.len());
        if !conf.learners.is_empty() || conf.voters.len() != full {
            return Err(ApiError::ResourceInUse(format!(
                "partition group {group:#x} is changing its replicas; split it later"
            )));
        }
        let mut puts = vec![(split::retired_key(group), at.to_be_bytes().to_vec()), applied];
        // Transactions this partition decided stay decided: a participant still finishing one
        // asks a child for the outcome.
        for (txid, value) in txn::outcomes(&self.db, group).map_err(ApiError::from)? {
            for child in children {
                puts.push((txn::outcome_key(child, txid), value.clone()));
            }
        }
        let deletes = if crate::planted::active(crate::planted::Bug::SplitDropsBoundary) {
            self.first_items_from(group, at).map_err(ApiError::from)?
        } else {
            Vec::new()
        };
        let scope = CallScope { durability: Some(Durability::Buffered), ..CallScope::default() };
        with_scope(scope, || self.db.write_records(puts, deletes)).map_err(ApiError::from)?;
        self.retire(group, at, proposer == Some(self.me), false);
        tracing::info!(group, at, left = children[0], right = children[1], "partition split");
        Ok(json!({"Children": children, "At": at}))
    }

    /// The keys of the items of the first partition key of `group`'s table hashing at or above
    /// `at` and inside the group's range: what the planted `SplitDropsBoundary` loses.
    fn first_items_from(&self, group: u64, at: u64) -> Result<Vec<Vec<u8>>, crate::storage::StorageError> {
        use crate::db::keys::{index_prefix, prefix_successor, TABLE_INDEX_ID};
        use std::ops::Bound;
        let table = index_prefix(table_of_group(group), TABLE_INDEX_ID);
        let mut from = table.clone();
        from.extend_from_slice(&at.to_be_bytes());
        let table_end = prefix_successor(&table);
        let upper = table_end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let store = self.db.store();
        let first = store.scan(Bound::Included(from.as_slice()), upper, crate::storage::Direction::Forward, 1)?;
        let Some((key, _)) = first.into_iter().next() else { return Ok(Vec::new()) };
        let hash_prefix = key[..table.len() + 8].to_vec();
        let in_range = lock(&self.groups).get(&group).and_then(|g| g.range).is_some_and(|range| {
            let hash = u64::from_be_bytes(hash_prefix[table.len()..].try_into().expect("eight bytes"));
            range.contains(hash)
        });
        if !in_range {
            return Ok(Vec::new());
        }
        let end = prefix_successor(&hash_prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let items = store.scan(
            Bound::Included(hash_prefix.as_slice()),
            upper,
            crate::storage::Direction::Forward,
            usize::MAX,
        )?;
        Ok(items.into_iter().map(|(key, _)| key).collect())
    }

    /// Follows a split of `group` at `at` that this replica applied (or learned from a
    /// snapshot): the replica refuses every later request, the children start on the same
    /// nodes (campaigning at once when `campaign`), this node routes to them, and the
    /// metadata group is asked to record the split, now and, should that fail, again on
    /// every resolver round. `from_snapshot`: the split was learned from a snapshot, so the
    /// children take their state from their leaders (see `start_group`).
    fn retire(self: &Arc<Self>, group: u64, at: u64, campaign: bool, from_snapshot: bool) {
        let (range, voters) = match lock(&self.groups).get_mut(&group) {
            Some(handle) => {
                handle.retired = true;
                (handle.range, handle.voters.clone())
            }
            None => return,
        };
        let (Some(children), Some((left, right))) = (split::children_of(group), range.and_then(|r| r.split_at(at)))
        else {
            return;
        };
        let table_id = table_of_group(group);
        for (child, half) in children.into_iter().zip([left, right]) {
            let recorded = match membership::recorded_membership(&self.db, table_id, child) {
                Ok(recorded) => recorded.map(|(voters, _)| voters),
                Err(error) => {
                    tracing::error!(group = child, %error, "cannot read a split's child's recorded membership");
                    continue;
                }
            };
            let Some(origin) = child_start(self.me, &voters, recorded.as_deref(), from_snapshot) else {
                tracing::info!(group = child, "a split's child moved away before this replica split; not started");
                continue;
            };
            if let Err(error) = self.start_group(child, &voters, Some(half), campaign, origin) {
                tracing::error!(group = child, %error, "cannot start a split's child");
            }
        }
        self.follow_split(table_id, group, at);
        lock(&self.unrecorded_splits).insert(group, (table_id, at));
        let node = self.clone();
        tokio::spawn(async move { node.record_splits().await });
    }

    /// Records a split in this node's partition map (the metadata group's decision).
    fn apply_record_split(self: &Arc<Self>, command: &Command, applied: (Vec<u8>, Vec<u8>)) -> ApiResult {
        let body: Value = serde_json::from_slice(&command.body).map_err(|e| ApiError::Serialization(e.to_string()))?;
        let field = |name: &str| {
            body.get(name).and_then(Value::as_u64).ok_or_else(|| ApiError::validation(format!("{name} is required")))
        };
        let (table_id, group, at) = (field("TableId")?, field("Group")?, field("At")?);
        let puts = vec![(split::split_record_key(table_id, group), at.to_be_bytes().to_vec()), applied];
        let scope = CallScope { durability: Some(Durability::Buffered), ..CallScope::default() };
        with_scope(scope, || self.db.write_records(puts, Vec::new())).map_err(ApiError::from)?;
        self.follow_split(table_id, group, at);
        Ok(json!({}))
    }

    /// Records a group's voters after a move, in the store and in this node's partition map.
    fn apply_record_membership(&self, command: &Command, applied: (Vec<u8>, Vec<u8>)) -> ApiResult {
        let body: Value = serde_json::from_slice(&command.body).map_err(|e| ApiError::Serialization(e.to_string()))?;
        let field = |name: &str| {
            body.get(name).and_then(Value::as_u64).ok_or_else(|| ApiError::validation(format!("{name} is required")))
        };
        let (table_id, group) = (field("TableId")?, field("Group")?);
        let voters: Vec<u64> = body
            .get("Voters")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_u64).collect())
            .filter(|v: &Vec<u64>| !v.is_empty())
            .ok_or_else(|| ApiError::validation("Voters is required"))?;
        // Two recorders may race (a move's router and a group leader recording what it
        // settled on): the voters read at the later applied index stand.
        let as_of = body.get("AsOf").and_then(Value::as_u64).unwrap_or(0);
        let key = membership::record_key(table_id, group);
        let recorded = self.db.store().get(&key).map_err(|e| ApiError::Internal(e.to_string()))?;
        if recorded.as_deref().and_then(membership::decode_record).is_some_and(|(_, earlier)| earlier > as_of) {
            let scope = CallScope { durability: Some(Durability::Buffered), ..CallScope::default() };
            with_scope(scope, || self.db.write_records(vec![applied], Vec::new())).map_err(ApiError::from)?;
            return Ok(json!({}));
        }
        let puts = vec![(key, membership::encode_record(&voters, as_of)), applied];
        let scope = CallScope { durability: Some(Durability::Buffered), ..CallScope::default() };
        with_scope(scope, || self.db.write_records(puts, Vec::new())).map_err(ApiError::from)?;
        let zone_of = self.zone_lookup();
        let removed_here = !voters.contains(&self.me) && lock(&self.groups).contains_key(&group);
        {
            let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = maps.get(&table_id) {
                let next = membership::apply_memberships(map, &BTreeMap::from([(group, voters)]), &zone_of);
                maps.insert(table_id, Arc::new(next));
            }
        }
        // A replica that moved away while this node was down, and that it started again from
        // what it knew then, stops here.
        if removed_here {
            self.drop_requested(group);
        }
        Ok(json!({}))
    }

    /// Applies a split to this node's partition map, if the map still has the parent.
    fn follow_split(&self, table_id: u64, group: u64, at: u64) {
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        let Some(map) = maps.get(&table_id) else { return };
        if map.get(crate::partition::PartitionId(group)).is_none() {
            return;
        }
        let splits = BTreeMap::from([(group, at)]);
        let next = split::apply_splits((**map).clone(), &splits);
        maps.insert(table_id, Arc::new(next));
    }

    /// Follows a catalog change with the partition layout it implies.
    fn after_meta_apply(self: &Arc<Self>, command: &Command, result: &ApiResult) {
        self.after_meta_layout(command, result);
        if result.is_ok() {
            self.follow_catalog_capacity();
        }
    }

    /// The buckets follow the catalog: a new capacity applies at once on every node (the
    /// leaders among them), and buckets live as long as what they limit.
    fn follow_catalog_capacity(&self) {
        if let Some(throttle) = &self.throttle {
            let partitions = |meta: &TableMeta| {
                self.map_of(meta.id).map(|m| u32::try_from(m.partitions().len()).unwrap_or(u32::MAX))
            };
            throttle.follow_catalog(&self.db, &partitions);
        }
    }

    /// Whether this node's catalog is not there yet: it lost its store and has not yet
    /// received the metadata group's snapshot.
    pub fn catalog_unready(&self) -> bool {
        lock(&self.groups)
            .get(&META_GROUP)
            .is_some_and(|g| g.rejoining.load(Ordering::Relaxed) && g.applied.load(Ordering::Relaxed) == 0)
    }

    /// Asks every other node to replace this node's replica of `group` (only its leader acts).
    fn ask_to_be_replaced(self: &Arc<Self>, group: u64) {
        let body = serde_json::to_vec(&json!({"Node": self.me})).unwrap_or_default();
        let timeout = Duration::from_millis(self.settings.request_timeout_ms);
        for peer in self.spec.ids().into_iter().filter(|p| *p != self.me) {
            let (transport, body, node) = (self.transport.clone(), body.clone(), self.clone());
            tokio::spawn(async move {
                let outcome = transport.request(peer, group, Mode::Replicated, None, REPLACE_REPLICA, &body, timeout);
                let Ok(Outcome::Ok(answer)) = outcome.await else { return };
                let answer = serde_json::from_slice::<Value>(&answer).unwrap_or(Value::Null);
                if answer["Learner"] == json!(true) {
                    if let Some(handle) = lock(&node.groups).get(&group) {
                        if !handle.accepting.swap(true, Ordering::Relaxed) {
                            tracing::info!(group, leader = peer, "taken back as a learner; catching up");
                        }
                    }
                } else if answer["Replaced"] == json!(true) {
                    node.drop_replaced(group, peer);
                }
            });
        }
    }

    /// A rejoining replica's request to be replaced, passed to this node's replica of the group
    /// (which acts only if it leads).
    async fn replace_requested(&self, group: u64, body: &[u8]) -> Outcome {
        let peer = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["Node"].as_u64());
        let Some(peer) = peer.filter(|p| self.spec.node(*p).is_some()) else {
            return to_outcome(Err(ApiError::validation("Node must be a node of the cluster")));
        };
        let Some(inbox) = lock(&self.groups).get(&group).map(|h| h.inbox.clone()) else {
            return Outcome::NoReplica;
        };
        let (reply, answer) = oneshot::channel();
        if inbox.try_send(GroupEvent::Replace { node: peer, reply }).is_err() {
            return to_outcome(Ok(json!({"Learner": false})));
        }
        let step = answer.await.unwrap_or(RejoinStep::Wait);
        to_outcome(Ok(json!({"Learner": step == RejoinStep::Learner, "Replaced": step == RejoinStep::Replaced})))
    }

    /// Drops this node's replica of `group` when its leader answered that a full set of other
    /// voters replaced it while this node was away (the admin loop moved it elsewhere). Only a
    /// replica that is rejoining and was never taken back goes: it lost its store and has
    /// taken no raft message since, so it holds nothing a quorum counted on.
    fn drop_replaced(&self, group: u64, leader: u64) {
        let idle = lock(&self.groups)
            .get(&group)
            .is_some_and(|h| h.rejoining.load(Ordering::Relaxed) && !h.accepting.load(Ordering::Relaxed));
        if !idle {
            return;
        }
        tracing::info!(group, leader, "replaced while away; the rejoining replica is dropped");
        let _ = self.drop_requested(group);
        self.end_rejoin_when_done();
    }

    /// Records that the node has rejoined once none of its replicas is rejoining any more.
    fn end_rejoin_when_done(&self) {
        let done = lock(&self.groups).values().all(|g| !g.rejoining.load(Ordering::Relaxed));
        if done && self.rejoining.swap(false, Ordering::Relaxed) {
            let mut batch = crate::storage::WriteBatch::new();
            batch.delete(REJOINING_KEY.to_vec());
            if let Err(error) = self.db.store().write(batch, Durability::Sync) {
                tracing::warn!(%error, "cannot record that the node has rejoined");
            }
            tracing::info!(node = self.me, "every replica has rejoined or was dropped");
        }
    }

    /// One step of a move of `group`'s replica from node `From` to node `To` (see
    /// `cluster::membership`), run by the group's leader.
    async fn move_requested(self: &Arc<Self>, group: u64, body: &[u8]) -> Outcome {
        let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let node_field = |name: &str| request[name].as_u64().filter(|n| self.spec.node(*n).is_some());
        let (Some(from), Some(to)) = (node_field("From"), node_field("To")) else {
            return to_outcome(Err(ApiError::validation("From and To must be nodes of the cluster")));
        };
        let Some((inbox, range)) = lock(&self.groups).get(&group).map(|h| (h.inbox.clone(), h.range)) else {
            return Outcome::NoReplica;
        };
        let Some(range) = range.filter(|_| group != META_GROUP) else {
            return to_outcome(Err(ApiError::validation("only a partition's replicas move")));
        };
        let step = |hosted: bool| {
            let inbox = inbox.clone();
            async move {
                let (reply, answer) = oneshot::channel();
                if inbox.try_send(GroupEvent::Move { from, to, hosted, reply }).is_err() {
                    return MoveStep::Busy;
                }
                answer.await.unwrap_or(MoveStep::NotLeader)
            }
        };
        let mut answer = step(false).await;
        if matches!(answer, MoveStep::NeedsHost) {
            // The target runs an uninitialised replica before the leader adds it.
            let host = serde_json::to_vec(&json!({"Start": range.start(), "End": range.end()})).unwrap_or_default();
            let hosted = if to == self.me {
                self.host_requested(group, &host)
            } else {
                let timeout = Duration::from_millis(self.settings.request_timeout_ms);
                let request =
                    self.transport.request(to, group, Mode::Replicated, None, membership::HOST_REPLICA, &host, timeout);
                match request.await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        return to_outcome(Err(ApiError::ServiceUnavailable(format!("node {to}: {error}"))));
                    }
                }
            };
            if !matches!(hosted, Outcome::Ok(_)) {
                return hosted;
            }
            answer = step(true).await;
        }
        match answer {
            MoveStep::Done(voters, as_of) => to_outcome(Ok(json!({"Done": true, "Voters": voters, "AsOf": as_of}))),
            MoveStep::Pending | MoveStep::NeedsHost => to_outcome(Ok(json!({"Done": false}))),
            MoveStep::Busy => to_outcome(Err(ApiError::ResourceInUse(format!(
                "partition group {group} is in the middle of another membership change; move it later"
            )))),
            MoveStep::NotLeader => {
                Outcome::NotLeader { leader: lock(&self.leader_hints).get(&group).copied().unwrap_or(0) }
            }
        }
    }

    /// Starts an uninitialised replica of `group` over the range in `body`, which a leader is
    /// about to add to the group (a no-op when this node hosts one).
    fn host_requested(self: &Arc<Self>, group: u64, body: &[u8]) -> Outcome {
        let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let range = request["Start"].as_u64().and_then(|start| HashRange::new(start, request["End"].as_u64()));
        let Some(range) = range.filter(|_| group != META_GROUP) else {
            return to_outcome(Err(ApiError::validation("Start and End must give a partition's hash range")));
        };
        if self.table_by_id(table_of_group(group)).is_none() {
            return to_outcome(Err(ApiError::ResourceNotFound(format!("no table has id {}", table_of_group(group)))));
        }
        match self.start_group(group, &[], Some(range), false, StartFrom::Hosted) {
            Ok(()) => to_outcome(Ok(json!({}))),
            Err(error) => to_outcome(Err(ApiError::Internal(error.to_string()))),
        }
    }

    /// Drops this node's replica of `group`, which moved away: its task stops, and its raft
    /// state and the partition's records here are deleted.
    fn drop_requested(&self, group: u64) -> Outcome {
        if group == META_GROUP {
            return to_outcome(Err(ApiError::validation("the metadata group's replicas do not move")));
        }
        // The partition's records stay when a split's child of it is hosted here (the split
        // may have happened while the move was under way): they are the child's too.
        let child_hosted = lock(&self.groups).keys().any(|g| *g != group && split::descends_from(*g, group));
        // Unverified: a replica with damaged items must go too.
        let records = match self.unverified_records(group) {
            Ok(_) if child_hosted => Vec::new(),
            Ok(records) => records,
            Err(error) => return to_outcome(Err(ApiError::from(error))),
        };
        if !lock(&self.groups).contains_key(&group) {
            return to_outcome(Ok(json!({"Dropped": false})));
        }
        let deleted = records.len();
        if self.discard_replica(group, records, None).is_none() {
            return to_outcome(Err(ApiError::Internal(format!("cannot delete the state of group {group:#x}"))));
        }
        tracing::info!(group, deleted, "replica dropped after moving away");
        to_outcome(Ok(json!({"Dropped": true})))
    }

    /// Asks node `peer` to drop its replica of `group` (`Squall.DropReplica`); `NoReplica` when
    /// it does not answer.
    async fn ask_to_drop(&self, peer: u64, group: u64) -> Outcome {
        let timeout = Duration::from_millis(self.settings.request_timeout_ms);
        self.transport
            .request(peer, group, Mode::Replicated, None, membership::DROP_REPLICA, b"{}", timeout)
            .await
            .unwrap_or(Outcome::NoReplica)
    }

    /// Has node `member`, removed from `group` as a stranded member, drop the replica it still
    /// holds; tries once a second while the node does not answer, up to
    /// `STRANDED_DROP_ATTEMPTS_MAX` times.
    async fn drop_stranded(node: std::sync::Weak<ClusterNode>, group: u64, member: u64) {
        for _ in 0..STRANDED_DROP_ATTEMPTS_MAX {
            let Some(node) = node.upgrade() else { return };
            if matches!(node.ask_to_drop(member, group).await, Outcome::Ok(_)) {
                tracing::info!(group, member, "stranded member's replica dropped");
                return;
            }
            drop(node);
            tokio::time::sleep(Duration::from_millis(1_000)).await;
        }
        tracing::warn!(group, member, "a stranded member's node did not drop its replica");
    }

    /// Moves the replica of partition `group` on node `from` to node `to` (see
    /// `cluster::membership`), waiting up to `wait` for the group to take the new voter, then
    /// records the new voters and drops the old replica. Returns the voters.
    pub async fn move_replica(
        self: &Arc<Self>,
        table_id: u64,
        group: u64,
        replicas: &[u64],
        from: u64,
        to: u64,
        wait: Duration,
    ) -> ApiResult {
        let body = serde_json::to_vec(&json!({"From": from, "To": to})).unwrap_or_default();
        let mut candidates = replicas.to_vec();
        candidates.push(to);
        let deadline = tokio::time::Instant::now() + wait;
        let (voters, as_of) = loop {
            let step = self.route(group, &candidates, None, Mode::Replicated, membership::MOVE_REPLICA, &body).await;
            match step {
                Ok(answer) if answer["Done"] == json!(true) => {
                    let voters =
                        answer["Voters"].as_array().map(|v| v.iter().filter_map(Value::as_u64).collect::<Vec<_>>());
                    break (voters, answer["AsOf"].as_u64().unwrap_or(0));
                }
                Ok(_) => {}
                Err(error @ (ApiError::ResourceInUse(_) | ApiError::Validation(_))) => return Err(error),
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::ServiceUnavailable(format!(
                    "the move of partition group {group} from node {from} to node {to} is still under way"
                )));
            }
            tokio::time::sleep(Duration::from_millis(MOVE_STEP_INTERVAL_MS)).await;
        };
        let voters = voters.filter(|v| !v.is_empty()).unwrap_or_default();
        let record = json!({"TableId": table_id, "Group": group, "Voters": voters, "AsOf": as_of});
        self.route_meta(membership::RECORD_MEMBERSHIP, &serde_json::to_vec(&record).unwrap_or_default()).await?;
        let dropped = if from == self.me { self.drop_requested(group) } else { self.ask_to_drop(from, group).await };
        if !matches!(dropped, Outcome::Ok(_)) {
            tracing::warn!(group, from, "the moved replica's old node did not drop it");
        }
        Ok(json!({"Group": group, "Voters": voters}))
    }

    /// Follows a membership change of `group`'s replica: the voters its children would get,
    /// and the end of its rejoining once it has been a learner and votes again. When every
    /// replica here has rejoined, so has the node.
    fn follow_membership(&self, group: u64, replica: &Replica, shared: &GroupShared, was_learner: &mut bool) {
        let voters = replica.voters();
        if let Some(handle) = lock(&self.groups).get_mut(&group) {
            if !voters.is_empty() {
                handle.voters = voters.clone();
            }
        }
        if !shared.rejoining.load(Ordering::Relaxed) {
            return;
        }
        if replica.learners().contains(&self.me) {
            *was_learner = true;
        }
        if *was_learner && voters.contains(&self.me) {
            let mut batch = crate::storage::WriteBatch::new();
            batch.delete(crate::replication::log_store::tag_key(group, REJOINING_TAG));
            if let Err(error) = self.db.store().write(batch, Durability::Sync) {
                tracing::warn!(group, %error, "cannot record that the replica has rejoined; it will ask again");
                return;
            }
            shared.rejoining.store(false, Ordering::Relaxed);
            tracing::info!(group, node = self.me, "replica rejoined its group as a voter");
            self.end_rejoin_when_done();
        }
    }

    /// The records group `group` owns in this node's store, as a snapshot carries them.
    fn group_records(&self, group: u64) -> Result<Vec<crate::storage::KvPair>, crate::storage::StorageError> {
        if group == META_GROUP {
            return snapshot::meta_records(&self.db);
        }
        let range = lock(&self.groups).get(&group).and_then(|g| g.range);
        match (range, self.table_by_id(table_of_group(group))) {
            (Some(range), Some(table)) => snapshot::partition_records(&self.db, &table.meta, group, range),
            // A table this node's catalog no longer has: the group owns nothing here.
            _ => Ok(Vec::new()),
        }
    }

    /// The records partition group `group` owns in this node's store, damaged items included
    /// (see [`snapshot::unverified_partition_records`]); none for a group not hosted here.
    fn unverified_records(&self, group: u64) -> Result<Vec<crate::storage::KvPair>, crate::storage::StorageError> {
        let range = lock(&self.groups).get(&group).and_then(|g| g.range);
        match (range, self.table_by_id(table_of_group(group))) {
            (Some(range), Some(table)) => snapshot::unverified_partition_records(&self.db, &table.meta, group, range),
            _ => Ok(Vec::new()),
        }
    }

    /// Brings what this node keeps in memory in line with a snapshot one of its replicas
    /// installed: the catalog, partition maps, replicas and buckets after a metadata snapshot;
    /// the table's counters, and a split the snapshot carries, after a partition's.
    fn follow_restored(self: &Arc<Self>, group: u64) {
        if group == META_GROUP {
            if let Err(error) = self.db.reload_catalog() {
                tracing::error!(%error, "cannot reload the catalog from a metadata snapshot");
                return;
            }
            let live: Vec<u64> =
                self.db.table_names().iter().filter_map(|n| self.db.table(n).ok().map(|t| t.meta.id)).collect();
            let known: Vec<u64> = self.maps.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
            for id in known.into_iter().filter(|id| !live.contains(id)) {
                self.drop_table(id);
            }
            for id in live {
                if let Err(error) = self.load_table(id) {
                    tracing::error!(table_id = id, %error, "cannot start a table's partitions after a snapshot");
                }
            }
            self.follow_catalog_capacity();
            return;
        }
        if let Err(error) = self.db.recount_table(table_of_group(group)) {
            tracing::warn!(group, %error, "cannot count the table's items after a snapshot");
        }
        let retired = lock(&self.groups).get(&group).is_some_and(|g| g.retired);
        match split::retired_at(&self.db, group) {
            Ok(Some(at)) if !retired => self.retire(group, at, false, true),
            Ok(_) => {}
            Err(error) => tracing::warn!(group, %error, "cannot read the split marker after a snapshot"),
        }
    }

    /// Starts or drops the partitions a catalog change implies.
    fn after_meta_layout(self: &Arc<Self>, command: &Command, result: &ApiResult) {
        let Ok(response) = result else { return };
        let table_name = response.pointer("/TableDescription/TableName").and_then(Value::as_str).map(str::to_string);
        let Some(table_name) = table_name else { return };
        match command.operation.as_str() {
            "CreateTable" => {
                let Ok(table) = self.db.table(&table_name) else { return };
                let count = routing::initial_partition_count(&table.meta, self.settings.partitions_per_table);
                let scope = CallScope {
                    durability: Some(Durability::Buffered),
                    now_ms: Some(command.now_ms),
                    ..CallScope::default()
                };
                let key = partition_count_key(table.meta.id);
                let written = with_scope(scope, || self.db.put_record(key, count.to_be_bytes().to_vec()));
                if let Err(e) = written.map_err(ClusterError::from).and_then(|_| self.load_table(table.meta.id)) {
                    tracing::error!(table = table_name, error = %e, "cannot start the table's partitions");
                }
            }
            "DeleteTable" => {
                let ids: Vec<u64> = self.maps.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
                let live: Vec<u64> =
                    self.db.table_names().iter().filter_map(|n| self.db.table(n).ok().map(|t| t.meta.id)).collect();
                for id in ids.into_iter().filter(|id| !live.contains(id)) {
                    self.drop_table(id);
                }
            }
            _ => {}
        }
    }

    /// Proposes `command` to the local replica of `group` and waits for its application.
    async fn propose_local(self: &Arc<Self>, group: u64, command: Command) -> Served {
        let inbox = match lock(&self.groups).get(&group) {
            Some(handle) => handle.inbox.clone(),
            None => return Served::NotServed(Outcome::NoReplica),
        };
        let id = self.next_proposal.fetch_add(1, Ordering::Relaxed);
        let (result_tx, result_rx) = oneshot::channel();
        lock(&self.proposals).insert(id, result_tx);
        let (reply_tx, reply_rx) = oneshot::channel();
        let event = GroupEvent::Propose {
            context: proposal_context(self.me, self.incarnation, id),
            data: command.encode(),
            reply: reply_tx,
        };
        let accepted = inbox.send(event).await.is_ok();
        let proposed = match reply_rx.await {
            Ok(result) if accepted => result,
            _ => Err(0),
        };
        if let Err(leader) = proposed {
            lock(&self.proposals).remove(&id);
            return Served::NotServed(Outcome::NotLeader { leader });
        }
        if !command.read_only && crate::planted::active(crate::planted::Bug::AckBeforeQuorum) {
            lock(&self.proposals).remove(&id);
            return Served::Answered(Ok(serde_json::json!({})), Usage::default());
        }
        let timeout = Duration::from_millis(self.settings.request_timeout_ms);
        let result = tokio::time::timeout(timeout, result_rx).await;
        lock(&self.proposals).remove(&id);
        match result {
            Ok(Ok((result, usage))) => Served::Answered(result, usage),
            // Not applied in time (a lost leadership, a partition): indeterminate.
            _ => Served::Answered(
                Err(ApiError::Internal("the write was not confirmed in time".into())),
                Usage::default(),
            ),
        }
    }

    /// Runs a request on this node's replica of `group` as it stands.
    fn run_local(&self, group: u64, range: Option<HashRange>, operation: &str, body: &[u8]) -> Served {
        // A rejoining replica's data may be far behind, or not there at all yet.
        let serves = lock(&self.groups)
            .get(&group)
            .map(|g| !g.rejoining.load(Ordering::Relaxed) && g.applied.load(Ordering::Relaxed) > 0);
        if (group != META_GROUP && serves != Some(true)) || serves == Some(false) {
            return Served::NotServed(Outcome::NoReplica);
        }
        let (operation, report_evaluated) = match evaluated_read(operation) {
            Some(read) => (read, true),
            None => (operation, false),
        };
        let scope = CallScope { hash_range: range, read_only: true, report_evaluated, ..CallScope::default() };
        let (result, usage) = crate::scope::measure(|| with_scope(scope, || self.service.call(operation, body)));
        Served::Answered(result, usage)
    }

    /// Admits a request for partition group `group` against the partition's share of its
    /// table's capacity and the partition's own limit. `Ok(None)`: not subject to capacity.
    fn admit(&self, group: u64, operation: &str, body: &[u8]) -> Result<Option<Ticket>, ApiError> {
        let Some(throttle) = &self.throttle else { return Ok(None) };
        if group == META_GROUP {
            return Ok(None);
        }
        let Some(map) = self.map_of(table_of_group(group)) else { return Ok(None) };
        let Some(index) = map.partitions().iter().position(|p| p.id.0 == group) else { return Ok(None) };
        let slot = Slot {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            count: u32::try_from(map.partitions().len()).unwrap_or(u32::MAX),
        };
        let placement = move |_: &TableMeta, _: Option<u64>| Placement::Share { slot };
        // A cross-partition transaction is admitted when it prepares (as its part in this
        // partition); committing or aborting it is not charged again.
        let prepared;
        let (operation, body) = match operation {
            txn::PREPARE => {
                let request = serde_json::from_slice::<Value>(body).ok().and_then(|b| b.get("Request").cloned());
                prepared = request.map(|r| serde_json::to_vec(&r).unwrap_or_default()).unwrap_or_default();
                ("TransactWriteItems", prepared.as_slice())
            }
            other if evaluated_read(other).is_some() => (evaluated_read(other).unwrap_or(other), body),
            other if other.starts_with("Squall.") => return Ok(None),
            other => (other, body),
        };
        match throttle.admit(&self.db, operation, body, &placement) {
            Admission::Free => Ok(None),
            Admission::Admitted(ticket) => Ok(Some(ticket)),
            Admission::Refused(error) => Err(error),
        }
    }

    /// Runs a request for `group` here. A router on this node takes the answer as it is,
    /// without the encoding a peer's answer needs.
    fn handle(
        self: &Arc<Self>,
        group: u64,
        mode: Mode,
        range: Option<HashRange>,
        operation: String,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Handled> + Send>> {
        let node = self.clone();
        Box::pin(async move {
            let outcome = match operation.as_str() {
                REPLACE_REPLICA => Some(node.replace_requested(group, &body).await),
                repair::REPAIR_REPLICA => Some(node.repair_requested(group, &body).await),
                membership::MOVE_REPLICA => Some(node.move_requested(group, &body).await),
                membership::HOST_REPLICA => Some(node.host_requested(group, &body)),
                membership::DROP_REPLICA => Some(node.drop_requested(group)),
                _ => None,
            };
            if let Some(outcome) = outcome {
                return Handled::Outcome(outcome);
            }
            // A retired partition's replica still serves eventually consistent reads of the
            // range a router names (the data is here), but takes no proposal.
            let retired = lock(&node.groups).get(&group).is_some_and(|g| g.retired);
            if retired && mode == Mode::Replicated {
                return Handled::Answered(Err(split::stale_partition(group)));
            }
            let ticket = match node.admit(group, &operation, &body) {
                Ok(ticket) => ticket,
                Err(refused) => return Handled::Answered(Err(refused)),
            };
            // A batch admitted in part runs without its refused items.
            let body = match ticket.as_ref().and_then(|t| t.body()) {
                Some(cut) if operation != txn::PREPARE => cut.to_vec(),
                _ => body,
            };
            let heat_hash = node.heat_hash(group, &operation, &body);
            let served = match mode {
                Mode::Local => node.run_local(group, range, &operation, &body),
                Mode::Replicated
                    if is_read(&operation)
                        && crate::planted::active(crate::planted::Bug::StaleLeaderReads)
                        && lock(&node.leader_hints).get(&group) == Some(&node.me) =>
                {
                    node.run_local(group, range, &operation, &body)
                }
                Mode::Replicated if operation == split::SPLIT => match node.choose_split(group, &body) {
                    Ok(body) => {
                        let command = Command { read_only: false, now_ms: Self::now_ms(), operation, body };
                        node.propose_local(group, command).await
                    }
                    Err(error) => Served::Answered(Err(error), Usage::default()),
                },
                Mode::Replicated => {
                    let read_only = is_read(&operation);
                    let command = Command { read_only, now_ms: Self::now_ms(), operation, body };
                    node.propose_local(group, command).await
                }
            };
            if let (Served::Answered(Ok(_), usage), Some(hash)) = (&served, heat_hash) {
                node.record_heat(group, hash, usage);
            }
            match (served, ticket, &node.throttle) {
                (Served::Answered(result, usage), Some(ticket), Some(throttle)) => {
                    Handled::Answered(throttle.settle(ticket, result, &usage))
                }
                (Served::Answered(result, _), _, _) => Handled::Answered(result),
                (Served::NotServed(outcome), ticket, throttle) => {
                    if let (Some(ticket), Some(throttle)) = (ticket, throttle) {
                        throttle.abandon(ticket);
                    }
                    Handled::Outcome(outcome)
                }
            }
        })
    }

    /// Sends a request for `group` (replicas `replicas`) to its leader, following hints and
    /// retrying refusals with backoff. Indeterminate failures are not retried.
    pub async fn route(
        self: &Arc<Self>,
        group: u64,
        replicas: &[u64],
        range: Option<HashRange>,
        mode: Mode,
        operation: &str,
        body: &[u8],
    ) -> ApiResult {
        let mut backoff = self.settings.route_backoff_ms;
        let mut next_candidate = 0usize;
        let wire_range = range.map(|r| (r.start(), r.end()));
        for attempt in 0..self.settings.route_attempts_max {
            if crate::buggify::fires(crate::buggify::Site::ForgetLeaderHint) {
                lock(&self.leader_hints).remove(&group);
            }
            // A leader hint naming a suspected peer is passed over: a partition may hide it,
            // and waiting out a request timeout there helps nobody. A hint naming a node the
            // map does not list is followed: a replica may have moved there before this
            // node's map showed it.
            let hint = lock(&self.leader_hints).get(&group).copied().filter(|h| !self.transport.suspected(*h));
            let target = match (mode, hint) {
                // Eventually consistent reads prefer this node's own replica.
                (Mode::Local, _) if replicas.contains(&self.me) && attempt == 0 => self.me,
                (_, Some(leader)) => leader,
                _ => self.next_candidate(replicas, &mut next_candidate),
            };
            let outcome = if target == self.me {
                match self.handle(group, mode, range, operation.to_string(), body.to_vec()).await {
                    Handled::Answered(result) => {
                        if mode == Mode::Replicated {
                            lock(&self.leader_hints).insert(group, target);
                        }
                        return result;
                    }
                    Handled::Outcome(outcome) => Ok(outcome),
                }
            } else {
                let timeout = Duration::from_millis(self.settings.request_timeout_ms + 500);
                self.transport.request(target, group, mode, wire_range, operation, body, timeout).await
            };
            match outcome {
                Ok(Outcome::Ok(bytes)) => {
                    if mode == Mode::Replicated {
                        lock(&self.leader_hints).insert(group, target);
                    }
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| ApiError::Internal(format!("undecodable response from node {target}: {e}")));
                }
                Ok(Outcome::Err(bytes)) => {
                    if mode == Mode::Replicated {
                        lock(&self.leader_hints).insert(group, target);
                    }
                    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    return Err(ApiError::from_json(&body));
                }
                Ok(Outcome::NotLeader { leader }) => {
                    let mut hints = lock(&self.leader_hints);
                    if leader != 0 && leader != target {
                        hints.insert(group, leader);
                        if !self.transport.suspected(leader) {
                            continue;
                        }
                    } else {
                        hints.remove(&group);
                    }
                }
                Ok(Outcome::NoReplica) | Err(TransportError::Overloaded(_)) | Err(TransportError::UnknownPeer(_)) => {
                    lock(&self.leader_hints).remove(&group);
                }
                Err(TransportError::Lost(peer)) => {
                    lock(&self.leader_hints).remove(&group);
                    if mode == Mode::Replicated && !is_read(operation) {
                        return Err(ApiError::Internal(format!(
                            "node {peer} did not answer in time; the write may or may not have been applied"
                        )));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(backoff)).await;
            backoff = (backoff * 2).min(self.settings.route_backoff_max_ms);
        }
        Err(ApiError::ServiceUnavailable(format!("no leader for partition group {group}; try again")))
    }

    /// The next replica to try when no leader is known: round-robin from `next`, skipping
    /// suspected peers unless every replica is suspected.
    fn next_candidate(&self, replicas: &[u64], next: &mut usize) -> u64 {
        for _ in 0..replicas.len() {
            let candidate = replicas[*next % replicas.len()];
            *next += 1;
            if !self.transport.suspected(candidate) {
                return candidate;
            }
        }
        let candidate = replicas[*next % replicas.len()];
        *next += 1;
        candidate
    }

    /// Routes a request to the metadata group.
    pub async fn route_meta(self: &Arc<Self>, operation: &str, body: &[u8]) -> ApiResult {
        let voters = self.spec.ids();
        self.route(META_GROUP, &voters, None, Mode::Replicated, operation, body).await
    }

    /// A transaction id unique in the cluster: node, incarnation and a counter.
    pub fn new_txid(&self) -> u64 {
        let counter = self.next_proposal.fetch_add(1, Ordering::Relaxed) & ((1 << 40) - 1);
        (self.me << 52) | ((self.incarnation & 0xfff) << 40) | counter
    }

    /// The replicas and range of partition group `group`.
    pub fn partition(&self, group: u64) -> Option<crate::partition::PartitionDescriptor> {
        let map = self.map_of(table_of_group(group))?;
        map.partitions().iter().find(|p| p.id.0 == group).cloned()
    }

    /// Routes an internal transaction operation to partition group `group`.
    /// A split partition's transaction outcomes live on in its children, so the outcome of a
    /// group no longer in the map is asked of its first descendant that is. Any other step
    /// for such a group was planned on an old map, and fails as stale: a transaction is
    /// never prepared, committed or aborted in a partition that owns only part of its items.
    pub async fn route_txn(self: &Arc<Self>, group: u64, operation: &str, body: &Value) -> ApiResult {
        let found = self.partition(group).or_else(|| {
            if operation != txn::RESOLVE {
                return None;
            }
            let map = self.map_of(table_of_group(group))?;
            map.partitions().iter().find(|p| split::descends_from(p.id.0, group)).cloned()
        });
        let Some(p) = found else {
            let known = self.map_of(table_of_group(group)).is_some();
            return Err(if known {
                split::stale_partition(group)
            } else {
                ApiError::ResourceNotFound("Requested resource not found".into())
            });
        };
        let group = p.id.0;
        let replicas: Vec<u64> = p.replicas.iter().map(|r| r.node.0).collect();
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.route(group, &replicas, Some(p.range), Mode::Replicated, operation, &bytes).await
    }

    /// Finishes transactions whose coordinator went away: every `txn_resolve_interval_ms`, the
    /// leader of each group resolves its records older than `txn::TXN_TIMEOUT_MS` (see
    /// [`txn`]).
    /// Every `interval_ms`, tells every other node what this node's partition shares were
    /// asked for, and divides the tables' capacity afresh from everyone's reports.
    async fn share_capacity(node: std::sync::Weak<ClusterNode>, interval_ms: u64) {
        let interval = Duration::from_millis(interval_ms);
        loop {
            tokio::time::sleep(interval).await;
            let Some(node) = node.upgrade() else { return };
            let Some(throttle) = &node.throttle else { return };
            let demands = throttle.end_demand_interval(node.me, &node.db, interval, interval * 3);
            node.transport.tell_all(&PeerMessage::Demand { demands });
        }
    }

    async fn resolve_transactions(node: std::sync::Weak<ClusterNode>, interval_ms: u64) {
        loop {
            tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            let Some(node) = node.upgrade() else { return };
            node.record_splits().await;
            let led: Vec<u64> = {
                let hints = lock(&node.leader_hints);
                node.hosted_groups()
                    .into_iter()
                    .filter(|g| *g != META_GROUP && hints.get(g) == Some(&node.me))
                    .collect()
            };
            let now = Self::now_ms();
            for group in led {
                for record in txn::records(&node.db, group) {
                    if record.prepared_at_ms + txn::TXN_TIMEOUT_MS > now {
                        continue;
                    }
                    let id = json!({"TxId": record.txid});
                    tracing::info!(group, txid = record.txid, "resolving an abandoned transaction");
                    if record.primary == group {
                        let _ = node.route_txn(group, txn::RESOLVE, &id).await;
                        continue;
                    }
                    let state = node.route_txn(record.primary, txn::RESOLVE, &id).await;
                    let committed =
                        matches!(&state, Ok(v) if v.get("State").and_then(Value::as_str) == Some("committed"));
                    if state.is_ok() {
                        let operation = if committed { txn::COMMIT } else { txn::ABORT };
                        let _ = node.route_txn(group, operation, &id).await;
                    }
                }
            }
        }
    }

    /// Proposes to the metadata group every split this node's replicas applied that it has not
    /// recorded yet (see [`split`]); the record is idempotent, so every replica may propose it.
    async fn record_splits(self: &Arc<Self>) {
        let pending: Vec<(u64, (u64, u64))> = lock(&self.unrecorded_splits).iter().map(|(g, v)| (*g, *v)).collect();
        for (group, (table_id, at)) in pending {
            let body = json!({"TableId": table_id, "Group": group, "At": at});
            let recorded = match split::recorded_splits(&self.db, table_id) {
                Ok(splits) => splits.contains_key(&group),
                Err(_) => false,
            };
            if recorded
                || self.route_meta(split::RECORD_SPLIT, &serde_json::to_vec(&body).unwrap_or_default()).await.is_ok()
            {
                lock(&self.unrecorded_splits).remove(&group);
            }
        }
    }

    /// Runs a request on this node's copy of the catalog, without replication.
    pub fn call_local(&self, operation: &str, body: &[u8]) -> ApiResult {
        let scope = CallScope { read_only: true, ..CallScope::default() };
        with_scope(scope, || self.service.call(operation, body))
    }

    /// The partition map of a table, by name.
    pub fn table_map(&self, table_name: &str) -> Result<(Arc<crate::db::Table>, Arc<PartitionMap>), ApiError> {
        let table = self.db.table(table_name)?;
        let map = self
            .map_of(table.meta.id)
            .ok_or_else(|| ApiError::ServiceUnavailable("the table's partitions are not yet placed".into()))?;
        Ok((table, map))
    }
}

/// One replica hosted by a node, as `Admin.DescribeReplicas` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplicaStatus {
    /// The raft group (0 for the metadata group).
    pub group: u64,
    /// The table of a partition group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The partition's hash range: first hash and end (exclusive; `None` for the top).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<(u64, Option<u64>)>,
    /// The index of the last entry this replica applied (entries that write nothing count).
    pub applied_index: u64,
    /// The first index still in the replica's raft log (earlier entries were compacted).
    pub log_first_index: u64,
    /// The leader this node last saw (0 if none).
    pub leader: u64,
    /// The group's voters as this replica last applied them.
    pub voters: Vec<u64>,
    /// Whether this replica is rejoining after its node lost its store (not yet a voter again).
    pub rejoining: bool,
    /// Whether this replica applied a split of its group (its range now belongs to the
    /// children, which report the data).
    pub retired: bool,
    /// What the replica holds, in brief; replicas at the same applied index must agree. Not
    /// given for the metadata group and retired replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<super::digest::PartitionDigest>,
}

/// A replica's records at an applied index: the index, and each record's key with the hash of
/// its value.
pub type RecordHashes = (u64, Vec<(Vec<u8>, u64)>);

impl ClusterNode {
    /// The records this node's replica of partition `group` holds, each as its key and the
    /// hash of its value, with the applied index they stand at (see
    /// [`digest::partition_records`](super::digest::partition_records)).
    pub fn replica_records(&self, group: u64) -> Result<RecordHashes, ApiError> {
        let applied = lock(&self.groups)
            .get(&group)
            .map(|g| g.applied.load(Ordering::Relaxed))
            .ok_or_else(|| ApiError::ResourceNotFound(format!("group {group} is not hosted here")))?;
        if group == META_GROUP {
            let records = snapshot::meta_records(&self.db)?;
            return Ok((applied, records.into_iter().map(|(k, v)| (k, super::digest::value_hash(&v))).collect()));
        }
        let range = lock(&self.groups)
            .get(&group)
            .and_then(|g| g.range)
            .ok_or_else(|| ApiError::ResourceNotFound(format!("partition group {group} is not hosted here")))?;
        let table_id = table_of_group(group);
        let table = self
            .table_by_id(table_id)
            .ok_or_else(|| ApiError::ResourceNotFound(format!("no table has id {table_id}")))?;
        let records = super::digest::partition_records(&self.db, &table.meta, group, range)?;
        Ok((applied, records))
    }

    /// Every replica this node hosts with its applied index and, for partitions, the digest
    /// of what it holds. Each replica's index and digest are read together without an await
    /// between them, so under the simulator (one thread) they describe the same state; on a
    /// real node an entry applied meanwhile can make them disagree, and callers read again.
    pub fn replica_statuses(&self) -> Result<Vec<ReplicaStatus>, ClusterError> {
        type Hosted = (u64, Option<HashRange>, bool, u64, Vec<u64>, bool);
        let hosted: Vec<Hosted> = lock(&self.groups)
            .iter()
            .map(|(g, h)| {
                let rejoining = h.rejoining.load(Ordering::Relaxed);
                (*g, h.range, h.retired, h.applied.load(Ordering::Relaxed), h.voters.clone(), rejoining)
            })
            .collect();
        let tables: BTreeMap<u64, Arc<crate::db::Table>> =
            self.db.table_names().iter().filter_map(|name| self.db.table(name).ok().map(|t| (t.meta.id, t))).collect();
        let mut statuses = Vec::with_capacity(hosted.len());
        for (group, range, retired, applied_index, voters, rejoining) in hosted {
            // A replica started for a move that never added it holds nothing and belongs to no
            // group; one that is rejoining is shown until it has rejoined.
            if applied_index == 0 && !rejoining {
                continue;
            }
            let log_first_index = crate::replication::log_store::stored_first_index(self.db.store().as_ref(), group)
                .map_err(|e| ClusterError::Storage(crate::storage::StorageError::Corruption(e.to_string())))?;
            let leader = lock(&self.leader_hints).get(&group).copied().unwrap_or(0);
            let table = (group != META_GROUP).then(|| tables.get(&table_of_group(group))).flatten();
            let digest = match (table, range) {
                (Some(table), Some(range)) if !retired => {
                    Some(super::digest::partition_digest(&self.db, &table.meta, group, range)?)
                }
                _ if group == META_GROUP => Some(super::digest::meta_digest(&self.db)?),
                _ => None,
            };
            statuses.push(ReplicaStatus {
                group,
                table: table.map(|t| t.meta.name.clone()),
                range: range.map(|r| (r.start(), r.end())),
                applied_index,
                log_first_index,
                leader,
                voters,
                rejoining,
                retired,
                digest,
            });
        }
        Ok(statuses)
    }
}

/// Operations that only read.
pub fn is_read(operation: &str) -> bool {
    let operation = evaluated_read(operation).unwrap_or(operation);
    matches!(
        operation,
        "GetItem"
            | "Query"
            | "Scan"
            | "BatchGetItem"
            | "TransactGetItems"
            | "DescribeLimits"
            | "DescribeTable"
            | "ListTables"
            | "ListTagsOfResource"
    )
}

/// The inbound side of a node, holding the `Arc` the request futures need.
pub struct ClusterInbound(pub Arc<ClusterNode>);

impl Inbound for ClusterInbound {
    fn raft(&self, group: u64, message: RaftMessage) {
        if let Some(handle) = lock(&self.0.groups).get(&group) {
            // A full inbox drops the message; raft retries.
            let _ = handle.inbox.try_send(GroupEvent::Raft(message));
        }
    }

    fn request(
        &self,
        group: u64,
        mode: Mode,
        range: Option<(u64, Option<u64>)>,
        operation: String,
        body: Vec<u8>,
    ) -> OutcomeFuture {
        let range = range.and_then(|(start, end)| HashRange::new(start, end));
        // A peer routed it here: its answer goes back on the wire.
        let handled = self.0.handle(group, mode, range, operation, body);
        Box::pin(async move {
            match handled.await {
                Handled::Answered(result) => to_outcome(result),
                Handled::Outcome(outcome) => outcome,
            }
        })
    }

    fn demand(&self, from: u64, demands: Vec<Demand>) {
        if let Some(throttle) = &self.0.throttle {
            throttle.record_demand(from, demands);
        }
    }
}

/// A proposer's answer and where it goes.
type HeldAnswer = (oneshot::Sender<(ApiResult, Usage)>, (ApiResult, Usage));

thread_local! {
    /// Answers to this node's proposals held back while a group's Ready is processed, under
    /// modelled hardware only (see `hold_answers`).
    static HELD_ANSWERS: std::cell::RefCell<Option<Vec<HeldAnswer>>> = const { std::cell::RefCell::new(None) };
}

/// Answers a proposal's waiter now, or holds the answer when `hold_answers` is on.
fn answer_proposal(waiter: oneshot::Sender<(ApiResult, Usage)>, answer: (ApiResult, Usage)) {
    let answer = HELD_ANSWERS.with(|held| match held.borrow_mut().as_mut() {
        Some(held) => {
            held.push((waiter, answer));
            None
        }
        None => Some((waiter, answer)),
    });
    if let Some((waiter, answer)) = answer {
        let _ = waiter.send(answer);
    }
}

/// Holds proposals' answers while `work` runs and returns them. A real node applies an entry
/// only after the write that persisted it returned, so its answer leaves after the fsync; with
/// modelled hardware the write costs no time until the Ready is paid for, so the answers must
/// wait for that payment, as the Ready's messages do.
fn hold_answers<T>(work: impl FnOnce() -> T) -> (T, Vec<HeldAnswer>) {
    HELD_ANSWERS.with(|held| *held.borrow_mut() = Some(Vec::new()));
    let result = work();
    let answers = HELD_ANSWERS.with(|held| held.borrow_mut().take()).unwrap_or_default();
    (result, answers)
}

/// The state machine of every group on a node.
struct NodeMachine<'a>(&'a Arc<ClusterNode>);

impl StateMachine for NodeMachine<'_> {
    fn apply(&mut self, group: u64, entry: &Entry, applied: (Vec<u8>, Vec<u8>)) -> Result<(), ReplicationError> {
        crate::scope::take_storage_failure();
        self.0.apply_entry(group, entry, applied);
        if crate::scope::take_storage_failure() {
            return Err(ReplicationError::Storage(crate::storage::StorageError::Io(format!(
                "storage calls of entry {} of group {group} failed",
                entry.index
            ))));
        }
        Ok(())
    }

    fn snapshot(&mut self, group: u64) -> Result<Vec<u8>, ReplicationError> {
        let records = self.0.group_records(group)?;
        tracing::info!(group, records = records.len(), "snapshot prepared for a lagging replica");
        Ok(snapshot::encode_records(&records))
    }

    fn restore(
        &mut self,
        group: u64,
        data: &[u8],
        applied: (Vec<u8>, Vec<u8>),
        batch: &mut crate::storage::WriteBatch,
    ) -> Result<(), ReplicationError> {
        let wanted = snapshot::decode_records(data)?;
        if group != META_GROUP {
            snapshot::verify_items(&wanted)?;
        }
        // A retired group's snapshot leaves its hash range to its children (see
        // `snapshot::partition_records`), so only its own records are replaced.
        let current = if group != META_GROUP && snapshot::is_retired_snapshot(group, &wanted) {
            snapshot::group_keyed_records(&self.0.db, group)?
        } else {
            self.0.group_records(group)?
        };
        let counts = snapshot::replace_records(current, wanted, batch);
        if group == META_GROUP {
            // The data follows the new catalog only after this batch (`restored`); should the
            // node stop before that, the record has it follow the catalog when it opens again.
            let (key, value) = self.0.db.catalog_follow_up_record();
            batch.put(key, value);
        }
        batch.put(applied.0, applied.1);
        tracing::info!(group, written = counts.written, deleted = counts.deleted, "replica restores a snapshot");
        Ok(())
    }

    fn restored(&mut self, group: u64) {
        self.0.follow_restored(group);
    }
}

/// Has a leader whose log is over `log_entries_max` entries propose its compaction through
/// what every replica holds, or through all but the last `log_entries_max / 2` applied
/// entries when a replica lags further (see `Replica::compactable_index`): logs stay bounded
/// whatever a replica does, and only a replica that fell that far behind needs a snapshot.
fn propose_compaction(replica: &mut Replica, log_entries_max: u64) {
    if log_entries_max == 0 || replica.log_entries() <= log_entries_max {
        return;
    }
    let Some(through) = replica.compactable_index(log_entries_max / 2) else { return };
    if through < replica.first_index() {
        return;
    }
    let command = Command {
        read_only: false,
        now_ms: ClusterNode::now_ms(),
        operation: COMPACT_LOG.to_string(),
        body: serde_json::to_vec(&json!({"Through": through})).unwrap_or_default(),
    };
    if let Err(error) = replica.propose(Vec::new(), command.encode()) {
        tracing::debug!(group = replica.group(), %error, "log compaction not proposed");
    }
}

/// What a group's leader does for a rejoining replica on `peer` (one that lost its store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RejoinStep {
    /// The peer is a learner: it catches up and is promoted.
    Learner,
    /// A step was proposed or is awaited, or this replica does not lead: ask again.
    Wait,
    /// Remove the peer as a voter (it forgot its votes and log), then add it as a learner.
    Remove,
    /// Add the peer as a learner.
    AddLearner,
    /// A full set of other voters replaced the peer while it was away: it is not taken back.
    Replaced,
}

/// How many voters make a group whole: a partition's replica count; the metadata group has
/// every node as a voter and takes each back.
fn voters_full(group: u64) -> Option<usize> {
    (group != META_GROUP).then_some(crate::partition::REPLICA_COUNT)
}

/// The leader's next step for a rejoining replica on `peer`, given the group's membership and
/// the voter count that makes it whole (`None`: every node belongs).
fn rejoin_step(
    leads: bool,
    me: u64,
    peer: u64,
    (voters, learners, pending): (&[u64], &[u64], bool),
    full: Option<usize>,
) -> RejoinStep {
    if !leads || peer == me {
        return RejoinStep::Wait;
    }
    if learners.contains(&peer) {
        return RejoinStep::Learner;
    }
    if pending {
        return RejoinStep::Wait;
    }
    if voters.contains(&peer) {
        RejoinStep::Remove
    } else if full.is_some_and(|full| voters.len() >= full) {
        RejoinStep::Replaced
    } else {
        RejoinStep::AddLearner
    }
}

/// A leader's answer to a rejoining replica on `peer`: proposes the membership change
/// [`rejoin_step`] asks for and says where the peer stands.
fn replace_replica(replica: &mut Replica, peer: u64) -> RejoinStep {
    let membership = (replica.voters(), replica.learners(), replica.has_pending_conf_change());
    let step = rejoin_step(
        replica.is_leader(),
        replica.id(),
        peer,
        (&membership.0, &membership.1, membership.2),
        voters_full(replica.group()),
    );
    let change = match step {
        RejoinStep::Remove => ConfChangeType::RemoveNode,
        RejoinStep::AddLearner => ConfChangeType::AddLearnerNode,
        other => return other,
    };
    match replica.propose_conf_change(change, peer) {
        Ok(()) => tracing::info!(group = replica.group(), peer, ?change, "membership change proposed"),
        Err(error) => tracing::debug!(group = replica.group(), peer, %error, "membership change not proposed"),
    }
    RejoinStep::Wait
}

/// How node `me` starts a split's child, given the parent's voters, the child's recorded
/// voters if the metadata group holds any, and whether the split was learned from a snapshot.
/// A replica that applies a split late may find the child already changed by a move: it does
/// not start a child that moved away (no leader would ever send it anything), and takes the
/// state of a child whose voters changed from its leader rather than bootstrapping it with
/// voters the group no longer has.
fn child_start(me: u64, parent_voters: &[u64], recorded: Option<&[u64]>, from_snapshot: bool) -> Option<StartFrom> {
    let same = |voters: &[u64]| {
        let mut a = voters.to_vec();
        let mut b = parent_voters.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    };
    match recorded {
        Some(voters) if !voters.contains(&me) => None,
        Some(voters) if !same(voters) => Some(StartFrom::Leader),
        _ if from_snapshot => Some(StartFrom::Leader),
        _ => Some(StartFrom::Membership),
    }
}

/// Where a replica being started takes its state from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartFrom {
    /// The membership this node knows (the initial placement, or its own stored state).
    Membership,
    /// A leader: a split's child learned from a snapshot, or a group that moved here.
    Leader,
    /// A leader, as the target of a move this node was asked to host.
    Hosted,
}

/// Where a move stands, as its group's leader sees it.
#[derive(Debug)]
enum MoveStep {
    /// The target holds a voter and the source none: the group's voters, and the leader's
    /// applied index when it saw them.
    Done(Vec<u64>, u64),
    /// A step was taken or is awaited; ask again.
    Pending,
    /// The target must run a replica before the leader adds it.
    NeedsHost,
    /// The group is in the middle of another membership change.
    Busy,
    /// This replica does not lead.
    NotLeader,
}

/// A leader's next step of moving the replica on `from` to `to` (see `cluster::membership`):
/// add `to` as a learner (once `hosted`), wait for its promotion, hand leadership to it if this
/// replica is the one leaving, remove `from`. One move at a time: a step that does not fit the
/// group's state (three voters, or four while `to` joins and `from` leaves) is refused.
fn move_step(replica: &mut Replica, from: u64, to: u64, hosted: bool) -> MoveStep {
    if !replica.is_leader() {
        return MoveStep::NotLeader;
    }
    let (voters, learners) = (replica.voters(), replica.learners());
    let full = crate::partition::REPLICA_COUNT;
    if voters.contains(&to) && !voters.contains(&from) {
        return MoveStep::Done(voters, replica.applied_index());
    }
    if replica.has_pending_conf_change() {
        return MoveStep::Pending;
    }
    let change = match (voters.contains(&to), learners.contains(&to)) {
        (false, false) if voters.len() == full && learners.is_empty() && voters.contains(&from) => {
            if !hosted {
                return MoveStep::NeedsHost;
            }
            ConfChangeType::AddLearnerNode
        }
        // The learner catches up; `promote_learners` makes it a voter.
        (false, true) if learners == [to] => return MoveStep::Pending,
        (true, _) if voters.len() == full + 1 && voters.contains(&from) => {
            if from == replica.id() {
                replica.transfer_leadership(to);
                return MoveStep::Pending;
            }
            ConfChangeType::RemoveNode
        }
        _ => return MoveStep::Busy,
    };
    let target = if change == ConfChangeType::RemoveNode { from } else { to };
    match replica.propose_conf_change(change, target) {
        Ok(()) => tracing::info!(group = replica.group(), target, ?change, "move: membership change proposed"),
        Err(error) => tracing::debug!(group = replica.group(), %error, "move: membership change not proposed"),
    }
    MoveStep::Pending
}

/// The member a leader should remove as stranded, if its group has more members than it
/// should (`full` voters and a learner, or more than `full` voters): a learner outside the
/// recorded membership `mapped` first, then a voter outside it other than the leader `me`.
fn stranded_member(voters: &[u64], learners: &[u64], mapped: &[u64], me: u64, full: usize) -> Option<u64> {
    let over = (voters.len() >= full && !learners.is_empty()) || voters.len() > full;
    if !over || mapped.len() != full {
        return None;
    }
    let outside = |m: &&u64| !mapped.contains(m) && **m != me;
    learners.iter().find(outside).or_else(|| voters.iter().find(outside)).copied()
}

/// Voters, learners and each learner's matched index.
type SeenMembership = (Vec<u64>, Vec<u64>, Vec<Option<u64>>);

/// A leader's watch over members beyond its group's recorded membership: the membership and
/// the progress it last saw, and since which tick they have not changed.
#[derive(Debug, Default)]
struct StrandedWatch {
    seen: Option<SeenMembership>,
    since_tick: u64,
    /// The member whose removal was proposed, until the group no longer has it.
    removing: Option<u64>,
}

impl StrandedWatch {
    /// The member to remove now: one [`stranded_member`] names, in a group whose membership
    /// and learners' progress have not changed, with no snapshot in flight, for
    /// `window_ticks`.
    fn check(&mut self, replica: &Replica, mapped: &[u64], ticks: u64, window_ticks: u64) -> Option<u64> {
        let (voters, learners) = (replica.voters(), replica.learners());
        let full = crate::partition::REPLICA_COUNT;
        let Some(member) = stranded_member(&voters, &learners, mapped, replica.id(), full) else {
            self.seen = None;
            return None;
        };
        let progress: Vec<Option<u64>> = learners.iter().map(|l| replica.matched(*l)).collect();
        let now = Some((voters, learners, progress));
        if self.seen != now || !replica.snapshots_in_flight().is_empty() {
            self.seen = now;
            self.since_tick = ticks;
            return None;
        }
        let stranded = ticks.saturating_sub(self.since_tick) >= window_ticks;
        if stranded {
            self.removing = Some(member);
        }
        stranded.then_some(member)
    }

    /// The member whose removal has taken effect since the last call: its node is to drop the
    /// replica it still holds.
    fn removed(&mut self, replica: &Replica) -> Option<u64> {
        let member = self.removing?;
        if replica.voters().contains(&member) || replica.learners().contains(&member) {
            return None;
        }
        self.removing = None;
        Some(member)
    }
}

/// Has a leader promote a learner that holds everything committed to a voter.
fn promote_learners(replica: &mut Replica) {
    if !replica.is_leader() || replica.has_pending_conf_change() {
        return;
    }
    let commit = replica.commit_index();
    let ready = replica.learners().into_iter().find(|l| replica.matched(*l).is_some_and(|m| m >= commit));
    if let Some(learner) = ready {
        match replica.propose_conf_change(ConfChangeType::AddNode, learner) {
            Ok(()) => tracing::info!(group = replica.group(), learner, "learner promoted to voter"),
            Err(error) => tracing::debug!(group = replica.group(), learner, %error, "promotion not proposed"),
        }
    }
}

/// Runs a group's storage work (raft persistence with its fsyncs, applying entries) so that a
/// slow disk does not stall the node's other tasks: on a real node's multi-threaded runtime the
/// worker hands its other tasks to another thread while this one waits for the disk (with one
/// core, a 60 ms fsync would otherwise hold up every request for 60 ms). Under the simulator,
/// and on a single-threaded runtime (tests), it runs inline.
fn blocking_storage<T>(work: impl FnOnce() -> T) -> T {
    #[cfg(not(madsim))]
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
            return tokio::task::block_in_place(work);
        }
    }
    work()
}

/// The task driving one replica: ticks, inbound messages and proposals, then persistence,
/// application and sending, in batches.
async fn run_group(
    node: std::sync::Weak<ClusterNode>,
    mut replica: Replica,
    mut inbox: mpsc::Receiver<GroupEvent>,
    settings: ClusterSettings,
    reopen: impl Fn() -> Result<Replica, ReplicationError> + Send + 'static,
    shared: GroupShared,
) {
    let group = replica.group();
    let mut ticker = tokio::time::interval(Duration::from_millis(settings.tick_ms));
    let mut ticks: u64 = 0;
    // Followers sent a snapshot, and the tick it left: one whose acknowledgement is overdue
    // was lost on the way (raft would wait for it for good), so raft is told to try again.
    let mut snapshots_sent: BTreeMap<u64, u64> = BTreeMap::new();
    // Whether this replica has been a learner since it started rejoining (a replica restarted
    // as a learner has).
    let mut was_learner = shared.accepting.load(Ordering::Relaxed);
    // The damaged replica last granted a rebuild here and the tick it was granted at.
    let mut repair_granted: Option<(u64, u64)> = None;
    let mut stranded = StrandedWatch::default();
    loop {
        let mut events = Vec::new();
        tokio::select! {
            _ = ticker.tick() => {
                ticks += 1;
                let rejoining = shared.rejoining.load(Ordering::Relaxed);
                // A rejoining replica never campaigns: it may hold a membership that counts
                // it as a voter while it has not yet been taken back.
                if !rejoining {
                    replica.tick();
                }
                if ticks.is_multiple_of(MEMBERSHIP_CHECK_TICKS) {
                    if let Some(node) = node.upgrade() {
                        if rejoining && !replica.learners().contains(&replica.id()) {
                            node.ask_to_be_replaced(group);
                        }
                        promote_learners(&mut replica);
                        if replica.is_leader() && !replica.has_pending_conf_change() && group != META_GROUP {
                            let mapped = node.mapped_replicas(group);
                            let window_ticks = settings.stranded_member_ms / settings.tick_ms.max(1);
                            if let Some(member) = stranded.removed(&replica) {
                                tokio::spawn(ClusterNode::drop_stranded(Arc::downgrade(&node), group, member));
                            }
                            if let Some(member) = stranded.check(&replica, &mapped, ticks, window_ticks) {
                                match replica.propose_conf_change(ConfChangeType::RemoveNode, member) {
                                    Ok(()) => tracing::info!(group, member, "stranded member removed"),
                                    Err(error) => tracing::debug!(group, member, %error, "stranded member kept"),
                                }
                            }
                        }
                    }
                }
                if ticks.is_multiple_of(COMPACT_CHECK_TICKS) {
                    propose_compaction(&mut replica, settings.replica.log_entries_max);
                }
                if !snapshots_sent.is_empty() {
                    let in_flight = replica.snapshots_in_flight();
                    snapshots_sent.retain(|peer, sent| {
                        let overdue = ticks - *sent > SNAPSHOT_ACK_TICKS_MAX;
                        if overdue && in_flight.contains(peer) {
                            replica.report_snapshot_lost(*peer);
                        }
                        !overdue && in_flight.contains(peer)
                    });
                }
            }
            event = inbox.recv() => match event {
                Some(event) => events.push(event),
                None => return,
            },
        }
        while events.len() < settings.group_batch_events_max {
            match inbox.try_recv() {
                Ok(event) => events.push(event),
                Err(_) => break,
            }
        }
        for event in events {
            match event {
                GroupEvent::Raft(message) => {
                    // A rejoining replica grants no vote: it forgot the votes it gave before.
                    let vote = matches!(
                        message.get_msg_type(),
                        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote | MessageType::MsgTimeoutNow
                    );
                    let rejoining = shared.rejoining.load(Ordering::Relaxed);
                    if !rejoining || (shared.accepting.load(Ordering::Relaxed) && !vote) {
                        replica.step(message);
                    }
                }
                GroupEvent::Replace { node: peer, reply } => {
                    let _ = reply.send(replace_replica(&mut replica, peer));
                }
                GroupEvent::Repair { node: peer, reply } => {
                    let _ = reply.send(repair::answer_repair(&mut replica, peer, ticks, &mut repair_granted));
                }
                GroupEvent::StepDown { reply } => {
                    let _ = reply.send(repair::step_down(&mut replica, repair_granted.map(|(peer, _)| peer)));
                }
                GroupEvent::Move { from, to, hosted, reply } => {
                    let _ = reply.send(move_step(&mut replica, from, to, hosted));
                }
                GroupEvent::Membership { reply } => {
                    let settled =
                        replica.is_leader() && !replica.has_pending_conf_change() && replica.learners().is_empty();
                    let _ = reply.send(settled.then(|| (replica.voters(), replica.applied_index())));
                }
                GroupEvent::Propose { context, data, reply } => {
                    let refused = crate::buggify::fires(crate::buggify::Site::RefuseProposal);
                    let result = if replica.is_leader() && !refused {
                        replica.propose(context, data).map_err(|_| replica.leader_id())
                    } else {
                        Err(replica.leader_id())
                    };
                    let _ = reply.send(result);
                }
            }
        }
        let Some(node) = node.upgrade() else { return };
        let (processed, held_answers) = if settings.resources.is_some() {
            hold_answers(|| replica.process_ready(&mut NodeMachine(&node)))
        } else {
            (blocking_storage(|| replica.process_ready(&mut NodeMachine(&node))), Vec::new())
        };
        let outcome = match processed {
            Ok(outcome) => outcome,
            Err(e) => {
                for (waiter, answer) in held_answers {
                    let _ = waiter.send(answer);
                }
                // A storage failure: the replica stops rather than acknowledge what it could
                // not persist; the other replicas carry on. It comes back from the store after
                // a pause, and keeps trying while the store refuses.
                tracing::error!(group, error = %e, "replica stopped after a storage failure");
                drop(node);
                loop {
                    tokio::time::sleep(Duration::from_millis(settings.replica_restart_backoff_ms)).await;
                    // Messages queued meanwhile are stale. A stopped replica leads nothing
                    // and grants nothing: a damaged one asking whether it leads may go on.
                    while let Ok(event) = inbox.try_recv() {
                        match event {
                            GroupEvent::StepDown { reply } | GroupEvent::Repair { reply, .. } => {
                                let _ = reply.send(false);
                            }
                            _ => {}
                        }
                    }
                    match reopen() {
                        Ok(reopened) => {
                            replica = reopened;
                            tracing::info!(group, "replica reopened from the store");
                            break;
                        }
                        Err(e) => tracing::warn!(group, error = %e, "replica cannot reopen yet"),
                    }
                }
                continue;
            }
        };
        shared.applied.store(replica.applied_index(), Ordering::Relaxed);
        if outcome.membership_changed {
            node.follow_membership(group, &replica, &shared, &mut was_learner);
        }
        if let Some(through) = lock(&node.compactions).remove(&group) {
            if let Err(error) = replica.compact_log(through) {
                tracing::warn!(group, through, %error, "log compaction failed; the log stays longer");
            }
        }
        if let Some(resources) = &settings.resources {
            // The Ready's storage work, taken before the next await (see `resources`): its log
            // writes and syncs and its applications, paid before the messages that depend on
            // them go out.
            let work = crate::resources::take_work();
            let stage = crate::resources::Stage::Replicate {
                entries_applied: outcome.entries_applied,
                applied_bytes: outcome.applied_bytes,
            };
            resources.0.pay(stage, work).await;
        }
        for (waiter, answer) in held_answers {
            let _ = waiter.send(answer);
        }
        if outcome.leadership_changed {
            tracing::debug!(
                group,
                node = replica.id(),
                leader = replica.leader_id(),
                term = replica.term(),
                commit = replica.commit_index(),
                "leadership changed"
            );
        }
        if outcome.leadership_changed && replica.leader_id() != 0 {
            lock(&node.leader_hints).insert(group, replica.leader_id());
        }
        if !outcome.messages.is_empty() && crate::buggify::fires(crate::buggify::Site::DelayRaftMessages) {
            // Persisted state stays persisted; only its announcement is late.
            tokio::time::sleep(Duration::from_millis(BUGGIFY_DELAY_MESSAGES_MS)).await;
        }
        for message in outcome.messages {
            if message.get_msg_type() == raft::prelude::MessageType::MsgSnapshot {
                snapshots_sent.insert(message.to, ticks);
            }
            node.transport.send_raft(group, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_answers_wait_for_their_ready_and_others_go_at_once() {
        let (waiter, mut answered) = oneshot::channel();
        let ((), held) = hold_answers(|| answer_proposal(waiter, (Ok(json!({"held": true})), Usage::default())));
        assert!(answered.try_recv().is_err(), "nothing answered while the Ready is processed");
        assert_eq!(held.len(), 1);
        for (waiter, answer) in held {
            let _ = waiter.send(answer);
        }
        assert_eq!(answered.try_recv().expect("answered once released").0.unwrap(), json!({"held": true}));
        // Outside a Ready's processing an answer goes at once.
        let (waiter, mut answered) = oneshot::channel();
        answer_proposal(waiter, (Ok(json!({})), Usage::default()));
        assert!(answered.try_recv().is_ok());
    }

    #[test]
    fn a_member_beyond_the_recorded_membership_is_stranded() {
        let mapped = [1, 2, 3];
        // A settled group, or one short of a member (a replacement under way), has none.
        assert_eq!(stranded_member(&[1, 2, 3], &[], &mapped, 1, 3), None);
        assert_eq!(stranded_member(&[1, 2], &[4], &mapped, 1, 3), None);
        // A move's learner, or its target promoted beside the source, is.
        assert_eq!(stranded_member(&[1, 2, 3], &[4], &mapped, 1, 3), Some(4));
        assert_eq!(stranded_member(&[1, 2, 3, 4], &[], &mapped, 1, 3), Some(4));
        // A move recorded already (its source left the record): the source is the extra one,
        // unless it leads, which it must hand over first.
        assert_eq!(stranded_member(&[1, 2, 3, 4], &[], &[2, 3, 4], 2, 3), Some(1));
        assert_eq!(stranded_member(&[1, 2, 3, 4], &[], &[2, 3, 4], 1, 3), None);
        // Without a full record to go by, nothing is removed.
        assert_eq!(stranded_member(&[1, 2, 3], &[4], &[], 1, 3), None);
    }

    /// With one worker thread, storage work that waits (as an fsync does) must not hold up the
    /// other tasks: here the waiting work can only finish once another task has run.
    #[cfg(not(madsim))]
    #[test]
    fn storage_work_leaves_the_other_tasks_of_a_one_worker_runtime_running() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let received = runtime.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<u32>();
            let waiting = tokio::spawn(async move {
                blocking_storage(|| rx.recv_timeout(Duration::from_secs(10)).map_err(|e| e.to_string()))
            });
            // Let the waiting task start and block its thread first.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let sender = tokio::spawn(async move { tx.send(7).is_ok() });
            assert!(sender.await.unwrap(), "the other task ran while storage work waited");
            waiting.await.unwrap()
        });
        assert_eq!(received, Ok(7));
        // A single-threaded runtime runs it inline.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(async { blocking_storage(|| 5) }), 5);
    }

    #[test]
    fn a_late_split_starts_only_the_children_still_placed_here() {
        let parent = [2, 4, 6];
        assert_eq!(child_start(6, &parent, None, false), Some(StartFrom::Membership));
        assert_eq!(child_start(6, &parent, None, true), Some(StartFrom::Leader));
        assert_eq!(child_start(6, &parent, Some(&[6, 2, 4]), false), Some(StartFrom::Membership));
        assert_eq!(child_start(6, &parent, Some(&[2, 4, 7]), false), None, "moved away");
        assert_eq!(child_start(6, &parent, Some(&[2, 6, 8]), false), Some(StartFrom::Leader), "voters changed");
    }

    #[test]
    fn a_rejoining_replica_is_removed_then_taken_back_unless_it_was_replaced() {
        let partition = voters_full(7);
        let step =
            |voters: &[u64], learners: &[u64], pending| rejoin_step(true, 1, 4, (voters, learners, pending), partition);
        // Still a voter: removed first, since it forgot its votes and log.
        assert_eq!(step(&[1, 2, 4], &[], false), RejoinStep::Remove);
        // Removed: added back as a learner, then told so.
        assert_eq!(step(&[1, 2], &[], false), RejoinStep::AddLearner);
        assert_eq!(step(&[1, 2], &[4], false), RejoinStep::Learner);
        // One membership change at a time.
        assert_eq!(step(&[1, 2], &[], true), RejoinStep::Wait);
        // Three other voters took its place while it was away: not taken back as a fourth.
        assert_eq!(step(&[1, 2, 5], &[], false), RejoinStep::Replaced);
        // Only a leader answers, and never for itself.
        assert_eq!(rejoin_step(false, 1, 4, (&[1, 2], &[], false), partition), RejoinStep::Wait);
        assert_eq!(rejoin_step(true, 4, 4, (&[1, 2], &[], false), partition), RejoinStep::Wait);
        // Every node belongs to the metadata group: always taken back.
        assert_eq!(
            rejoin_step(true, 1, 4, (&[1, 2, 3, 5, 6], &[], false), voters_full(META_GROUP)),
            RejoinStep::AddLearner
        );
    }

    #[test]
    fn commands_round_trip() {
        let command = Command {
            read_only: true,
            now_ms: 123,
            operation: "GetItem".into(),
            body: b"{\"TableName\":\"t\"}".to_vec(),
        };
        assert_eq!(Command::decode(&command.encode()), Some(command));
        assert_eq!(Command::decode(&[1, 2]), None);
    }

    #[test]
    fn contexts_round_trip() {
        assert_eq!(parse_context(&proposal_context(3, 4, 5)), Some((3, 4, 5)));
        assert_eq!(parse_context(b"short"), None);
    }
}
