//! The scenario load of a run: one of the workloads crate's scenarios (a YCSB workload, the order
//! system, sessions, feed, bank, or a scenario file) offered to the cluster by a load host, the
//! same code `squall-load` runs against real endpoints.
//!
//! The load host creates the scenario's tables and loads them in the set-up phase, before any
//! fault; offers the run phase as an open loop at a fixed simulated rate for the whole chaos
//! phase, so the latency histograms show what users would have seen while faults came and went;
//! and checks the scenario's invariant against the cluster's contents after the heal. Its
//! requests go through a [`Balancer`] that spreads them over every node's router, as a load
//! balancer in front of a cluster does.
//!
//! Everything here reads time only through `tokio::time` and draws randomness only from the
//! seed, so under the simulator it is as deterministic as the rest of the run.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use squall_workloads::api::DynamoApi;
use squall_workloads::driver::{DriverError, DynamoClient};
use squall_workloads::keygen::{seeded_rng, uniform_below};
use squall_workloads::op::{create_tables, SetupError};
use squall_workloads::plot::Window;
use squall_workloads::recorder::{Recorder, Summary};
use squall_workloads::report;
use squall_workloads::runner::{self, Arrivals, LoopMode, Progress, RateSegment, RunSettings};
use squall_workloads::scenario::file::ScenarioFile;
use squall_workloads::scenario::{CheckReport, Scenario};

/// Open-loop arrivals per simulated second unless `--rate` says otherwise.
pub const RATE_DEFAULT: f64 = 200.0;
/// Most scenario operations in flight at once; later arrivals wait, and the wait counts in their
/// latency (coordinated-omission correction). Enough for 100,000 operations per second at 20 ms
/// each, so that the load host is not what a capacity plan measures.
pub const IN_FLIGHT_MAX: usize = 2048;
/// Closed-loop clients of the load phase.
pub const LOAD_CLIENTS: usize = 16;
/// Longest the load phase may take, simulated.
pub const LOAD_DURATION_MAX: Duration = Duration::from_secs(600);
/// Attempts to create the scenario's tables in the set-up phase.
pub const SETUP_ATTEMPTS_MAX: u32 = 100;
/// Attempts of the invariant check after the heal (it only reads, so retrying is safe).
pub const CHECK_ATTEMPTS_MAX: u32 = 20;
/// Pause between set-up or check attempts.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Fewest connections the load host keeps to each node: each carries one request at a time, so
/// this bounds the rate one node's router can be offered (64 connections at 4 ms: 16,000 per
/// second). Higher rates get more (see [`connections_per_node`]).
pub const CONNECTIONS_PER_NODE_MIN: usize = 64;
/// Time per request the load host's connections allow for at the offered rate: as for
/// [`IN_FLIGHT_MAX`], so that the load host is not what a capacity plan measures.
pub const CONNECTION_LATENCY_BUDGET_S: f64 = 0.02;

/// Connections the load host keeps to each of `nodes` nodes for `rate` operations per second:
/// enough that every request may take [`CONNECTION_LATENCY_BUDGET_S`] with every node up, and
/// two thirds of that with a zone of three down, before requests wait for a connection.
pub fn connections_per_node(rate: f64, nodes: usize) -> usize {
    let needed = (rate * CONNECTION_LATENCY_BUDGET_S / nodes.max(1) as f64).ceil();
    if needed.is_finite() && needed > CONNECTIONS_PER_NODE_MIN as f64 {
        needed as usize
    } else {
        CONNECTIONS_PER_NODE_MIN
    }
}
/// RNG stream of the swarm scenario's choice of workload.
const STREAM_WORKLOAD_CHOICE: u64 = 300;

/// Workloads the swarm scenario draws from.
pub const SWARM_WORKLOADS: [&str; 6] = ["ycsb-a", "ycsb-b", "orders", "sessions", "feed", "bank"];

