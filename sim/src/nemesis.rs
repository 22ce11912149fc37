//! The nemesis: which faults a run injects, when, and for how long — all drawn from the seed
//! before the run starts, so the plan is printed up front and replays exactly.
//!
//! Swarm testing: each seed first draws which of the allowed fault kinds it uses at all, so some
//! seeds hammer one kind and others mix many. Then it draws a number of faults, each with a kind,
//! a target, a start inside the chaos phase and a duration that ends before the chaos phase
//! does. Faults may overlap; the executor (`run`) counts overlapping crashes, pauses and clogs of
//! the same node or link, so a node restarts only when the last fault holding it down heals.

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use squall_workloads::keygen::{seeded_rng, uniform_below};

use crate::cluster::ClusterSpec;

/// Random stream of the fault plan (the workload's clients use other streams).
const PLAN_STREAM: u64 = 1;
/// Shortest fault.
pub const FAULT_MS_MIN: u64 = 500;
/// Longest fault.
pub const FAULT_MS_MAX: u64 = 10_000;
/// One fault on average per this much chaos time.
pub const CHAOS_MS_PER_FAULT: u64 = 4_000;
/// Most faults in one run.
pub const FAULTS_MAX: u64 = 64;
/// Time after a replaced disk's node restarts before another disk may be replaced: the node
/// must have rejoined its groups first.
const WIPE_SPACING_MS: u64 = 30_000;
/// Chance (per million) that swarm testing keeps an allowed fault kind for a seed.
const SWARM_KEEP_PER_MILLION: u64 = 700_000;

/// A kind of fault, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Crash one node, restart it when the fault heals.
    Crash,
    /// Pause one node (it keeps its state and connections), resume it.
    Pause,
    /// Crash every node of a zone.
    ZoneCrash,
    /// Cut a zone off from everything else, in both directions or one.
    ZoneCut,
    /// Cut one node off from everything else.
    Isolate,
    /// Split every host into two random halves.
    Halves,
    /// Lose a share of packets everywhere (simulated TCP retransmits them later).
    Loss,
    /// Raise every link's latency.
    Latency,
    /// EIO on a node's writes.
    DiskWriteError,
    /// EIO on a node's syncs; the store stays poisoned until the node restarts.
    DiskSyncError,
    /// Flip bytes of items a node reads.
    DiskCorrupt,
    /// Store some of the items a node writes with a flipped byte, damaged for good: the node
    /// finds them by scrubbing and rebuilds the replica from a healthy one.
    DiskRot,
    /// Slow disk operations on a node.
    DiskSlow,
    /// A node's disk is full.
    DiskFull,
    /// Clog node-to-node links one at a time, then unclog them in another random order.
    Swizzle,
    /// Split a partition of a table under load (an administration action, not a failure: it
    /// tests that splits lose and duplicate nothing, whatever else is going on).
    Split,
    /// Crash one node and replace its disk by an empty one; it restarts at the heal and
    /// rejoins the cluster.
    Wipe,
    /// Move a replica of a partition to another node of its zone under load (an
    /// administration action, like `Split`).
    Move,
}

impl FaultKind {
    /// Every kind `--faults all` means, in its order.
    pub const ALL: [FaultKind; 18] = [
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::ZoneCrash,
        FaultKind::ZoneCut,
        FaultKind::Isolate,
        FaultKind::Halves,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::DiskWriteError,
        FaultKind::DiskSyncError,
        FaultKind::DiskCorrupt,
        FaultKind::DiskRot,
        FaultKind::DiskSlow,
        FaultKind::DiskFull,
        FaultKind::Swizzle,
        FaultKind::Split,
        FaultKind::Wipe,
        FaultKind::Move,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::ZoneCrash => "zone-crash",
            FaultKind::ZoneCut => "zone-cut",
            FaultKind::Isolate => "isolate",
            FaultKind::Halves => "halves",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::DiskWriteError => "disk-eio-write",
            FaultKind::DiskSyncError => "disk-eio-sync",
            FaultKind::DiskCorrupt => "disk-corrupt",
            FaultKind::DiskRot => "disk-rot",
            FaultKind::DiskSlow => "disk-slow",
            FaultKind::DiskFull => "disk-full",
            FaultKind::Swizzle => "swizzle-clog",
            FaultKind::Split => "split",
            FaultKind::Wipe => "wipe",
            FaultKind::Move => "move",
        }
    }

    /// Whether the fault is one of the disk faults.
    pub fn is_disk(self) -> bool {
        matches!(
            self,
            FaultKind::DiskWriteError
                | FaultKind::DiskSyncError
                | FaultKind::DiskCorrupt
                | FaultKind::DiskRot
                | FaultKind::DiskSlow
                | FaultKind::DiskFull
        )
    }

    fn is_network(self) -> bool {
        matches!(
            self,
            FaultKind::ZoneCut
                | FaultKind::Isolate
                | FaultKind::Halves
                | FaultKind::Loss
                | FaultKind::Latency
                | FaultKind::Swizzle
        )
    }
}

