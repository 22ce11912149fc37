//! The raft log of one replica group, stored in the node's `KvStore`.
//!
//! # Key layout
//!
//! Every key of a group starts with [`RAFT_PREFIX`] (`0x03`) and the group id as a big-endian
//! `u64`, so all of one group's raft state is one contiguous key range:
//!
//! | key                                  | value                                          |
//! |--------------------------------------|------------------------------------------------|
//! | `03 <group u64 BE> 'h'`              | `HardState` (term, vote, commit)               |
//! | `03 <group u64 BE> 'c'`              | `ConfState` (voters, learners)                 |
//! | `03 <group u64 BE> 's'`              | `SnapshotMetadata` of the compaction point     |
//! | `03 <group u64 BE> 'e' <index u64 BE>` | one `Entry`                                  |
//!
//! The `'s'` record holds the index and term of the last entry that is no longer in the log
//! (removed by [`RaftLogStore::compact`] or replaced by a snapshot through
//! [`RaftLogStore::apply_snapshot`]); entries after it are contiguous up to the last index.
//!
//! Every value is `crc32 (u32 LE) || protobuf bytes`; the CRC covers the protobuf bytes. A value
//! whose checksum or decoding fails is reported as corruption and never returned to raft.
//!
//! # Write contract
//!
//! The mutating methods ([`append`](RaftLogStore::append),
//! [`set_hard_state`](RaftLogStore::set_hard_state), [`set_conf_state`](RaftLogStore::set_conf_state),
//! [`compact`](RaftLogStore::compact), [`apply_snapshot`](RaftLogStore::apply_snapshot)) do not
//! write to the store: they add operations to a caller-provided [`WriteBatch`] and update the
//! in-memory view (first and last index, last term, hard and conf state) at once. The caller
//! then writes that batch — together with the applied data of the same `Ready` — in one atomic
//! write, and makes it durable (`Durability::Sync`, or `Buffered` followed by `KvStore::sync`)
//! before it sends any message of that `Ready` that depends on it: acknowledging appended
//! entries, granting a vote, or reporting a committed index. The caller must write the batch
//! before raft reads from this store again. If that write fails the in-memory view is ahead of
//! the store: drop this `RaftLogStore` and [`open`](RaftLogStore::open) it again.

use std::ops::Bound;
use std::sync::Arc;

use protobuf::Message as PbMessage;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError as RaftStorageError};

use crate::storage::{Direction, KvStore, StorageError, WriteBatch};

/// First key byte of every raft record.
pub const RAFT_PREFIX: u8 = 0x03;

const HARD_STATE_TAG: u8 = b'h';
const CONF_STATE_TAG: u8 = b'c';
const SNAPSHOT_TAG: u8 = b's';
const ENTRY_TAG: u8 = b'e';

/// The key prefix of one group: `03 <group u64 BE>`.
fn group_prefix(group: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(18);
    key.push(RAFT_PREFIX);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

pub(crate) fn tag_key(group: u64, tag: u8) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.push(tag);
    key
}

/// The key of entry `index` of `group`.
fn entry_key(group: u64, index: u64) -> Vec<u8> {
    let mut key = tag_key(group, ENTRY_TAG);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The exclusive upper bound of all entry keys of `group`.
fn entries_end(group: u64) -> Vec<u8> {
    tag_key(group, ENTRY_TAG + 1)
}

fn entry_index_of_key(group: u64, key: &[u8]) -> Result<u64, StorageError> {
    let prefix = tag_key(group, ENTRY_TAG);
    key.strip_prefix(prefix.as_slice())
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corruption(format!("raft group {group}: malformed entry key {key:02x?}")))
}

/// Maps one of our storage errors to raft's `Store(Other(..))`.
fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(RaftStorageError::Other(Box::new(e)))
}

fn corruption(group: u64, what: &str, detail: impl std::fmt::Display) -> raft::Error {
    store_err(StorageError::Corruption(format!("raft group {group}: {what}: {detail}")))
}

fn encode<M: PbMessage>(msg: &M) -> Result<Vec<u8>, raft::Error> {
    let body = msg.write_to_bytes().map_err(|e| store_err(StorageError::Io(format!("encode raft record: {e}"))))?;
    let mut value = Vec::with_capacity(4 + body.len());
    value.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    value.extend_from_slice(&body);
    Ok(value)
}

