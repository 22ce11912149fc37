//! The driver against a real Squall node in-process, and against small misbehaving servers.
//! Loopback only; every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use squall_engine::node::{run, NodeConfig, NodeError, StorageConfig};
use squall_workloads::driver::{ClientConfig, DriverError, DynamoClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// Bound on anything a test waits for that should take milliseconds.
const WAIT: Duration = Duration::from_secs(20);

struct Node {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), NodeError>>,
}

impl Node {
    async fn start() -> Node {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let config =
            NodeConfig { listen: "127.0.0.1:0".parse().unwrap(), storage: StorageConfig::Memory, cluster: None };
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
        Node { addr, stop, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task).await.expect("node stops in time").expect("node task").expect("node ran");
    }
}

fn client_for(endpoint: &str) -> DynamoClient {
    DynamoClient::new(ClientConfig::new(endpoint)).unwrap()
}

async fn create_table(client: &DynamoClient) {
    let created = client
        .call(
            "CreateTable",
            json!({
                "TableName": "usertable",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST"
            }),
        )
        .await
        .expect("CreateTable");
    assert_eq!(created["TableDescription"]["TableName"], "usertable");
}

fn put(id: &str, value: &str) -> Value {
    json!({"TableName": "usertable", "Item": {"id": {"S": id}, "field0": {"S": value}}})
}

fn get(id: &str) -> Value {
    json!({"TableName": "usertable", "Key": {"id": {"S": id}}, "ConsistentRead": true})
}

#[tokio::test]
async fn create_put_get_round_trip() {
    let node = Node::start().await;
    let client = client_for(&node.endpoint());
    create_table(&client).await;
    client.call("PutItem", put("user1", "hello")).await.expect("PutItem");
    let got = client.call("GetItem", get("user1")).await.expect("GetItem");
    assert_eq!(got["Item"], json!({"id": {"S": "user1"}, "field0": {"S": "hello"}}));
    let missing = client.call("GetItem", get("nobody")).await.expect("GetItem of a missing item");
    assert!(missing.get("Item").is_none(), "{missing}");
    node.stop().await;
}

#[tokio::test]
async fn a_failed_condition_is_a_service_error() {
    let node = Node::start().await;
    let client = client_for(&node.endpoint());
    create_table(&client).await;
    let mut request = put("user1", "first");
    request["ConditionExpression"] = json!("attribute_not_exists(id)");
    client.call("PutItem", request.clone()).await.expect("first conditional put");
    let error = client.call("PutItem", request).await.expect_err("second conditional put must fail");
    assert!(error.is_conditional_check_failed(), "{error}");
    assert!(matches!(error, DriverError::Service { status: 400, .. }), "{error}");
    // The failed write changed nothing, and the connection still serves requests.
    let got = client.call("GetItem", get("user1")).await.expect("GetItem");
    assert_eq!(got["Item"]["field0"]["S"], "first");
    node.stop().await;
}

#[tokio::test]
async fn an_unknown_operation_is_a_service_error() {
    let node = Node::start().await;
    let client = client_for(&node.endpoint());
    let error = client.call("NoSuchOperation", json!({})).await.expect_err("unknown operation");
    assert_eq!(error.type_name(), Some("UnknownOperationException"), "{error}");
    assert!(!error.is_retryable());
    node.stop().await;
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let node = Node::start().await;
    let client = client_for(&node.endpoint());
    create_table(&client).await;
    for i in 0..200 {
        let id = format!("user{i}");
        client.call("PutItem", put(&id, "v")).await.unwrap_or_else(|e| panic!("PutItem {i}: {e}"));
    }
    for i in 0..200 {
        let got = client.call("GetItem", get(&format!("user{i}"))).await.unwrap_or_else(|e| panic!("GetItem {i}: {e}"));
        assert_eq!(got["Item"]["field0"]["S"], "v");
    }
    assert_eq!(client.connections_opened(), 1, "401 sequential calls should share one connection");
    assert_eq!(client.connections_idle(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_a_bounded_pool() {
    const TASKS: usize = 16;
    const CALLS_PER_TASK: usize = 25;
    const CONNECTIONS_MAX: usize = 4;
    let node = Node::start().await;
    let client = DynamoClient::new(ClientConfig::new(node.endpoint()).with_connections_max(CONNECTIONS_MAX)).unwrap();
    create_table(&client).await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for call in 0..CALLS_PER_TASK {
                let id = format!("t{task}-c{call}");
                client.call("PutItem", put(&id, &id)).await?;
                let got = client.call("GetItem", get(&id)).await?;
                assert_eq!(got["Item"]["field0"]["S"], id.as_str());
            }
            Ok::<_, DriverError>(())
        }));
    }
    for task in tasks {
        timeout(WAIT, task).await.expect("task finishes in time").expect("task ran").expect("every call succeeds");
    }
    let opened = client.connections_opened();
    assert!((1..=CONNECTIONS_MAX as u64).contains(&opened), "opened {opened} connections");
    assert!(client.connections_idle() <= CONNECTIONS_MAX);
    node.stop().await;
}

