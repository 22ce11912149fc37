//! Squall's deterministic simulator: a whole cluster in one process under madsim.
//!
//! - [`cluster`]: zones, nodes, addresses, and the one function from a node's spec to the
//!   engine's `NodeConfig`.
//! - [`nemesis`]: the fault plan, drawn from the seed (executed by `run`).
//! - [`workload`]: the clients' versioned conditional writes and consistent reads.
//! - [`history`]: every operation with its times and outcome; [`checkers`]: properties over it.
//! - [`trace`]: the timeline and its hash.
//! - `run` (simulator build only): one run under madsim; [`sweep`]: many seeds in child
//!   processes; [`cli`]: the `squall-sim` command line.

pub mod checkers;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod history;
pub mod nemesis;
#[cfg(madsim)]
pub mod run;
pub mod sweep;
pub mod trace;
pub mod workload;
