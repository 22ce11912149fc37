//! Squall's workloads: what load to offer and how to measure it.

pub mod driver;
