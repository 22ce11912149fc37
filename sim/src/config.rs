//! What a run is made of and what it reports; shared by the command line and the runner.

use std::path::PathBuf;
use std::time::Duration;

use crate::checkers::Violation;
use crate::load::{self, LoadConfig};
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
    /// Whole zones crash under load and come back.
    ZoneOutage,
    /// Nodes crash and restart one after another.
    RollingRestarts,
    /// A zone is cut off from the others (both ways or one), then reconnected.
    ZonePartition,
    /// Disks fail: write and sync errors, corruption, slowness, a full disk.
    FlakyDisks,
    /// Every fault kind allowed by `--faults`, with the kinds each seed uses drawn from the seed
    /// (the default faults of the kv scenario are the same swarm).
    Swarm,
    /// The last zone is down for the whole chaos phase and comes back for the heal: how the
    /// cluster serves with a zone lost (capacity planning's second question).
    ZoneDown,
    /// Partitions of the workload's and the checked clients' tables split while the load runs
    /// and nodes crash and restart: nothing may be lost or duplicated at a split boundary.
    SplitUnderLoad,
}

impl Scenario {
    /// The fault kinds this scenario injects, or `None` for those `--faults` allows.
    pub fn faults(self) -> Option<Vec<crate::nemesis::FaultKind>> {
        use crate::nemesis::FaultKind;
        match self {
            Scenario::Calm => Some(Vec::new()),
            Scenario::ZoneOutage | Scenario::ZoneDown => Some(vec![FaultKind::ZoneCrash]),
            Scenario::RollingRestarts => Some(vec![FaultKind::Crash]),
            Scenario::ZonePartition => Some(vec![FaultKind::ZoneCut]),
            Scenario::FlakyDisks => Some(FaultKind::ALL.into_iter().filter(|k| k.is_disk()).collect()),
            Scenario::SplitUnderLoad => Some(vec![FaultKind::Split, FaultKind::Move, FaultKind::Crash]),
            Scenario::Kv | Scenario::HotKey | Scenario::Swarm => None,
        }
    }

    /// The workloads-crate scenario this scenario offers alongside its checked clients when
    /// `--workload` does not say: the common questions each named scenario answers ("how do
    /// YCSB's latencies look while a zone is down?"), and for swarm one drawn from the seed.
    pub fn default_workload(self, seed: u64) -> Option<&'static str> {
        match self {
            Scenario::Kv | Scenario::HotKey | Scenario::Calm => None,
            Scenario::ZoneOutage | Scenario::ZoneDown => Some("ycsb-b"),
            Scenario::RollingRestarts => Some("orders"),
            Scenario::ZonePartition => Some("bank"),
            Scenario::FlakyDisks => Some("sessions"),
            Scenario::SplitUnderLoad => Some("ycsb-a"),
            Scenario::Swarm => Some(load::swarm_workload(seed)),
        }
    }

    /// Whether the engine's fault points (`squall_engine::buggify`) are on even without
    /// `--buggify`: in half of the swarm scenario's seeds, drawn from the seed.
    pub fn buggify(self, seed: u64) -> bool {
        match self {
            Scenario::Swarm => {
                let mut rng = squall_workloads::keygen::seeded_rng(seed, STREAM_BUGGIFY_CHOICE);
                squall_workloads::keygen::uniform_below(&mut rng, 2) == 1
            }
            _ => false,
        }
    }
}

/// Random stream of the swarm scenario's choice to turn the engine's fault points on.
const STREAM_BUGGIFY_CHOICE: u64 = 301;

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The seed every choice derives from.
    pub seed: u64,
    /// Zones.
    pub zones: u32,
    /// Nodes per zone.
    pub nodes_per_zone: u32,
    /// Partitions of every table.
    pub partitions: u64,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// First part of the chaos phase left out of the workload's latencies and the nodes'
    /// utilisation.
    pub warmup: Duration,
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
    /// A workloads-crate scenario offered during the chaos phase, with its invariant checked.
    pub load: Option<LoadConfig>,
    /// Where the load's report directory goes (nothing is written without one).
    pub report_dir: Option<PathBuf>,
    /// Every node's modelled hardware and the network.
    pub profile: std::sync::Arc<crate::resources::Profile>,
    /// Whether the engine's fault points (`squall_engine::buggify`) are on.
    pub buggify: bool,
    /// The per-table quotas every node enforces.
    pub quota: squall_engine::capacity::Quota,
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
    /// Requests sent: the checked clients' attempts and the workload's run-phase operations.
    pub requests: u64,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// Where the load's report was written, if anywhere.
    pub report_written: Option<PathBuf>,
    /// What each node's modelled hardware did, by node id.
    pub usage: Vec<crate::resources::Usage>,
    /// The engine's fault points: which the seed activated and how often each fired (empty
    /// when they were off).
    pub buggify: Vec<squall_engine::buggify::SiteReport>,
}
