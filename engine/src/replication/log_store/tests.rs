use std::collections::{HashMap, VecDeque};

use raft::prelude::{Config, Message, RawNode};
use raft::StateRole;

use super::*;
use crate::storage::{Durability, MemStore};

const GROUP: u64 = 7;

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, ..Default::default() }
}

fn entries(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn open(store: &Arc<MemStore>) -> RaftLogStore {
    let dyn_store: Arc<dyn KvStore> = store.clone();
    RaftLogStore::open(dyn_store, GROUP).unwrap()
}

/// Runs one mutation and writes its batch with `durability`.
fn apply(
    store: &Arc<MemStore>,
    log: &mut RaftLogStore,
    durability: Durability,
    f: impl FnOnce(&mut RaftLogStore, &mut WriteBatch) -> Result<(), raft::Error>,
) {
    let mut batch = WriteBatch::new();
    f(log, &mut batch).unwrap();
    store.write(batch, durability).unwrap();
}

/// A log holding entries 3..=5 with terms 3, 4, 5 after a compaction at 3 (the shape raft-rs's
/// own storage tests use).
fn log_3_to_5(store: &Arc<MemStore>) -> RaftLogStore {
    let mut log = open(store);
    let ents = vec![entry(1, 1), entry(2, 2), entry(3, 3), entry(4, 4), entry(5, 5)];
    apply(store, &mut log, Durability::Sync, |l, b| l.append(&ents, b));
    apply(store, &mut log, Durability::Sync, |l, b| l.compact(4, b));
    log
}

fn is_compacted(r: raft::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(raft::Error::Store(RaftStorageError::Compacted)))
}

fn is_unavailable(r: raft::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(raft::Error::Store(RaftStorageError::Unavailable)))
}

#[test]
fn empty_log_starts_at_one() {
    let store = Arc::new(MemStore::new());
    let log = open(&store);
    assert_eq!(log.first_index().unwrap(), 1);
    assert_eq!(log.last_index().unwrap(), 0);
    assert_eq!(log.term(0).unwrap(), 0);
    assert!(is_unavailable(log.term(1)));
    assert_eq!(log.entries(1, 1, None, ctx()).unwrap(), vec![]);
    let state = log.initial_state().unwrap();
    assert_eq!(state.hard_state, HardState::default());
    assert!(!state.initialized());
}

#[test]
fn term_after_append_and_compaction() {
    let store = Arc::new(MemStore::new());
    let log = log_3_to_5(&store);
    assert_eq!(log.first_index().unwrap(), 4);
    assert_eq!(log.last_index().unwrap(), 5);
    assert!(is_compacted(log.term(2)));
    assert_eq!(log.term(3).unwrap(), 3);
    assert_eq!(log.term(4).unwrap(), 4);
    assert_eq!(log.term(5).unwrap(), 5);
    assert!(is_unavailable(log.term(6)));
}

#[test]
fn entries_bounds_and_max_size() {
    let store = Arc::new(MemStore::new());
    let mut log = log_3_to_5(&store);
    apply(&store, &mut log, Durability::Sync, |l, b| l.append(&[entry(6, 6)], b));
    let size = u64::from(entry(4, 4).compute_size());
    assert!(is_compacted(log.entries(2, 6, None, ctx())));
    assert!(is_compacted(log.entries(3, 4, None, ctx())));
    assert_eq!(log.entries(4, 5, None, ctx()).unwrap(), vec![entry(4, 4)]);
    assert_eq!(log.entries(4, 6, None, ctx()).unwrap(), vec![entry(4, 4), entry(5, 5)]);
    assert_eq!(log.entries(4, 7, None, ctx()).unwrap(), vec![entry(4, 4), entry(5, 5), entry(6, 6)]);
    // max_size limits the result but always returns at least one entry.
    assert_eq!(log.entries(4, 7, Some(0), ctx()).unwrap(), vec![entry(4, 4)]);
    assert_eq!(log.entries(4, 7, Some(size), ctx()).unwrap(), vec![entry(4, 4)]);
    assert_eq!(log.entries(4, 7, Some(2 * size), ctx()).unwrap(), vec![entry(4, 4), entry(5, 5)]);
    assert_eq!(log.entries(4, 7, Some(3 * size - 1), ctx()).unwrap(), vec![entry(4, 4), entry(5, 5)]);
    assert_eq!(log.entries(4, 7, Some(3 * size), ctx()).unwrap().len(), 3);
    assert!(is_unavailable(log.entries(4, 8, None, ctx())));
}

