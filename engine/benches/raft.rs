//! One write through an in-process three-replica raft group: the leader's proposal, its log
//! append, the followers' appends and acknowledgements, the commit, and every replica applying
//! the entry. The replicas are `Replica`s driven by hand as the cluster's driver drives them,
//! with messages handed from one to the next in memory instead of over the network, so what is
//! measured is raft-rs, the log store and the stores, without network or timers.
//!
//! On `MemStore` this is the CPU cost of replication; on `RocksStore` (one store per replica in
//! a temporary directory) it includes the fsyncs of the log, one after another as on a single
//! machine, which dominate.

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use raft::prelude::Entry;
use squall_engine::model::encode_item;
use squall_engine::replication::{Replica, ReplicaSettings, ReplicationError, StateMachine};
use squall_engine::storage::{Durability, KvStore, MemStore, RocksConfig, RocksStore, WriteBatch};
use tempfile::TempDir;

mod common;

const GROUP: u64 = 7;
const VOTERS: [u64; 3] = [1, 2, 3];
/// Proposals a group takes before it is replaced by a fresh one (untimed), so the log, which
/// this benchmark never compacts, stays small enough to keep in memory.
const PROPOSALS_PER_GROUP: u64 = 5_000;
/// Rounds of message delivery within which a proposal must be applied everywhere; more means
/// the group is stuck, which must fail the benchmark rather than hang it.
const ROUNDS_MAX: usize = 100;

/// A state machine that does what the cluster's does with an item write, minus decoding: one
/// buffered batch with the entry's data and the applied index.
struct ItemMachine {
    store: Arc<dyn KvStore>,
    /// Entries with data applied so far.
    applied: u64,
}

impl StateMachine for ItemMachine {
    fn apply(&mut self, _group: u64, entry: &Entry, applied: (Vec<u8>, Vec<u8>)) -> Result<(), ReplicationError> {
        let mut batch = WriteBatch::new();
        batch.put(b"item".to_vec(), entry.data.to_vec());
        batch.put(applied.0, applied.1);
        self.store.write(batch, Durability::Buffered)?;
        self.applied += 1;
        Ok(())
    }

    /// The benchmark never compacts, so no replica asks for one; this is what one would hold.
    fn snapshot(&mut self, _group: u64) -> Result<Vec<u8>, ReplicationError> {
        Ok(self.store.get(b"item")?.unwrap_or_default())
    }

    fn restore(
        &mut self,
        _group: u64,
        data: &[u8],
        applied: (Vec<u8>, Vec<u8>),
        batch: &mut WriteBatch,
    ) -> Result<(), ReplicationError> {
        batch.put(b"item".to_vec(), data.to_vec());
        batch.put(applied.0, applied.1);
        Ok(())
    }

    fn restored(&mut self, _group: u64) {}
}

struct Node {
    replica: Replica,
    machine: ItemMachine,
}

/// Three replicas of one group with an elected leader, each on its own store.
struct Group {
    nodes: BTreeMap<u64, Node>,
    leader: u64,
    proposals: u64,
    // The stores' directories, removed when the group is dropped (after the stores).
    _dirs: Vec<TempDir>,
}

impl Group {
    fn new(open: &dyn Fn() -> (Arc<dyn KvStore>, Option<TempDir>)) -> Group {
        let mut dirs = Vec::new();
        let mut nodes = BTreeMap::new();
        for id in VOTERS {
            let (store, dir) = open();
            dirs.extend(dir);
            let replica =
                Replica::open(store.clone(), GROUP, id, &VOTERS, ReplicaSettings::default(), 42).expect("open replica");
            nodes.insert(id, Node { replica, machine: ItemMachine { store, applied: 0 } });
        }
        let mut group = Group { nodes, leader: 1, proposals: 0, _dirs: dirs };
        // Replica 1 campaigns at once, as a new group's first replica does, instead of waiting
        // out an election timeout.
        group.nodes.get_mut(&1).expect("replica 1").replica.campaign().expect("campaign");
        // The new leader's first (empty) entry is applied everywhere before anything is measured.
        group.deliver_until(|g| {
            g.nodes[&1].replica.is_leader() && g.nodes.values().all(|n| n.replica.applied_index() >= 1)
        });
        group
    }

    /// Whether every replica's state machine has applied `count` proposals.
    fn all_applied(&self, count: u64) -> bool {
        self.nodes.values().all(|n| n.machine.applied >= count)
    }

    /// Processes every replica's ready state and delivers the messages it produced, round after
    /// round, until `done` holds.
    fn deliver_until(&mut self, done: impl Fn(&Group) -> bool) {
        for _ in 0..ROUNDS_MAX {
            if done(self) {
                return;
            }
            let mut outbox = VecDeque::new();
            for n in self.nodes.values_mut() {
                outbox.extend(n.replica.process_ready(&mut n.machine).expect("process ready").messages);
            }
            for message in outbox {
                self.nodes.get_mut(&message.to).expect("a voter").replica.step(message);
            }
        }
        panic!("the group did not reach the expected state in {ROUNDS_MAX} rounds");
    }

    /// Proposes `data` at the leader and drives the group until every replica applied it.
    fn replicate(&mut self, data: &[u8]) {
        let leader = self.nodes.get_mut(&self.leader).expect("the leader");
        leader.replica.propose(Vec::new(), data.to_vec()).expect("the leader accepts the proposal");
        self.proposals += 1;
        let target = self.proposals;
        self.deliver_until(|g| g.all_applied(target));
    }
}

/// Measures `iters` replications, replacing the group (untimed) every `PROPOSALS_PER_GROUP`.
fn timed_replications(
    group: &mut Option<Group>,
    open: &dyn Fn() -> (Arc<dyn KvStore>, Option<TempDir>),
    data: &[u8],
    iters: u64,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        if group.as_ref().is_none_or(|g| g.proposals >= PROPOSALS_PER_GROUP) {
            *group = None;
            *group = Some(Group::new(open));
        }
        let g = group.as_mut().expect("a group");
        let start = Instant::now();
        g.replicate(black_box(data));
        elapsed += start.elapsed();
    }
    elapsed
}

fn raft_group(c: &mut Criterion) {
    let item = common::order_item();
    common::assert_about_1kb(&item);
    // The proposal carries an encoded 1 KB item, about what an item write's entry carries.
    let data = encode_item(&item);

    let mut group = c.benchmark_group("raft");
    let open_mem = || (Arc::new(MemStore::new()) as Arc<dyn KvStore>, None);
    let mut mem_group = None;
    group.bench_function("replicate_1kb_3_replicas_mem", |b| {
        b.iter_custom(|iters| timed_replications(&mut mem_group, &open_mem, &data, iters))
    });
    drop(mem_group);

    // Several fsyncs per proposal (the leader's append, the followers' appends, the commit
    // index), a few milliseconds in all: fewer samples keep the run short.
    group.sample_size(10);
    let open_rocks = || {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = RocksConfig { block_cache_bytes: 8 << 20, write_buffer_bytes: 4 << 20 };
        let store = RocksStore::open_with(dir.path(), &config).expect("open RocksDB");
        (Arc::new(store) as Arc<dyn KvStore>, Some(dir))
    };
    let mut rocks_group = None;
    group.bench_function("replicate_1kb_3_replicas_rocks", |b| {
        b.iter_custom(|iters| timed_replications(&mut rocks_group, &open_rocks, &data, iters))
    });
    drop(rocks_group);
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = raft_group
}
criterion_main!(benches);