/// The scenario load of a run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The scenario, built in or from a file.
    pub file: ScenarioFile,
    /// Where the file came from (a built-in name or a path), for replay commands.
    pub source: String,
    /// Open-loop arrivals per simulated second during the chaos phase.
    pub rate: f64,
}

impl LoadConfig {
    /// A built-in scenario name or a scenario file path, at `rate` operations per second.
    pub fn resolve(source: &str, rate: f64) -> anyhow::Result<LoadConfig> {
        use anyhow::Context as _;
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "the load rate must be above 0, not {rate}");
        let path = Path::new(source);
        let file = if source.ends_with(".toml") || path.is_file() {
            let text = std::fs::read_to_string(path).with_context(|| format!("read scenario file {source}"))?;
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            ScenarioFile::parse(&text, &name).with_context(|| format!("scenario file {source}"))?
        } else {
            ScenarioFile::builtin(source)?
        };
        Ok(LoadConfig { file, source: source.to_owned(), rate })
    }
}

/// The swarm scenario's workload for `seed`: drawn from the seed like its fault kinds.
pub fn swarm_workload(seed: u64) -> &'static str {
    let mut rng = seeded_rng(seed, STREAM_WORKLOAD_CHOICE);
    SWARM_WORKLOADS[uniform_below(&mut rng, SWARM_WORKLOADS.len() as u64) as usize]
}

/// Receives one line per event the load produces, stamped by the receiver with simulated time.
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Spreads calls over every node's router in turn, as a load balancer in front of the cluster
/// would. A call whose connection could not even be opened (nothing was sent, so trying again
/// cannot apply it twice) goes to the next node; every other answer, including a timeout or a
/// connection lost mid-request, is the call's answer.
///
/// A node that could not be connected to is left out of the rotation for
/// [`UNREACHABLE_HOLD`], as a load balancer's health check takes a dead node out of service,
/// rather than costing every call that comes to its turn a connection timeout.
///
/// A sticky balancer keeps sending to one node and moves to the next only when that node
/// cannot be connected to, as a client configured with one endpoint and fallbacks does.
#[derive(Clone)]
pub struct Balancer {
    nodes: Arc<Vec<DynamoClient>>,
    next: Arc<AtomicUsize>,
    sticky: bool,
    events: EventSink,
    meter: Option<Arc<CapacityMeter>>,
    /// Per node, until when it is out of the rotation after a failed connection.
    unreachable_until: Arc<Mutex<Vec<Option<tokio::time::Instant>>>>,
}

/// How long a node that refused a connection stays out of a round-robin balancer's rotation
/// before a call tries it again (a load balancer's health check interval).
pub const UNREACHABLE_HOLD: Duration = Duration::from_secs(2);

/// Read and write capacity units the requests through a balancer consumed, as the service
/// reported them (`ReturnConsumedCapacity: TOTAL`, asked for on every request that takes it):
/// the equivalent provisioned capacity of a workload.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    read_milliunits: AtomicU64,
    write_milliunits: AtomicU64,
}

/// Operations that report read capacity.
const READ_OPERATIONS: [&str; 5] = ["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"];
/// Operations that report write capacity.
const WRITE_OPERATIONS: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"];

impl CapacityMeter {
    /// Asks for the consumed capacity in `body` when `operation` reports it and the caller did
    /// not ask already.
    pub fn ask(operation: &str, body: &mut Value) {
        if READ_OPERATIONS.contains(&operation) || WRITE_OPERATIONS.contains(&operation) {
            if let Some(fields) = body.as_object_mut() {
                fields.entry("ReturnConsumedCapacity").or_insert_with(|| Value::from("TOTAL"));
            }
        }
    }