fn decode<M: PbMessage>(group: u64, what: &str, value: &[u8]) -> Result<M, raft::Error> {
    if value.len() < 4 {
        return Err(corruption(group, what, "value shorter than its checksum"));
    }
    let (crc, body) = value.split_at(4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(corruption(group, what, format!("checksum {actual:08x}, expected {stored:08x}")));
    }
    M::parse_from_bytes(body).map_err(|e| corruption(group, what, e))
}

/// The first index in the stored log of `group` (one past its compaction point).
pub fn stored_first_index(store: &dyn KvStore, group: u64) -> Result<u64, raft::Error> {
    let point: SnapshotMetadata = match store.get(&tag_key(group, SNAPSHOT_TAG)).map_err(store_err)? {
        Some(v) => decode(group, "snapshot metadata", &v)?,
        None => SnapshotMetadata::default(),
    };
    Ok(point.index + 1)
}

/// The stored membership of `group` (empty if none is stored).
pub fn stored_conf_state(store: &dyn KvStore, group: u64) -> Result<ConfState, raft::Error> {
    match store.get(&tag_key(group, CONF_STATE_TAG)).map_err(store_err)? {
        Some(v) => decode(group, "conf state", &v),
        None => Ok(ConfState::default()),
    }
}

/// The `raft::Storage` of one replica group, persisted in a `KvStore`. See the module docs for
/// the key layout and the write contract.
pub struct RaftLogStore {
    store: Arc<dyn KvStore>,
    group: u64,
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last entry removed from the log (0 and 0 for a new group).
    truncated: SnapshotMetadata,
    /// Index of the last entry; `truncated.index` when the log is empty.
    last_index: u64,
    /// Term of the entry at `last_index`.
    last_term: u64,
    /// The snapshot prepared for followers that need entries no longer in the log.
    prepared: Option<Snapshot>,
    /// Whether raft asked for a snapshot that was not prepared (see [`Storage::snapshot`]).
    snapshot_wanted: std::cell::Cell<bool>,
}

impl std::fmt::Debug for RaftLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLogStore")
            .field("group", &self.group)
            .field("first_index", &(self.truncated.index + 1))
            .field("last_index", &self.last_index)
            .field("last_term", &self.last_term)
            .finish_non_exhaustive()
    }
}

impl RaftLogStore {
    /// Opens the log of `group`, reading its persisted state (an empty log if there is none).
    pub fn open(store: Arc<dyn KvStore>, group: u64) -> Result<RaftLogStore, raft::Error> {
        let read = |tag: u8| store.get(&tag_key(group, tag)).map_err(store_err);
        let hard_state: HardState = match read(HARD_STATE_TAG)? {
            Some(v) => decode(group, "hard state", &v)?,
            None => HardState::default(),
        };
        let conf_state: ConfState = match read(CONF_STATE_TAG)? {
            Some(v) => decode(group, "conf state", &v)?,
            None => ConfState::default(),
        };
        let truncated: SnapshotMetadata = match read(SNAPSHOT_TAG)? {
            Some(v) => decode(group, "snapshot metadata", &v)?,
            None => SnapshotMetadata::default(),
        };
        let mut log = RaftLogStore {
            store,
            group,
            hard_state,
            conf_state,
            last_index: truncated.index,
            last_term: truncated.term,
            truncated,
            prepared: None,
            snapshot_wanted: std::cell::Cell::new(false),
        };
        let start = entry_key(group, 0);
        let end = entries_end(group);
        let bounds = (Bound::Included(start.as_slice()), Bound::Excluded(end.as_slice()));
        let first = log.store.scan(bounds.0, bounds.1, Direction::Forward, 1).map_err(store_err)?;
        if let Some((key, _)) = first.first() {
            let first_index = entry_index_of_key(group, key).map_err(store_err)?;
            if first_index != log.truncated.index + 1 {
                return Err(corruption(
                    group,
                    "log start",
                    format!("first entry {first_index}, compaction point {}", log.truncated.index),
                ));
            }
            let last = log.store.scan(bounds.0, bounds.1, Direction::Reverse, 1).map_err(store_err)?;
            let (key, value) = &last[0];
            let entry = log.decode_entry(entry_index_of_key(group, key).map_err(store_err)?, value)?;
            log.last_index = entry.index;
            log.last_term = entry.term;
        }
        Ok(log)
    }

