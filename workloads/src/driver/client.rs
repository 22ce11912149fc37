//! `DynamoClient`: DynamoDB's JSON protocol over pooled HTTP/1.1 keep-alive connections.
//!
//! Each call signs the request with SigV4 (time from the configured clock), takes an idle
//! connection or dials a new one, sends the request, reads the whole response, returns the
//! connection to the pool and decodes the body. The pool holds at most `connections_max`
//! connections, which is also the most requests in flight at once; further calls wait for a
//! slot. The whole call — waiting for a slot, dialling, sending and reading — is bounded by
//! `request_timeout`.
//!
//! Architecture Invariant: nothing here reads a clock other than the configured one and
//! `tokio::time`, spawns a thread or draws randomness, so under madsim the client runs on
//! simulated TCP and simulated time and stays deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::sigv4::{self, Credentials, SignableRequest, SigningParams, UtcDateTime};

/// Prefix of `X-Amz-Target` values.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// Prefix of Squall's administration operations: an operation named with it (for example
/// `SquallAdmin.DescribeReplicas`) is sent with that target as it is.
pub const ADMIN_TARGET_PREFIX: &str = "SquallAdmin.";
/// Content type of DynamoDB requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// SigV4 service name of DynamoDB.
pub const SERVICE: &str = "dynamodb";

/// Where request times come from. In the simulator `SystemTime::now` is simulated time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock (madsim intercepts it in a simulated build).
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// A connected byte stream a client sends requests on.
pub trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// What a dial returns.
pub type Dialing = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Box<dyn Connection>>> + Send>>;

/// Opens connections to `host:port` addresses: TCP unless the simulator brings its own network.
pub type Dialer = Arc<dyn Fn(String) -> Dialing + Send + Sync>;

/// Dials over the host's TCP stack, with Nagle's algorithm off: requests are written whole and
/// the tail of one must not wait for an acknowledgement.
pub fn tcp_dialer() -> Dialer {
    Arc::new(|address: String| {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as Box<dyn Connection>)
        })
    })
}

/// How a client reaches and authenticates to an endpoint.
#[derive(Clone)]
pub struct ClientConfig {
    /// `http://host:port` (no path; TLS is not supported). Port 80 when absent.
    pub endpoint: String,
    /// Credentials requests are signed with.
    pub credentials: Credentials,
    /// Region of the signature's credential scope.
    pub region: String,
    /// Bound on a whole call, from waiting for a connection to the last byte of the response.
    pub request_timeout: Duration,
    /// Most connections open at once, idle or busy; also the most calls in flight.
    pub connections_max: usize,
    /// Largest response body accepted; a larger one is a protocol error.
    pub response_bytes_max: usize,
    /// Source of the signature time.
    pub clock: Clock,
    /// How connections are opened.
    pub dialer: Dialer,
}

