//! Shared harness for the end-to-end tests: a real `squall-server` process on a loopback port
//! with its own data directory, an AWS SDK client pointed at it, and a raw HTTP/1.1 helper for
//! requests no SDK would send (malformed bodies, unknown targets, huge payloads).
//!
//! Every test starts its own server, so tests never see each other's tables. Set
//! `SQUALL_E2E_SERVER` to a program path to test another server that follows the same
//! command-line contract (`--data-dir DIR --listen ADDR`, then the ready line on stdout).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

/// How long the server may take to print its ready line.
const READY_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may take before the server is killed.
const SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(5);
/// Upper bound on any single SDK call, so a hung server fails a test instead of hanging it.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Server output kept for the failure report.
const LOG_LINES_MAX: usize = 400;

const READY_PREFIX: &str = "squall-server listening on ";

/// A running `squall-server` child process.
pub struct TestServer {
    child: Option<Child>,
    /// Options given to the server after its data directory and listen address.
    args: Vec<String>,
    /// `http://127.0.0.1:PORT`
    url: String,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    // Dropped after the child is gone, so the server never sees its directory vanish.
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on an ephemeral port with a fresh data directory and waits until it
    /// says it is listening.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// Starts a server as [`TestServer::start`] does, with more command-line options.
    pub fn start_with(args: &[&str]) -> TestServer {
        let data_dir =
            tempfile::Builder::new().prefix("squall-e2e-").tempdir().expect("create a temporary data directory");
        let log = Arc::new(Mutex::new(Vec::new()));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, url, addr) = spawn_server(data_dir.path(), &args, &log);
        TestServer { child: Some(child), args, url, addr, log, _data_dir: data_dir }
    }

    /// Stops the server gracefully (SIGTERM) and starts it again on the same data directory.
    /// The new process listens on a new port: make new clients afterwards.
    pub fn restart(&mut self) {
        let child = self.child.take().expect("server is running");
        let status = stop_gracefully(child);
        assert!(
            matches!(status, Some(s) if s.success()),
            "squall-server must exit cleanly on SIGTERM, got {status:?}; output:\n{}",
            self.log()
        );
        let (child, url, addr) = spawn_server(self._data_dir.path(), &self.args, &self.log);
        self.child = Some(child);
        self.url = url;
        self.addr = addr;
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An SDK client configured exactly as an application would, minus aws-config.
    pub fn client(&self) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url.clone())
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .timeout_config(TimeoutConfig::builder().operation_timeout(OPERATION_TIMEOUT).build())
            .build();
        Client::from_conf(config)
    }

    /// Sends one DynamoDB JSON request over a fresh connection, without any SDK.
    pub fn raw_call(&self, operation: &str, body: &[u8]) -> RawResponse {
        let target = format!("DynamoDB_20120810.{operation}");
        self.raw_request(&[("X-Amz-Target", &target), JSON_CONTENT_TYPE, UNSIGNED_AUTH], body)
            .unwrap_or_else(|e| panic!("raw {operation} request failed: {e}"))
    }

    /// Sends `POST /` with the given extra headers and body over a fresh HTTP/1.1 connection
    /// and reads the whole response. Host, Content-Length and `Connection: close` are added.
    /// Blocking: the server is another process, so a test's runtime has nothing to do meanwhile.
    pub fn raw_request(&self, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<RawResponse> {
        raw_http(self.addr, "POST /", headers, body)
    }

    /// Sends `GET path` over a fresh HTTP/1.1 connection and reads the whole response.
    pub fn get(&self, path: &str) -> RawResponse {
        raw_http(self.addr, &format!("GET {path}"), &[], b"").unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// The server's output so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_gracefully(child);
        }
        if std::thread::panicking() {
            eprintln!("---- squall-server output ({}) ----\n{}", self.url, self.log());
        }
    }
}

/// Spawns the server on `data_dir` and waits for its ready line.
fn spawn_server(
    data_dir: &std::path::Path,
    args: &[String],
    log: &Arc<Mutex<Vec<String>>>,
) -> (Child, String, SocketAddr) {
    // SQUALL_E2E_SERVER runs the suite against another build or another implementation of
    // the same command-line contract (e.g. a peer server behind a small wrapper).
    let program = std::env::var_os("SQUALL_E2E_SERVER").unwrap_or_else(|| env!("CARGO_BIN_EXE_squall-server").into());
    let mut command = Command::new(program);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    set_parent_death_signal(&mut command);
    let mut child = command.spawn().expect("spawn squall-server");

    let (ready_tx, ready_rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("child stdout is piped");
    let stderr = child.stderr.take().expect("child stderr is piped");
    spawn_log_reader("stdout", stdout, log.clone(), Some(ready_tx));
    spawn_log_reader("stderr", stderr, log.clone(), None);

    let url = match ready_rx.recv_timeout(READY_WAIT_MAX) {
        Ok(url) => url,
        Err(_) => {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            let lines = log.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!(
                "squall-server did not print {READY_PREFIX:?}<url> within {READY_WAIT_MAX:?} \
                 (exit status: {status:?}); its output:\n{lines}"
            );
        }
    };
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|hostport| hostport.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("ready line has no http://HOST:PORT url: {url:?}"));
    assert_ne!(addr.port(), 0, "server must report the port it actually bound");
    (child, url, addr)
}