#[test]
fn append_truncates_conflicting_suffix() {
    type Case = (Vec<Entry>, Vec<Entry>);
    let cases: Vec<Case> = vec![
        // Same entries again: nothing changes.
        (vec![entry(4, 4), entry(5, 5)], vec![entry(4, 4), entry(5, 5)]),
        // Extends the log.
        (vec![entry(4, 4), entry(5, 5), entry(6, 5)], vec![entry(4, 4), entry(5, 5), entry(6, 5)]),
        // A conflict at 4 replaces 4 and drops 5.
        (vec![entry(4, 6)], vec![entry(4, 6)]),
        (vec![entry(4, 6), entry(5, 6)], vec![entry(4, 6), entry(5, 6)]),
        // A conflict at 5 keeps 4.
        (vec![entry(5, 6)], vec![entry(4, 4), entry(5, 6)]),
        // Directly after the last entry.
        (vec![entry(6, 5)], vec![entry(4, 4), entry(5, 5), entry(6, 5)]),
    ];
    for (append, want) in cases {
        let store = Arc::new(MemStore::new());
        let mut log = log_3_to_5(&store);
        apply(&store, &mut log, Durability::Sync, |l, b| l.append(&append, b));
        let last = want.last().unwrap().index;
        assert_eq!(log.last_index().unwrap(), last, "append {append:?}");
        assert_eq!(log.entries(4, last + 1, None, ctx()).unwrap(), want, "append {append:?}");
        // Nothing beyond the new last entry is left in the store.
        let reopened = open(&store);
        assert_eq!(reopened.last_index().unwrap(), last, "append {append:?}");
        assert_eq!(reopened.term(last).unwrap(), want.last().unwrap().term);
    }
}

#[test]
fn append_rejects_compacted_gaps_and_holes() {
    let store = Arc::new(MemStore::new());
    let mut log = log_3_to_5(&store);
    let mut batch = WriteBatch::new();
    assert!(log.append(&[entry(3, 3), entry(4, 4)], &mut batch).is_err());
    assert!(log.append(&[entry(7, 5)], &mut batch).is_err());
    assert!(log.append(&[entry(5, 5), entry(7, 5)], &mut batch).is_err());
    assert!(batch.is_empty());
    assert_eq!(log.last_index().unwrap(), 5);
}

#[test]
fn compaction_returns_compacted_below_the_point() {
    let store = Arc::new(MemStore::new());
    let mut log = open(&store);
    apply(&store, &mut log, Durability::Sync, |l, b| l.append(&entries(1..11, 2), b));
    apply(&store, &mut log, Durability::Sync, |l, b| l.compact(6, b));
    assert_eq!(log.first_index().unwrap(), 6);
    assert_eq!(log.term(5).unwrap(), 2);
    assert!(is_compacted(log.term(4)));
    assert!(is_compacted(log.entries(5, 7, None, ctx())));
    assert_eq!(log.entries(6, 11, None, ctx()).unwrap(), entries(6..11, 2));
    // Compacting to an older point is a no-op; beyond the log is an error.
    apply(&store, &mut log, Durability::Sync, |l, b| l.compact(3, b));
    assert_eq!(log.first_index().unwrap(), 6);
    assert!(log.compact(12, &mut WriteBatch::new()).is_err());
    // Compacting the whole log keeps the last term.
    apply(&store, &mut log, Durability::Sync, |l, b| l.compact(11, b));
    assert_eq!((log.first_index().unwrap(), log.last_index().unwrap()), (11, 10));
    assert_eq!(log.term(10).unwrap(), 2);
    let reopened = open(&store);
    assert_eq!((reopened.first_index().unwrap(), reopened.last_index().unwrap()), (11, 10));
    assert_eq!(reopened.term(10).unwrap(), 2);
    // The entries are gone from the store.
    let start = entry_key(GROUP, 0);
    let end = entries_end(GROUP);
    let left = store.scan(Bound::Included(&start), Bound::Excluded(&end), Direction::Forward, usize::MAX).unwrap();
    assert!(left.is_empty());
}

