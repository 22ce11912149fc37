//! Squall's engine: a DynamoDB-compatible database.
//!
//! - [`model`]: attribute values, exact numbers, key and item encodings (pure).
//! - [`storage`]: the `KvStore` seam with RocksDB and in-memory stores.

pub mod model;
pub mod storage;