/// SIGTERM, as an operator would; SIGKILL if the server does not exit in time. Returns the
/// exit status of a graceful exit, `None` when it had to be killed.
fn stop_gracefully(mut child: Child) -> Option<std::process::ExitStatus> {
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + SHUTDOWN_WAIT_MAX;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Makes the child die with the test process even when the test aborts without unwinding.
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn spawn_log_reader(
    stream_name: &'static str,
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    mut ready_tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = ready_tx.as_ref() {
                if let Some(url) = line.trim().strip_prefix(READY_PREFIX) {
                    let _ = tx.send(url.trim().to_string());
                    ready_tx = None;
                }
            }
            if let Ok(mut lines) = log.lock() {
                if lines.len() >= LOG_LINES_MAX {
                    lines.remove(0);
                }
                lines.push(format!("[{stream_name}] {line}"));
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

pub const JSON_CONTENT_TYPE: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");

/// An Authorization header shaped like an SDK's SigV4 one, with a signature that proves nothing:
/// the server accepts any credentials, and a raw request should otherwise look like a client's.
pub const UNSIGNED_AUTH: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, \
     SignedHeaders=content-type;host;x-amz-target, \
     Signature=0000000000000000000000000000000000000000000000000000000000000000",
);

/// A whole HTTP response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in wire order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("response body is not JSON ({e}): status {} body {:?}", self.status, self.body_text())
        })
    }
}

/// One request, `request_line` being its method and path.
fn raw_http(
    addr: SocketAddr,
    request_line: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{request_line} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer and close before taking a huge body; what it answered still counts.
    let write_result = stream.write_all(body).and_then(|_| stream.flush());
    let mut raw = Vec::new();
    let read_result = read_to_end_lenient(&mut stream, &mut raw);
    if raw.is_empty() {
        write_result?;
        read_result?;
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed without a response"));
    }
    parse_response(&raw)
}

/// Reads until EOF, but keeps what arrived before a reset.
fn read_to_end_lenient(stream: &mut TcpStream, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn parse_response(raw: &[u8]) -> std::io::Result<RawResponse> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 =
        status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let rest = &raw[head_end + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        decode_chunked(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if rest.len() < len {
            return Err(bad("body shorter than content-length"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(RawResponse { status, headers, body })
}

fn decode_chunked(mut input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = input.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&input[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        input = &input[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(input.get(..size)?);
        input = input.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Values and tables

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item (or key) from name/value pairs.
pub fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn hash_key(name: &str) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Hash).build().unwrap()
}

pub fn range_key(name: &str) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Range).build().unwrap()
}

pub fn attr_def(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().unwrap()
}

/// Creates an on-demand table keyed by `pk` (S) and, when given, `sk` of the given type.
pub async fn create_table(client: &Client, name: &str, sort: Option<(&str, ScalarAttributeType)>) {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S));
    if let Some((sk, kind)) = sort {
        req = req.key_schema(range_key(sk)).attribute_definitions(attr_def(sk, kind));
    }
    req.send().await.unwrap_or_else(|e| panic!("create table {name}: {}", err_text(&e)));
}

pub async fn put(client: &Client, table: &str, it: Item) {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put item into {table}: {}", err_text(&e)));
}

/// Puts an item, waiting out throttling as a DynamoDB client does (bounded): for tests that
/// write more than a new table's burst capacity and are about something else.
pub async fn put_waiting_out_throttling(client: &Client, table: &str, it: Item) {
    const ATTEMPTS_MAX: u32 = 200;
    for attempt in 1..=ATTEMPTS_MAX {
        match client.put_item().table_name(table).set_item(Some(it.clone())).send().await {
            Ok(_) => return,
            Err(e) => {
                let text = err_text(&e);
                let throttled = text.contains("ThrottlingException") || text.contains("ProvisionedThroughputExceeded");
                assert!(throttled && attempt < ATTEMPTS_MAX, "put item into {table}: {text}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn get(client: &Client, table: &str, key: Item) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get item from {table}: {}", err_text(&e)))
        .item
}

// ---------------------------------------------------------------------------------------------
// Errors

/// What a client sees of a service error.
#[derive(Debug, Clone)]
pub struct ServiceError {
    /// The `__type` after its `#`, e.g. `ValidationException`.
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
}

/// Unwraps the error of a call that must fail with a service error.
pub fn service_error<T: std::fmt::Debug, E, R>(result: Result<T, SdkError<E, R>>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match result {
        Ok(value) => panic!("expected a service error, the call succeeded with {value:?}"),
        Err(SdkError::ServiceError(ctx)) => {
            let err = ctx.err();
            ServiceError {
                code: err.code().unwrap_or_default().to_string(),
                message: err.message().unwrap_or_default().to_string(),
                status: Some(ctx.raw().status_code()),
            }
        }
        Err(other) => panic!("expected a service error, got {}", err_text(&other)),
    }
}

/// Asserts a service error of the given code and returns it.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug, E, R>(result: Result<T, SdkError<E, R>>, code: &str) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let err = service_error(result);
    assert_eq!(err.code, code, "error code; message: {:?}", err.message);
    assert!(!err.message.trim().is_empty(), "{code} must carry a message");
    assert_eq!(err.status, Some(400), "{code} is an HTTP 400");
    err
}

/// Asserts a ValidationException whose message contains `fragment`.
#[track_caller]
pub fn expect_validation<T: std::fmt::Debug, E, R>(result: Result<T, SdkError<E, R>>, fragment: &str) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let err = expect_error(result, "ValidationException");
    assert!(
        err.message.contains(fragment),
        "ValidationException message {:?} should contain {fragment:?}",
        err.message
    );
    err
}

/// HTTP status of the raw response an SDK error carries.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_dynamodb::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Full error text, including the source chain, for panic messages.
pub fn err_text<E: std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e))
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `probe` until it returns `Some` or `timeout` passes. Global secondary indexes are
/// eventually consistent in DynamoDB, so clients poll them; tests do the same.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bound on waiting for index backfill or eventual consistency.
pub const CONVERGE_WAIT: Duration = Duration::from_secs(20);
