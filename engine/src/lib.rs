//! Squall's engine: a DynamoDB-compatible database.
//!
//! - [`model`]: attribute values, exact numbers, key and item encodings (pure).
//! - [`expr`]: condition, filter, key-condition, update and projection expressions (pure).
//! - [`catalog`]: table and index metadata and `TableDescription` (pure).
//! - [`capacity`]: read and write capacity units, token buckets and DynamoDB's limits (pure).
//! - [`partition`]: hash ranges, the partition map, sizing, replica placement and split points (pure).
//! - [`replication`]: raft log storage for a partition's replica group.
//! - [`storage`]: the `KvStore` seam with RocksDB and in-memory stores.
//! - [`resources`]: the seam through which a modelled node pays for its work in time.
//! - [`db`]: the single-node database: catalog, storage key layout, item writes with indexes.
//! - [`api`]: DynamoDB's operations and errors, transport-free.
//! - [`throttle`]: capacity enforcement, admitting requests against a node's token buckets.
//! - [`http`]: the HTTP server; [`node`]: the one entry point that starts a node.

pub mod api;
pub mod buggify;
pub mod capacity;
pub mod catalog;
pub mod cluster;
pub mod db;
pub mod expr;
pub mod http;
pub mod metrics;
pub mod model;
pub mod net;
pub mod node;
pub mod partition;
pub mod planted;
pub mod replication;
pub mod resources;
pub mod scope;
pub mod storage;
pub mod throttle;