fn snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().set_conf_state(ConfState::from((voters, vec![])));
    s
}

#[test]
fn snapshot_apply_resets_the_log() {
    let store = Arc::new(MemStore::new());
    let mut log = log_3_to_5(&store);
    let snap = snapshot(4, 4, vec![1, 2, 3]);
    // Older than the compaction point: out of date.
    assert!(matches!(
        log.apply_snapshot(&snapshot(3, 3, vec![1]), &mut WriteBatch::new()),
        Err(raft::Error::Store(RaftStorageError::SnapshotOutOfDate))
    ));
    apply(&store, &mut log, Durability::Sync, |l, b| l.apply_snapshot(&snap, b));
    for log in [&log, &open(&store)] {
        assert_eq!(log.first_index().unwrap(), 5);
        assert_eq!(log.last_index().unwrap(), 4);
        assert_eq!(log.term(4).unwrap(), 4);
        assert!(is_compacted(log.term(3)));
        assert_eq!(log.hard_state().commit, 4);
        assert_eq!(log.hard_state().term, 4);
        assert_eq!(log.conf_state().voters, vec![1, 2, 3]);
    }
    // No snapshot is prepared: raft is told to wait, and the driver learns one is wanted.
    assert!(!log.snapshot_wanted());
    assert!(matches!(log.snapshot(0, 2), Err(raft::Error::Store(RaftStorageError::SnapshotTemporarilyUnavailable))));
    assert!(log.snapshot_wanted());
    let mut prepared = snapshot(4, 4, vec![1, 2, 3]);
    prepared.data = b"state".to_vec().into();
    log.prepare_snapshot(prepared.clone());
    assert!(!log.snapshot_wanted());
    assert_eq!(log.snapshot(0, 2).unwrap(), prepared);
    assert_eq!(log.prepared_snapshot_index(), Some(4));
    // A request for a newer snapshot than the prepared one waits for a new one.
    assert!(log.snapshot(5, 2).is_err());
    assert!(log.snapshot_wanted());
    // A snapshot beyond the log drops every entry.
    apply(&store, &mut log, Durability::Sync, |l, b| l.apply_snapshot(&snapshot(100, 9, vec![1]), b));
    assert_eq!((log.first_index().unwrap(), log.last_index().unwrap()), (101, 100));
    // The snapshot prepared at 4 is behind the compaction point now: it is not handed out.
    assert!(log.snapshot(0, 2).is_err());
    assert_eq!(log.prepared_snapshot_index(), None);
    apply(&store, &mut log, Durability::Sync, |l, b| l.append(&[entry(101, 9)], b));
    assert_eq!(open(&store).entries(101, 102, None, ctx()).unwrap(), vec![entry(101, 9)]);
}

#[test]
fn reopen_gives_the_same_state() {
    let store = Arc::new(MemStore::new());
    let mut log = log_3_to_5(&store);
    let hs = HardState { term: 5, vote: 2, commit: 4, ..Default::default() };
    let cs = ConfState::from((vec![1, 2, 3], vec![4]));
    apply(&store, &mut log, Durability::Sync, |l, b| {
        l.set_hard_state(&hs, b)?;
        l.set_conf_state(&cs, b)
    });
    let reopened = open(&store);
    assert_eq!(reopened.initial_state().unwrap().hard_state, hs);
    assert_eq!(reopened.initial_state().unwrap().conf_state, cs);
    assert_eq!(stored_conf_state(store.as_ref(), GROUP).unwrap(), cs);
    assert_eq!(stored_conf_state(store.as_ref(), GROUP + 1).unwrap(), ConfState::default());
    assert_eq!(reopened.first_index().unwrap(), log.first_index().unwrap());
    assert_eq!(reopened.last_index().unwrap(), log.last_index().unwrap());
    assert_eq!(reopened.term(3).unwrap(), 3);
    assert_eq!(reopened.entries(4, 6, None, ctx()).unwrap(), log.entries(4, 6, None, ctx()).unwrap());
    // Another group in the same store is untouched.
    let other: Arc<dyn KvStore> = store.clone();
    let other = RaftLogStore::open(other, GROUP + 1).unwrap();
    assert_eq!(other.last_index().unwrap(), 0);
}