/// The fault kinds a run may use: `all`, `none`, or a comma-separated list of kinds and the
/// groups `network`, `disk` and `process` (crash, pause, zone-crash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSet(pub Vec<FaultKind>);

impl FromStr for FaultSet {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultSet, String> {
        let mut kinds = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => kinds.extend(FaultKind::ALL),
                "none" => {}
                "disk" => kinds.extend(FaultKind::ALL.into_iter().filter(|k| k.is_disk())),
                "network" => kinds.extend(FaultKind::ALL.into_iter().filter(|k| k.is_network())),
                "process" => kinds.extend([FaultKind::Crash, FaultKind::Pause, FaultKind::ZoneCrash, FaultKind::Wipe]),
                name => match FaultKind::ALL.into_iter().find(|k| k.name() == name) {
                    Some(kind) => kinds.push(kind),
                    None => {
                        let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                        return Err(format!(
                            "unknown fault {name:?}: use all, none, network, disk, process or {}",
                            known.join(", ")
                        ));
                    }
                },
            }
        }
        kinds.sort_unstable();
        kinds.dedup();
        Ok(FaultSet(kinds))
    }
}

/// Which way a zone cut blocks traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutDirection {
    /// Nothing in or out.
    Both,
    /// The zone hears nothing; what it sends still arrives.
    Inbound,
    /// What the zone sends is lost; it still hears everything.
    Outbound,
}

