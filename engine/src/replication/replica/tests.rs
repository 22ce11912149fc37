use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::storage::MemStore;

/// Records applied entries and writes each one's applied index, as a real state machine must.
/// Its snapshot is the list of entries applied so far.
struct Recorder {
    store: Arc<MemStore>,
    applied: Vec<Vec<u8>>,
    /// A restored snapshot's entries, until it is durable.
    restoring: Option<Vec<Vec<u8>>>,
    snapshots_restored: usize,
}

impl StateMachine for Recorder {
    fn apply(&mut self, _group: u64, entry: &Entry, applied: (Vec<u8>, Vec<u8>)) -> Result<(), ReplicationError> {
        self.applied.push(entry.data.to_vec());
        let mut batch = WriteBatch::new();
        batch.put(applied.0, applied.1);
        self.store.write(batch, Durability::Buffered)?;
        Ok(())
    }

    fn snapshot(&mut self, _group: u64) -> Result<Vec<u8>, ReplicationError> {
        Ok(self.applied.join(&b'\n'))
    }

    fn restore(
        &mut self,
        _group: u64,
        data: &[u8],
        applied: (Vec<u8>, Vec<u8>),
        batch: &mut WriteBatch,
    ) -> Result<(), ReplicationError> {
        let entries =
            if data.is_empty() { Vec::new() } else { data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
        self.restoring = Some(entries);
        batch.put(applied.0, applied.1);
        Ok(())
    }

    fn restored(&mut self, _group: u64) {
        self.applied = self.restoring.take().expect("a restore precedes restored");
        self.snapshots_restored += 1;
    }
}

struct Node {
    replica: Replica,
    machine: Recorder,
}

const GROUP: u64 = 7;

fn node(id: u64, store: Arc<MemStore>, seed: u64) -> Node {
    let replica = Replica::open(store.clone(), GROUP, id, &[1, 2, 3], ReplicaSettings::default(), seed).unwrap();
    Node { replica, machine: Recorder { store, applied: Vec::new(), restoring: None, snapshots_restored: 0 } }
}

/// Ticks every node `ticks` times, delivering messages after each tick except to `down` nodes,
/// until `done` holds. Returns whether it held.
fn run(
    nodes: &mut BTreeMap<u64, Node>,
    down: &[u64],
    ticks: usize,
    done: impl Fn(&BTreeMap<u64, Node>) -> bool,
) -> bool {
    for _ in 0..ticks {
        for (id, n) in nodes.iter_mut() {
            if !down.contains(id) {
                n.replica.tick();
            }
        }
        loop {
            let mut outbox = VecDeque::new();
            for (id, n) in nodes.iter_mut() {
                if !down.contains(id) {
                    outbox.extend(n.replica.process_ready(&mut n.machine).unwrap().messages);
                }
            }
            if outbox.is_empty() {
                break;
            }
            for m in outbox {
                if !down.contains(&m.to) && !down.contains(&m.from) {
                    nodes.get_mut(&m.to).unwrap().replica.step(m);
                }
            }
        }
        if done(nodes) {
            return true;
        }
    }
    false
}

fn leader(nodes: &BTreeMap<u64, Node>, down: &[u64]) -> Option<u64> {
    nodes.iter().find(|(id, n)| !down.contains(id) && n.replica.is_leader()).map(|(id, _)| *id)
}

#[test]
fn group_survives_the_loss_of_its_leader_and_a_restart_reapplies_nothing_twice() {
    let stores: BTreeMap<u64, Arc<MemStore>> = (1..=3).map(|id| (id, Arc::new(MemStore::new()))).collect();
    let mut nodes: BTreeMap<u64, Node> = stores.iter().map(|(&id, s)| (id, node(id, s.clone(), 42))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    nodes.get_mut(&first).unwrap().replica.propose(vec![], b"one".to_vec()).unwrap();
    assert!(run(&mut nodes, &[], 20, |n| n.values().all(|n| n.machine.applied == [b"one".to_vec()])));

    // The leader goes away; the other two elect a new leader and commit without it.
    let down = [first];
    assert!(run(&mut nodes, &down, 200, |n| leader(n, &down).is_some()), "no new leader");
    let second = leader(&nodes, &down).unwrap();
    assert_ne!(first, second);
    nodes.get_mut(&second).unwrap().replica.propose(vec![], b"two".to_vec()).unwrap();
    assert!(run(&mut nodes, &down, 20, |n| n.iter().filter(|(id, _)| !down.contains(id)).all(|(_, n)| n
        .machine
        .applied
        .last()
        .map(Vec::as_slice)
        == Some(b"two".as_slice()))));

    // The old leader restarts from its store: it applies only what it had not applied.
    let restarted = node(first, stores[&first].clone(), 42);
    assert_eq!(restarted.replica.applied_index(), stored_applied_index(&*stores[&first], GROUP).unwrap());
    nodes.insert(first, restarted);
    assert!(
        run(&mut nodes, &[], 100, |n| n[&first].machine.applied == [b"two".to_vec()]),
        "restarted replica did not catch up"
    );
}

#[test]
fn proposals_to_a_follower_are_refused() {
    let mut nodes: BTreeMap<u64, Node> = (1..=3).map(|id| (id, node(id, Arc::new(MemStore::new()), 1))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()));
    let follower = nodes.iter().find(|(_, n)| !n.replica.is_leader()).map(|(id, _)| *id).unwrap();
    let result = nodes.get_mut(&follower).unwrap().replica.propose(vec![], b"x".to_vec());
    assert!(matches!(result, Err(ReplicationError::Raft(raft::Error::ProposalDropped))), "{result:?}");
}

#[test]
fn election_timing_is_the_same_for_the_same_seed() {
    let elect = |seed: u64| {
        let mut nodes: BTreeMap<u64, Node> =
            (1..=3).map(|id| (id, node(id, Arc::new(MemStore::new()), seed + id))).collect();
        let mut ticks = 0;
        run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some());
        for n in nodes.values() {
            ticks += n.replica.raw.raft.randomized_election_timeout();
        }
        (leader(&nodes, &[]), ticks)
    };
    for seed in [1, 2, 3, 10, 99] {
        assert_eq!(elect(seed), elect(seed), "seed {seed}");
    }
}

