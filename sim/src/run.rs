//! One simulated run: a madsim runtime from the seed, one host per node running the engine's
//! `node::run`, client hosts driving the workload over simulated TCP, the nemesis executing
//! its plan, then the heal phase and the final reads, and the checkers over the history.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::task::NodeId;
use squall_engine::net::Network;
use squall_engine::node::{self, ProvidedStore, StorageConfig};
use squall_engine::resources::Resources;
use squall_engine::storage::{
    FaultSettings, FaultyStore, KvStore, MemStore, MeteredStore, RocksStore, StorageError, StorageFaults,
};
use squall_workloads::api::DynamoApi;
use squall_workloads::driver::{ClientConfig, Dialer, DynamoClient};
use squall_workloads::keygen::seeded_rng;

use crate::checkers::{self, CheckSettings, Violation};
use crate::cluster::{client_ip, cluster_settings, node_config, ClusterSpec, NodeSpec};
use crate::config::{RunConfig, RunReport, Scenario, StorageKind};
use crate::history::{History, Op, OpKind, Outcome, Phase};
use crate::load::{self, Balancer, LoadConfig, LoadReport};
use crate::nemesis::{self, CutDirection, Fault, FaultKind, FaultPlan, FaultSet, ScheduledFault};
use crate::net::{Place, SimNet};
use crate::resources::{NodeResources, Profile, Usage};
use crate::trace::{EventKind, Timeline};
use crate::workload::{self, WorkloadSpec};

/// Per-attempt timeout of client requests.
pub const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Longest an operation after the heal may take, retries included (simulated TCP backs off up
/// to 10 s on a link that was clogged, so a first request after a heal can wait that long).
pub const HEAL_OP_BOUND_MS: u64 = 30_000;
/// Pause between attempts of one operation after the heal.
pub const HEAL_RETRY_MS: u64 = 100;
/// Most operations one client invokes in the chaos phase.
pub const CHAOS_OPS_PER_CLIENT_MAX: u64 = 100_000;
/// Time beyond the transaction timeout waited before the workload's invariant is checked.
const TXN_SETTLE_EXTRA_MS: u64 = 2_000;
/// How often a node's slow-disk debt is collected and slept off.
const SLOW_DISK_POLL_MS: u64 = 10;
/// Pause between attempts to start a node whose store could not be opened (a store of the
/// node's previous life may still be closing).
const NODE_START_RETRY_MS: u64 = 200;
/// Attempts to start a node before giving up.
const NODE_START_ATTEMPTS_MAX: u32 = 50;
/// Simulated time after which a run is stopped as hung.
const RUN_SIM_LIMIT_S: u64 = 3 * 3600;
/// Connections each client keeps.
const CLIENT_CONNECTIONS_MAX: usize = 2;
/// How long after the final reads the partitions' replicas have to reach one applied index.
const REPLICAS_CONVERGE_MS: u64 = 20_000;
/// Pause between two rounds of asking every node for its replicas.
const REPLICAS_POLL_MS: u64 = 500;
/// How long an administration request may take before the nemesis stops waiting for it.
const SPLIT_TIMEOUT_MS: u64 = 10_000;
/// How long a replica move may take before the nemesis stops waiting for it (the engine
/// gives up waiting after 60 s).
const MOVE_TIMEOUT_MS: u64 = 70_000;
/// Bound on each node's answer when a disk replacement asks whether a replica still rejoins.
const WIPE_CHECK_TIMEOUT_MS: u64 = 500;

/// A node's disk: what survives the node crashing, and its fault switchboard.
struct Disk {
    medium: Medium,
    faults: Arc<StorageFaults>,
    /// Whether the disk was replaced by an empty one since the node last started: the node
    /// then starts on an empty store and rejoins the cluster.
    wiped: AtomicBool,
}

enum Medium {
    Memory(Arc<MemStore>),
    Rocks(PathBuf),
}

impl Disk {
    /// Opens the store a starting node runs on, and whether it is a replaced (empty) disk.
    fn open(&self) -> Result<(Arc<dyn KvStore>, bool), StorageError> {
        let wiped = self.wiped.load(Ordering::Relaxed);
        if wiped {
            match &self.medium {
                Medium::Memory(store) => store.wipe(),
                Medium::Rocks(path) => match std::fs::remove_dir_all(path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StorageError::Io(format!("replace the disk: {error}")))
                    }
                    _ => {}
                },
            }
            self.wiped.store(false, Ordering::Relaxed);
        }
        let inner: Arc<dyn KvStore> = match &self.medium {
            Medium::Memory(store) => store.clone(),
            Medium::Rocks(path) => Arc::new(RocksStore::open(path)?),
        };
        // Metered above the faults, so a write the disk refused costs no modelled time.
        Ok((Arc::new(MeteredStore::new(Arc::new(FaultyStore::new(inner, self.faults.clone())))), wiped))
    }

    /// The node's process died: what was never synced is gone. (RocksDB keeps unsynced writes
    /// across a process crash, as a real one does; `MemStore` models the harsher power loss.)
    fn crash(&self) {
        if let Medium::Memory(store) = &self.medium {
            store.power_fail();
        }
    }
}

/// State shared by the supervisor, the nodes and the clients.
#[derive(Clone)]
struct Shared {
    seed: u64,
    start: tokio::time::Instant,
    timeline: Timeline,
    history: Arc<Mutex<Vec<Op>>>,
    next_ver: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    /// The network every simulated host talks over.
    net: SimNet,
}