/// What one fault does to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Crash node `node`; restart it at the heal.
    Crash { node: u32 },
    /// Crash node `node` and empty its disk; restart it at the heal, rejoining.
    Wipe { node: u32 },
    /// Pause node `node`; resume it at the heal.
    Pause { node: u32 },
    /// Crash every node of `zone`.
    ZoneCrash { zone: u32 },
    /// Cut `zone` off from every other host.
    ZoneCut { zone: u32, direction: CutDirection },
    /// Cut `node` off from every other host.
    Isolate { node: u32 },
    /// Hosts on side `true` cannot talk to hosts on side `false`. Clients are hosts too:
    /// `clients_side[i]` is client `i`'s side.
    Halves { nodes_side: Vec<bool>, clients_side: Vec<bool> },
    /// Lose `per_million` of packets on every link.
    Loss { per_million: u32 },
    /// Every link's latency becomes `min_ms..max_ms`.
    Latency { min_ms: u64, max_ms: u64 },
    /// A disk fault on one node's store.
    Disk { node: u32, kind: FaultKind },
    /// Swizzle-clogging: the directed node-to-node `links` (node indexes) clog one by one, in
    /// this order, over the fault's first half, then unclog over its second half in the order
    /// `unclog_order` gives (indexes into `links`). Clogging links rather than whole nodes makes
    /// partial, intransitive partitions that form and dissolve gradually, which leader leases
    /// and failure detectors find harder than a clean cut.
    Swizzle { links: Vec<(u32, u32)>, unclog_order: Vec<u32> },
    /// Ask node `via` to split a partition: of the cluster's tables (by name) the one at
    /// `table_pick` modulo their count, of its partitions the one at `partition_pick` modulo
    /// theirs, at the split point its leader chooses. The picks are taken when the fault
    /// starts, against the tables and partitions there are then.
    SplitPartition { table_pick: u32, partition_pick: u32, via: u32 },
    /// Ask node `via` to move a replica: of the table and partition picked as for a split,
    /// the replica at `replica_pick` modulo their count, to the first node of its zone that
    /// holds none.
    MoveReplica { table_pick: u32, partition_pick: u32, replica_pick: u32, via: u32 },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { node } => write!(f, "crash node {node}"),
            Fault::Wipe { node } => write!(f, "crash node {node} and replace its disk by an empty one"),
            Fault::Pause { node } => write!(f, "pause node {node}"),
            Fault::ZoneCrash { zone } => write!(f, "crash zone {zone}"),
            Fault::ZoneCut { zone, direction } => write!(f, "cut zone {zone} off ({direction:?})"),
            Fault::Isolate { node } => write!(f, "isolate node {node}"),
            Fault::Halves { nodes_side, clients_side } => {
                let side = |sides: &[bool], which: bool| {
                    sides
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s == which)
                        .map(|(i, _)| i.to_string())
                        .collect::<Vec<_>>()
                };
                write!(
                    f,
                    "split halves: nodes [{}] clients [{}] | nodes [{}] clients [{}]",
                    side(nodes_side, true).join(" "),
                    side(clients_side, true).join(" "),
                    side(nodes_side, false).join(" "),
                    side(clients_side, false).join(" ")
                )
            }
            Fault::Loss { per_million } => {
                write!(f, "lose {}.{}% of packets", per_million / 10_000, per_million / 1_000 % 10)
            }
            Fault::Latency { min_ms, max_ms } => write!(f, "link latency {min_ms}..{max_ms} ms"),
            Fault::Disk { node, kind } => write!(f, "{} on node {node}", kind.name()),
            Fault::Swizzle { links, unclog_order } => {
                let clogs: Vec<String> = links.iter().map(|(a, b)| format!("{a}->{b}")).collect();
                let order: Vec<String> = unclog_order.iter().map(|i| i.to_string()).collect();
                write!(f, "swizzle-clog links [{}], unclogged in order [{}]", clogs.join(" "), order.join(" "))
            }
            Fault::SplitPartition { table_pick, partition_pick, via } => {
                write!(f, "split-partition pick {partition_pick} of table pick {table_pick} via node {via}")
            }
            Fault::MoveReplica { table_pick, partition_pick, replica_pick, via } => write!(
                f,
                "move-replica pick {replica_pick} of partition pick {partition_pick} of table pick {table_pick} via node {via}"
            ),
        }
    }
}

/// A fault with its window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledFault {
    /// Number in the plan, from 0.
    pub id: u32,
    /// Simulated start, in milliseconds from the start of the chaos phase.
    pub start_ms: u64,
    /// How long it lasts.
    pub duration_ms: u64,
    /// What it does.
    pub fault: Fault,
}

impl ScheduledFault {
    /// When it heals.
    pub fn end_ms(&self) -> u64 {
        self.start_ms + self.duration_ms
    }
}

/// Every fault of a run, ordered by start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Kinds swarm testing kept for this seed.
    pub kinds: Vec<FaultKind>,
    /// The faults.
    pub faults: Vec<ScheduledFault>,
}

/// The plan of the zone-down scenario: the last zone crashes as the chaos phase starts and
/// stays down to its end.
pub fn zone_down_plan(cluster: &ClusterSpec, chaos_ms: u64) -> FaultPlan {
    let fault = Fault::ZoneCrash { zone: cluster.zones - 1 };
    FaultPlan {
        kinds: vec![FaultKind::ZoneCrash],
        faults: vec![ScheduledFault { id: 0, start_ms: 0, duration_ms: chaos_ms, fault }],
    }
}