    /// The group id.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// The persisted hard state (as of the last call that changed it).
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The persisted conf state.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Index and term (and conf state) of the compaction point: the last entry removed from the
    /// log by compaction or replaced by a snapshot.
    pub fn compaction_point(&self) -> &SnapshotMetadata {
        &self.truncated
    }

    fn decode_entry(&self, index: u64, value: &[u8]) -> Result<Entry, raft::Error> {
        let entry: Entry = decode(self.group, "entry", value)?;
        if entry.index != index {
            return Err(corruption(self.group, "entry", format!("key index {index} holds entry {}", entry.index)));
        }
        Ok(entry)
    }

    /// Appends `entries` (contiguous, starting at most one past the last index and after the
    /// compaction point), replacing any existing entries from the first new index on.
    pub fn append(&mut self, entries: &[Entry], batch: &mut WriteBatch) -> Result<(), raft::Error> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let first_new = first.index;
        if first_new <= self.truncated.index {
            return Err(RaftStorageError::Compacted.into());
        }
        if first_new > self.last_index + 1 {
            return Err(store_err(StorageError::Io(format!(
                "raft group {}: append at {first_new} leaves a gap after last index {}",
                self.group, self.last_index
            ))));
        }
        for (i, entry) in entries.iter().enumerate() {
            if entry.index != first_new + i as u64 {
                return Err(store_err(StorageError::Io(format!(
                    "raft group {}: appended entries are not contiguous at {}",
                    self.group, entry.index
                ))));
            }
        }
        let mut encoded = Vec::with_capacity(entries.len());
        for entry in entries {
            encoded.push((entry_key(self.group, entry.index), encode(entry)?));
        }
        for (key, value) in encoded {
            batch.put(key, value);
        }
        let last = &entries[entries.len() - 1];
        if self.last_index > last.index {
            // The conflicting suffix beyond the new last entry.
            batch.delete_range(entry_key(self.group, last.index + 1), entry_key(self.group, self.last_index + 1));
        }
        self.last_index = last.index;
        self.last_term = last.term;
        Ok(())
    }

    /// Records a new hard state.
    pub fn set_hard_state(&mut self, hard_state: &HardState, batch: &mut WriteBatch) -> Result<(), raft::Error> {
        batch.put(tag_key(self.group, HARD_STATE_TAG), encode(hard_state)?);
        self.hard_state = hard_state.clone();
        Ok(())
    }

    /// Records a new conf state (also used to initialize a new group with its voters).
    pub fn set_conf_state(&mut self, conf_state: &ConfState, batch: &mut WriteBatch) -> Result<(), raft::Error> {
        batch.put(tag_key(self.group, CONF_STATE_TAG), encode(conf_state)?);
        self.conf_state = conf_state.clone();
        Ok(())
    }

    /// Removes every entry below `to_index`; afterwards `first_index() == to_index` and the term
    /// of `to_index - 1` is still known. A no-op if the log already starts at or after it. The
    /// caller compacts only entries that are applied (and covered by its state machine's data).
    pub fn compact(&mut self, to_index: u64, batch: &mut WriteBatch) -> Result<(), raft::Error> {
        let first = self.truncated.index + 1;
        if to_index <= first {
            return Ok(());
        }
        if to_index > self.last_index + 1 {
            return Err(RaftStorageError::Unavailable.into());
        }
        let term = self.term(to_index - 1)?;
        let mut point = SnapshotMetadata { index: to_index - 1, term, ..Default::default() };
        point.set_conf_state(self.conf_state.clone());
        batch.delete_range(entry_key(self.group, first), entry_key(self.group, to_index));
        batch.put(tag_key(self.group, SNAPSHOT_TAG), encode(&point)?);
        self.truncated = point;
        self.drop_outdated_snapshot();
        Ok(())
    }

    /// Drops the prepared snapshot once the log no longer continues it.
    fn drop_outdated_snapshot(&mut self) {
        if self.prepared.as_ref().is_some_and(|s| s.get_metadata().index < self.truncated.index) {
            self.prepared = None;
        }
    }

    /// Replaces the log by `snapshot`'s position: every entry is removed, the log continues after
    /// the snapshot index, the conf state is the snapshot's and the hard state's commit moves to
    /// the snapshot index. The snapshot's data is the caller's to apply, in the same batch.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot, batch: &mut WriteBatch) -> Result<(), raft::Error> {
        let meta = snapshot.get_metadata();
        if meta.index <= self.truncated.index {
            return Err(RaftStorageError::SnapshotOutOfDate.into());
        }
        let mut hard_state = self.hard_state.clone();
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = meta.index;
        let conf_state = meta.get_conf_state().clone();
        let mut point = SnapshotMetadata { index: meta.index, term: meta.term, ..Default::default() };
        point.set_conf_state(conf_state.clone());
        let encoded = (encode(&point)?, encode(&hard_state)?, encode(&conf_state)?);
        batch.delete_range(entry_key(self.group, 0), entries_end(self.group));
        batch.put(tag_key(self.group, SNAPSHOT_TAG), encoded.0);
        batch.put(tag_key(self.group, HARD_STATE_TAG), encoded.1);
        batch.put(tag_key(self.group, CONF_STATE_TAG), encoded.2);
        self.last_index = point.index;
        self.last_term = point.term;
        self.truncated = point;
        self.hard_state = hard_state;
        self.conf_state = conf_state;
        self.drop_outdated_snapshot();
        Ok(())
    }
}