impl Shared {
    /// Creates a client host (outside every zone) and its dialler.
    fn client_host(&self, handle: &Handle, name: &str, ip: Ipv4Addr) -> (NodeHandle, Dialer) {
        let host = handle.create_node().name(name).ip(IpAddr::V4(ip)).build();
        (host, self.net.host(IpAddr::V4(ip), Place::Client).dialer())
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn event(&self, text: &str) {
        self.timeline.record(self.now_ns(), EventKind::Cluster, text);
    }

    fn record(&self, op: Op) {
        self.timeline.record(op.complete_ns, EventKind::Op, &op.to_string());
        self.history.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }
}

/// Stack of the thread a simulation runs on; simulated tasks are polled on it.
const SIM_THREAD_STACK_BYTES: usize = 64 << 20;

/// Runs one simulation and checks its history.
///
/// Each run gets a thread of its own. std's `HashMap` draws its hash keys once per thread, and
/// madsim can make them follow the seed only if nothing on that thread built a `HashMap` before
/// the runtime did (a log subscriber does, and so does an earlier run): on a reused thread the
/// engine's map iteration order, and with it the run, would depend on the thread's past.
pub fn run(config: &RunConfig) -> anyhow::Result<RunReport> {
    let config = config.clone();
    std::thread::Builder::new()
        .name(format!("sim-seed-{}", config.seed))
        .stack_size(SIM_THREAD_STACK_BYTES)
        .spawn(move || run_on_this_thread(&config))?
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn run_on_this_thread(config: &RunConfig) -> anyhow::Result<RunReport> {
    let cluster = ClusterSpec::new(config.zones, config.nodes_per_zone)?;
    // Client hosts, the checker, the load host and the admin host each take an address.
    anyhow::ensure!(
        (1..=crate::cluster::PARTITIONS_PER_TABLE_MAX).contains(&config.partitions),
        "partitions must be between 1 and {}",
        crate::cluster::PARTITIONS_PER_TABLE_MAX
    );
    anyhow::ensure!(
        config.clients >= 1 && config.clients + 3 <= crate::cluster::CLIENTS_MAX,
        "clients must be between 1 and {}",
        crate::cluster::CLIENTS_MAX - 3
    );
    let chaos_ms = config.chaos.as_millis() as u64;
    let allowed = match config.scenario.faults() {
        Some(kinds) => FaultSet(kinds),
        None => config.faults.clone(),
    };
    let plan = match config.scenario {
        Scenario::ZoneDown => nemesis::zone_down_plan(&cluster, chaos_ms),
        _ => nemesis::plan(config.seed, &cluster, config.clients, chaos_ms, &allowed),
    };
    let faults_injected = plan.faults.len();

    // RocksDB directories live outside the simulation; they are never part of the trace.
    let rocks_dir = match config.storage {
        StorageKind::Rocksdb => Some(rocksdb_work_dir()?),
        StorageKind::Memory => None,
    };
    let disks: Vec<Arc<Disk>> = cluster
        .nodes
        .iter()
        .map(|spec| {
            let medium = match &rocks_dir {
                Some(dir) => Medium::Rocks(dir.path().join(format!("node-{}", spec.id))),
                None => Medium::Memory(Arc::new(MemStore::new())),
            };
            let fault_seed = config.seed ^ (u64::from(spec.id) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            Arc::new(Disk { medium, faults: Arc::new(StorageFaults::new(fault_seed)), wiped: AtomicBool::new(false) })
        })
        .collect();

    let mut runtime = Runtime::with_seed_and_config(config.seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(RUN_SIM_LIMIT_S));
    let timeline = Timeline::new(config.echo);
    // The runtime runs every simulated task on this thread, where the fault points' state lives.
    if config.buggify {
        squall_engine::buggify::enable(config.seed).map_err(anyhow::Error::msg)?;
        let active: Vec<&str> =
            squall_engine::buggify::report().iter().filter(|s| s.active).map(|s| s.site.name()).collect();
        timeline.record(0, EventKind::Cluster, &format!("buggify: active sites [{}]", active.join(" ")));
    }
    let supervisor = Supervisor { config: config.clone(), cluster, plan, disks, timeline: timeline.clone() };
    let Finished {
        history,
        requests,
        simulated,
        load_report,
        usage,
        network_messages,
        chaos_usage,
        chaos_messages,
        replica_violations,
    } = runtime.block_on(supervisor.run());
    drop(runtime);
    let buggify = squall_engine::buggify::report();
    squall_engine::buggify::disable();
    drop(rocks_dir);

    let end_ns = simulated.as_nanos() as u64;
    let checkers = checkers::all(CheckSettings { heal_op_bound_ns: HEAL_OP_BOUND_MS * 1_000_000 });
    let mut violations = checkers::check_all(&checkers, &history);
    violations.extend(replica_violations);
    if let Some(report) = &load_report {
        timeline.record(end_ns, EventKind::Cluster, &report.summary_line());
        violations.extend(load_violations(report));
    }
    for site in buggify.iter().filter(|s| s.active) {
        timeline.record(
            end_ns,
            EventKind::Cluster,
            &format!("buggify: {} fired {} times", site.site.name(), site.fired),
        );
    }
    for violation in &violations {
        timeline.record(end_ns, EventKind::Cluster, &format!("VIOLATION {violation}"));
    }
    timeline.flush();
    let mut report_written = None;
    if let (Some(report), Some(dir)) = (&load_report, &config.report_dir) {
        let settings = serde_json::json!({
            "seed": config.seed,
            "zones": config.zones,
            "nodes_per_zone": config.nodes_per_zone,
            "partitions_per_table": config.partitions,
            "chaos_ms": chaos_ms,
            "storage": format!("{:?}", config.storage).to_lowercase(),
            "scenario": format!("{:?}", config.scenario),
            "fault_kinds_allowed": allowed.0.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "faults_injected": faults_injected,
            "checked_clients": config.clients,
            "simulated_ms": simulated.as_millis() as u64,
            "profile": &*config.profile,
            "network_messages": network_messages,
            "nodes": node_usage_json(&usage, &config.profile, simulated),
            // The chaos phase alone: the workload's offered rate, without set-up or heal.
            "chaos": {
                "warmup_ms": config.warmup.as_millis() as u64,
                "measured_ms": config.chaos.saturating_sub(config.warmup).as_millis() as u64,
                "network_messages": chaos_messages,
                "nodes": node_usage_json(&chaos_usage, &config.profile, config.chaos.saturating_sub(config.warmup)),
            },
            "trace_hash": format!("{:016x}", timeline.hash()),
        });
        if let Some(warning) = report.write(dir, settings)? {
            eprintln!("warning: {warning}");
        }
        report_written = Some(dir.clone());
    }
    // The speed line counts every request: the checked clients' and the workload's run phase.
    let workload_requests = load_report.as_ref().and_then(|r| r.run.as_ref()).map_or(0, |run| run.issued);
    Ok(RunReport {
        trace_hash: timeline.hash(),
        violations,
        faults_injected,
        requests: requests + workload_requests,
        simulated,
        report_written,
        usage,
        buggify,
    })
}

/// Each node's CPU and disk utilisation over the run, for the report.
fn node_usage_json(usage: &[Usage], profile: &Profile, simulated: Duration) -> serde_json::Value {
    let span_ns = simulated.as_nanos().max(1) as f64;
    let nodes: Vec<serde_json::Value> = usage
        .iter()
        .enumerate()
        .map(|(node, usage)| {
            serde_json::json!({
                "node": node,
                "cpu_busy_ms": usage.cpu_busy_ns as f64 / 1e6,
                "disk_busy_ms": usage.disk_busy_ns as f64 / 1e6,
                "cpu_utilisation": usage.cpu_busy_ns as f64 / (span_ns * f64::from(profile.cpu.cores)),
                "disk_utilisation": usage.disk_busy_ns as f64 / (span_ns * f64::from(profile.disk.queue_depth)),
                "disk_commands": usage.disk_commands,
                "syncs": usage.syncs,
                "network_sent_bytes": usage.network_sent_bytes,
                "network_received_bytes": usage.network_received_bytes,
                "network_utilisation": usage.network_utilisation(profile, span_ns),
            })
        })
        .collect();
    serde_json::Value::Array(nodes)
}

/// The violations a scenario load reports: a broken invariant, or an invariant that could not be
/// checked (set-up or the final reads failed with every fault healed).
fn load_violations(report: &LoadReport) -> Vec<Violation> {
    match &report.check {
        Ok(check) => check
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| Violation {
                checker: "invariants",
                key: None,
                message: format!("{}: {} ({})", report.name, c.name, c.detail),
            })
            .collect(),
        Err(error) => {
            vec![Violation { checker: "invariants", key: None, message: format!("{}: {error}", report.name) }]
        }
    }
}

/// What the simulation hands back to be checked and reported.
struct Finished {
    history: History,
    requests: u64,
    simulated: Duration,
    load_report: Option<LoadReport>,
    usage: Vec<Usage>,
    network_messages: u64,
    /// Each node's usage during the chaos phase alone, and the messages sent meanwhile.
    chaos_usage: Vec<Usage>,
    chaos_messages: u64,
    /// What the comparison of every partition's replicas found.
    replica_violations: Vec<Violation>,
}

struct Supervisor {
    config: RunConfig,
    cluster: ClusterSpec,
    plan: FaultPlan,
    disks: Vec<Arc<Disk>>,
    timeline: Timeline,
}

impl Supervisor {
    async fn run(&self) -> Finished {
        let handle = Handle::current();
        let shared = Shared {
            seed: self.config.seed,
            start: tokio::time::Instant::now(),
            timeline: self.timeline.clone(),
            history: Arc::default(),
            next_ver: Arc::new(AtomicU64::new(1)),
            requests: Arc::default(),
            net: SimNet::new(self.config.seed, self.config.profile.network.latencies()),
        };
        shared.event(&format!(
            "cluster: {} zones x {} nodes, {:?} storage, {} clients, scenario {:?}, chaos {} ms",
            self.config.zones,
            self.config.nodes_per_zone,
            self.config.storage,
            self.config.clients,
            self.config.scenario,
            self.config.chaos.as_millis()
        ));
        let kinds: Vec<&str> = self.plan.kinds.iter().map(|k| k.name()).collect();
        shared.event(&format!("nemesis: swarm kinds [{}], {} faults planned", kinds.join(" "), self.plan.faults.len()));
        for fault in &self.plan.faults {
            shared.event(&format!(
                "nemesis: plan #{} at +{} ms for {} ms: {}",
                fault.id, fault.start_ms, fault.duration_ms, fault.fault
            ));
        }

        // One modelled machine per node, kept across the node's restarts.
        let resources: Vec<NodeResources> = self
            .cluster
            .nodes
            .iter()
            .map(|spec| {
                NodeResources::new(
                    self.config.profile.clone(),
                    self.config.seed,
                    RESOURCE_STREAM_BASE + u64::from(spec.id),
                )
            })
            .collect();
        let nodes: Vec<NodeHandle> = self
            .cluster
            .nodes
            .iter()
            .map(|spec| {
                start_node(
                    &handle,
                    spec.clone(),
                    self.cluster.clone(),
                    self.disks[spec.id as usize].clone(),
                    resources[spec.id as usize].clone(),
                    Tables { partitions: self.config.partitions, quota: self.config.quota },
                    shared.clone(),
                )
            })
            .collect();
        let node_ids: Vec<NodeId> = nodes.iter().map(|n| n.id()).collect();

        let spec = match self.config.scenario {
            Scenario::HotKey => WorkloadSpec { keys: 1, ..WorkloadSpec::default() },
            _ => WorkloadSpec::default(),
        };
        let endpoints: Arc<Vec<String>> =
            Arc::new(self.cluster.nodes.iter().map(|n| format!("http://{}", n.api_addr())).collect());
        let client = |index: u32, dialer: &Dialer, chaos_end: tokio::time::Instant, heal_ops: u32| Client {
            index,
            dialer: dialer.clone(),
            entry: self.cluster.entry_node(index).id as usize,
            endpoints: endpoints.clone(),
            seed: self.config.seed,
            spec,
            chaos_end,
            heal_ops,
            shared: shared.clone(),
        };
        let client_hosts: Vec<(NodeHandle, Dialer)> = (0..self.config.clients)
            .map(|index| shared.client_host(&handle, &format!("client-{index}"), client_ip(index)))
            .collect();

        // Set-up, before any fault: the checked clients' table, then the workload's tables and
        // its load phase.
        shared.event("phase: set-up — tables created and loaded before any fault");
        let creator = client(0, &client_hosts[0].1, tokio::time::Instant::now(), 0);
        let _ = client_hosts[0].0.spawn(async move { creator.create_table(&creator.driver()).await }).await;
        let load = self.config.load.as_ref().map(|config| self.set_up_load(&handle, config, &shared));
        let loaded = match load {
            Some((host, api, setup)) => {
                let setup = setup.await.unwrap_or_else(|e| Err(format!("load host stopped: {e}")));
                Some((host, api, setup))
            }
            None => None,
        };

        let chaos_start = tokio::time::Instant::now();
        let chaos_end = chaos_start + self.config.chaos;
        // Utilisation is measured after the warm-up, as the workload's latencies are.
        let measured_from = Arc::new(Mutex::new(None::<(Vec<Usage>, u64)>));
        {
            let (measured_from, resources, net) = (measured_from.clone(), resources.clone(), shared.net.clone());
            let warmup = self.config.warmup;
            tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                let usage = resources.iter().map(NodeResources::usage).collect();
                *measured_from.lock().unwrap_or_else(|p| p.into_inner()) = Some((usage, net.stats().messages));
            });
        }
        shared.event("phase: chaos — faults start and heal on their schedule");
        let mut client_tasks = Vec::new();
        for (index, (host, dialer)) in client_hosts.iter().enumerate() {
            let client = client(index as u32, dialer, chaos_end, self.config.heal_ops);
            client_tasks.push(host.spawn(async move { client.run().await }));
        }
        let load_run = loaded.map(|(host, api, setup)| {
            let config = self.config.load.as_ref().expect("a load was set up");
            let settings = load::run_settings(
                &config.file,
                config.rate,
                self.config.chaos,
                self.config.warmup,
                self.config.seed,
                Duration::from_millis(REQUEST_TIMEOUT_MS),
            );
            let warmup = self.config.warmup;
            let task = setup.map(|(scenario, load_summary)| {
                let meter = Arc::new(load::CapacityMeter::default());
                let (api, settings) = (api.clone().metered(meter.clone()), settings.clone());
                let task = host.spawn(async move {
                    let run_start = tokio::time::Instant::now();
                    // Capacity is counted after the warm-up, as latencies are.
                    let at_warmup = {
                        let meter = meter.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(warmup).await;
                            meter.totals()
                        })
                    };
                    let phase = load::run(&api, scenario, &settings).await;
                    let (end, start) = (meter.totals(), at_warmup.await.unwrap_or((0.0, 0.0)));
                    let consumed = load::ConsumedCapacity {
                        read_units: end.0 - start.0,
                        write_units: end.1 - start.1,
                        measured_s: settings.duration().saturating_sub(warmup).as_secs_f64(),
                    };
                    (run_start, phase, consumed)
                });
                (task, load_summary)
            });
            (host, api, settings, task)
        });

        // Every client host, the load host among them, is on the client side of partitions.
        let mut client_ips: Vec<IpAddr> = (0..self.config.clients).map(|i| IpAddr::V4(client_ip(i))).collect();
        if load_run.is_some() {
            client_ips.push(IpAddr::V4(client_ip(self.config.clients + 1)));
        }
        let nemesis = Nemesis {
            handle: handle.clone(),
            cluster: self.cluster.clone(),
            node_ids,
            node_ips: self.cluster.nodes.iter().map(|n| IpAddr::V4(n.ip)).collect(),
            client_ips,
            disks: self.disks.clone(),
            shared: shared.clone(),
            base: chaos_start,
            state: Arc::default(),
            admin: shared.client_host(&handle, "admin", client_ip(self.config.clients + 2)),
        };
        nemesis.execute(&self.plan).await;
        tokio::time::sleep_until(chaos_end).await;
        let (usage_from, messages_from) = measured_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| (vec![Usage::default(); resources.len()], 0));
        let chaos_usage: Vec<Usage> =
            resources.iter().zip(&usage_from).map(|(node, start)| node.usage().since(start)).collect();
        let chaos_messages = shared.net.stats().messages.saturating_sub(messages_from);
        nemesis.heal_everything();
        shared.event("phase: heal — every fault healed; operations must succeed within the bound");

        for task in client_tasks {
            let _ = task.await;
        }
        let mut load_report = None;
        if let Some((host, api, settings, task)) = load_run {
            let config = self.config.load.as_ref().expect("a load was set up");
            let name = config.file.name().to_owned();
            let mut report = LoadReport {
                name,
                rate: config.rate,
                settings,
                load: None,
                run: None,
                check: Err("set-up failed".into()),
                windows: Vec::new(),
                consumed: None,
            };
            match task {
                Err(error) => report.check = Err(format!("set-up failed: {error}")),
                Ok((task, load_summary)) => {
                    report.load = Some(load_summary);
                    match task.await {
                        Err(error) => report.check = Err(format!("load host stopped: {error}")),
                        Ok((_, Err(error), _)) => report.check = Err(format!("run phase failed: {error}")),
                        Ok((run_start, Ok(phase), consumed)) => {
                            report.windows = fault_windows(&self.plan, chaos_start, run_start);
                            report.consumed = Some(consumed);
                            // Transactions whose coordinator timed out are resolved by the
                            // partitions' leaders after the transaction timeout; the invariant
                            // is read once they have been.
                            tokio::time::sleep(Duration::from_millis(
                                squall_engine::cluster::txn::TXN_TIMEOUT_MS + TXN_SETTLE_EXTRA_MS,
                            ))
                            .await;
                            shared.event("phase: final — checking the workload's invariant");
                            let checked = host
                                .spawn(async move {
                                    let check = load::check(&api, &phase.scenario).await;
                                    (phase, check)
                                })
                                .await;
                            match checked {
                                Ok((phase, check)) => {
                                    report.check = check;
                                    report.run = Some(phase);
                                }
                                Err(error) => report.check = Err(format!("load host stopped: {error}")),
                            }
                        }
                    }
                }
            }
            load_report = Some(report);
        }
        shared.event("phase: final — reading every key");
        let (checker_host, checker_dialer) = shared.client_host(&handle, "checker", client_ip(self.config.clients));
        let final_client = Client {
            index: self.config.clients,
            dialer: checker_dialer.clone(),
            entry: self.cluster.entry_node(self.config.clients).id as usize,
            endpoints: endpoints.clone(),
            seed: self.config.seed,
            spec,
            chaos_end,
            heal_ops: 0,
            shared: shared.clone(),
        };
        let _ = checker_host.spawn(async move { final_client.final_reads().await }).await;
        shared.event("phase: final — comparing every partition's replicas");
        let replica_violations = {
            let (endpoints, shared) = (endpoints.clone(), shared.clone());
            checker_host
                .spawn(async move { compare_replicas(&endpoints, &checker_dialer, &shared).await })
                .await
                .unwrap_or_else(|error| {
                    vec![Violation {
                        checker: checkers::replicas::NAME,
                        key: None,
                        message: format!("checker host stopped: {error}"),
                    }]
                })
        };
        let simulated = shared.start.elapsed();
        shared.event(&format!("done: {} requests", shared.requests.load(Ordering::Relaxed)));
        let ops = std::mem::take(&mut *shared.history.lock().unwrap_or_else(|p| p.into_inner()));
        Finished {
            history: History { ops },
            requests: shared.requests.load(Ordering::Relaxed),
            simulated,
            load_report,
            usage: resources.iter().map(NodeResources::usage).collect(),
            network_messages: shared.net.stats().messages,
            chaos_usage,
            chaos_messages,
            replica_violations,
        }
    }

    /// Creates the load host and starts the workload's set-up on it: its tables, then its load
    /// phase. Returns the host, the balancer its requests go through, and the set-up task.
    #[allow(clippy::type_complexity)]
    fn set_up_load(
        &self,
        handle: &Handle,
        config: &LoadConfig,
        shared: &Shared,
    ) -> (
        NodeHandle,
        Balancer,
        madsim::task::JoinHandle<
            Result<(squall_workloads::scenario::Scenario, squall_workloads::recorder::Summary), String>,
        >,
    ) {
        let (host, dialer) = shared.client_host(handle, "load", client_ip(self.config.clients + 1));
        let connections = load::connections_per_node(config.rate, self.cluster.nodes.len());
        let nodes = self
            .cluster
            .nodes
            .iter()
            .map(|node| {
                sim_client(format!("http://{}", node.api_addr()), REQUEST_TIMEOUT_MS, &dialer, Some(connections))
            })
            .collect();
        let sink_shared = shared.clone();
        let events: load::EventSink =
            Arc::new(move |text: &str| sink_shared.timeline.record(sink_shared.now_ns(), EventKind::Op, text));
        let api = Balancer::new(nodes, events);
        let scenario = config.file.build(self.config.seed);
        let (setup_api, setup_shared, name) = (api.clone(), shared.clone(), config.file.name().to_owned());
        let task = host.spawn(async move {
            let scenario = scenario.map_err(|e| e.to_string())?;
            load::set_up_tables(&setup_api, &scenario).await?;
            setup_shared.event(&format!("load: {name}: tables created; loading"));
            let (scenario, summary) = load::load(&setup_api, scenario).await?;
            let failed: u64 = summary.operations.values().map(|o| o.errors).sum();
            setup_shared.event(&format!("load: {name}: loaded ({failed} load operations failed)"));
            Ok((scenario, summary))
        });
        (host, api, task)
    }
}

