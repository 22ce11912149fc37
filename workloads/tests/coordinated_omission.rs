//! The runner against a real loopback server that stalls for one second in the middle of the
//! run: the open loop's corrected latencies must show the stall in their high percentiles, while
//! latencies measured from the moment each request was sent (what a closed-loop tool reports)
//! hide it. Also the closed loop's bounds. Loopback only; every wait is bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use squall_workloads::driver::{ClientConfig, DriverError, DynamoClient};
use squall_workloads::op::Op;
use squall_workloads::recorder::Outcome;
use squall_workloads::runner::{self, Arrivals, LoopMode, Progress, RateSegment, RunSettings};
use squall_workloads::scenario::Workload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Requests arriving in [STALL_START, STALL_END) since the server started are answered at
/// STALL_END.
const STALL_START: Duration = Duration::from_millis(1500);
const STALL_END: Duration = Duration::from_millis(2500);
/// Longest request head the test server reads.
const HEAD_BYTES_MAX: usize = 64 * 1024;

/// A tiny HTTP/1.1 keep-alive server answering every request with `{}`, stalling as above.
async fn stalling_server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, started, counter.clone()));
        }
    });
    (endpoint, served)
}

async fn serve(mut stream: TcpStream, started: Instant, served: Arc<AtomicU64>) {
    // Each response goes out in one write without waiting for acknowledgements (no Nagle delay).
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    loop {
        // Read one request: the head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buffer.len() > HEAD_BYTES_MAX {
                return;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let now = started.elapsed();
        if now >= STALL_START && now < STALL_END {
            tokio::time::sleep_until(started + STALL_END).await;
        }
        served.fetch_add(1, Ordering::Relaxed);
        let body = b"{}";
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// GetItem after GetItem.
struct Reads;

impl Workload for Reads {
    fn next_load(&mut self) -> Option<Op> {
        None
    }

    fn next_op(&mut self) -> Op {
        Op::single(
            "READ",
            "GetItem",
            json!({"TableName": "t", "Key": {"id": {"S": "k"}}}),
            squall_workloads::op::Ack::None,
        )
    }

    fn complete(&mut self, _op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        }
    }
}

fn client(endpoint: &str, connections: usize) -> DynamoClient {
    DynamoClient::new(
        ClientConfig::new(endpoint).with_connections_max(connections).with_request_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latencies_show_a_stall_that_send_time_latencies_hide() {
    let (endpoint, served) = stalling_server().await;
    // 500 operations per second for 4 s through one connection: during the 1 s stall about 500
    // operations fall due, wait behind the stalled request, and go out late.
    let settings = RunSettings {
        mode: LoopMode::Open {
            arrivals: Arrivals::Constant,
            schedule: vec![RateSegment::constant(Duration::from_secs(4), 500.0)],
            in_flight_max: 1,
        },
        operations_max: None,
        warmup: Duration::ZERO,
        seed: 1,
        drain_timeout: Duration::from_secs(10),
    };
    let report = runner::run(client(&endpoint, 1), Reads, &settings, Arc::new(Progress::default())).await.unwrap();
    let corrected = report.recorder.histogram("READ", Outcome::Ok).expect("reads recorded");
    let uncorrected = report.uncorrected.histogram("READ", Outcome::Ok).expect("reads recorded");
    let ms = |us: u64| us as f64 / 1000.0;
    let (c90, c99) = (ms(corrected.value_at_quantile(0.90)), ms(corrected.value_at_quantile(0.99)));
    let (u99, umax) = (ms(uncorrected.value_at_quantile(0.99)), ms(uncorrected.max()));
    eprintln!("corrected p90 {c90} ms p99 {c99} ms; uncorrected p99 {u99} ms max {umax} ms; {} ops", corrected.len());
    assert!(corrected.len() >= 1_900, "about 2000 operations ran, got {}", corrected.len());
    assert_eq!(corrected.len(), report.issued, "every operation succeeded and is recorded once");
    assert_eq!(corrected.len(), served.load(Ordering::Relaxed), "every answer is recorded once");
    // A quarter of the operations fell due during the stall, waiting up to its full second.
    assert!(c99 >= 800.0, "corrected p99 {c99} ms must show the 1 s stall");
    assert!(c90 >= 200.0, "corrected p90 {c90} ms must show the stall");
    // Measured from sending, only the one request caught in the stall is slow.
    assert!(umax >= 900.0, "the stalled request itself took the stall: {umax} ms");
    assert!(u99 < 100.0, "send-time p99 {u99} ms hides the stall");
    // The stall also shows in the per-second series: the second after it has the high p99.
    let series = report.recorder.series();
    assert!(series.iter().any(|s| s.p99_us >= 500_000), "{series:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_stops_at_its_operation_count_and_excludes_the_warmup() {
    let (endpoint, _) = stalling_server().await;
    let settings = RunSettings {
        mode: LoopMode::Closed { clients: 4, think_time: Duration::from_millis(1), duration: Duration::from_secs(1) },
        operations_max: Some(300),
        warmup: Duration::from_millis(100),
        seed: 1,
        drain_timeout: Duration::from_secs(5),
    };
    let started = Instant::now();
    let report = runner::run(client(&endpoint, 4), Reads, &settings, Arc::new(Progress::default())).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "the run ends by itself");
    assert!(report.issued <= 300, "{} issued", report.issued);
    let summary = report.recorder.summary(report.end_us);
    let recorded = summary.operations["READ"].count;
    assert_eq!(recorded + summary.warmup_excluded, report.issued);
    assert!(summary.warmup_excluded > 0, "operations of the first 100 ms are left out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_requests_are_recorded_as_timeouts() {
    // A listener that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let settings = RunSettings {
        mode: LoopMode::Open {
            arrivals: Arrivals::Poisson,
            schedule: vec![RateSegment::constant(Duration::from_millis(500), 20.0)],
            in_flight_max: 64,
        },
        operations_max: None,
        warmup: Duration::ZERO,
        seed: 3,
        drain_timeout: Duration::from_secs(5),
    };
    let client = DynamoClient::new(
        ClientConfig::new(&endpoint).with_connections_max(64).with_request_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    struct Classified;
    impl Workload for Classified {
        fn next_load(&mut self) -> Option<Op> {
            None
        }
        fn next_op(&mut self) -> Op {
            Reads.next_op()
        }
        fn complete(&mut self, _op: &Op, result: &Result<Value, DriverError>) -> Outcome {
            match result {
                Ok(_) => Outcome::Ok,
                Err(error) => squall_workloads::api::failure_outcome(error),
            }
        }
    }
    let report = runner::run(client, Classified, &settings, Arc::new(Progress::default())).await.unwrap();
    let summary = report.recorder.summary(report.end_us);
    let read = &summary.operations["READ"];
    assert_eq!(read.outcomes.keys().copied().collect::<Vec<_>>(), vec![Outcome::Timeout]);
    assert_eq!(read.count, report.issued);
    assert!(read.count >= 3, "{}", read.count);
}
