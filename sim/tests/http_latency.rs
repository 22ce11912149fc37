//! Simulated HTTP latency is the modelled network's, below a timer tick too, and stays flat over
//! many sequential requests on one keep-alive connection: with a fixed link latency, every
//! request takes one round trip, the 100th as the first.
//!
//! This guards two fixes: latency that grew by milliseconds per request (hyper flushes on every
//! poll, and a network that sent a packet per flush queued empty packets ahead of real data),
//! and a floor of a millisecond per hop (madsim's TCP delivers no sooner than a timer tick).

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::Runtime;
use squall_engine::api::Service;
use squall_engine::db::Database;
use squall_engine::net::Connector;
use squall_engine::storage::MemStore;
use squall_sim::net::{Latencies, Place, SimNet};
use squall_workloads::driver::{ClientConfig, DynamoClient};

/// One-way link latency of the test network: a fifth of madsim's timer tick.
const LINK_LATENCY_US: u64 = 200;
/// Requests sent one after another.
const REQUESTS: usize = 100;
/// Requests averaged at each end of the run.
const WINDOW: usize = 10;

fn sequential_latencies_us(seed: u64, (min_us, max_us): (u64, u64)) -> (Vec<u64>, u64) {
    let runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.block_on(async {
        let handle = madsim::runtime::Handle::current();
        let latencies = Latencies {
            same_host_us: (1, 1),
            intra_zone_us: (1, 1),
            cross_zone_us: (1, 1),
            client_us: (min_us, max_us),
        };
        let net = SimNet::new(seed, latencies);
        let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let client_ip = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
        let (server_net, client_net) = (net.host(server_ip, Place::Zone(0)), net.host(client_ip, Place::Client));
        let server = handle.create_node().name("server").ip(server_ip).build();
        let addr = SocketAddr::new(server_ip, 8000);
        server.spawn(async move {
            let db = Arc::new(Database::open(Arc::new(MemStore::new())).expect("open an empty store"));
            let listener = server_net.bind(addr).await.expect("bind");
            squall_engine::http::serve(listener, Service::new(db), std::future::pending()).await.expect("serve");
        });
        let client = handle.create_node().name("client").ip(client_ip).build();
        client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let config = ClientConfig::new(format!("http://{addr}"))
                    .with_connections_max(1)
                    .with_dialer(client_net.dialer());
                let driver = DynamoClient::new(config).unwrap();
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
        let (latencies, connections) = sequential_latencies_us(seed, (LINK_LATENCY_US, LINK_LATENCY_US));
        assert_eq!(connections, 1, "every request reused one connection");
        let first = mean(&latencies[1..1 + WINDOW]);
        let last = mean(&latencies[REQUESTS - WINDOW..]);
        // A request and its response each cross the link once; everything else is small.
        let round_trip_us = 2 * LINK_LATENCY_US;
        assert!(
            last <= first + LINK_LATENCY_US / 2,
            "seed {seed}: latency grew from {first} us to {last} us: {latencies:?}"
        );
        // Exactly one round trip, no less and not a timer tick more: a server that put empty
        // packets on the wire after its responses made every request wait a second round trip,
        // and a network with a tick's floor per hop made it 2 ms.
        assert!(
            latencies[1..].iter().all(|&l| (round_trip_us..round_trip_us + LINK_LATENCY_US / 2).contains(&l)),
            "seed {seed}: a request took other than one round trip of {round_trip_us} us: {latencies:?}"
        );
    }
}

#[test]
fn latency_does_not_grow_with_random_link_latency() {
    // Links of 1 to 10 ms each way, drawn per chunk. A round trip averages 11 ms; the mean of
    // 20 requests varies by about 1 ms between windows.
    let window = 2 * WINDOW;
    for seed in [4, 5] {
        let (latencies, connections) = sequential_latencies_us(seed, (1_000, 10_000));
        assert_eq!(connections, 1);
        let first = mean(&latencies[1..1 + window]);
        let last = mean(&latencies[REQUESTS - window..]);
        assert!(last <= first + 5_000, "seed {seed}: latency grew from {first} us to {last} us: {latencies:?}");
        assert!(last <= 20_000, "seed {seed}: mean latency {last} us is far over a round trip: {latencies:?}");
    }
}