/// The plan's fault windows in seconds since the workload's run phase started.
fn fault_windows(
    plan: &FaultPlan,
    chaos_start: tokio::time::Instant,
    run_start: tokio::time::Instant,
) -> Vec<squall_workloads::plot::Window> {
    let offset_s = run_start.saturating_duration_since(chaos_start).as_secs_f64();
    plan.faults
        .iter()
        .map(|fault| squall_workloads::plot::Window {
            start_s: (fault.start_ms as f64 / 1e3 - offset_s).max(0.0),
            end_s: (fault.end_ms() as f64 / 1e3 - offset_s).max(0.0),
            label: fault.fault.to_string(),
        })
        .filter(|window| window.end_s > window.start_s)
        .collect()
}

/// How every node lays out and limits tables.
#[derive(Clone, Copy, Debug)]
struct Tables {
    /// Partitions of every table.
    partitions: u64,
    /// The per-table quotas enforced.
    quota: squall_engine::capacity::Quota,
}

/// Creates node `spec`'s host; its init task (run again on every restart) opens the disk and
/// runs the engine's `node::run`.
fn start_node(
    handle: &Handle,
    spec: NodeSpec,
    cluster: ClusterSpec,
    disk: Arc<Disk>,
    resources: NodeResources,
    tables: Tables,
    shared: Shared,
) -> NodeHandle {
    let network = Network(Arc::new(shared.net.host(IpAddr::V4(spec.ip), Place::Zone(spec.zone))));
    handle
        .create_node()
        .name(format!("node-{}", spec.id))
        .ip(IpAddr::V4(spec.ip))
        .init(move || {
            let (spec, cluster, disk, shared) = (spec.clone(), cluster.clone(), disk.clone(), shared.clone());
            let network = network.clone();
            let resources = Resources(Arc::new(resources.clone()));
            async move {
                for attempt in 0..NODE_START_ATTEMPTS_MAX {
                    let (store, wiped) = match disk.open() {
                        Ok(opened) => opened,
                        Err(error) => {
                            // The error's text names real threads and times (RocksDB's lock
                            // holder), which must stay out of the hashed trace.
                            tracing::warn!(node = spec.id, attempt, %error, "open store failed");
                            shared.event(&format!("node {}: open store failed (attempt {attempt})", spec.id));
                            tokio::time::sleep(Duration::from_millis(NODE_START_RETRY_MS)).await;
                            continue;
                        }
                    };
                    let storage = StorageConfig::Provided(ProvidedStore(store));
                    let mut settings = cluster_settings(tables.partitions, Some(resources.clone()));
                    // A node whose disk was replaced rejoins rather than start as the voter it
                    // was; a store it wrote since (a restart during the rejoin) remembers that.
                    settings.rejoin = wiped;
                    if wiped {
                        shared.event(&format!("node {}: starts on an empty disk and rejoins", spec.id));
                    }
                    let config = node_config(&spec, &cluster, storage, shared.seed, settings);
                    let ready_shared = shared.clone();
                    let id = spec.id;
                    let options = node::NodeOptions {
                        quota: tables.quota,
                        network: network.clone(),
                        ..node::NodeOptions::default()
                    };
                    let result = node::run_with(
                        config,
                        options,
                        move |addr| ready_shared.event(&format!("node {id}: serving on {addr}")),
                        std::future::pending::<()>(),
                    )
                    .await;
                    if let Err(error) = result {
                        // As above: the error's text may name real threads and times.
                        tracing::warn!(node = spec.id, %error, "node stopped");
                        shared.event(&format!("node {}: stopped", spec.id));
                        tokio::time::sleep(Duration::from_millis(NODE_START_RETRY_MS)).await;
                    }
                }
                shared.event(&format!("node {}: gave up starting", spec.id));
            }
        })
        .build()
}