impl RaftLogStore {
    /// Whether raft asked for a snapshot since the last one was prepared: the replica then
    /// has its state machine produce one ([`prepare_snapshot`](RaftLogStore::prepare_snapshot)).
    pub fn snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.get()
    }

    /// Keeps `snapshot` (the state machine's data as of its metadata's index, which must be
    /// applied and not before the compaction point) to hand to raft for every follower that
    /// needs one, until the log is compacted past it.
    pub fn prepare_snapshot(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.get_metadata().index >= self.truncated.index,
            "group {}: snapshot at {} is older than the compaction point {}",
            self.group,
            snapshot.get_metadata().index,
            self.truncated.index
        );
        self.snapshot_wanted.set(false);
        self.prepared = Some(snapshot);
    }

    /// The prepared snapshot's index, if one is kept.
    pub fn prepared_snapshot_index(&self) -> Option<u64> {
        self.prepared.as_ref().map(|s| s.get_metadata().index)
    }
}

impl Storage for RaftLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.truncated.index {
            return Err(RaftStorageError::Compacted.into());
        }
        if high > self.last_index + 1 {
            return Err(RaftStorageError::Unavailable.into());
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let max_size = max_size.into().unwrap_or(raft::NO_LIMIT);
        let start = entry_key(self.group, low);
        let end = entry_key(self.group, high);
        let pairs = self
            .store
            .scan(
                Bound::Included(start.as_slice()),
                Bound::Excluded(end.as_slice()),
                Direction::Forward,
                (high - low) as usize,
            )
            .map_err(store_err)?;
        let mut entries = Vec::with_capacity(pairs.len());
        let mut size = 0u64;
        for (i, (_, value)) in pairs.iter().enumerate() {
            let entry = self.decode_entry(low + i as u64, value)?;
            size += u64::from(entry.compute_size());
            if !entries.is_empty() && size > max_size {
                return Ok(entries);
            }
            entries.push(entry);
        }
        if entries.len() as u64 != high - low {
            return Err(corruption(self.group, "log", format!("entries {low}..{high} have a hole")));
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.truncated.index {
            return Ok(self.truncated.term);
        }
        if idx < self.truncated.index {
            return Err(RaftStorageError::Compacted.into());
        }
        if idx > self.last_index {
            return Err(RaftStorageError::Unavailable.into());
        }
        if idx == self.last_index {
            return Ok(self.last_term);
        }
        match self.store.get(&entry_key(self.group, idx)).map_err(store_err)? {
            Some(value) => Ok(self.decode_entry(idx, &value)?.term),
            None => Err(corruption(self.group, "log", format!("entry {idx} is missing"))),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated.index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index)
    }

    /// A snapshot carries the state machine's data, which only the replica's driver can
    /// produce: raft's first request finds none prepared, notes that one is wanted and is told
    /// to try again later; the driver prepares one after the current `Ready`, and raft's next
    /// attempt gets it. A prepared snapshot serves every follower until the log is compacted
    /// past it (a follower given it must find the entries after it in the log).
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match &self.prepared {
            Some(snapshot)
                if snapshot.get_metadata().index >= self.truncated.index
                    && snapshot.get_metadata().index >= request_index =>
            {
                Ok(snapshot.clone())
            }
            _ => {
                self.snapshot_wanted.set(true);
                Err(RaftStorageError::SnapshotTemporarilyUnavailable.into())
            }
        }
    }
}

#[cfg(test)]
mod tests;
