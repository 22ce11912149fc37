//! Squall's workloads: what load to offer and how to measure it.
//!
//! - [`keygen`]: YCSB's key and number generators (FNV key hashing, zipfian, scrambled zipfian,
//!   latest, uniform, hotspot, insert counters, scan lengths), pure and seeded.
//! - [`ycsb`]: YCSB core workloads A–F, the workload property-file parser and the seeded
//!   operation generator.
//! - [`recorder`]: latency histograms per operation and outcome, per-second time series, `.hgrm`
//!   and JSON output.
//! - [`driver`]: a DynamoDB HTTP client with SigV4 signing and pooled keep-alive connections,
//!   written over this crate's `tokio` so it also runs over the simulator's TCP.

pub mod check;
pub mod driver;
pub mod keygen;
pub mod recorder;
pub mod ycsb;