/// Draws the fault plan of a run.
pub fn plan(seed: u64, cluster: &ClusterSpec, clients: u32, chaos_ms: u64, allowed: &FaultSet) -> FaultPlan {
    let mut rng = seeded_rng(seed, PLAN_STREAM);
    let mut kinds: Vec<FaultKind> =
        allowed.0.iter().copied().filter(|_| uniform_below(&mut rng, 1_000_000) < SWARM_KEEP_PER_MILLION).collect();
    if kinds.is_empty() && !allowed.0.is_empty() {
        kinds.push(allowed.0[uniform_below(&mut rng, allowed.0.len() as u64) as usize]);
    }
    if kinds.is_empty() || chaos_ms < FAULT_MS_MIN * 2 {
        return FaultPlan { kinds, faults: Vec::new() };
    }
    let mean = (chaos_ms / CHAOS_MS_PER_FAULT).max(1);
    let count = (1 + uniform_below(&mut rng, 2 * mean)).min(FAULTS_MAX);
    let mut faults: Vec<ScheduledFault> = (0..count)
        .map(|_| {
            let kind = kinds[uniform_below(&mut rng, kinds.len() as u64) as usize];
            let start_ms = uniform_below(&mut rng, chaos_ms - FAULT_MS_MIN);
            let longest = (chaos_ms - start_ms).min(FAULT_MS_MAX);
            let duration_ms = FAULT_MS_MIN + uniform_below(&mut rng, longest - FAULT_MS_MIN + 1);
            let fault = draw_fault(&mut rng, kind, cluster, clients);
            ScheduledFault { id: 0, start_ms, duration_ms, fault }
        })
        .collect();
    faults.sort_by_key(|f| (f.start_ms, f.duration_ms));
    // Losing two disks of one partition's replicas at once loses data for real (its writes
    // had a quorum of two), and two replicas damaged at once leave a group without a quorum
    // that can apply; the fault model loses one disk's contents at a time (replaced, or
    // rotting), and gives the node time to rejoin or be repaired before the next.
    let mut last_loss_end_ms: Option<u64> = None;
    faults.retain(|f| {
        if !f.fault.loses_data() {
            return true;
        }
        if last_loss_end_ms.is_some_and(|end| f.start_ms < end + WIPE_SPACING_MS) {
            return false;
        }
        last_loss_end_ms = Some(f.start_ms + f.duration_ms);
        true
    });
    for (id, fault) in faults.iter_mut().enumerate() {
        fault.id = id as u32;
    }
    FaultPlan { kinds, faults }
}

impl Fault {
    /// Whether the fault destroys stored data on a node (its disk replaced, or rotting), which
    /// the node must get back from other replicas.
    fn loses_data(&self) -> bool {
        matches!(self, Fault::Wipe { .. } | Fault::Disk { kind: FaultKind::DiskRot, .. })
    }
}

fn draw_fault(rng: &mut ChaCha8Rng, kind: FaultKind, cluster: &ClusterSpec, clients: u32) -> Fault {
    let nodes = cluster.nodes.len() as u64;
    // Every node hosts replicas and a router, so node faults pick any node.
    let node = |rng: &mut ChaCha8Rng| uniform_below(rng, nodes) as u32;
    let zone = |rng: &mut ChaCha8Rng| uniform_below(rng, u64::from(cluster.zones)) as u32;
    match kind {
        FaultKind::Crash => Fault::Crash { node: node(rng) },
        FaultKind::Wipe => Fault::Wipe { node: node(rng) },
        FaultKind::Pause => Fault::Pause { node: node(rng) },
        FaultKind::ZoneCrash => Fault::ZoneCrash { zone: zone(rng) },
        FaultKind::ZoneCut => {
            let direction =
                [CutDirection::Both, CutDirection::Inbound, CutDirection::Outbound][uniform_below(rng, 3) as usize];
            Fault::ZoneCut { zone: zone(rng), direction }
        }
        FaultKind::Isolate => Fault::Isolate { node: node(rng) },
        FaultKind::Halves => {
            let nodes_side = (0..nodes).map(|_| uniform_below(rng, 2) == 1).collect();
            let clients_side = (0..clients).map(|_| uniform_below(rng, 2) == 1).collect();
            Fault::Halves { nodes_side, clients_side }
        }
        FaultKind::Loss => Fault::Loss { per_million: 10_000 + uniform_below(rng, 290_000) as u32 },
        FaultKind::Latency => {
            let min_ms = 20 + uniform_below(rng, 200);
            Fault::Latency { min_ms, max_ms: min_ms + 1 + uniform_below(rng, 300) }
        }
        FaultKind::Swizzle => draw_swizzle(rng, nodes),
        FaultKind::Split => Fault::SplitPartition {
            table_pick: uniform_below(rng, 1 << 16) as u32,
            partition_pick: uniform_below(rng, 1 << 16) as u32,
            via: node(rng),
        },
        FaultKind::Move => Fault::MoveReplica {
            table_pick: uniform_below(rng, 1 << 16) as u32,
            partition_pick: uniform_below(rng, 1 << 16) as u32,
            replica_pick: uniform_below(rng, 1 << 16) as u32,
            via: node(rng),
        },
        disk => Fault::Disk { node: node(rng), kind: disk },
    }
}