impl ClientConfig {
    /// Defaults: placeholder credentials (a local endpoint accepts any), `us-east-1`, a 10 s
    /// request timeout, 16 connections, 32 MiB responses and the system clock.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            credentials: Credentials::new("squall", "squall"),
            region: "us-east-1".to_string(),
            request_timeout: Duration::from_secs(10),
            connections_max: 16,
            response_bytes_max: 32 << 20,
            clock: system_clock(),
            dialer: tcp_dialer(),
        }
    }

    /// Sets the credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Sets the per-call timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the pool size.
    pub fn with_connections_max(mut self, connections_max: usize) -> Self {
        self.connections_max = connections_max;
        self
    }

    /// Sets the largest response body accepted.
    pub fn with_response_bytes_max(mut self, response_bytes_max: usize) -> Self {
        self.response_bytes_max = response_bytes_max;
        self
    }

    /// Sets the clock signatures are dated with.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how connections are opened.
    pub fn with_dialer(mut self, dialer: Dialer) -> Self {
        self.dialer = dialer;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("request_timeout", &self.request_timeout)
            .field("connections_max", &self.connections_max)
            .field("response_bytes_max", &self.response_bytes_max)
            .finish_non_exhaustive()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The service answered with a DynamoDB error.
    #[error("{type_name}: {message} (HTTP {status})")]
    Service {
        /// The error type, the part of `__type` after `#`, e.g. `ConditionalCheckFailedException`.
        type_name: String,
        /// The error message (`message` or `Message`; empty if absent).
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// No complete response within the request timeout.
    #[error("no response within {after:?}")]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// The TCP connection could not be opened.
    #[error("connect to {endpoint}: {source}")]
    Connect {
        /// The address dialled.
        endpoint: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed or closed before the response was complete.
    #[error("connection failed: {0}")]
    Io(String),
    /// The peer sent something that is not a valid DynamoDB response: bad HTTP, a body that is
    /// not JSON, a checksum mismatch, a response too large.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The configuration cannot work (a malformed endpoint, for instance).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The request cannot be sent (an operation name that is not a valid header value, for
    /// instance). Nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl DriverError {
    /// The DynamoDB error type, for service errors.
    pub fn type_name(&self) -> Option<&str> {
        match self {
            DriverError::Service { type_name, .. } => Some(type_name),
            _ => None,
        }
    }

    /// The service refused the request for lack of capacity; back off and retry.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.type_name(),
            Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded")
        )
    }

    /// A condition expression evaluated false.
    pub fn is_conditional_check_failed(&self) -> bool {
        self.type_name() == Some("ConditionalCheckFailedException")
    }

    /// Whether retrying the same request may succeed: throttling, server-side errors and
    /// transport failures. Note that after a `Timeout` or an `Io` error a write may or may not
    /// have been applied.
    pub fn is_retryable(&self) -> bool {
        match self {
            DriverError::Service { status, .. } => {
                self.is_throttling()
                    || *status >= 500
                    || matches!(self.type_name(), Some("InternalServerError" | "ServiceUnavailableException"))
            }
            DriverError::Timeout { .. } | DriverError::Connect { .. } | DriverError::Io(_) => true,
            DriverError::Protocol(_) | DriverError::Config(_) | DriverError::InvalidRequest(_) => false,
        }
    }
}

/// `http://host[:port]` split into what is dialled and what is sent as `Host`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    /// The `Host` header and the signed `host`: the authority as written.
    authority: String,
    /// `host:port` to connect to.
    dial: String,
}

impl Endpoint {
    fn parse(endpoint: &str) -> Result<Self, DriverError> {
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            DriverError::Config(format!("endpoint {endpoint:?} must start with http:// (TLS is not supported)"))
        })?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(DriverError::Config(format!(
                "endpoint {endpoint:?} must be http://host[:port] without a path"
            )));
        }
        // An IPv6 literal ends with `]` unless a port follows it.
        let has_port = match authority.rsplit_once(':') {
            Some((host, port)) => {
                !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && (!host.contains(':') || host.ends_with(']'))
            }
            None => false,
        };
        if !has_port && authority.contains(':') && !authority.ends_with(']') {
            return Err(DriverError::Config(format!("endpoint {endpoint:?} has an invalid port")));
        }
        let dial = if has_port { authority.to_string() } else { format!("{authority}:80") };
        Ok(Endpoint { authority: authority.to_string(), dial })
    }
}

type Sender = SendRequest<Full<Bytes>>;

struct Inner {
    config: ClientConfig,
    endpoint: Endpoint,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Sender>>,
    /// One permit per connection the pool may hold; a call holds one while it runs.
    slots: Semaphore,
    connections_opened: AtomicU64,
}

/// A DynamoDB client over a small pool of keep-alive HTTP/1.1 connections. Cheap to clone;
/// clones share the pool.
#[derive(Clone)]
pub struct DynamoClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for DynamoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoClient")
            .field("endpoint", &self.inner.config.endpoint)
            .field("connections_opened", &self.connections_opened())
            .finish_non_exhaustive()
    }
}

impl DynamoClient {
    /// A client for `config.endpoint`. Connects lazily, on the first call.
    pub fn new(config: ClientConfig) -> Result<Self, DriverError> {
        let endpoint = Endpoint::parse(&config.endpoint)?;
        if config.connections_max == 0 || config.connections_max > Semaphore::MAX_PERMITS {
            return Err(DriverError::Config(format!("connections_max {} is out of range", config.connections_max)));
        }
        let inner = Inner {
            slots: Semaphore::new(config.connections_max),
            idle: Mutex::new(Vec::with_capacity(config.connections_max)),
            connections_opened: AtomicU64::new(0),
            endpoint,
            config,
        };
        Ok(DynamoClient { inner: Arc::new(inner) })
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// TCP connections dialled so far (successful connects only).
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections_opened.load(Ordering::Relaxed)
    }