#[test]
fn power_failure_loses_buffered_writes_and_keeps_synced_ones() {
    let store = Arc::new(MemStore::new());
    let mut log = open(&store);
    apply(&store, &mut log, Durability::Sync, |l, b| l.append(&entries(1..4, 1), b));
    apply(&store, &mut log, Durability::Buffered, |l, b| l.append(&entries(4..6, 1), b));
    let hs = HardState { term: 2, ..Default::default() };
    apply(&store, &mut log, Durability::Buffered, |l, b| l.set_hard_state(&hs, b));
    store.power_fail();
    let mut log = open(&store);
    assert_eq!(log.last_index().unwrap(), 3);
    assert_eq!(log.hard_state(), &HardState::default());

    // A Sync write makes earlier buffered writes durable as well.
    apply(&store, &mut log, Durability::Buffered, |l, b| l.append(&entries(4..6, 1), b));
    apply(&store, &mut log, Durability::Sync, |l, b| l.set_hard_state(&hs, b));
    store.power_fail();
    let log = open(&store);
    assert_eq!(log.last_index().unwrap(), 5);
    assert_eq!(log.hard_state().term, 2);
    assert_eq!(log.entries(1, 6, None, ctx()).unwrap(), entries(1..6, 1));
}

#[test]
fn corrupted_entries_are_reported_never_returned() {
    let store = Arc::new(MemStore::new());
    let mut log = open(&store);
    let mut ents = entries(1..4, 1);
    ents[1].data = b"payload".to_vec().into();
    apply(&store, &mut log, Durability::Sync, |l, b| l.append(&ents, b));
    let key = entry_key(GROUP, 2);
    let mut value = store.get(&key).unwrap().unwrap();
    let last = value.len() - 1;
    value[last] ^= 0x20;
    let mut batch = WriteBatch::new();
    batch.put(key.clone(), value);
    store.write(batch, Durability::Sync).unwrap();
    fn is_corruption<T>(r: &raft::Result<T>) -> bool {
        matches!(r, Err(raft::Error::Store(RaftStorageError::Other(e))) if e.to_string().contains("corruption"))
    }
    let got = log.entries(1, 4, None, ctx());
    assert!(is_corruption(&got), "{got:?}");
    assert!(is_corruption(&log.term(2)));
    assert_eq!(log.entries(1, 2, None, ctx()).unwrap().len(), 1);

    // A truncated value and a corrupted last entry fail on open.
    let mut batch = WriteBatch::new();
    batch.put(entry_key(GROUP, 3), vec![1, 2]);
    store.write(batch, Durability::Sync).unwrap();
    let dyn_store: Arc<dyn KvStore> = store.clone();
    assert!(RaftLogStore::open(dyn_store, GROUP).is_err());
}

// ---- a three-node raft group over RaftLogStore ----

struct Node {
    store: Arc<MemStore>,
    raw: RawNode<RaftLogStore>,
    applied: Vec<Vec<u8>>,
}

fn new_node(id: u64, voters: &[u64]) -> Node {
    let store = Arc::new(MemStore::new());
    let dyn_store: Arc<dyn KvStore> = store.clone();
    let mut log = RaftLogStore::open(dyn_store, GROUP).unwrap();
    apply(&store, &mut log, Durability::Sync, |l, b| l.set_conf_state(&ConfState::from((voters.to_vec(), vec![])), b));
    let config = Config {
        id,
        // Distinct fixed timeouts per node: raft-rs's own draw is unseeded, and equal timeouts
        // would split every vote.
        election_tick: 10,
        heartbeat_tick: 2,
        min_election_tick: 10 + 4 * id as usize,
        max_election_tick: 11 + 4 * id as usize,
        ..Config::default()
    };
    config.validate().unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&config, log, &logger).unwrap();
    Node { store, raw, applied: Vec::new() }
}