#[test]
fn replicas_of_one_group_with_one_node_seed_draw_different_timeouts() {
    // Every node of a cluster may be given the same seed; the replica id must still separate
    // their election timeouts, or the survivors of a lost leader split every vote.
    let differing = (0..20u64)
        .filter(|seed| {
            let a = node(1, Arc::new(MemStore::new()), *seed).replica.raw.raft.randomized_election_timeout();
            let b = node(2, Arc::new(MemStore::new()), *seed).replica.raw.raft.randomized_election_timeout();
            a != b
        })
        .count();
    assert!(differing >= 15, "only {differing} of 20 seeds gave different timeouts");
}

#[test]
fn a_replica_behind_the_compacted_log_catches_up_from_a_snapshot() {
    let stores: BTreeMap<u64, Arc<MemStore>> = (1..=3).map(|id| (id, Arc::new(MemStore::new()))).collect();
    let mut nodes: BTreeMap<u64, Node> = stores.iter().map(|(&id, s)| (id, node(id, s.clone(), 7))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    let away = *nodes.keys().find(|id| **id != first).unwrap();
    let down = [away];
    for i in 0..40 {
        nodes.get_mut(&first).unwrap().replica.propose(vec![], format!("e{i}").into_bytes()).unwrap();
        assert!(run(&mut nodes, &down, 5, |n| n[&first].machine.applied.len() == i + 1));
    }
    // The replica that is away holds compaction back only as far as `retain_entries`.
    let through = nodes[&first].replica.compactable_index(10).unwrap();
    assert_eq!(through, nodes[&first].replica.applied_index() - 10);
    for n in nodes.values_mut() {
        n.replica.compact_log(through).unwrap();
    }
    assert!(nodes[&first].replica.first_index() > 2);

    // Back, it needs entries the log no longer holds: the leader sends a snapshot.
    assert!(
        run(&mut nodes, &[], 200, |n| n[&away].machine.applied == n[&first].machine.applied),
        "the returning replica did not catch up"
    );
    assert_eq!(nodes[&away].machine.snapshots_restored, 1);
    // Its log starts after the snapshot, which is at least as recent as the compaction point.
    assert!(nodes[&away].replica.first_index() > through);
    // It goes on applying new entries, and a restart starts from the snapshot's position.
    nodes.get_mut(&first).unwrap().replica.propose(vec![], b"after".to_vec()).unwrap();
    assert!(
        run(&mut nodes, &[], 20, |n| n[&away].machine.applied.last().map(Vec::as_slice) == Some(b"after".as_slice()))
    );
    let reopened = node(away, stores[&away].clone(), 7);
    assert_eq!(reopened.replica.applied_index(), nodes[&away].replica.applied_index());
    assert!(stored_applied_index(&*stores[&away], GROUP).unwrap() >= through);
}

#[test]
fn a_replica_that_lost_its_store_is_removed_and_comes_back_as_a_learner_then_a_voter() {
    use raft::prelude::ConfChangeType;
    let stores: BTreeMap<u64, Arc<MemStore>> = (1..=3).map(|id| (id, Arc::new(MemStore::new()))).collect();
    let mut nodes: BTreeMap<u64, Node> = stores.iter().map(|(&id, s)| (id, node(id, s.clone(), 11))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    let lost = *nodes.keys().find(|id| **id != first).unwrap();
    for i in 0..20 {
        nodes.get_mut(&first).unwrap().replica.propose(vec![], format!("e{i}").into_bytes()).unwrap();
        assert!(run(&mut nodes, &[], 5, |n| n.values().all(|n| n.machine.applied.len() == i + 1)));
    }
    let through = nodes[&first].replica.applied_index();
    for n in nodes.values_mut() {
        n.replica.compact_log(through).unwrap();
    }

    // The store is lost; the node comes back uninitialised (no voters given).
    let fresh = Arc::new(MemStore::new());
    let replica = Replica::open(fresh.clone(), GROUP, lost, &[], ReplicaSettings::default(), 11).unwrap();
    assert!(replica.voters().is_empty());
    nodes.insert(
        lost,
        Node {
            replica,
            machine: Recorder { store: fresh, applied: Vec::new(), restoring: None, snapshots_restored: 0 },
        },
    );
    let leader_of = |nodes: &BTreeMap<u64, Node>| leader(nodes, &[]).unwrap();
    let change = |nodes: &mut BTreeMap<u64, Node>, kind: ConfChangeType| {
        let l = leader_of(nodes);
        nodes.get_mut(&l).unwrap().replica.propose_conf_change(kind, lost).unwrap();
        let done = |n: &BTreeMap<u64, Node>| !n[&leader_of(n)].replica.has_pending_conf_change();
        assert!(run(nodes, &[], 50, done), "{kind:?} not applied");
    };
    change(&mut nodes, ConfChangeType::RemoveNode);
    assert!(!nodes[&first].replica.voters().contains(&lost));
    change(&mut nodes, ConfChangeType::AddLearnerNode);
    assert_eq!(nodes[&first].replica.learners(), vec![lost]);
    // The learner catches up from a snapshot, then is promoted.
    assert!(run(&mut nodes, &[], 200, |n| n[&lost].machine.applied == n[&first].machine.applied));
    assert_eq!(nodes[&lost].machine.snapshots_restored, 1);
    change(&mut nodes, ConfChangeType::AddNode);
    for n in nodes.values() {
        assert_eq!(n.replica.voters(), vec![1, 2, 3]);
    }
    // The membership survives a restart, and the group commits with the returned replica.
    let reopened = node(lost, nodes[&lost].machine.store.clone(), 11);
    assert_eq!(reopened.replica.voters(), vec![1, 2, 3]);
    let l = leader_of(&nodes);
    nodes.get_mut(&l).unwrap().replica.propose(vec![], b"last".to_vec()).unwrap();
    assert!(run(&mut nodes, &[], 20, |n| n
        .values()
        .all(|n| n.machine.applied.last().map(Vec::as_slice) == Some(b"last".as_slice()))));
}

/// A heartbeat meant for an earlier replica of the group on a node (it was dropped after a
/// move and the node hosts the group again, empty) arrives late: its commit index lies beyond
/// the new replica's log. The replica drops it instead of panicking in raft-rs, and takes the
/// leader's next messages.
#[test]
fn a_late_heartbeat_for_an_earlier_replica_is_dropped() {
    let mut nodes: BTreeMap<u64, Node> = (1..=3).map(|id| (id, node(id, Arc::new(MemStore::new()), 3))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    for i in 0..5u8 {
        nodes.get_mut(&first).unwrap().replica.propose(vec![], vec![i]).unwrap();
    }
    assert!(run(&mut nodes, &[], 20, |n| n.values().all(|n| n.machine.applied.len() == 5)));
    let follower = *nodes.keys().find(|id| **id != first).unwrap();
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = first;
    heartbeat.to = follower;
    heartbeat.term = nodes[&first].replica.raw.raft.term;
    heartbeat.commit = nodes[&first].replica.raw.raft.raft_log.committed;

    // The follower's replica is replaced by an uninitialised one (no membership, empty log).
    let store = Arc::new(MemStore::new());
    let fresh = Replica::open(store.clone(), GROUP, follower, &[], ReplicaSettings::default(), 3).unwrap();
    assert_eq!(fresh.raw.raft.raft_log.last_index(), 0);
    let mut fresh_node = Node {
        replica: fresh,
        machine: Recorder { store, applied: Vec::new(), restoring: None, snapshots_restored: 0 },
    };
    fresh_node.replica.step(heartbeat);
    assert_eq!(fresh_node.replica.raw.raft.raft_log.committed, 0, "nothing committed from the late heartbeat");
    let ready = fresh_node.replica.process_ready(&mut fresh_node.machine).unwrap();
    assert!(ready.messages.is_empty(), "no answer to a dropped heartbeat: {:?}", ready.messages);
}

/// A leader that applies a membership change removing itself (as one elected before it applied
/// its removal does) steps down instead of leading a group it is not in, where raft-rs would
/// panic on the next acknowledgement; the other two elect a leader and go on.
#[test]
fn a_leader_that_applies_its_own_removal_steps_down() {
    use raft::prelude::ConfChangeType;
    let stores: BTreeMap<u64, Arc<MemStore>> = (1..=3).map(|id| (id, Arc::new(MemStore::new()))).collect();
    let mut nodes: BTreeMap<u64, Node> = stores.iter().map(|(&id, s)| (id, node(id, s.clone(), 5))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    nodes.get_mut(&first).unwrap().replica.propose_conf_change(ConfChangeType::RemoveNode, first).unwrap();
    let removed = |n: &BTreeMap<u64, Node>| n.values().all(|n| !n.replica.voters().contains(&first));
    assert!(run(&mut nodes, &[], 50, removed), "the removal was not applied everywhere");
    assert!(!nodes[&first].replica.is_leader(), "the removed leader still leads");
    let others: Vec<u64> = nodes.keys().copied().filter(|id| *id != first).collect();
    let down = [first];
    assert!(run(&mut nodes, &down, 200, |n| leader(n, &down).is_some()), "the other two elect no leader");
    let second = leader(&nodes, &down).unwrap();
    nodes.get_mut(&second).unwrap().replica.propose(vec![], b"after".to_vec()).unwrap();
    assert!(run(&mut nodes, &down, 20, |n| others
        .iter()
        .all(|id| n[id].machine.applied.last().map(Vec::as_slice) == Some(b"after".as_slice()))));
}

/// A one-node group of `store` with a leader, and `proposals` entries proposed and applied one
/// at a time; returns the node and the syncs each proposal's processing made.
fn one_node_group_with_proposals(store: Arc<MemStore>, proposals: usize) -> (Node, Vec<u64>) {
    let metered: Arc<dyn KvStore> = Arc::new(crate::storage::MeteredStore::new(store.clone()));
    let replica = Replica::open(metered, GROUP, 1, &[1], ReplicaSettings::default(), 5).unwrap();
    let mut node =
        Node { replica, machine: Recorder { store, applied: Vec::new(), restoring: None, snapshots_restored: 0 } };
    node.replica.campaign().unwrap();
    node.replica.process_ready(&mut node.machine).unwrap();
    assert!(node.replica.is_leader());
    let mut syncs = Vec::new();
    for i in 0..proposals {
        crate::resources::take_work();
        node.replica.propose(vec![], format!("entry {i}").into_bytes()).unwrap();
        let outcome = node.replica.process_ready(&mut node.machine).unwrap();
        assert_eq!(outcome.entries_applied, 1, "a one-node group commits and applies at once");
        syncs.push(crate::resources::take_work().syncs);
    }
    (node, syncs)
}

#[test]
fn a_replicated_write_syncs_its_log_once_and_not_its_commit_index() {
    let (_, syncs) = one_node_group_with_proposals(Arc::new(MemStore::new()), 4);
    assert_eq!(syncs, [1, 1, 1, 1], "one fsync per entry: the log's; the new commit index is buffered");

    // Followers likewise sync an entry once, though they learn its commit in a later Ready.
    let stores: BTreeMap<u64, Arc<MemStore>> = (1..=3).map(|id| (id, Arc::new(MemStore::new()))).collect();
    let mut nodes: BTreeMap<u64, Node> = stores.iter().map(|(&id, s)| (id, node(id, s.clone(), 9))).collect();
    assert!(run(&mut nodes, &[], 200, |n| leader(n, &[]).is_some()), "no leader elected");
    let first = leader(&nodes, &[]).unwrap();
    nodes.get_mut(&first).unwrap().replica.propose(vec![], b"one".to_vec()).unwrap();
    assert!(run(&mut nodes, &[], 20, |n| n.values().all(|n| n.machine.applied == [b"one".to_vec()])));
    for (id, store) in &stores {
        // The entry's synced write made everything before it durable; what follows it (the
        // commit index and the application) is buffered.
        assert!(store.unsynced_batches() >= 2, "replica {id}: {} unsynced batches", store.unsynced_batches());
    }
}

#[test]
fn any_prefix_of_the_buffered_tail_reopens_with_applied_within_the_commit_index() {
    let tail = {
        let store = Arc::new(MemStore::new());
        one_node_group_with_proposals(store.clone(), 3);
        store.unsynced_batches()
    };
    assert!(tail >= 2, "the last commit index and application are buffered ({tail} batches)");
    for kept in 0..=tail {
        let store = Arc::new(MemStore::new());
        one_node_group_with_proposals(store.clone(), 3);
        store.power_fail_keeping(kept);
        let log = RaftLogStore::open(store.clone(), GROUP).unwrap();
        let applied = stored_applied_index(&*store, GROUP).unwrap();
        let commit = log.hard_state().commit;
        assert!(applied <= commit, "kept {kept}: applied {applied} beyond the durable commit index {commit}");
        assert!(
            commit <= raft::Storage::last_index(&log).unwrap(),
            "kept {kept}: commit {commit} beyond the durable log"
        );
        // Reopened, the group commits again and applies what it had not applied, once each.
        let replica = Replica::open(store.clone(), GROUP, 1, &[1], ReplicaSettings::default(), 5).unwrap();
        let mut node =
            Node { replica, machine: Recorder { store, applied: Vec::new(), restoring: None, snapshots_restored: 0 } };
        node.replica.campaign().unwrap();
        node.replica.process_ready(&mut node.machine).unwrap();
        let reapplied: Vec<String> =
            node.machine.applied.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
        let expected: Vec<String> = (0..3).map(|i| format!("entry {i}")).collect();
        assert!(
            expected.ends_with(&reapplied),
            "kept {kept}: reapplied {reapplied:?}, which is not the unapplied tail of {expected:?}"
        );
        assert_eq!(node.replica.applied_index(), node.replica.commit_index());
    }
}
