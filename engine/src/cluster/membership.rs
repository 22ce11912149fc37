//! Where a partition's replicas are after they moved: the metadata group records each moved
//! group's voters (`00 'v' <table u64> <group u64>` → the voters, big-endian `u64`s), and every
//! node's partition map and replicas follow the records on top of the initial placement and
//! the recorded splits (a split's children inherit their parent's voters unless they have a
//! record of their own).
//!
//! A move (`SquallAdmin.MoveReplica`) is a sequence of one-replica membership changes in the
//! partition's raft group, driven by the router that received it, one step per request to the
//! group's leader: the target node starts an uninitialised replica, the leader adds it as a
//! learner (it catches up from a snapshot), promotes it, hands its leadership over if it is
//! the replica leaving, and removes the source. Then the metadata group records the new voters
//! and the source node drops its replica and the partition's records.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::db::{keys, Database};
use crate::partition::{PartitionId, PartitionMap, ReplicaPlacement, ZoneId};
use crate::storage::{Direction, StorageError};

/// The metadata-log operation recording a group's voters: body
/// `{"TableId": id, "Group": group, "Voters": [node, ...]}`.
pub const RECORD_MEMBERSHIP: &str = "Squall.RecordMembership";
/// The partition-group request that advances a move by one step: body `{"From": node, "To":
/// node}`; the answer is `{"Done": bool, "Voters": [...]}`.
pub const MOVE_REPLICA: &str = "Squall.MoveReplica";
/// The request asking a node to start an uninitialised replica of a group, which a leader
/// is about to add: body `{"Start": hash, "End": hash or null}`.
pub const HOST_REPLICA: &str = "Squall.HostReplica";
/// The request asking a node to drop its replica of a group that moved away: body `{}`.
pub const DROP_REPLICA: &str = "Squall.DropReplica";

/// Prefix of every recorded membership (the metadata group's records).
pub const MEMBERSHIP_RECORDS_PREFIX: &[u8] = b"\x00v";

