//! Replication: each partition is a raft group (raft-rs). Squall owns the raft log, hard state
//! and snapshot metadata, stored in the node's [`KvStore`](crate::storage::KvStore).
//!
//! - [`log_store`]: [`RaftLogStore`], the `raft::Storage` of one group.

pub mod log_store;
pub mod replica;

pub use log_store::{RaftLogStore, RAFT_PREFIX};
pub use replica::{Replica, ReplicaSettings, ReplicationError, StateMachine};