fn apply_committed(node: &mut Node, committed: Vec<Entry>) {
    for e in committed {
        if !e.data.is_empty() {
            node.applied.push(e.data.to_vec());
        }
    }
}

/// Handles one Ready: persists it with one Sync write, then sends and applies.
fn handle_ready(node: &mut Node, outbox: &mut VecDeque<Message>) {
    if !node.raw.has_ready() {
        return;
    }
    let mut ready = node.raw.ready();
    outbox.extend(ready.take_messages());
    let mut batch = WriteBatch::new();
    let log = node.raw.mut_store();
    if !ready.snapshot().is_empty() {
        log.apply_snapshot(ready.snapshot(), &mut batch).unwrap();
    }
    log.append(ready.entries(), &mut batch).unwrap();
    if let Some(hs) = ready.hs() {
        log.set_hard_state(hs, &mut batch).unwrap();
    }
    node.store.write(batch, Durability::Sync).unwrap();
    outbox.extend(ready.take_persisted_messages());
    let committed = ready.take_committed_entries();
    apply_committed(node, committed);
    let mut light = node.raw.advance(ready);
    if let Some(commit) = light.commit_index() {
        let mut hs = node.raw.store().hard_state().clone();
        hs.commit = commit;
        let mut batch = WriteBatch::new();
        node.raw.mut_store().set_hard_state(&hs, &mut batch).unwrap();
        node.store.write(batch, Durability::Sync).unwrap();
    }
    outbox.extend(light.take_messages());
    let committed = light.take_committed_entries();
    apply_committed(node, committed);
    node.raw.advance_apply();
}

fn run(nodes: &mut HashMap<u64, Node>, ticks: usize, mut until: impl FnMut(&HashMap<u64, Node>) -> bool) -> bool {
    let ids: Vec<u64> = {
        let mut ids: Vec<u64> = nodes.keys().copied().collect();
        ids.sort();
        ids
    };
    for _ in 0..ticks {
        for id in &ids {
            nodes.get_mut(id).unwrap().raw.tick();
        }
        // Deliver until quiet.
        loop {
            let mut outbox = VecDeque::new();
            for id in &ids {
                handle_ready(nodes.get_mut(id).unwrap(), &mut outbox);
            }
            if outbox.is_empty() {
                break;
            }
            for msg in outbox {
                nodes.get_mut(&msg.to).unwrap().raw.step(msg).unwrap();
            }
        }
        if until(nodes) {
            return true;
        }
    }
    false
}

#[test]
fn three_node_group_elects_a_leader_and_commits_on_all() {
    let voters = [1, 2, 3];
    let mut nodes: HashMap<u64, Node> = voters.iter().map(|&id| (id, new_node(id, &voters))).collect();
    let leader_of = |nodes: &HashMap<u64, Node>| {
        nodes.values().find(|n| n.raw.raft.state == StateRole::Leader).map(|n| n.raw.raft.id)
    };
    assert!(run(&mut nodes, 100, |n| leader_of(n).is_some()), "no leader elected");
    let leader = leader_of(&nodes).unwrap();
    nodes.get_mut(&leader).unwrap().raw.propose(vec![], b"hello".to_vec()).unwrap();
    let committed_everywhere =
        |nodes: &HashMap<u64, Node>| nodes.values().all(|n| n.applied.iter().any(|d| d.as_slice() == b"hello"));
    assert!(run(&mut nodes, 20, committed_everywhere), "proposal not applied on all nodes");

    // Every node's log survives a power failure and reopens with the entry committed.
    for node in nodes.values() {
        node.store.power_fail();
        let dyn_store: Arc<dyn KvStore> = node.store.clone();
        let log = RaftLogStore::open(dyn_store, GROUP).unwrap();
        let last = log.last_index().unwrap();
        let ents = log.entries(1, last + 1, None, ctx()).unwrap();
        let hello = ents.iter().find(|e| e.data.as_ref() == b"hello").expect("entry persisted");
        assert!(log.hard_state().commit >= hello.index, "commit {} < {}", log.hard_state().commit, hello.index);
    }
}
