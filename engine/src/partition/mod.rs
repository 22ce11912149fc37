//! Partitioning, pure: how a table's partition-key hash space is divided into partitions, how
//! many partitions a table needs, where their replicas go, and where to split them.
//!
//! Nothing here does I/O, reads a clock or draws a random number; callers pass a seed-derived
//! value where a tie must be broken. Decisions come back as data (a new `PartitionMap`, a list
//! of `Move`s, a split point) for the control plane to carry out.
//!
//! - [`ids`]: `PartitionId`, `NodeId`, `ZoneId`.
//! - [`range`]: `HashRange`, a half-open range of the 64-bit hash space.
//! - [`map`]: `PartitionMap`, the versioned ranges and replicas of a table, with splits.
//! - [`sizing`]: DynamoDB's partition-count rules for throughput and size.
//! - [`placement`]: replicas for new partitions, replacements for failed ones, rebalancing.
//! - [`split_point`]: where to split a partition, by sampled load or by size.

pub mod ids;
pub mod map;
pub mod placement;
pub mod range;
pub mod sizing;
pub mod split_point;

pub use ids::{NodeId, PartitionId, ZoneId};
pub use map::{PartitionDescriptor, PartitionError, PartitionMap, ReplicaPlacement, REPLICA_COUNT};
pub use placement::{Move, NewReplicas, NodeInfo, Placement, PlacementError, Replacement};
pub use range::HashRange;
pub use split_point::{HashSample, NoSplit};
