//! Simulated HTTP latency stays flat over many sequential requests on one keep-alive
//! connection: with a fixed link latency, the 100th request takes as long as the first.
//!
//! This guards the fix for latency that grew by milliseconds per request under madsim (its TCP
//! sends one packet per flush, and hyper flushes on every poll, so empty packets queued up on
//! the simulated wire ahead of real data).

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::Runtime;
use squall_engine::api::Service;
use squall_engine::db::Database;
use squall_engine::storage::MemStore;
use squall_workloads::driver::{ClientConfig, DynamoClient};

/// One-way link latency of the test network.
const LINK_LATENCY_US: u64 = 1_000;
/// Requests sent one after another.
const REQUESTS: usize = 100;
/// Requests averaged at each end of the run.
const WINDOW: usize = 10;

fn sequential_latencies_us(seed: u64, link_latency_us: std::ops::Range<u64>) -> (Vec<u64>, u64) {
    let mut config = madsim::Config::default();
    config.net.send_latency = Duration::from_micros(link_latency_us.start)..Duration::from_micros(link_latency_us.end);
    let runtime = Runtime::with_seed_and_config(seed, config);
    runtime.block_on(async {
        let handle = madsim::runtime::Handle::current();
        let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server = handle.create_node().name("server").ip(server_ip).build();
        let addr = SocketAddr::new(server_ip, 8000);
        server.spawn(async move {
            let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open an empty store"));
            let listener = squall_engine::http::bind(addr).await.expect("bind");
            squall_engine::http::serve(listener, Service::new(db), std::future::pending()).await.expect("serve");
        });
        let client = handle.create_node().name("client").ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).build();
        client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let driver =
                    DynamoClient::new(ClientConfig::new(format!("http://{addr}")).with_connections_max(1)).unwrap();
                let mut latencies = Vec::with_capacity(REQUESTS);
                for _ in 0..REQUESTS {
                    let started = tokio::time::Instant::now();
                    driver.call("ListTables", serde_json::json!({})).await.expect("ListTables answers");
                    latencies.push(started.elapsed().as_micros() as u64);
                }
                (latencies, driver.connections_opened())
            })
            .await
            .expect("client task")
    })
}

fn mean(values: &[u64]) -> u64 {
    values.iter().sum::<u64>() / values.len() as u64
}

#[test]
fn latency_is_flat_over_sequential_requests_on_one_connection() {
    for seed in [1, 2, 3] {
        let (latencies, connections) = sequential_latencies_us(seed, LINK_LATENCY_US..LINK_LATENCY_US + 1);
        assert_eq!(connections, 1, "every request reused one connection");
        let first = mean(&latencies[1..1 + WINDOW]);
        let last = mean(&latencies[REQUESTS - WINDOW..]);
        // A request and its response each cross the link once; everything else is small.
        let round_trip_us = 2 * LINK_LATENCY_US;
        assert!(
            last <= first + LINK_LATENCY_US / 2,
            "seed {seed}: latency grew from {first} us to {last} us: {latencies:?}"
        );
        // Exactly one round trip: a server that put empty packets on the wire after its
        // responses made every request wait a second round trip.
        assert!(
            latencies[1..].iter().all(|&l| l <= round_trip_us + LINK_LATENCY_US / 2),
            "seed {seed}: a request took over 1.5 round trips: {latencies:?}"
        );
    }
}

#[test]
fn latency_does_not_grow_with_random_link_latency() {
    // madsim's default links: 1 to 10 ms each way, drawn per packet. A round trip averages
    // 11 ms; the mean of 20 requests varies by about 1 ms between windows.
    let window = 2 * WINDOW;
    for seed in [4, 5] {
        let (latencies, connections) = sequential_latencies_us(seed, 1_000..10_000);
        assert_eq!(connections, 1);
        let first = mean(&latencies[1..1 + window]);
        let last = mean(&latencies[REQUESTS - window..]);
        assert!(last <= first + 5_000, "seed {seed}: latency grew from {first} us to {last} us: {latencies:?}");
        assert!(last <= 20_000, "seed {seed}: mean latency {last} us is far over a round trip: {latencies:?}");
    }
}