    /// Connections idle in the pool right now.
    pub fn connections_idle(&self) -> usize {
        self.inner.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Calls `operation` (`PutItem`, `Query`, ...) with a JSON request body and returns the JSON
    /// response body.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value, DriverError> {
        let payload =
            serde_json::to_vec(&body).map_err(|e| DriverError::InvalidRequest(format!("encode body: {e}")))?;
        let response = self.call_bytes(operation, Bytes::from(payload)).await?;
        serde_json::from_slice(&response).map_err(|e| DriverError::Protocol(format!("response body is not JSON: {e}")))
    }

    /// Calls `operation` with an already encoded JSON body and returns the raw response body
    /// of a successful call (checksum verified, not parsed).
    pub async fn call_bytes(&self, operation: &str, body: Bytes) -> Result<Bytes, DriverError> {
        let after = self.inner.config.request_timeout;
        match tokio::time::timeout(after, self.exchange(operation, body)).await {
            Ok(result) => result,
            Err(_) => Err(DriverError::Timeout { after }),
        }
    }

    async fn exchange(&self, operation: &str, body: Bytes) -> Result<Bytes, DriverError> {
        let request = self.build_request(operation, body)?;
        let _slot = self.inner.slots.acquire().await.map_err(|_| DriverError::Io("client pool closed".into()))?;
        let (mut sender, reused) = self.checkout().await?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => match error.take_message() {
                // A kept-alive connection closed before the request was written: the server
                // saw nothing, so sending it once on a fresh connection cannot apply it twice.
                Some(request) if reused => {
                    sender = self.dial().await?;
                    sender.send_request(request).await.map_err(transport_error)?
                }
                _ => return Err(transport_error(error.into_error())),
            },
        };
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, self.inner.config.response_bytes_max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                return Err(match error.downcast::<hyper::Error>() {
                    Ok(error) => transport_error(*error),
                    Err(error) => DriverError::Protocol(format!(
                        "response body over {} bytes: {error}",
                        self.inner.config.response_bytes_max
                    )),
                })
            }
        };
        // The response is complete, so the connection is free for the next request.
        self.checkin(sender);
        decode(parts.status, &parts.headers, body)
    }

    fn build_request(&self, operation: &str, body: Bytes) -> Result<Request<Full<Bytes>>, DriverError> {
        let config = &self.inner.config;
        // Squall's administration operations carry their own target prefix.
        let target = if operation.starts_with(ADMIN_TARGET_PREFIX) {
            operation.to_string()
        } else {
            format!("{TARGET_PREFIX}{operation}")
        };
        let headers = [
            ("host", self.inner.endpoint.authority.as_str()),
            ("x-amz-target", target.as_str()),
            ("content-type", CONTENT_TYPE),
        ];
        let params = SigningParams {
            credentials: &config.credentials,
            region: &config.region,
            service: SERVICE,
            time: UtcDateTime::from_system_time((config.clock)()),
        };
        let signed =
            sigv4::sign(&params, &SignableRequest { method: "POST", path: "/", headers: &headers, body: &body });
        let mut builder = Request::post("/");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        for (name, value) in signed.headers {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(body)).map_err(|e| DriverError::InvalidRequest(format!("{operation:?}: {e}")))
    }

    /// An idle connection that is still open, or a new one. The flag says whether it was reused.
    async fn checkout(&self) -> Result<(Sender, bool), DriverError> {
        // Bounded: each turn removes one connection from a pool of at most `connections_max`.
        for _ in 0..=self.inner.config.connections_max {
            let Some(mut sender) = self.inner.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
                break;
            };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        Ok((self.dial().await?, false))
    }

    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            if idle.len() < self.inner.config.connections_max {
                idle.push(sender);
            }
        }
    }

    async fn dial(&self) -> Result<Sender, DriverError> {
        let address = self.inner.endpoint.dial.as_str();
        let stream = (self.inner.config.dialer)(address.to_string())
            .await
            .map_err(|source| DriverError::Connect { endpoint: address.to_string(), source })?;
        self.inner.connections_opened.fetch_add(1, Ordering::Relaxed);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(transport_error)?;
        // The connection task ends when the connection closes or every sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

fn transport_error(error: hyper::Error) -> DriverError {
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() {
        DriverError::Protocol(format!("bad HTTP response: {error}"))
    } else {
        DriverError::Io(error.to_string())
    }
}

/// Checks the response checksum, then returns the body of a success or the service error.
fn decode(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Result<Bytes, DriverError> {
    if let Some(value) = headers.get("x-amz-crc32") {
        let expected: u32 = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| DriverError::Protocol(format!("unreadable x-amz-crc32 header {value:?}")))?;
        let actual = crc32fast::hash(&body);
        if expected != actual {
            return Err(DriverError::Protocol(format!(
                "x-amz-crc32 mismatch: header says {expected}, body of {} bytes has {actual}",
                body.len()
            )));
        }
    }
    if status.is_success() {
        return Ok(body);
    }
    Err(service_error(status, &body))
}

/// DynamoDB's error body: `{"__type": "com.amazonaws.dynamodb.v20120810#Name", "message": ".."}`.
fn service_error(status: StatusCode, body: &[u8]) -> DriverError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let Some(Value::Object(fields)) = parsed else {
        return DriverError::Protocol(format!("HTTP {status} with a body that is not a JSON object"));
    };
    let Some(type_field) = fields.get("__type").and_then(Value::as_str) else {
        return DriverError::Protocol(format!("HTTP {status} error without __type"));
    };
    let type_name = type_field.rsplit_once('#').map_or(type_field, |(_, name)| name).to_string();
    let message =
        fields.get("message").or_else(|| fields.get("Message")).and_then(Value::as_str).unwrap_or_default().to_string();
    DriverError::Service { type_name, message, status: status.as_u16() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use proptest::prelude::*;

    fn endpoint(text: &str) -> Result<(String, String), DriverError> {
        Endpoint::parse(text).map(|e| (e.authority, e.dial))
    }

    #[test]
    fn endpoints_parse_into_authority_and_dial_address() {
        let pair = |a: &str, d: &str| (a.to_string(), d.to_string());
        assert_eq!(endpoint("http://127.0.0.1:8000").unwrap(), pair("127.0.0.1:8000", "127.0.0.1:8000"));
        assert_eq!(endpoint("http://localhost:8000/").unwrap(), pair("localhost:8000", "localhost:8000"));
        assert_eq!(endpoint("http://dynamodb.local").unwrap(), pair("dynamodb.local", "dynamodb.local:80"));
        assert_eq!(endpoint("http://[::1]:8000").unwrap(), pair("[::1]:8000", "[::1]:8000"));
        assert_eq!(endpoint("http://[::1]").unwrap(), pair("[::1]", "[::1]:80"));
        for bad in ["https://host:443", "host:8000", "http://", "http://host:8000/path", "http://host:x", "http://a b"]
        {
            assert!(matches!(endpoint(bad), Err(DriverError::Config(_))), "{bad} accepted");
        }
    }

    fn crc_headers(body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-crc32", HeaderValue::from(crc32fast::hash(body)));
        headers
    }

    #[test]
    fn a_success_with_a_matching_checksum_returns_the_body() {
        let body = Bytes::from_static(br#"{"Item":{}}"#);
        assert_eq!(decode(StatusCode::OK, &crc_headers(&body), body.clone()).unwrap(), body);
        // No checksum header: nothing to verify.
        assert_eq!(decode(StatusCode::OK, &HeaderMap::new(), body.clone()).unwrap(), body);
    }

    #[test]
    fn a_checksum_mismatch_is_a_protocol_error() {
        let headers = crc_headers(b"{}");
        let error = decode(StatusCode::OK, &headers, Bytes::from_static(b"{ }")).unwrap_err();
        assert!(matches!(error, DriverError::Protocol(ref m) if m.contains("x-amz-crc32")), "{error}");
        let mut unreadable = HeaderMap::new();
        unreadable.insert("x-amz-crc32", HeaderValue::from_static("not-a-number"));
        assert!(matches!(decode(StatusCode::OK, &unreadable, Bytes::new()), Err(DriverError::Protocol(_))));
    }

    #[test]
    fn service_errors_keep_the_type_after_the_hash_and_either_message_spelling() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
        let error = decode(StatusCode::BAD_REQUEST, &crc_headers(body), Bytes::from_static(body)).unwrap_err();
        assert!(error.is_conditional_check_failed());
        assert!(!error.is_throttling());
        assert!(!error.is_retryable());
        match error {
            DriverError::Service { type_name, message, status } => {
                assert_eq!(type_name, "ConditionalCheckFailedException");
                assert_eq!(message, "The conditional request failed");
                assert_eq!(status, 400);
            }
            other => panic!("unexpected {other:?}"),
        }

        let body = br#"{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}"#;
        let error = decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), Bytes::from_static(body)).unwrap_err();
        assert_eq!(error.type_name(), Some("ValidationException"));
        assert!(matches!(error, DriverError::Service { ref message, .. } if message == "bad"));

        let body = br#"{"__type":"ThrottlingException"}"#;
        let error = decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), Bytes::from_static(body)).unwrap_err();
        assert!(error.is_throttling() && error.is_retryable());
        assert!(matches!(error, DriverError::Service { ref message, .. } if message.is_empty()));
    }

    #[test]
    fn throttling_types() {
        let service = |name: &str| DriverError::Service { type_name: name.into(), message: String::new(), status: 400 };
        for name in ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"] {
            assert!(service(name).is_throttling(), "{name}");
        }
        assert!(!service("ResourceNotFoundException").is_throttling());
        let internal =
            DriverError::Service { type_name: "InternalServerError".into(), message: String::new(), status: 500 };
        assert!(internal.is_retryable());
        assert!(DriverError::Timeout { after: Duration::from_secs(1) }.is_retryable());
        assert!(!DriverError::Protocol("x".into()).is_retryable());
    }

    #[test]
    fn error_bodies_that_are_not_dynamodb_errors_are_protocol_errors() {
        for body in [&b"<html>503</html>"[..], b"[]", b"{}", br#"{"__type":5}"#, b""] {
            let error = decode(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), Bytes::copy_from_slice(body));
            assert!(matches!(error, Err(DriverError::Protocol(_))), "{body:?}");
        }
    }

    #[test]
    fn requests_carry_the_target_content_type_and_signature() {
        let fixed: Clock = Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160));
        let config = ClientConfig::new("http://127.0.0.1:8000").with_clock(fixed);
        let client = DynamoClient::new(config).unwrap();
        let request = client.build_request("GetItem", Bytes::from_static(b"{}")).unwrap();
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "/");
        assert_eq!(header("host"), "127.0.0.1:8000");
        assert_eq!(header("x-amz-target"), "DynamoDB_20120810.GetItem");
        assert_eq!(header("content-type"), CONTENT_TYPE);
        assert_eq!(header("x-amz-date"), "20150830T123600Z");
        assert!(header("authorization").starts_with(
            "AWS4-HMAC-SHA256 Credential=squall/20150830/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
        ));
        assert!(matches!(client.build_request("Get\nItem", Bytes::new()), Err(DriverError::InvalidRequest(_))));
    }

    #[test]
    fn a_pool_of_zero_connections_is_refused() {
        let config = ClientConfig::new("http://127.0.0.1:8000").with_connections_max(0);
        assert!(matches!(DynamoClient::new(config), Err(DriverError::Config(_))));
    }

    proptest! {
        // Whatever a server sends back, decoding returns a value or an error; it never panics.
        #[test]
        fn decode_never_panics(status in 100u16..600, body in any::<Vec<u8>>(), crc in any::<Option<u32>>()) {
            let mut headers = HeaderMap::new();
            if let Some(crc) = crc {
                headers.insert("x-amz-crc32", HeaderValue::from(crc));
            }
            let status = StatusCode::from_u16(status).unwrap();
            let _ = decode(status, &headers, Bytes::from(body));
        }

        #[test]
        fn endpoint_parsing_never_panics(text in any::<String>()) {
            let _ = Endpoint::parse(&text);
            let _ = Endpoint::parse(&format!("http://{text}"));
        }
    }
}
