//! Each scenario's load and run phases against a real Squall node on a loopback port, then its
//! invariant checked from the node's contents; and tampering with the contents afterwards must
//! make the invariant fail, so the checks can fail. Loopback only; every run is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use squall_engine::node::{run, NodeConfig, NodeError, StorageConfig};
use squall_workloads::driver::{ClientConfig, DynamoClient};
use squall_workloads::op::create_tables;
use squall_workloads::runner::{self, Arrivals, LoopMode, Progress, RateSegment, RunSettings};
use squall_workloads::scenario::file::ScenarioFile;
use squall_workloads::scenario::{CheckReport, Scenario};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

struct Node {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), NodeError>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let config = NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            storage: StorageConfig::Rocks(dir.path().to_path_buf()),
            cluster: None,
        };
        let task = tokio::spawn(run(
            config,
            move |addr| {
                let _ = ready_tx.send(addr);
            },
            async move {
                let _ = stop_rx.await;
            },
        ));
        let addr = timeout(WAIT, ready_rx).await.expect("node ready in time").expect("node started");
        Node { addr, stop, task, _dir: dir }
    }

    fn client(&self) -> DynamoClient {
        DynamoClient::new(ClientConfig::new(format!("http://{}", self.addr)).with_connections_max(16)).unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task).await.expect("node stops").expect("node task").expect("node ran");
    }
}

/// Sets up, loads, runs `scenario` at 400 operations per second for 2 s with Poisson arrivals,
/// and checks it.
async fn run_and_check(client: &DynamoClient, scenario: Scenario) -> (Scenario, CheckReport) {
    create_tables(client, &scenario.tables(), false).await.expect("tables");
    let progress = Arc::new(Progress::default());
    let loaded = runner::load(client.clone(), scenario, 8, Duration::from_secs(60), progress.clone()).await.unwrap();
    assert_eq!(progress.failed.load(std::sync::atomic::Ordering::Relaxed), 0, "the load phase succeeds");
    let settings = RunSettings {
        mode: LoopMode::Open {
            arrivals: Arrivals::Poisson,
            schedule: vec![RateSegment::constant(Duration::from_secs(2), 400.0)],
            in_flight_max: 32,
        },
        operations_max: Some(2_000),
        warmup: Duration::from_millis(200),
        seed: 9,
        drain_timeout: Duration::from_secs(15),
    };
    let report = runner::run(client.clone(), loaded.workload, &settings, Arc::new(Progress::default())).await.unwrap();
    let summary = report.recorder.summary(report.end_us);
    assert!(report.issued >= 500, "{} operations issued", report.issued);
    for (name, operation) in &summary.operations {
        assert_eq!(operation.errors, 0, "{name}: {operation:?}");
    }
    let check = report.workload.check(client).await.expect("check reads the tables");
    eprintln!("{check}");
    (report.workload, check)
}