    /// Adds the capacity `response` to `operation` reports (one `ConsumedCapacity` object, or a
    /// list of them for batches and transactions).
    pub fn record(&self, operation: &str, response: &Value) {
        let units: f64 = match &response["ConsumedCapacity"] {
            Value::Array(list) => list.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum(),
            single => single["CapacityUnits"].as_f64().unwrap_or(0.0),
        };
        let milliunits = (units * 1000.0).round().max(0.0) as u64;
        if READ_OPERATIONS.contains(&operation) {
            self.read_milliunits.fetch_add(milliunits, Ordering::Relaxed);
        } else if WRITE_OPERATIONS.contains(&operation) {
            self.write_milliunits.fetch_add(milliunits, Ordering::Relaxed);
        }
    }

    /// Read and write units consumed so far.
    pub fn totals(&self) -> (f64, f64) {
        (
            self.read_milliunits.load(Ordering::Relaxed) as f64 / 1000.0,
            self.write_milliunits.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }
}

impl Balancer {
    /// A round-robin balancer over one client per node.
    pub fn new(nodes: Vec<DynamoClient>, events: EventSink) -> Balancer {
        assert!(!nodes.is_empty(), "a balancer needs at least one node");
        let unreachable_until = Arc::new(Mutex::new(vec![None; nodes.len()]));
        Balancer { nodes: Arc::new(nodes), next: Arc::default(), sticky: false, events, meter: None, unreachable_until }
    }

    /// The same balancer, adding up the capacity its requests consume in `meter`.
    pub fn metered(mut self, meter: Arc<CapacityMeter>) -> Balancer {
        self.meter = Some(meter);
        self
    }

    /// A sticky balancer over one client per node, starting at node `first`.
    pub fn sticky(nodes: Vec<DynamoClient>, first: usize, events: EventSink) -> Balancer {
        assert!(!nodes.is_empty(), "a balancer needs at least one node");
        let unreachable_until = Arc::new(Mutex::new(vec![None; nodes.len()]));
        let next = Arc::new(AtomicUsize::new(first));
        Balancer { nodes: Arc::new(nodes), next, sticky: true, events, meter: None, unreachable_until }
    }

    /// Whether a round-robin balancer keeps `node` out of its rotation now.
    fn held_out(&self, node: usize) -> bool {
        let until = self.unreachable_until.lock().unwrap_or_else(|p| p.into_inner())[node];
        !self.sticky && until.is_some_and(|until| tokio::time::Instant::now() < until)
    }