/// Most links one swizzle-clog fault clogs.
const SWIZZLE_LINKS_MAX: u64 = 8;

fn draw_swizzle(rng: &mut ChaCha8Rng, nodes: u64) -> Fault {
    let mut all_links: Vec<(u32, u32)> =
        (0..nodes).flat_map(|a| (0..nodes).filter(move |b| *b != a).map(move |b| (a as u32, b as u32))).collect();
    shuffle(rng, &mut all_links);
    let available = all_links.len() as u64;
    let count = if available <= 1 { available } else { 2 + uniform_below(rng, available.min(SWIZZLE_LINKS_MAX) - 1) };
    all_links.truncate(count as usize);
    let mut unclog_order: Vec<u32> = (0..count as u32).collect();
    shuffle(rng, &mut unclog_order);
    Fault::Swizzle { links: all_links, unclog_order }
}

/// Fisher–Yates, from the plan's stream.
fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sets_parse_names_and_groups() {
        assert_eq!("all".parse::<FaultSet>().unwrap().0.len(), FaultKind::ALL.len());
        assert_eq!("none".parse::<FaultSet>().unwrap().0, []);
        assert_eq!("crash,crash, pause".parse::<FaultSet>().unwrap().0, [FaultKind::Crash, FaultKind::Pause]);
        assert_eq!("disk".parse::<FaultSet>().unwrap().0.len(), 6);
        assert!("all".parse::<FaultSet>().unwrap().0.contains(&FaultKind::DiskRot));
        assert_eq!("disk,disk-rot".parse::<FaultSet>().unwrap().0.len(), 6, "named twice, counted once");
        assert_eq!("network".parse::<FaultSet>().unwrap().0.len(), 6);
        let error = "crash,meteor".parse::<FaultSet>().unwrap_err();
        assert!(error.contains("unknown fault \"meteor\""), "{error}");
    }

    #[test]
    fn the_zone_down_plan_takes_the_last_zone_down_for_the_whole_chaos_phase() {
        let cluster = ClusterSpec::new(3, 2).unwrap();
        let plan = zone_down_plan(&cluster, 30_000);
        assert_eq!(plan.faults.len(), 1);
        let fault = &plan.faults[0];
        assert_eq!((fault.start_ms, fault.end_ms()), (0, 30_000));
        assert_eq!(fault.fault, Fault::ZoneCrash { zone: 2 });
    }

    #[test]
    fn plans_repeat_per_seed_differ_between_seeds_and_stay_inside_the_chaos_phase() {
        let cluster = ClusterSpec::new(3, 3).unwrap();
        let all: FaultSet = "all".parse().unwrap();
        let a = plan(42, &cluster, 3, 60_000, &all);
        assert_eq!(a, plan(42, &cluster, 3, 60_000, &all));
        assert_ne!(a, plan(43, &cluster, 3, 60_000, &all));
        let mut kinds_seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let p = plan(seed, &cluster, 3, 60_000, &all);
            assert!(!p.faults.is_empty());
            assert!(p.faults.len() as u64 <= FAULTS_MAX);
            for f in &p.faults {
                assert!(f.duration_ms >= FAULT_MS_MIN && f.duration_ms <= FAULT_MS_MAX, "{f:?}");
                assert!(f.end_ms() <= 60_000, "{f:?} ends after the chaos phase");
                kinds_seen.insert(f.fault.to_string().split(' ').next().unwrap_or_default().to_string());
            }
            assert!(p.faults.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
        }
        // crash, pause, cut, isolate, split (halves), lose, link, the six disk kinds,
        // swizzle-clog, split-partition and move-replica.
        assert_eq!(kinds_seen.len(), 16, "every shape of fault is drawn by some seed: {kinds_seen:?}");
    }

    #[test]
    fn disks_replaced_or_rotting_lose_data_one_at_a_time() {
        let cluster = ClusterSpec::new(3, 3).unwrap();
        let losses: FaultSet = "wipe,disk-rot".parse().unwrap();
        let mut rot_seen = 0;
        for seed in 0..100 {
            let p = plan(seed, &cluster, 3, 120_000, &losses);
            let lossy: Vec<&ScheduledFault> = p.faults.iter().filter(|f| f.fault.loses_data()).collect();
            assert_eq!(lossy.len(), p.faults.len(), "only wipes and rot were allowed");
            rot_seen += lossy.iter().filter(|f| matches!(f.fault, Fault::Disk { .. })).count();
            for pair in lossy.windows(2) {
                assert!(pair[1].start_ms >= pair[0].end_ms() + WIPE_SPACING_MS, "{pair:?}");
            }
        }
        assert!(rot_seen > 20, "rot is drawn too");
    }

    #[test]
    fn disks_are_replaced_one_at_a_time_with_time_to_rejoin_between() {
        let cluster = ClusterSpec::new(3, 3).unwrap();
        let wipes_only: FaultSet = "wipe".parse().unwrap();
        let mut wipes_seen = 0;
        for seed in 0..100 {
            let p = plan(seed, &cluster, 3, 120_000, &wipes_only);
            let wipes: Vec<&ScheduledFault> =
                p.faults.iter().filter(|f| matches!(f.fault, Fault::Wipe { .. })).collect();
            assert!(!wipes.is_empty());
            wipes_seen += wipes.len();
            for pair in wipes.windows(2) {
                assert!(pair[1].start_ms >= pair[0].end_ms() + WIPE_SPACING_MS, "{pair:?}");
            }
        }
        assert!(wipes_seen > 100, "some runs replace several disks, one after another");
    }

    #[test]
    fn only_allowed_kinds_are_drawn_and_none_means_no_faults() {
        let cluster = ClusterSpec::new(3, 1).unwrap();
        let crash: FaultSet = "crash".parse().unwrap();
        for seed in 0..50 {
            let p = plan(seed, &cluster, 2, 20_000, &crash);
            assert!(p.faults.iter().all(|f| matches!(f.fault, Fault::Crash { node } if node < 3)));
        }
        assert_eq!(plan(1, &cluster, 2, 20_000, &FaultSet(vec![])).faults, []);
    }

    #[test]
    fn swizzle_clogs_distinct_node_links_and_unclogs_each_once() {
        let cluster = ClusterSpec::new(3, 2).unwrap();
        let swizzle: FaultSet = "swizzle-clog".parse().unwrap();
        let mut orders_differ = false;
        for seed in 0..100 {
            for scheduled in plan(seed, &cluster, 2, 30_000, &swizzle).faults {
                let Fault::Swizzle { links, unclog_order } = scheduled.fault else {
                    panic!("only swizzle-clog was allowed: {:?}", scheduled.fault);
                };
                assert!((2..=SWIZZLE_LINKS_MAX as usize).contains(&links.len()), "{links:?}");
                let distinct: std::collections::BTreeSet<_> = links.iter().collect();
                assert_eq!(distinct.len(), links.len(), "links repeat: {links:?}");
                assert!(links.iter().all(|(a, b)| a != b && *a < 6 && *b < 6), "{links:?}");
                let mut sorted = unclog_order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..links.len() as u32).collect::<Vec<_>>());
                orders_differ |= unclog_order.windows(2).any(|w| w[0] > w[1]);
            }
        }
        assert!(orders_differ, "links must not always unclog in the order they clogged");
        // A one-node cluster has no link to clog.
        let single = ClusterSpec::new(1, 1).unwrap();
        for scheduled in plan(3, &single, 1, 30_000, &swizzle).faults {
            assert_eq!(scheduled.fault, Fault::Swizzle { links: vec![], unclog_order: vec![] });
        }
    }
}