/// A client of `endpoint` on the host `dialer` dials from, each call bounded by `timeout_ms`:
/// a pool of `connections_max` connections, or the client's default.
fn sim_client(endpoint: String, timeout_ms: u64, dialer: &Dialer, connections_max: Option<usize>) -> DynamoClient {
    let mut config =
        ClientConfig::new(endpoint).with_request_timeout(Duration::from_millis(timeout_ms)).with_dialer(dialer.clone());
    if let Some(connections_max) = connections_max {
        config = config.with_connections_max(connections_max);
    }
    DynamoClient::new(config).expect("the simulated endpoint is a valid http://ip:port")
}

/// Asks every node for its replicas until each partition's replicas stand at one applied
/// index, then compares their digests (see `checkers::replicas`).
async fn compare_replicas(endpoints: &[String], dialer: &Dialer, shared: &Shared) -> Vec<Violation> {
    use checkers::replicas::{self, Verdict};
    let clients: Vec<DynamoClient> =
        endpoints.iter().map(|endpoint| sim_client(endpoint.clone(), REQUEST_TIMEOUT_MS, dialer, None)).collect();
    let started = tokio::time::Instant::now();
    let mut last = String::from("no node answered");
    while started.elapsed() < Duration::from_millis(REPLICAS_CONVERGE_MS) {
        let mut reports = Vec::new();
        let mut unanswered = None;
        for (index, client) in clients.iter().enumerate() {
            match client.call("SquallAdmin.DescribeReplicas", serde_json::json!({})).await {
                Ok(answer) => reports.extend(replicas::parse_reports(&answer)),
                Err(error) => unanswered = Some(format!("node at {} did not answer: {error}", endpoints[index])),
            }
        }
        match (unanswered, replicas::judge(&reports)) {
            (_, Verdict::Diverged(mut violations)) => {
                // Name the first differing records of the first diverged partition.
                if let Some(group) = replicas::diverged_groups(&violations).first().copied() {
                    let mut answers = Vec::new();
                    for client in &clients {
                        let request = serde_json::json!({"Group": group});
                        if let Ok(answer) = client.call("SquallAdmin.DescribeReplicaRecords", request).await {
                            answers.push(answer);
                        }
                    }
                    violations[0].message.push_str(&format!(" | {}", replicas::record_differences(&answers, 5)));
                }
                return violations;
            }
            (None, Verdict::Agree { partitions }) => {
                let compacted = reports.iter().filter(|r| r.log_first_index > 1).count();
                shared.event(&format!(
                    "replicas: every replica of {partitions} groups (partitions and metadata) agrees ({compacted} of {} replicas' logs compacted)",
                    reports.len()
                ));
                return Vec::new();
            }
            (Some(example), _) | (None, Verdict::Pending { example }) => last = example,
        }
        tokio::time::sleep(Duration::from_millis(REPLICAS_POLL_MS)).await;
    }
    vec![replicas::not_converged(&last, REPLICAS_CONVERGE_MS)]
}

