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
//! - [`api`]: the client abstraction the runner drives ([`api::DynamoApi`]).
//! - [`op`]: operations as sequences of DynamoDB calls; table definitions and set-up.
//! - [`scenario`]: YCSB, the OLTP scenarios with their invariants, custom mixes, and the TOML
//!   scenario file format.
//! - [`runner`]: open-loop (constant, Poisson, ramps) and closed-loop load with warm-up,
//!   duration and count bounds.
//! - [`tally`]: failures counted by DynamoDB operation and error.
//! - [`report`]: the report directory (`.hgrm`, JSON summary, per-second series) and the final
//!   table; [`plot`]: PNG and SVG charts.

pub mod api;
pub mod check;
pub mod driver;
pub mod keygen;
pub mod op;
pub mod plot;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod tally;
pub mod ycsb;
