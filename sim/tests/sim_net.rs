//! The simulated network's promises: chunks arrive in order at their modelled time, below a
//! timer tick too; a clogged link holds its chunks until a retransmission finds it open; nobody
//! listening is a refused connection; a killed host's peers read the end of the stream; a
//! writer to a reader that does not read stops at the window.

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use madsim::runtime::{Handle, Runtime};
use squall_engine::net::Connector;
use squall_sim::net::{HostNet, Latencies, Place, SimNet, RETRANSMIT_FIRST_MS, WINDOW_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// One-way latency between the two test hosts (zones 0 and 1).
const CROSS_ZONE_US: u64 = 300;
const PORT: u16 = 7000;

struct Pair {
    net: SimNet,
    server_ip: IpAddr,
    client_ip: IpAddr,
    server_net: HostNet,
    client_net: HostNet,
}

fn pair(seed: u64) -> Pair {
    let latencies = Latencies {
        same_host_us: (5, 5),
        intra_zone_us: (50, 50),
        cross_zone_us: (CROSS_ZONE_US, CROSS_ZONE_US),
        client_us: (100, 100),
    };
    let net = SimNet::new(seed, latencies);
    let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let client_ip = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1));
    let server_net = net.host(server_ip, Place::Zone(0));
    let client_net = net.host(client_ip, Place::Zone(1));
    Pair { net, server_ip, client_ip, server_net, client_net }
}

/// Whether `actual` is `expected` give or take the few microseconds madsim's clock moves on
/// while tasks run.
fn about(actual: Duration, expected: Duration) -> bool {
    actual.abs_diff(expected) < Duration::from_micros(5)
}

/// Starts a server that reads `chunks` chunks of `size` bytes and returns each one's arrival
/// time, relative to `start`.
fn spawn_reader(
    handle: &Handle,
    pair: &Pair,
    start: Instant,
    chunks: usize,
    size: usize,
) -> madsim::task::JoinHandle<Vec<Duration>> {
    let server = handle.create_node().name("server").ip(pair.server_ip).build();
    let server_net = pair.server_net.clone();
    let addr = SocketAddr::new(pair.server_ip, PORT);
    server.spawn(async move {
        let mut listener = server_net.bind(addr).await.expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut arrivals = Vec::new();
        let mut buf = vec![0u8; size];
        for _ in 0..chunks {
            stream.read_exact(&mut buf).await.expect("a whole chunk");
            arrivals.push(start.elapsed());
        }
        arrivals
    })
}

#[test]
fn chunks_arrive_in_order_at_their_modelled_time_below_a_tick() {
    let runtime = Runtime::with_seed_and_config(1, madsim::Config::default());
    runtime.block_on(async {
        let handle = Handle::current();
        let pair = pair(1);
        let start = Instant::now();
        let reader = spawn_reader(&handle, &pair, start, 3, 4);
        let client = handle.create_node().name("client").ip(pair.client_ip).build();
        let (client_net, addr) = (pair.client_net.clone(), SocketAddr::new(pair.server_ip, PORT));
        let sent = client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let mut stream = client_net.dial(addr).await.expect("dial");
                let mut sent = Vec::new();
                for i in 0..3u8 {
                    stream.write_all(&[i; 4]).await.expect("write");
                    sent.push(start.elapsed());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                sent
            })
            .await
            .expect("client task");
        let arrivals = reader.await.expect("server task");
        for (sent, arrived) in sent.iter().zip(&arrivals) {
            assert!(
                about(*arrived - *sent, Duration::from_micros(CROSS_ZONE_US)),
                "sent {sent:?}, arrived {arrived:?}"
            );
        }
        assert_eq!(pair.net.stats().messages, 3);
        assert_eq!(pair.net.stats().bytes, 12);
    });
}