/// One simulated client host.
struct Client {
    index: u32,
    /// How the client's host dials.
    dialer: Dialer,
    /// The node the client sends to first (the position in `endpoints`).
    entry: usize,
    /// Every node's HTTP endpoint: a node that cannot be connected to is failed over.
    endpoints: Arc<Vec<String>>,
    seed: u64,
    spec: WorkloadSpec,
    chaos_end: tokio::time::Instant,
    heal_ops: u32,
    shared: Shared,
}

/// First random stream of the nodes' modelled hardware (stream `RESOURCE_STREAM_BASE + id`).
const RESOURCE_STREAM_BASE: u64 = 400;

/// First random stream of the clients (stream `CLIENT_STREAM_BASE + index`).
const CLIENT_STREAM_BASE: u64 = 100;

impl Client {
    fn driver(&self) -> Balancer {
        let nodes = self
            .endpoints
            .iter()
            .map(|endpoint| {
                sim_client(endpoint.clone(), REQUEST_TIMEOUT_MS, &self.dialer, Some(CLIENT_CONNECTIONS_MAX))
            })
            .collect();
        let (shared, index) = (self.shared.clone(), self.index);
        let events: load::EventSink = Arc::new(move |text: &str| {
            let text = text.strip_prefix("load: ").unwrap_or(text);
            shared.timeline.record(shared.now_ns(), EventKind::Op, &format!("client {index}: {text}"))
        });
        Balancer::sticky(nodes, self.entry, events)
    }

    async fn run(&self) {
        let driver = self.driver();
        let mut rng = seeded_rng(self.seed, CLIENT_STREAM_BASE + u64::from(self.index));
        let mut seq = 0;
        while tokio::time::Instant::now() < self.chaos_end && seq < CHAOS_OPS_PER_CLIENT_MAX {
            tokio::time::sleep(Duration::from_micros(self.spec.think_us(&mut rng))).await;
            if tokio::time::Instant::now() >= self.chaos_end {
                break;
            }
            let (kind, key) = self.spec.choose(&mut rng);
            let ver = if kind.is_write() { self.shared.next_ver.fetch_add(1, Ordering::Relaxed) } else { 0 };
            self.attempt(&driver, Phase::Chaos, seq, 0, kind, key, ver).await;
            seq += 1;
        }
        tokio::time::sleep_until(self.chaos_end).await;
        for _ in 0..self.heal_ops {
            tokio::time::sleep(Duration::from_micros(self.spec.think_us(&mut rng))).await;
            let (kind, key) = self.spec.choose(&mut rng);
            let ver = if kind.is_write() { self.shared.next_ver.fetch_add(1, Ordering::Relaxed) } else { 0 };
            self.until_answered(&driver, Phase::Heal, seq, kind, key, ver).await;
            seq += 1;
        }
    }

    /// Creates the table, retrying until the entry node answers (the metadata group may not
    /// have a leader yet).
    async fn create_table(&self, driver: &Balancer) {
        for attempt in 0..load::SETUP_ATTEMPTS_MAX {
            match driver.call("CreateTable", workload::create_table()).await {
                Ok(_) => {
                    self.shared.event(&format!("client {}: table {} created", self.index, workload::TABLE));
                    return;
                }
                Err(error) if error.type_name() == Some("ResourceInUseException") => return,
                Err(error) => {
                    if attempt % 10 == 0 {
                        self.shared.event(&format!("client {}: create table: {error}", self.index));
                    }
                    tokio::time::sleep(Duration::from_millis(HEAL_RETRY_MS)).await;
                }
            }
        }
        self.shared.event(&format!("client {}: gave up creating table {}", self.index, workload::TABLE));
    }

    /// Reads every key once after the heal phase, retrying each read until it is answered.
    async fn final_reads(&self) {
        let driver = self.driver();
        for key in 0..self.spec.keys {
            self.until_answered(&driver, Phase::Final, u64::from(key), OpKind::Get, key, 0).await;
        }
    }