    /// Records whether `node` could be connected to.
    fn note_reachable(&self, node: usize, reachable: bool) {
        let mut until = self.unreachable_until.lock().unwrap_or_else(|p| p.into_inner());
        until[node] = (!reachable).then(|| tokio::time::Instant::now() + UNREACHABLE_HOLD);
    }
}

impl DynamoApi for Balancer {
    async fn call(&self, operation: &str, mut body: Value) -> Result<Value, DriverError> {
        if self.meter.is_some() {
            CapacityMeter::ask(operation, &mut body);
        }
        let count = self.nodes.len();
        let first = if self.sticky {
            self.next.load(Ordering::Relaxed)
        } else {
            // Turns of nodes out of the rotation pass to the next turn rather than to a
            // fallback, so the nodes in service share the calls evenly.
            let mut turn = self.next.fetch_add(1, Ordering::Relaxed);
            for _ in 1..count {
                if !self.held_out(turn % count) {
                    break;
                }
                turn = self.next.fetch_add(1, Ordering::Relaxed);
            }
            turn
        };
        // A round-robin balancer's fallbacks start where the rotation is now rather than at the
        // next node, so an unreachable node's calls spread over every other node instead of all
        // landing on its neighbour (which, with a zone down, doubled or tripled one node's load).
        // The rotation is only consulted once a fallback is needed, so calls that reach their
        // node keep the rotation's strict turns.
        let mut fallbacks: Option<Vec<usize>> = None;
        let mut result = Err(DriverError::Config("no node tried".into()));
        for attempt in 0..count {
            let node = if attempt == 0 {
                first % count
            } else {
                let others = fallbacks.get_or_insert_with(|| {
                    let start = if self.sticky { first + 1 } else { self.next.fetch_add(1, Ordering::Relaxed) };
                    // Every node but the first, from `start` on.
                    (0..count).map(|o| (start + o) % count).filter(|n| *n != first % count).collect()
                });
                others[attempt - 1]
            };
            // A fallback out of the rotation is skipped: when every node is, only the turn's
            // node is tried.
            if attempt > 0 && self.held_out(node) {
                continue;
            }
            result = self.nodes[node].call(operation, body.clone()).await;
            let answer = match &result {
                Ok(_) => "ok".to_owned(),
                Err(DriverError::Service { type_name, .. }) => type_name.clone(),
                Err(DriverError::Timeout { .. }) => "timeout".to_owned(),
                Err(DriverError::Connect { .. }) => "connect failed".to_owned(),
                Err(_) => "connection lost".to_owned(),
            };
            let connected = !matches!(result, Err(DriverError::Connect { .. }));
            self.note_reachable(node, connected);
            // A sticky balancer's callers record their own operations; only a failover is news.
            if !self.sticky {
                (self.events)(&format!("load: {operation} via node {node}: {answer}"));
            } else if connected && node != first % count {
                (self.events)(&format!("load: node {} unreachable; now via node {node}", first % count));
                self.next.store(node, Ordering::Relaxed);
            }
            if connected {
                break;
            }
        }
        if let (Some(meter), Ok(response)) = (&self.meter, &result) {
            meter.record(operation, response);
        }
        result
    }
}

/// Creates the scenario's tables, retrying while the cluster is still starting (no faults run
/// during set-up, so every attempt after the metadata group has a leader succeeds).
pub async fn set_up_tables(api: &Balancer, scenario: &Scenario) -> Result<(), String> {
    for table in scenario.tables() {
        let mut last = String::new();
        let mut created = false;
        for _ in 0..SETUP_ATTEMPTS_MAX {
            match create_tables(api, std::slice::from_ref(&table), false).await {
                // An earlier attempt whose answer was lost may have created it.
                Ok(()) | Err(SetupError::Exists(_)) => {
                    created = true;
                    break;
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        if !created {
            return Err(format!("table {} not created after {SETUP_ATTEMPTS_MAX} attempts: {last}", table.name));
        }
        // A new table's partitions elect their leaders after it is created; a strongly
        // consistent scan goes through every partition's leader, so once one succeeds the
        // load phase meets no partition without a leader.
        let probe = json!({"TableName": table.name, "ConsistentRead": true, "Limit": 1});
        let mut ready = false;
        for _ in 0..SETUP_ATTEMPTS_MAX {
            match api.call("Scan", probe.clone()).await {
                Ok(_) => {
                    ready = true;
                    break;
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        if !ready {
            return Err(format!("table {} not readable after {SETUP_ATTEMPTS_MAX} attempts: {last}", table.name));
        }
    }
    Ok(())
}

/// Runs the load phase: every item the scenario loads, by a closed loop of [`LOAD_CLIENTS`].
pub async fn load(api: &Balancer, scenario: Scenario) -> Result<(Scenario, Summary), String> {
    let report = runner::load(api.clone(), scenario, LOAD_CLIENTS, LOAD_DURATION_MAX, Arc::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok((report.workload, report.recorder.summary(report.end_us)))
}

/// The run phase's settings: an open loop at `rate` for `duration`, arrivals spaced as the
/// scenario file says (Poisson by default: users do not arrive in lock step).
pub fn run_settings(
    file: &ScenarioFile,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    seed: u64,
    timeout: Duration,
) -> RunSettings {
    RunSettings {
        mode: LoopMode::Open {
            arrivals: file.run.arrivals.unwrap_or(Arrivals::Poisson),
            schedule: vec![RateSegment::constant(duration, rate)],
            in_flight_max: IN_FLIGHT_MAX,
        },
        operations_max: None,
        warmup,
        seed,
        drain_timeout: timeout * 2,
    }
}

/// The run phase's outcome.
pub struct RunPhase {
    /// The scenario with every acknowledgement it was given.
    pub scenario: Scenario,
    /// Latencies from each operation's intended start.
    pub recorder: Recorder,
    /// Latencies from each request's send time.
    pub uncorrected: Recorder,
    /// End of the run phase, microseconds after its start.
    pub end_us: u64,
    /// Operations issued.
    pub issued: u64,
    /// Operations still unanswered at the drain deadline.
    pub abandoned: u64,
}

/// Offers the run phase.
pub async fn run(api: &Balancer, scenario: Scenario, settings: &RunSettings) -> Result<RunPhase, String> {
    let report =
        runner::run(api.clone(), scenario, settings, Arc::new(Progress::default())).await.map_err(|e| e.to_string())?;
    Ok(RunPhase {
        scenario: report.workload,
        recorder: report.recorder,
        uncorrected: report.uncorrected,
        end_us: report.end_us,
        issued: report.issued,
        abandoned: report.abandoned,
    })
}

/// Checks the scenario's invariant, retrying reads that fail (after the heal every node is back,
/// but a first request may still meet a link that is reconnecting).
pub async fn check(api: &Balancer, scenario: &Scenario) -> Result<CheckReport, String> {
    let mut last = String::new();
    for _ in 0..CHECK_ATTEMPTS_MAX {
        match scenario.check(api).await {
            Ok(report) => return Ok(report),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    Err(format!("the cluster's contents could not be read after {CHECK_ATTEMPTS_MAX} attempts: {last}"))
}

/// Everything the load of a run produced, for the verdict and the report directory.
pub struct LoadReport {
    /// Scenario name.
    pub name: String,
    /// Open-loop rate of the run phase.
    pub rate: f64,
    /// The run phase's settings.
    pub settings: RunSettings,
    /// Summary of the load phase.
    pub load: Option<Summary>,
    /// The run phase, when set-up succeeded.
    pub run: Option<RunPhase>,
    /// The invariant check, or why it could not be made (including a failed set-up).
    pub check: Result<CheckReport, String>,
    /// Fault windows in seconds since the run phase's start.
    pub windows: Vec<Window>,
    /// Capacity the run phase consumed after its warm-up, when it ran.
    pub consumed: Option<ConsumedCapacity>,
}

/// Capacity units a run phase consumed, as the service reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ConsumedCapacity {
    /// Read capacity units.
    pub read_units: f64,
    /// Write capacity units.
    pub write_units: f64,
    /// Seconds of offered load they were consumed over.
    pub measured_s: f64,
}

impl ConsumedCapacity {
    /// Read and write units per second.
    pub fn per_second(&self) -> (f64, f64) {
        let seconds = self.measured_s.max(1e-9);
        (self.read_units / seconds, self.write_units / seconds)
    }
}

impl LoadReport {
    /// One line for the timeline: counts by outcome, the p99 of successes, the check's verdict.
    pub fn summary_line(&self) -> String {
        let Some(run) = &self.run else {
            return format!("load: {} not run", self.name);
        };
        let summary = run.recorder.summary(run.end_us);
        let mut by_outcome = std::collections::BTreeMap::<&str, u64>::new();
        let mut p99_us = 0;
        for operation in summary.operations.values() {
            for (outcome, latency) in &operation.outcomes {
                *by_outcome.entry(outcome.name()).or_default() += latency.count;
                if outcome.name() == "ok" {
                    p99_us = p99_us.max(latency.p99_us);
                }
            }
        }
        let counts: Vec<String> = by_outcome.iter().map(|(name, count)| format!("{name} {count}")).collect();
        let verdict = match &self.check {
            Ok(report) if report.passed() => "invariants hold".to_owned(),
            Ok(_) => "invariants VIOLATED".to_owned(),
            Err(error) => format!("invariants not checked: {error}"),
        };
        format!(
            "load: {} issued {} ({}), abandoned {}, worst p99 of successes {} us; {verdict}",
            self.name,
            run.issued,
            counts.join(", "),
            run.abandoned,
            p99_us
        )
    }

    /// Writes the report directory: `summary.json` (settings, seed, results by operation and
    /// outcome, the invariant check, the fault windows), `series.csv`, `.hgrm` files, histograms
    /// and plots with the fault windows shaded. Returns a warning when the plots were not drawn.
    pub fn write(&self, dir: &Path, run_settings: Value) -> anyhow::Result<Option<String>> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir).with_context(|| format!("create report directory {}", dir.display()))?;
        let windows: Vec<Value> =
            self.windows.iter().map(|w| json!({"start_s": w.start_s, "end_s": w.end_s, "label": w.label})).collect();
        let (results, uncorrected, series, issued, abandoned) = match &self.run {
            Some(run) => (
                json!(run.recorder.summary(run.end_us)),
                json!(run.uncorrected.summary(run.end_us)),
                json!(run.recorder.series()),
                run.issued,
                run.abandoned,
            ),
            None => (Value::Null, Value::Null, Value::Null, 0, 0),
        };
        let check = match &self.check {
            Ok(report) => json!(report),
            Err(error) => json!({"error": error}),
        };
        let summary = json!({
            "scenario": self.name,
            "simulation": run_settings,
            "settings": {"run": self.settings, "rate": self.rate},
            "issued": issued,
            "abandoned": abandoned,
            "results": results,
            "uncorrected": uncorrected,
            "load": self.load,
            "invariants": check,
            "fault_windows": windows,
            "consumed_capacity": self.consumed.map(|c| {
                let (read_per_s, write_per_s) = c.per_second();
                json!({
                    "read_units": c.read_units,
                    "write_units": c.write_units,
                    "measured_s": c.measured_s,
                    "read_units_per_s": read_per_s,
                    "write_units_per_s": write_per_s,
                })
            }),
            "series": series,
        });
        let text = serde_json::to_string_pretty(&summary).context("encode summary.json")?;
        std::fs::write(dir.join("summary.json"), text).context("write summary.json")?;
        let Some(run) = &self.run else {
            return Ok(None);
        };
        let (_, plot_error) =
            report::write_run_files(dir, &self.name, &run.recorder, &run.uncorrected, &self.windows, true)
                .with_context(|| format!("write report files in {}", dir.display()))?;
        Ok(plot_error.map(|e| format!("plots not drawn: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes nobody listens on (loopback ports freed at once): every call fails to connect.
    #[cfg(not(madsim))]
    #[tokio::test]
    async fn an_unreachable_node_leaves_the_rotation_for_a_while() {
        let closed_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let nodes: Vec<DynamoClient> = (0..2)
            .map(|_| {
                DynamoClient::new(squall_workloads::driver::ClientConfig::new(format!("http://{}", closed_port())))
            })
            .collect::<Result<_, _>>()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = events.clone();
        let balancer = Balancer::new(nodes, Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())));
        let tried = |events: &Arc<Mutex<Vec<String>>>| std::mem::take(&mut *events.lock().unwrap());
        assert!(matches!(balancer.call("ListTables", json!({})).await, Err(DriverError::Connect { .. })));
        assert_eq!(tried(&events).len(), 2, "a first call tries every node");
        // Both are out of the rotation now: only the turn's node is tried, so the call still
        // gets an answer rather than none.
        assert!(balancer.call("ListTables", json!({})).await.is_err());
        assert_eq!(tried(&events), ["load: ListTables via node 1: connect failed"], "node 0, held out, is skipped");
        assert!(balancer.held_out(1) && balancer.held_out(0));
        balancer.note_reachable(1, true);
        assert!(!balancer.held_out(1), "a node that answers is back in the rotation");
    }

    #[test]
    fn the_meter_asks_for_capacity_and_adds_up_reads_and_writes() {
        let mut body = json!({"TableName": "t"});
        CapacityMeter::ask("GetItem", &mut body);
        assert_eq!(body["ReturnConsumedCapacity"], "TOTAL");
        let mut asked = json!({"ReturnConsumedCapacity": "INDEXES"});
        CapacityMeter::ask("PutItem", &mut asked);
        assert_eq!(asked["ReturnConsumedCapacity"], "INDEXES", "the caller's own choice stays");
        let mut other = json!({});
        CapacityMeter::ask("DescribeTable", &mut other);
        assert!(other.get("ReturnConsumedCapacity").is_none());

        let meter = CapacityMeter::default();
        meter.record("GetItem", &json!({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}));
        meter.record("Query", &json!({"ConsumedCapacity": {"CapacityUnits": 2.0}}));
        meter.record(
            "TransactWriteItems",
            &json!({"ConsumedCapacity": [{"CapacityUnits": 4.0}, {"CapacityUnits": 2.0}]}),
        );
        meter.record("PutItem", &json!({}));
        assert_eq!(meter.totals(), (2.5, 6.0));
        let consumed = ConsumedCapacity { read_units: 2.5, write_units: 6.0, measured_s: 2.0 };
        assert_eq!(consumed.per_second(), (1.25, 3.0));
    }

    #[test]
    fn swarm_workloads_are_drawn_from_the_seed() {
        let drawn: std::collections::BTreeSet<&str> = (0..64).map(swarm_workload).collect();
        assert!(drawn.len() >= 4, "64 seeds should draw most workloads: {drawn:?}");
        assert_eq!(swarm_workload(17), swarm_workload(17));
    }

    #[test]
    fn scenario_sources_resolve_to_built_ins_or_files() {
        let builtin = LoadConfig::resolve("orders", 50.0).unwrap();
        assert_eq!(builtin.file.name(), "orders");
        assert!(LoadConfig::resolve("no-such-workload", 50.0).is_err());
        assert!(LoadConfig::resolve("ycsb-a", 0.0).is_err());
        assert!(LoadConfig::resolve("ycsb-a", f64::NAN).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "scenario = \"ycsb-c\"\n").unwrap();
        let from_file = LoadConfig::resolve(path.to_str().unwrap(), 10.0).unwrap();
        assert_eq!(from_file.file.name(), "mine");
        assert_eq!(from_file.source, path.to_str().unwrap());
    }

    #[test]
    fn run_settings_offer_the_rate_for_the_chaos_phase() {
        let file = ScenarioFile::builtin("ycsb-b").unwrap();
        let settings =
            run_settings(&file, 300.0, Duration::from_secs(20), Duration::from_secs(2), 9, Duration::from_secs(1));
        assert_eq!(settings.duration(), Duration::from_secs(20));
        assert_eq!(settings.drain_timeout, Duration::from_secs(2));
        assert_eq!(settings.warmup, Duration::from_secs(2));
        let LoopMode::Open { arrivals, schedule, in_flight_max } = &settings.mode else { panic!("not open") };
        assert_eq!(*arrivals, Arrivals::Poisson);
        assert_eq!(schedule, &[RateSegment::constant(Duration::from_secs(20), 300.0)]);
        assert_eq!(*in_flight_max, IN_FLIGHT_MAX);
    }

    #[test]
    fn connections_grow_with_the_rate_so_the_load_host_keeps_up() {
        assert_eq!(connections_per_node(2_000.0, 9), CONNECTIONS_PER_NODE_MIN, "low rates keep the minimum");
        // 75,000 per second over nine nodes at 20 ms each: 1,500 in flight, 167 per node.
        assert_eq!(connections_per_node(75_000.0, 9), 167);
        assert!(connections_per_node(75_000.0, 9) * 6 >= 1_000, "a zone down still leaves 13 ms per request");
        assert_eq!(connections_per_node(f64::NAN, 0), CONNECTIONS_PER_NODE_MIN);
    }
}
