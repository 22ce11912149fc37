//! Identifiers shared by the partition map and replica placement.
//!
//! Newtypes rather than bare integers so a node id can never be passed where a partition id is
//! expected; all are `Ord` so they can key `BTreeMap`s and break ties deterministically.

use std::fmt;

/// A partition of a table's hash space. Ids are never reused: a split retires its parent's id and
/// gives each half a fresh one, so a stale routing entry can never name the wrong range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u64);

/// A storage node that hosts replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

/// An availability zone: the unit of correlated failure that replicas are spread across.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneId(pub u32);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition {}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone {}", self.0)
    }
}