    /// Attempts an operation until it gets an answer or the heal bound passes.
    async fn until_answered(&self, driver: &Balancer, phase: Phase, seq: u64, kind: OpKind, key: u32, ver: u64) {
        let first = tokio::time::Instant::now();
        for attempt in 0u32.. {
            let outcome = self.attempt(driver, phase, seq, attempt, kind, key, ver).await;
            let out_of_time = first.elapsed() >= Duration::from_millis(HEAL_OP_BOUND_MS);
            // An unsent request is tried again: its router may come back within the bound.
            if outcome.is_definite_answer() || matches!(outcome, Outcome::Refused(_)) || out_of_time {
                return;
            }
            tokio::time::sleep(Duration::from_millis(HEAL_RETRY_MS)).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        driver: &Balancer,
        phase: Phase,
        seq: u64,
        attempt: u32,
        kind: OpKind,
        key: u32,
        ver: u64,
    ) -> Outcome {
        let (operation, body) = workload::request(kind, key, ver, self.index);
        let invoke_ns = self.shared.now_ns();
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = workload::outcome(kind, driver.call(operation, body).await);
        let complete_ns = self.shared.now_ns();
        let op = Op { client: self.index, seq, attempt, phase, kind, key, ver, invoke_ns, complete_ns, outcome };
        let outcome = op.outcome.clone();
        self.shared.record(op);
        outcome
    }
}

/// Counts of overlapping faults holding each node or link down.
#[derive(Default)]
struct HeldDown {
    crashed: BTreeMap<u32, u32>,
    paused: BTreeMap<u32, u32>,
    links: BTreeMap<(IpAddr, IpAddr), u32>,
    loss: BTreeMap<u32, u32>,
    latency: BTreeMap<u32, (u64, u64)>,
    /// Links each swizzle-clog fault (by id) holds clogged right now.
    swizzled: BTreeMap<u32, BTreeSet<(IpAddr, IpAddr)>>,
}

/// Executes a fault plan against the running cluster.
#[derive(Clone)]
struct Nemesis {
    handle: Handle,
    cluster: ClusterSpec,
    node_ids: Vec<NodeId>,
    /// Each node's address (links are between addresses), by node index.
    node_ips: Vec<IpAddr>,
    /// Every client host's address.
    client_ips: Vec<IpAddr>,
    disks: Vec<Arc<Disk>>,
    shared: Shared,
    /// Start of the chaos phase: fault times in the plan count from it.
    base: tokio::time::Instant,
    state: Arc<Mutex<HeldDown>>,
    /// The host administration actions (splits) are sent from, and its dialler.
    admin: (NodeHandle, Dialer),
}

impl Nemesis {
    /// Starts and heals every fault at its planned time; returns when the last has healed.
    async fn execute(&self, plan: &FaultPlan) {
        // (time, heal before start at the same instant, fault id)
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (index, fault) in plan.faults.iter().enumerate() {
            events.push((fault.start_ms, true, index));
            events.push((fault.end_ms(), false, index));
        }
        events.sort_by_key(|(time, starts, index)| (*time, *starts, *index));
        for (time_ms, starts, index) in events {
            tokio::time::sleep_until(self.base + Duration::from_millis(time_ms)).await;
            let fault = &plan.faults[index];
            if starts {
                self.shared.event(&format!("nemesis: start #{} ({} ms): {}", fault.id, fault.duration_ms, fault.fault));
                self.start(fault);
            } else {
                self.shared.event(&format!("nemesis: heal #{}: {}", fault.id, fault.fault));
                self.heal(fault);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeldDown> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, scheduled: &ScheduledFault) {
        match &scheduled.fault {
            Fault::Crash { node } => self.hold_crash(*node),
            Fault::Wipe { node } => {
                self.hold_crash(*node);
                self.spawn_wipe(scheduled.id, *node);
            }
            Fault::Pause { node } => self.hold_pause(*node),
            Fault::ZoneCrash { zone } => self.cluster.zone_nodes(*zone).into_iter().for_each(|n| self.hold_crash(n)),
            Fault::Disk { node, kind } => {
                self.disks[*node as usize].faults.set(disk_settings(*kind));
                if *kind == FaultKind::DiskSlow {
                    self.spawn_slow_disk(*node, scheduled.duration_ms);
                }
            }
            Fault::Loss { per_million } => {
                self.lock().loss.insert(scheduled.id, *per_million);
                self.apply_net_config();
            }
            Fault::Latency { min_ms, max_ms } => {
                self.lock().latency.insert(scheduled.id, (*min_ms, *max_ms));
                self.apply_net_config();
            }
            Fault::Swizzle { links, unclog_order } => self.spawn_swizzle(scheduled, links, unclog_order),
            Fault::SplitPartition { table_pick, partition_pick, via } => {
                self.spawn_split(scheduled.id, *table_pick, *partition_pick, *via)
            }
            Fault::MoveReplica { table_pick, partition_pick, replica_pick, via } => {
                self.spawn_move(scheduled.id, [*table_pick, *partition_pick, *replica_pick], *via)
            }
            network => self.links_of(network).into_iter().for_each(|link| self.hold_link(link)),
        }
    }

    fn heal(&self, scheduled: &ScheduledFault) {
        match &scheduled.fault {
            Fault::Crash { node } | Fault::Wipe { node } => self.release_crash(*node),
            Fault::Pause { node } => self.release_pause(*node),
            Fault::ZoneCrash { zone } => self.cluster.zone_nodes(*zone).into_iter().for_each(|n| self.release_crash(n)),
            Fault::Disk { node, kind } => {
                let disk = &self.disks[*node as usize];
                disk.faults.clear();
                if *kind == FaultKind::DiskRot {
                    let damaged = disk.faults.injected().write_rot;
                    self.shared.event(&format!("nemesis: node {node} has stored {damaged} damaged value(s) so far"));
                }
                // A failed sync poisons the store until the process restarts; so does the
                // operator here, unless another fault holds the node down anyway.
                if *kind == FaultKind::DiskSyncError && !self.lock().crashed.contains_key(node) {
                    self.shared.event(&format!("nemesis: restart node {node} to clear its poisoned store"));
                    self.hold_crash(*node);
                    self.release_crash(*node);
                }
            }
            Fault::Loss { .. } => {
                self.lock().loss.remove(&scheduled.id);
                self.apply_net_config();
            }
            Fault::Latency { .. } => {
                self.lock().latency.remove(&scheduled.id);
                self.apply_net_config();
            }
            // The swizzle task has normally unclogged everything by now; whatever it has not
            // is released here, and the task stops clogging once the fault is gone.
            Fault::Swizzle { .. } => {
                let left = self.lock().swizzled.remove(&scheduled.id).unwrap_or_default();
                left.into_iter().for_each(|link| self.release_link(link));
            }
            // A split or a move is done when it is done; nothing heals.
            Fault::SplitPartition { .. } | Fault::MoveReplica { .. } => {}
            network => self.links_of(network).into_iter().for_each(|link| self.release_link(link)),
        }
    }

    /// Heals whatever is still held down (every planned fault ends inside the chaos phase, so
    /// this is a safety net that makes the heal phase's promise true by construction).
    fn heal_everything(&self) {
        let (crashed, paused, links) = {
            let mut state = self.lock();
            state.loss.clear();
            state.latency.clear();
            state.swizzled.clear();
            (std::mem::take(&mut state.crashed), std::mem::take(&mut state.paused), std::mem::take(&mut state.links))
        };
        for node in crashed.keys() {
            self.shared.event(&format!("nemesis: final heal restarts node {node}"));
            self.handle.restart(self.node_ids[*node as usize]);
        }
        for node in paused.keys() {
            self.handle.resume(self.node_ids[*node as usize]);
        }
        for (src, dst) in links.keys() {
            self.shared.net.unclog_link(*src, *dst);
        }
        for disk in &self.disks {
            disk.faults.clear();
        }
        self.apply_net_config();
    }

    fn hold_crash(&self, node: u32) {
        let first = {
            let mut state = self.lock();
            let count = state.crashed.entry(node).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            self.handle.kill(self.node_ids[node as usize]);
            self.disks[node as usize].crash();
        }
    }

    fn release_crash(&self, node: u32) {
        let (last, paused) = {
            let mut state = self.lock();
            let last = release(&mut state.crashed, node);
            (last, state.paused.contains_key(&node))
        };
        if last {
            self.handle.restart(self.node_ids[node as usize]);
            if paused {
                self.handle.pause(self.node_ids[node as usize]);
            }
        }
    }

    fn hold_pause(&self, node: u32) {
        let first = {
            let mut state = self.lock();
            let count = state.paused.entry(node).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            self.handle.pause(self.node_ids[node as usize]);
        }
    }

    fn release_pause(&self, node: u32) {
        if release(&mut self.lock().paused, node) {
            self.handle.resume(self.node_ids[node as usize]);
        }
    }

    fn hold_link(&self, link: (IpAddr, IpAddr)) {
        let first = {
            let mut state = self.lock();
            let count = state.links.entry(link).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            self.shared.net.clog_link(link.0, link.1);
        }
    }

    fn release_link(&self, link: (IpAddr, IpAddr)) {
        if release(&mut self.lock().links, link) {
            self.shared.net.unclog_link(link.0, link.1);
        }
    }

    /// The directed links a network partition cuts.
    fn links_of(&self, fault: &Fault) -> Vec<(IpAddr, IpAddr)> {
        let all_hosts: Vec<IpAddr> = self.node_ips.iter().chain(&self.client_ips).copied().collect();
        let cut_off = |inside: &[IpAddr], inbound: bool, outbound: bool| {
            let mut links = Vec::new();
            for &a in inside {
                for &b in all_hosts.iter().filter(|b| !inside.contains(b)) {
                    if outbound {
                        links.push((a, b));
                    }
                    if inbound {
                        links.push((b, a));
                    }
                }
            }
            links
        };
        match fault {
            Fault::ZoneCut { zone, direction } => {
                let inside: Vec<IpAddr> =
                    self.cluster.zone_nodes(*zone).into_iter().map(|n| self.node_ips[n as usize]).collect();
                let (inbound, outbound) = match direction {
                    CutDirection::Both => (true, true),
                    CutDirection::Inbound => (true, false),
                    CutDirection::Outbound => (false, true),
                };
                cut_off(&inside, inbound, outbound)
            }
            Fault::Isolate { node } => cut_off(&[self.node_ips[*node as usize]], true, true),
            Fault::Halves { nodes_side, clients_side } => {
                let side: Vec<IpAddr> = self
                    .node_ips
                    .iter()
                    .zip(nodes_side)
                    .chain(self.client_ips.iter().zip(clients_side))
                    .filter(|(_, side)| **side)
                    .map(|(id, _)| *id)
                    .collect();
                cut_off(&side, true, true)
            }
            _ => Vec::new(),
        }
    }

    /// Sets the network configuration to the base with every active loss and latency fault.
    fn apply_net_config(&self) {
        let (loss, latency) = {
            let state = self.lock();
            let loss = state.loss.values().copied().max().unwrap_or(0);
            let latency = state.latency.values().copied().fold(None, |widest: Option<(u64, u64)>, (lo, hi)| {
                Some(widest.map_or((lo, hi), |(a, b)| (a.max(lo), b.max(hi))))
            });
            (loss, latency)
        };
        let net = &self.shared.net;
        net.set_loss_per_million(loss);
        net.set_spike_us(latency.map(|(lo, hi)| (lo * 1_000, hi.max(lo + 1) * 1_000)));
    }

    /// Clogs the fault's links one at a time over its first half, then unclogs them in the
    /// drawn order over its second half, one step apart.
    fn spawn_swizzle(&self, scheduled: &ScheduledFault, links: &[(u32, u32)], unclog_order: &[u32]) {
        if links.is_empty() {
            return;
        }
        let id = scheduled.id;
        self.lock().swizzled.insert(id, BTreeSet::new());
        let step = Duration::from_millis(scheduled.duration_ms / 2 / links.len() as u64);
        // Each link as the timeline names it (node indexes) and as the network knows it.
        let clogs: Vec<((u32, u32), (IpAddr, IpAddr))> =
            links.iter().map(|&(a, b)| ((a, b), (self.node_ips[a as usize], self.node_ips[b as usize]))).collect();
        let unclogs: Vec<((u32, u32), (IpAddr, IpAddr))> = unclog_order.iter().map(|i| clogs[*i as usize]).collect();
        let half = Duration::from_millis(scheduled.duration_ms / 2);
        let nemesis = self.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for (i, ((a, b), link)) in clogs.into_iter().enumerate() {
                tokio::time::sleep_until(start + step * i as u32).await;
                let newly = match nemesis.lock().swizzled.get_mut(&id) {
                    Some(held) => held.insert(link),
                    None => return,
                };
                if newly {
                    nemesis.shared.event(&format!("nemesis: swizzle #{id} clogs {a}->{b}"));
                    nemesis.hold_link(link);
                }
            }
            for (i, ((a, b), link)) in unclogs.into_iter().enumerate() {
                tokio::time::sleep_until(start + half + step * i as u32).await;
                let held = match nemesis.lock().swizzled.get_mut(&id) {
                    Some(held) => held.remove(&link),
                    None => return,
                };
                if held {
                    nemesis.shared.event(&format!("nemesis: swizzle #{id} unclogs {a}->{b}"));
                    nemesis.release_link(link);
                }
            }
        });
    }