/// A server that accepts connections and holds them open without reading or answering, until
/// the returned sender is dropped.
async fn silent_server() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) if held.len() < 64 => held.push(stream),
                    _ => break,
                },
            }
        }
    });
    (addr, stop)
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_bound() {
    let (addr, _stop) = silent_server().await;
    let bound = Duration::from_millis(300);
    let client = DynamoClient::new(ClientConfig::new(format!("http://{addr}")).with_request_timeout(bound)).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("the client's own timeout fires");
        let elapsed = started.elapsed();
        assert!(matches!(error, Err(DriverError::Timeout { after }) if after == bound), "{error:?}");
        assert!(elapsed >= bound, "gave up after {elapsed:?}");
        assert!(elapsed < bound + Duration::from_secs(2), "took {elapsed:?}");
    }
    // A timed-out connection is not put back for reuse.
    assert_eq!(client.connections_idle(), 0);
    assert_eq!(client.connections_opened(), 2);
}

/// A server that handles each connection with `respond`, up to `connections` connections.
async fn raw_server<F, Fut>(connections: usize, respond: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..connections {
            let Ok(Ok((stream, _))) = timeout(WAIT, listener.accept()).await else { break };
            tokio::spawn(respond(stream));
        }
    });
    addr
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body), or `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    const REQUEST_BYTES_MAX: usize = 1 << 20;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Some(buffer);
            }
        }
        let read = timeout(WAIT, stream.read(&mut chunk)).await.ok()?.ok()?;
        if read == 0 || buffer.len() > REQUEST_BYTES_MAX {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn http_response(status: &str, body: &str, crc: Option<u32>) -> Vec<u8> {
    let crc = crc.map(|c| format!("x-amz-crc32: {c}\r\n")).unwrap_or_default();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n{crc}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_server_that_closes_the_connection_gives_a_connection_error() {
    // Accepts, then closes at once.
    let addr = raw_server(4, |stream| async move { drop(stream) }).await;
    let client = client_for(&format!("http://{addr}"));
    let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
    assert!(matches!(error, Err(DriverError::Io(_) | DriverError::Connect { .. })), "{error:?}");

    // Reads the whole request, then closes without answering.
    let addr = raw_server(4, |mut stream| async move {
        let _ = read_request(&mut stream).await;
    })
    .await;
    let client = client_for(&format!("http://{addr}"));
    let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
    assert!(matches!(error, Err(DriverError::Io(_))), "{error:?}");

    // Sends half a response, then closes.
    let addr = raw_server(4, |mut stream| async move {
        if read_request(&mut stream).await.is_some() {
            let response = http_response("200 OK", r#"{"Item":{"id":{"S":"x"}}}"#, None);
            let _ = stream.write_all(&response[..response.len() - 5]).await;
        }
    })
    .await;
    let client = client_for(&format!("http://{addr}"));
    let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
    assert!(matches!(error, Err(DriverError::Io(_))), "{error:?}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client_for(&format!("http://{addr}"));
    let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
    assert!(matches!(error, Err(DriverError::Connect { .. })), "{error:?}");
    assert!(error.unwrap_err().is_retryable());
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced() {
    // Each connection answers one request and then closes, as a server with a short idle
    // timeout would: every call must still succeed, each on a new connection.
    const CALLS: usize = 5;
    let addr = raw_server(CALLS * 2, |mut stream| async move {
        if read_request(&mut stream).await.is_some() {
            let body = "{}";
            let _ = stream.write_all(&http_response("200 OK", body, Some(crc32fast::hash(body.as_bytes())))).await;
            let _ = stream.flush().await;
        }
    })
    .await;
    let client = client_for(&format!("http://{addr}"));
    for i in 0..CALLS {
        let result = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
        assert_eq!(result.unwrap_or_else(|e| panic!("call {i}: {e}")), json!({}));
    }
    assert_eq!(client.connections_opened(), CALLS as u64);
}

#[tokio::test]
async fn malformed_responses_are_protocol_errors() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("not HTTP", b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        ("bad checksum", http_response("200 OK", "{}", Some(12345))),
        ("body not JSON", http_response("200 OK", "<html></html>", None)),
        ("error without __type", http_response("500 Internal Server Error", r#"{"oops":1}"#, None)),
    ];
    for (name, response) in cases {
        let addr = raw_server(1, move |mut stream| {
            let response = response.clone();
            async move {
                if read_request(&mut stream).await.is_some() {
                    let _ = stream.write_all(&response).await;
                    let _ = stream.flush().await;
                }
            }
        })
        .await;
        let client = client_for(&format!("http://{addr}"));
        let error = timeout(WAIT, client.call("GetItem", get("x"))).await.expect("no hang");
        assert!(matches!(error, Err(DriverError::Protocol(_))), "{name}: {error:?}");
    }
}
