//! What a run is made of and what it reports; shared by the command line and the runner.

use std::time::Duration;

use crate::checkers::Violation;
use crate::nemesis::FaultSet;
use crate::trace::Echo;

/// Which store each node runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// `MemStore`: deterministic, loses unsynced writes on a crash.
    Memory,
    /// RocksDB in a temporary directory per node.
    Rocksdb,
}

/// Named workload and fault shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Versioned puts, updates and gets on 8 keys under the drawn faults.
    Kv,
    /// Every client on one key: maximum contention.
    HotKey,
    /// The kv workload with no faults at all.
    Calm,
}

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The seed every choice derives from.
    pub seed: u64,
    /// Zones.
    pub zones: u32,
    /// Nodes per zone.
    pub nodes_per_zone: u32,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// Store of each node.
    pub storage: StorageKind,
    /// Fault kinds allowed.
    pub faults: FaultSet,
    /// Workload shape.
    pub scenario: Scenario,
    /// Client hosts.
    pub clients: u32,
    /// Operations each client runs after the heal.
    pub heal_ops: u32,
    /// What the timeline prints.
    pub echo: Echo,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Hash of the whole timeline.
    pub trace_hash: u64,
    /// Every violation the checkers found.
    pub violations: Vec<Violation>,
    /// Faults injected.
    pub faults_injected: usize,
    /// Requests sent (attempts).
    pub requests: u64,
    /// Simulated time the run took.
    pub simulated: Duration,
}