    /// While a slow-disk fault lasts, collects the node's slow-operation debt and pauses the
    /// node for that long: the store is synchronous, so a slow disk stalls the node.
    /// Replaces the crashed node's disk by an empty one for its restart, unless some replica is
    /// still rejoining after an earlier disk loss (or a node cannot say): then the fault stays a
    /// crash. A group takes a rejoining replica back by removing it and adding it again, so for
    /// a while it has two voters; losing a second one's disk then loses the group's quorum for
    /// good, which is two disk losses at once, not the one this fault stands for. The plan
    /// spaces disk losses in time; this makes sure the earlier one was repaired.
    fn spawn_wipe(&self, id: u32, node: u32) {
        let endpoints: Vec<(u32, String)> = self
            .cluster
            .nodes
            .iter()
            .filter(|n| n.id != node)
            .map(|n| (n.id, format!("http://{}", n.api_addr())))
            .collect();
        let (nemesis, dialer) = (self.clone(), self.admin.1.clone());
        self.admin.0.spawn(async move {
            let asks: Vec<_> = endpoints
                .into_iter()
                .map(|(peer, endpoint)| {
                    let client = sim_client(endpoint, WIPE_CHECK_TIMEOUT_MS, &dialer, None);
                    tokio::spawn(async move {
                        let answer = client.call("SquallAdmin.DescribeReplicas", serde_json::json!({})).await;
                        let rejoining = answer.map(|a| {
                            a["Replicas"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|r| r["rejoining"] == serde_json::json!(true))
                        });
                        (peer, rejoining)
                    })
                })
                .collect();
            let mut blocking = Vec::new();
            for ask in asks {
                match ask.await {
                    Ok((_, Ok(false))) => {}
                    Ok((peer, Ok(true))) => blocking.push(format!("{peer} rejoining")),
                    Ok((peer, Err(_))) => blocking.push(format!("{peer} silent")),
                    Err(_) => blocking.push("a check stopped".to_string()),
                }
            }
            let crashed = nemesis.lock().crashed.contains_key(&node);
            if blocking.is_empty() && crashed {
                nemesis.disks[node as usize].wiped.store(true, Ordering::Relaxed);
                nemesis.shared.event(&format!("nemesis: #{id} replaces node {node}'s disk by an empty one"));
            } else if !crashed {
                nemesis.shared.event(&format!("nemesis: #{id} keeps node {node}'s disk: it restarted first"));
            } else {
                nemesis.shared.event(&format!(
                    "nemesis: #{id} keeps node {node}'s disk (a crash only): nodes [{}]",
                    blocking.join(", ")
                ));
            }
        });
    }