fn scenario(text: &str) -> Scenario {
    ScenarioFile::parse(text, "test").unwrap().build(5).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_keep_stock_and_orders_consistent() {
    let node = Node::start().await;
    let client = node.client();
    // Little stock and hot products: many orders are refused for stock.
    let orders = scenario("scenario = \"orders\"\n[orders]\ncustomers = 50\nproducts = 10\ninitial_stock = 40\n");
    let (orders, check) = run_and_check(&client, orders).await;
    assert!(check.passed(), "{check}");
    assert!(check.counts["orders_acknowledged"] > 20, "{check}");
    assert!(check.counts["orders_refused"] > 0, "stock ran out: {check}");

    // Stock that went negative breaks two checks.
    client
        .call(
            "PutItem",
            json!({"TableName": "orders", "Item": {"pk": {"S": "PRODUCT#000000"}, "sk": {"S": "STOCK"}, "stock": {"N": "-1"}}}),
        )
        .await
        .unwrap();
    let check = orders.check(&client).await.unwrap();
    let failed: Vec<&str> = check.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        ["stock is never negative", "initial stock = stock + units in order lines, for every product"],
        "{check}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_transfers_keep_the_total() {
    let node = Node::start().await;
    let client = node.client();
    let bank = scenario("scenario = \"bank\"\n[bank]\naccounts = 50\ninitial_balance = 100\namount_max = 80\n");
    let (bank, check) = run_and_check(&client, bank).await;
    assert!(check.passed(), "{check}");
    assert!(check.counts["transfers_acknowledged"] > 50, "{check}");
    assert!(check.counts["transfers_refused"] > 0, "some transfers lacked funds: {check}");

    // Money out of nowhere breaks the total and the ledger.
    client
        .call(
            "UpdateItem",
            json!({"TableName": "bank", "Key": {"pk": {"S": "ACCOUNT#00000001"}},
                   "UpdateExpression": "SET balance = balance + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
        )
        .await
        .unwrap();
    let check = bank.check(&client).await.unwrap();
    let failed: Vec<&str> = check.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        ["the total balance never changes", "each balance is the initial balance plus the recorded transfers"],
        "{check}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_never_lose_an_acknowledged_version() {
    let node = Node::start().await;
    let client = node.client();
    let sessions = scenario("scenario = \"sessions\"\n[sessions]\nsessions = 200\npayload_bytes = 100\n");
    let (sessions, check) = run_and_check(&client, sessions).await;
    assert!(check.passed(), "{check}");
    assert!(check.counts["reads_checked"] > 50, "{check}");

    // An older version put back (a lost update) is found.
    client
        .call("DeleteItem", json!({"TableName": "sessions", "Key": {"id": {"S": "session-0000000000"}}}))
        .await
        .unwrap();
    let check = sessions.check(&client).await.unwrap();
    assert!(!check.passed(), "{check}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_scores_and_index_agree() {
    let node = Node::start().await;
    let client = node.client();
    let feed = scenario("scenario = \"feed\"\n[feed]\nusers = 100\nplayers = 50\nboards = 2\n");
    let (feed, check) = run_and_check(&client, feed).await;
    assert!(check.passed(), "{check}");
    assert!(check.counts["posts_acknowledged"] > 20, "{check}");

    client
        .call(
            "UpdateItem",
            json!({"TableName": "scores", "Key": {"board": {"S": "BOARD#0000"}, "player": {"S": "PLAYER#00000000"}},
                   "UpdateExpression": "ADD score :d", "ExpressionAttributeValues": {":d": {"N": "1000000"}}}),
        )
        .await
        .unwrap();
    let check = feed.check(&client).await.unwrap();
    let failed: Vec<&str> = check.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        ["each score lies between its acknowledged increments and those plus the unacknowledged ones"],
        "{check}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ycsb_and_custom_scenarios_keep_acknowledged_items() {
    let node = Node::start().await;
    let client = node.client();
    let ycsb = scenario("scenario = \"ycsb\"\nbase = \"workloadd\"\n[ycsb]\nrecordcount = 200\n");
    let (_, check) = run_and_check(&client, ycsb).await;
    assert!(check.passed(), "{check}");
    assert!(check.counts["inserts_acknowledged"] > 200, "load and run inserts: {check}");

    let custom = scenario(
        r#"
        scenario = "custom"
        [[tables]]
        name = "kv_items"
        partition_key = "id:S"
        sort_key = "n:N"
        items = 300
        sort_keys_per_partition = 3
        key_distribution = { kind = "zipfian" }
        attributes = [
            { name = "payload", kind = "string", size = 100, size_min = 10 },
            { name = "group", kind = "choice", choices = 5 },
        ]
        indexes = [{ name = "by_group", partition_key = "group:S", sort_key = "n:N" }]
        [[operations]]
        kind = "get"
        table = "kv_items"
        weight = 4
        consistent_read = true
        [[operations]]
        kind = "update"
        table = "kv_items"
        weight = 3
        [[operations]]
        kind = "put"
        table = "kv_items"
        weight = 1
        [[operations]]
        kind = "delete"
        table = "kv_items"
        weight = 1
        [[operations]]
        kind = "query"
        table = "kv_items"
        index = "by_group"
        weight = 1
        [[operations]]
        name = "scan-page"
        kind = "scan"
        table = "kv_items"
        weight = 0.5
        limit = 20
        "#,
    );
    let (custom, check) = run_and_check(&client, custom).await;
    assert!(check.passed(), "{check}");

    client
        .call("PutItem", json!({"TableName": "kv_items", "Item": {"id": {"S": "stranger"}, "n": {"N": "1"}}}))
        .await
        .unwrap();
    let check = custom.check(&client).await.unwrap();
    assert!(!check.passed(), "{check}");
    node.stop().await;
}