#[test]
fn a_clogged_link_delivers_at_the_first_retransmission_after_it_opens() {
    let runtime = Runtime::with_seed_and_config(2, madsim::Config::default());
    runtime.block_on(async {
        let handle = Handle::current();
        let pair = pair(2);
        let start = Instant::now();
        let reader = spawn_reader(&handle, &pair, start, 1, 4);
        let client = handle.create_node().name("client").ip(pair.client_ip).build();
        let (client_net, addr, net) =
            (pair.client_net.clone(), SocketAddr::new(pair.server_ip, PORT), pair.net.clone());
        let (client_ip, server_ip) = (pair.client_ip, pair.server_ip);
        let sent = client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let mut stream = client_net.dial(addr).await.expect("dial");
                net.clog_link(client_ip, server_ip);
                stream.write_all(&[7; 4]).await.expect("a write does not wait for the link");
                let sent = start.elapsed();
                // Open again before the first retransmission (200 ms) and stay open.
                tokio::time::sleep(Duration::from_millis(50)).await;
                net.unclog_link(client_ip, server_ip);
                tokio::time::sleep(Duration::from_secs(2)).await;
                sent
            })
            .await
            .expect("client task");
        let arrived = reader.await.expect("server task")[0];
        let expected = sent + Duration::from_millis(RETRANSMIT_FIRST_MS) + Duration::from_micros(CROSS_ZONE_US);
        assert!(about(arrived, expected), "arrived {arrived:?}, expected {expected:?}");
        assert_eq!(pair.net.stats().retransmissions, 1);
    });
}

#[test]
fn nobody_listening_is_refused_and_a_killed_peer_ends_the_stream() {
    let runtime = Runtime::with_seed_and_config(3, madsim::Config::default());
    runtime.block_on(async {
        let handle = Handle::current();
        let pair = pair(3);
        let server = handle.create_node().name("server").ip(pair.server_ip).build();
        let server_net = pair.server_net.clone();
        let addr = SocketAddr::new(pair.server_ip, PORT);
        server.spawn(async move {
            let mut listener = server_net.bind(addr).await.expect("bind");
            let mut held = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                held.push(stream);
            }
        });
        let client = handle.create_node().name("client").ip(pair.client_ip).build();
        let client_net = pair.client_net.clone();
        let mut stream = client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let closed = SocketAddr::new(addr.ip(), PORT + 1);
                let error = client_net.dial(closed).await.err().expect("nobody listens on the other port");
                assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
                client_net.dial(addr).await.expect("dial")
            })
            .await
            .expect("client task");
        handle.kill(server.id());
        let mut buf = [0u8; 1];
        let read = stream.read(&mut buf).await.expect("the end of the stream, not an error");
        assert_eq!(read, 0, "a killed peer's stream ends");
        assert!(stream.write_all(b"x").await.is_err(), "writing to a killed peer fails");
    });
}

#[test]
fn a_writer_stops_at_the_window_until_the_reader_reads() {
    let runtime = Runtime::with_seed_and_config(4, madsim::Config::default());
    runtime.block_on(async {
        let handle = Handle::current();
        let pair = pair(4);
        let server = handle.create_node().name("server").ip(pair.server_ip).build();
        let server_net = pair.server_net.clone();
        let addr = SocketAddr::new(pair.server_ip, PORT);
        let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
        server.spawn(async move {
            let mut listener = server_net.bind(addr).await.expect("bind");
            let (stream, _) = listener.accept().await.expect("accept");
            let _ = accepted_tx.send(stream);
            std::future::pending::<()>().await;
        });
        let client = handle.create_node().name("client").ip(pair.client_ip).build();
        let client_net = pair.client_net.clone();
        let written = client
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let mut stream = client_net.dial(addr).await.expect("dial");
                let block = vec![1u8; 64 << 10];
                let mut written = 0usize;
                // Nobody reads: the writes stop at the window.
                while written < 2 * WINDOW_BYTES {
                    match tokio::time::timeout(Duration::from_millis(100), stream.write_all(&block)).await {
                        Ok(result) => result.expect("write"),
                        Err(_) => break,
                    }
                    written += block.len();
                }
                written
            })
            .await
            .expect("client task");
        assert_eq!(written, WINDOW_BYTES, "the writer stopped at the window");
        let mut stream = accepted_rx.await.expect("accepted");
        let mut buf = vec![0u8; WINDOW_BYTES];
        stream.read_exact(&mut buf).await.expect("the window's bytes are all there");
        assert!(buf.iter().all(|&b| b == 1));
    });
}