    /// Asks node `via` for a split from the admin host: picks a table and one of its partitions
    /// as the cluster lists them now, and logs what came of it (a refusal, for example a
    /// partition with a single key, is an answer like any other).
    fn spawn_split(&self, id: u32, table_pick: u32, partition_pick: u32, via: u32) {
        let endpoint = format!("http://{}", self.cluster.nodes[via as usize].api_addr());
        let shared = self.shared.clone();
        let dialer = self.admin.1.clone();
        self.admin.0.spawn(async move {
            let client = sim_client(endpoint, SPLIT_TIMEOUT_MS, &dialer, None);
            let outcome = async {
                let (name, partition) = pick_partition(&client, table_pick, partition_pick).await?;
                let partition = partition["PartitionId"].as_u64().ok_or("no partition id")?;
                let request = serde_json::json!({"TableName": name, "PartitionId": partition});
                let answer = client.call("SquallAdmin.SplitPartition", request).await.map_err(|e| e.to_string())?;
                let children: Vec<String> = answer["Children"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_u64().map(|c| format!("{c:#x}")))
                    .collect();
                Ok::<String, String>(format!(
                    "table {name}: partition {partition:#x} split into {}",
                    children.join(" ")
                ))
            }
            .await;
            match outcome {
                Ok(done) => shared.event(&format!("nemesis: #{id} {done}")),
                Err(error) => shared.event(&format!("nemesis: #{id} split refused or failed: {error}")),
            }
        });
    }

    /// Asks node `via` to move a replica (see `Fault::MoveReplica`); `picks` are the table,
    /// partition and replica picks.
    fn spawn_move(&self, id: u32, picks: [u32; 3], via: u32) {
        let endpoint = format!("http://{}", self.cluster.nodes[via as usize].api_addr());
        let shared = self.shared.clone();
        // Engine node ids are the simulator's plus one.
        let zones: Vec<(u64, u32)> = self.cluster.nodes.iter().map(|n| (u64::from(n.id) + 1, n.zone)).collect();
        let dialer = self.admin.1.clone();
        self.admin.0.spawn(async move {
            let client = sim_client(endpoint, MOVE_TIMEOUT_MS, &dialer, None);
            let outcome = async {
                let (name, partition) = pick_partition(&client, picks[0], picks[1]).await?;
                let id_of = partition["PartitionId"].as_u64().ok_or("no partition id")?;
                let replicas: Vec<u64> =
                    partition["Replicas"].as_array().into_iter().flatten().filter_map(|r| r.as_u64()).collect();
                let from = *replicas.get(picks[2] as usize % replicas.len().max(1)).ok_or("no replicas")?;
                let zone_of = |node: u64| zones.iter().find(|(n, _)| *n == node).map(|(_, z)| *z);
                let to = zones
                    .iter()
                    .find(|(n, z)| Some(*z) == zone_of(from) && !replicas.contains(n))
                    .map(|(n, _)| *n)
                    .ok_or("no free node in the replica's zone")?;
                let request =
                    serde_json::json!({"TableName": name, "PartitionId": id_of, "FromNode": from, "ToNode": to});
                client.call("SquallAdmin.MoveReplica", request).await.map_err(|e| e.to_string())?;
                Ok::<String, String>(format!(
                    "table {name}: partition {id_of:#x} replica moved from node {} to node {}",
                    from - 1,
                    to - 1
                ))
            }
            .await;
            match outcome {
                Ok(done) => shared.event(&format!("nemesis: #{id} {done}")),
                Err(error) => shared.event(&format!("nemesis: #{id} move refused or failed: {error}")),
            }
        });
    }

    fn spawn_slow_disk(&self, node: u32, duration_ms: u64) {
        let nemesis = self.clone();
        let until = tokio::time::Instant::now() + Duration::from_millis(duration_ms);
        tokio::spawn(async move {
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(SLOW_DISK_POLL_MS)).await;
                let delay = nemesis.disks[node as usize].faults.take_delay();
                if !delay.is_zero() {
                    nemesis.hold_pause(node);
                    tokio::time::sleep(delay).await;
                    nemesis.release_pause(node);
                }
            }
        });
    }
}

/// Of the cluster's tables (by name) the one at `table_pick` modulo their count, and of its
/// partitions (as `DescribePartitions` lists them) the one at `partition_pick` modulo theirs.
async fn pick_partition(
    client: &DynamoClient,
    table_pick: u32,
    partition_pick: u32,
) -> Result<(serde_json::Value, serde_json::Value), String> {
    let tables = client.call("ListTables", serde_json::json!({})).await.map_err(|e| e.to_string())?;
    let names = tables["TableNames"].as_array().cloned().unwrap_or_default();
    let name = names.get(table_pick as usize % names.len().max(1)).cloned().ok_or("no tables")?;
    let map = client
        .call("SquallAdmin.DescribePartitions", serde_json::json!({"TableName": name}))
        .await
        .map_err(|e| e.to_string())?;
    let partitions = map["Partitions"].as_array().cloned().unwrap_or_default();
    let partition =
        partitions.get(partition_pick as usize % partitions.len().max(1)).cloned().ok_or("no partitions")?;
    Ok((name, partition))
}

/// Decrements a hold count; true when it reached zero (and was removed).
fn release<K: Ord + Copy>(counts: &mut BTreeMap<K, u32>, key: K) -> bool {
    match counts.get_mut(&key) {
        Some(count) if *count > 1 => {
            *count -= 1;
            false
        }
        Some(_) => {
            counts.remove(&key);
            true
        }
        None => false,
    }
}

/// The store faults a disk fault kind switches on.
fn disk_settings(kind: FaultKind) -> FaultSettings {
    use squall_engine::storage::faulty::PER_MILLION;
    let off = FaultSettings::default();
    match kind {
        FaultKind::DiskWriteError => FaultSettings { write_eio_per_million: PER_MILLION / 5, ..off },
        FaultKind::DiskSyncError => FaultSettings { sync_eio_per_million: PER_MILLION / 10, ..off },
        // Items only (key prefix 0x01): they carry a CRC the engine must check.
        FaultKind::DiskCorrupt => {
            FaultSettings { read_corrupt_per_million: PER_MILLION / 5, corrupt_key_prefix: vec![0x01], ..off }
        }
        // Damage that stays after the fault heals: the scrubber must find it and the replica
        // be rebuilt, or the replicas' digests differ at the end.
        FaultKind::DiskRot => {
            FaultSettings { write_rot_per_million: PER_MILLION / 20, corrupt_key_prefix: vec![0x01], ..off }
        }
        FaultKind::DiskSlow => FaultSettings { slow_per_million: PER_MILLION / 4, slow_delay_us: 50_000, ..off },
        FaultKind::DiskFull => FaultSettings { full: true, ..off },
        _ => off,
    }
}

/// A fresh directory for a simulated run's RocksDB stores: under `SQUALL_SIM_ROCKSDB_DIR` when
/// set, else under `/dev/shm` where one can be made there, else in the system's temporary
/// directory.
///
/// The simulator models durability itself (power failures, lost unsynced writes), so the host's
/// fsyncs buy nothing; on a memory file system they cost nothing either, where on a disk each
/// one waits for the device and, with thousands per simulated second, dominates the wall time.
pub fn rocksdb_work_dir() -> std::io::Result<tempfile::TempDir> {
    let builder = || {
        let mut builder = tempfile::Builder::new();
        builder.prefix("squall-sim-");
        builder
    };
    if let Some(dir) = std::env::var_os("SQUALL_SIM_ROCKSDB_DIR") {
        return builder().tempdir_in(dir);
    }
    builder().tempdir_in("/dev/shm").or_else(|_| builder().tempdir())
}
