//! Squall's engine: a DynamoDB-compatible database.
//!
//! - [`expr`]: condition, update, projection and key condition expressions (pure).
//! - [`model`]: attribute values, exact numbers, key and item encodings (pure).
//! - [`storage`]: the `KvStore` seam with RocksDB and in-memory stores.

pub mod expr;
pub mod model;
pub mod storage;
