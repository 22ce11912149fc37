//! Squall's deterministic simulator: a whole cluster in one process under madsim.
//!
//! - [`cluster`]: zones, nodes, addresses, and the one function from a node's spec to the
//!   engine's `NodeConfig`.
//! - [`nemesis`]: the fault plan, drawn from the seed (executed by `run`).
//! - [`resources`]: each node's modelled CPU and disk and the network, from a profile file.
//! - [`workload`]: the clients' versioned conditional writes and consistent reads.
//! - [`load`]: a workloads-crate scenario offered during the chaos phase, its invariant checked
//!   after the heal, and its report (histograms, plots with the fault windows shaded).
//! - [`history`]: every operation with its times and outcome; [`checkers`]: properties over it.
//! - [`trace`]: the timeline and its hash.
//! - [`bench`]: deterministic simulated benchmarks and their comparison with a baseline.
//! - [`plan`]: capacity planning, the smallest cluster for a workload's rate and latency target;
//!   [`plan_report`]: its Markdown and HTML reports.
//! - [`net`]: the simulated network, its latencies and faults.
//! - `run` (simulator build only): one run under madsim; [`sweep`]: many seeds in child
//!   processes; [`cli`]: the `squall-sim` command line.

pub mod bench;
pub mod checkers;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod history;
pub mod load;
pub mod nemesis;
pub mod net;
pub mod plan;
pub mod plan_report;
pub mod resources;
#[cfg(madsim)]
pub mod run;
pub mod sweep;
pub mod trace;
pub mod workload;