fn records_prefix(table_id: u64) -> Vec<u8> {
    let mut key = MEMBERSHIP_RECORDS_PREFIX.to_vec();
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// The key recording `group`'s voters.
pub fn record_key(table_id: u64, group: u64) -> Vec<u8> {
    let mut key = records_prefix(table_id);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

/// First byte of a record value that carries the applied index its voters were read at.
const RECORD_WITH_AS_OF: u8 = 0x01;

/// Encodes a voter list as a record value, with the applied index of the group's leader when
/// it saw them (`as_of`): a record never replaces one read at a later index.
pub fn encode_record(voters: &[u64], as_of: u64) -> Vec<u8> {
    let mut value = vec![RECORD_WITH_AS_OF];
    value.extend_from_slice(&as_of.to_be_bytes());
    value.extend(voters.iter().flat_map(|v| v.to_be_bytes()));
    value
}

/// The voters and the applied index of a record value; records written before the index was
/// kept (a bare voter list) count as read at index 0.
pub fn decode_record(value: &[u8]) -> Option<(Vec<u64>, u64)> {
    let u64s = |bytes: &[u8]| -> Vec<u64> {
        bytes.chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect()
    };
    match value.len() % 8 {
        0 if !value.is_empty() => Some((u64s(value), 0)),
        1 if value[0] == RECORD_WITH_AS_OF && value.len() > 9 => {
            Some((u64s(&value[9..]), u64::from_be_bytes(value[1..9].try_into().ok()?)))
        }
        _ => None,
    }
}

/// The recorded voters of table `table_id`'s groups.
pub fn recorded_memberships(db: &Database, table_id: u64) -> Result<BTreeMap<u64, Vec<u64>>, StorageError> {
    let prefix = records_prefix(table_id);
    let end = keys::prefix_successor(&prefix).unwrap_or_else(|| vec![0x00, b'v' + 1]);
    let pairs = db.store().scan(Bound::Included(&prefix), Bound::Excluded(&end), Direction::Forward, usize::MAX)?;
    Ok(pairs
        .into_iter()
        .filter_map(|(key, value)| {
            let group = u64::from_be_bytes(key.get(prefix.len()..)?.try_into().ok()?);
            Some((group, decode_record(&value)?.0))
        })
        .collect())
}

/// The recorded voters of `group` of table `table_id` and the applied index they were read at.
pub fn recorded_membership(db: &Database, table_id: u64, group: u64) -> Result<Option<(Vec<u64>, u64)>, StorageError> {
    Ok(db.store().get(&record_key(table_id, group))?.as_deref().and_then(decode_record))
}

/// Whether node `me` restarts its replica of a group whose recorded (or initial) voters leave
/// it out: it does when its stored membership (`stored_members`, voters and learners) names it
/// and its replica applied past the record's index (`recorded_as_of`; none recorded yet). That
/// is a move's target whose move was not recorded when the node stopped: the group counts it
/// in its quorum, so leaving it stopped could leave the group without a majority. A replica
/// that moved away is behind the record of the move and stays stopped.
pub fn restarts_unrecorded_member(
    me: u64,
    stored_members: &[u64],
    stored_applied: u64,
    recorded_as_of: Option<u64>,
) -> bool {
    stored_members.contains(&me) && recorded_as_of.is_none_or(|as_of| stored_applied > as_of)
}

/// `map` with the replicas of every partition that has a record set to its recorded voters
/// (zones from `zone_of`); partitions without one keep theirs.
pub fn apply_memberships(
    map: &PartitionMap,
    records: &BTreeMap<u64, Vec<u64>>,
    zone_of: &dyn Fn(u64) -> ZoneId,
) -> PartitionMap {
    let mut partitions = map.partitions().to_vec();
    let mut changed = false;
    for partition in &mut partitions {
        if let Some(voters) = records.get(&partition.id.0) {
            partition.replicas = voters
                .iter()
                .map(|v| ReplicaPlacement { node: crate::partition::NodeId(*v), zone: zone_of(*v) })
                .collect();
            changed = true;
        }
    }
    if !changed {
        return map.clone();
    }
    PartitionMap::from_parts(map.version() + 1, partitions).unwrap_or_else(|error| {
        tracing::error!(%error, "recorded memberships do not fit the map");
        map.clone()
    })
}

/// A table's map from its initial placement, its recorded splits and its recorded
/// memberships, in the order they happened: a partition's record applies before its split (the
/// children inherit the moved voters), a child's after it.
pub fn build_map(
    initial: PartitionMap,
    splits: &BTreeMap<u64, u64>,
    records: &BTreeMap<u64, Vec<u64>>,
    zone_of: &dyn Fn(u64) -> ZoneId,
) -> PartitionMap {
    let mut map = apply_memberships(&initial, records, zone_of);
    loop {
        let ready: Vec<(u64, u64)> =
            splits.iter().filter(|(g, _)| map.get(PartitionId(**g)).is_some()).map(|(g, at)| (*g, *at)).collect();
        if ready.is_empty() {
            return map;
        }
        for (group, at) in ready {
            map = super::split::apply_splits(map, &BTreeMap::from([(group, at)]));
            if map.get(PartitionId(group)).is_some() {
                // The split did not fit; stop rather than loop.
                return map;
            }
        }
        map = apply_memberships(&map, records, zone_of);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_left_out_of_the_record_restarts_only_when_newer_than_it() {
        // The target of a move not yet recorded: a learner or voter in its own store.
        assert!(restarts_unrecorded_member(9, &[3, 4, 7, 9], 120, None));
        assert!(restarts_unrecorded_member(9, &[3, 4, 7, 9], 120, Some(80)), "an earlier move's record");
        // The source of a recorded move whose removal it never applied.
        assert!(!restarts_unrecorded_member(7, &[3, 4, 7, 9], 120, Some(130)));
        assert!(!restarts_unrecorded_member(7, &[3, 4, 7, 9], 130, Some(130)), "read at the same index");
        // A group the node holds no membership of.
        assert!(!restarts_unrecorded_member(5, &[3, 4, 7], 120, None));
        assert!(!restarts_unrecorded_member(5, &[], 0, None));
    }

    #[test]
    fn records_round_trip_and_bad_values_are_skipped() {
        assert_eq!(decode_record(&encode_record(&[1, 5, 9], 42)), Some((vec![1, 5, 9], 42)));
        // A bare voter list, as records were first written, reads as of index 0.
        let bare: Vec<u8> = [1u64, 5, 9].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(decode_record(&bare), Some((vec![1, 5, 9], 0)));
        assert_eq!(decode_record(&[1, 2, 3]), None);
        assert_eq!(decode_record(&[]), None);
        assert_eq!(decode_record(&encode_record(&[], 7)), None, "a record names voters");
        let mut unknown = encode_record(&[1], 7);
        unknown[0] = 0x02;
        assert_eq!(decode_record(&unknown), None);
    }
}
