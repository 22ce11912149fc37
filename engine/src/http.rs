//! DynamoDB's HTTP transport: JSON bodies over HTTP/1.1, the operation in `X-Amz-Target`, and
//! the `x-amz-crc32` header the AWS SDKs check. `serve` is the whole server loop; the binary,
//! the tests and the simulator all call it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::api::{ApiError, Service, REQUEST_BYTES_MAX};
use crate::metrics::Metrics;
use crate::net::Listener;
use crate::resources::{take_work, Stage, Work};

/// Prefix of `X-Amz-Target` values.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// Prefix of the targets of Squall's own administration operations (a cluster's replicas,
/// splits); the operation reaches the handler as `Admin.<name>`.
pub const ADMIN_TARGET_PREFIX: &str = "SquallAdmin.";
/// What the handler sees in front of an administration operation's name.
pub const ADMIN_OPERATION_PREFIX: &str = "Admin.";

/// The operation an `X-Amz-Target` names: a DynamoDB operation by its name, an administration
/// operation as `Admin.<name>`. A DynamoDB target whose name has a dot names nothing, so a
/// client cannot reach administration or internal operations through it.
fn operation_of_target(target: &str) -> Option<String> {
    if let Some(name) = target.strip_prefix(ADMIN_TARGET_PREFIX) {
        return (!name.is_empty()).then(|| format!("{ADMIN_OPERATION_PREFIX}{name}"));
    }
    target.strip_prefix(TARGET_PREFIX).filter(|name| !name.contains('.')).map(str::to_string)
}
/// Content type of requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Content type of `GET /metrics`: Prometheus' text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";
/// How long a graceful shutdown waits for connections to finish their requests.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Most connections served at once; further connections wait in the accept queue.
pub const CONNECTIONS_MAX: usize = 4_096;
/// How long a client may take to send a request's headers before its connection is closed,
/// so that slow or stalled clients cannot hold connection slots forever.
pub const HEADER_READ_TIMEOUT_MS: u64 = 30_000;

/// Settings of the HTTP server.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// See [`HEADER_READ_TIMEOUT_MS`].
    pub header_read_timeout_ms: u64,
    /// See [`CONNECTIONS_MAX`].
    pub connections_max: usize,
    /// The node's modelled hardware, which requests pay for their work (simulation only).
    pub resources: Option<crate::resources::Resources>,
    /// Where requests are counted and timed, served at `GET /metrics`.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS,
            connections_max: CONNECTIONS_MAX,
            resources: None,
            metrics: None,
        }
    }
}

/// hyper's timer over this crate's `tokio`, so that server timeouts follow simulated time under
/// the simulator (hyper-util's timer would reach for the real tokio runtime).
#[derive(Clone, Copy, Debug, Default)]
struct RuntimeTimer;

/// A sleep hyper can hold: the mutex makes any runtime's sleep future `Sync`.
struct RuntimeSleep(std::sync::Mutex<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl Future for RuntimeSleep {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let mut sleep = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for RuntimeSleep {}

impl hyper::rt::Timer for RuntimeTimer {
    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RuntimeSleep(std::sync::Mutex::new(Box::pin(tokio::time::sleep(duration)))))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        // Under madsim the two `Instant`s are one type; in a real build they differ.
        #[allow(clippy::useless_conversion)]
        let deadline = tokio::time::Instant::from(deadline);
        Box::pin(RuntimeSleep(std::sync::Mutex::new(Box::pin(tokio::time::sleep_until(deadline)))))
    }
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish their current request, and returns.
pub async fn serve(
    listener: Box<dyn Listener>,
    service: impl Handler,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, service, shutdown, HttpConfig::default()).await
}

/// [`serve`] with explicit settings.
pub async fn serve_with(
    mut listener: Box<dyn Listener>,
    service: impl Handler,
    shutdown: impl Future<Output = ()>,
    config: HttpConfig,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let connection_slots = Arc::new(tokio::sync::Semaphore::new(config.connections_max));
    let request_ids = Arc::new(AtomicU64::new(1));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connection_slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = service.clone();
        let header_read_timeout_ms = config.header_read_timeout_ms;
        let mut stop = stop_rx.clone();
        let request_ids = request_ids.clone();
        let resources = config.resources.clone();
        let metrics = config.metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handler = hyper::service::service_fn(move |request| {
                let (service, resources, metrics) = (service.clone(), resources.clone(), metrics.clone());
                let id = request_ids.fetch_add(1, Ordering::Relaxed);
                async move { Ok::<_, Infallible>(handle_metered(service, request, id, resources, metrics).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(RuntimeTimer)
                .header_read_timeout(Duration::from_millis(header_read_timeout_ms))
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), connection).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Wait until every connection task has returned its slot, bounded by the grace period.
    let _ = tokio::time::timeout(
        Duration::from_millis(SHUTDOWN_GRACE_MS),
        connection_slots.acquire_many(config.connections_max as u32),
    )
    .await;
    Ok(())
}

/// What answers the API requests the HTTP layer receives: the local [`Service`] on a single
/// node, the cluster's router on a clustered one.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Runs one operation on a JSON request body.
    fn handle(
        &self,
        operation: String,
        body: Bytes,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send;
}

impl Handler for Service {
    async fn handle(&self, operation: String, body: Bytes) -> Result<serde_json::Value, ApiError> {
        let service = self.clone();
        run_blocking(move || service.call(&operation, &body)).await
    }
}

impl Handler for crate::cluster::router::Router {
    async fn handle(&self, operation: String, body: Bytes) -> Result<serde_json::Value, ApiError> {
        if body.len() > REQUEST_BYTES_MAX {
            return Err(ApiError::RequestTooLarge(format!(
                "Request size {} exceeded {REQUEST_BYTES_MAX} bytes",
                body.len()
            )));
        }
        self.call(&operation, &body).await
    }
}

/// Handles a request; with modelled hardware, counts the request's bytes as received and waits
/// for the response's bytes to leave the node's network link before answering.
async fn handle_metered(
    service: impl Handler,
    request: Request<Incoming>,
    request_id: u64,
    resources: Option<crate::resources::Resources>,
    metrics: Option<Arc<Metrics>>,
) -> Response<Full<Bytes>> {
    let Some(model) = resources.clone() else {
        return handle(service, request, request_id, None, metrics).await;
    };
    let head_bytes = request_head_bytes(&request);
    let body_bytes = hyper::body::Body::size_hint(request.body()).exact().unwrap_or(0);
    model.0.receive(head_bytes + body_bytes);
    let response = handle(service, request, request_id, resources, metrics).await;
    model.0.transmit(response_bytes(&response)).await;
    response
}

/// Bytes of a request's start line and headers as HTTP/1.1 sends them.
fn request_head_bytes<B>(request: &Request<B>) -> u64 {
    let start_line = request.method().as_str().len() + 1 + request.uri().to_string().len() + " HTTP/1.1\r\n".len();
    (start_line + headers_bytes(request.headers())) as u64
}

/// Bytes of a response as HTTP/1.1 sends it: status line, headers, a content length and the body.
fn response_bytes(response: &Response<Full<Bytes>>) -> u64 {
    let body = hyper::body::Body::size_hint(response.body()).exact().unwrap_or(0);
    let status_line = "HTTP/1.1 200 OK\r\n".len();
    let content_length = "content-length: \r\n".len() + body.to_string().len();
    (status_line + headers_bytes(response.headers()) + content_length) as u64 + body
}

/// Bytes of a header block: `name: value\r\n` per header and the blank line that ends it.
fn headers_bytes(headers: &hyper::HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum::<usize>() + 2
}

async fn handle(
    service: impl Handler,
    request: Request<Incoming>,
    request_id: u64,
    resources: Option<crate::resources::Resources>,
    metrics: Option<Arc<Metrics>>,
) -> Response<Full<Bytes>> {
    let request_id = format!("{request_id:016X}");
    if request.method() == Method::GET {
        if let (Some(metrics), "/metrics") = (&metrics, request.uri().path()) {
            return respond(StatusCode::OK, METRICS_CONTENT_TYPE, Bytes::from(metrics.render()), &request_id);
        }
        // Load balancers and DynamoDB itself answer a plain GET as a health check.
        return respond(StatusCode::OK, "text/plain", Bytes::from_static(b"healthy: squall"), &request_id);
    }
    let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match Limited::new(request.into_body(), REQUEST_BYTES_MAX).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let api_error = if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::RequestTooLarge(format!("Request size exceeded {REQUEST_BYTES_MAX} bytes"))
            } else {
                ApiError::Serialization(format!("could not read the request body: {error}"))
            };
            return error_response(&api_error, &request_id, "-");
        }
    };
    let operation = match target.as_deref().and_then(operation_of_target) {
        Some(operation) => operation,
        None => {
            let error = ApiError::UnknownOperation(match target {
                Some(t) => format!("Unknown operation: {t}"),
                None => "Missing X-Amz-Target header".into(),
            });
            return error_response(&error, &request_id, "-");
        }
    };
    let started = tokio::time::Instant::now();
    if let Some(resources) = &resources {
        let stage = Stage::Request { operation: &operation, body_bytes: body.len() as u64 };
        resources.0.pay(stage, Work::default()).await;
    }
    let result = service.handle(operation.clone(), body).await;
    if let Some(resources) = &resources {
        // Taken before the next await, so it is this request's storage work (see resources).
        let work = take_work();
        if !work.is_empty() {
            resources.0.pay(Stage::Local, work).await;
        }
    }
    let elapsed = started.elapsed();
    if let Some(metrics) = &metrics {
        let outcome = match &result {
            Ok(_) => "ok",
            // The short name, as DynamoDB's documentation and CloudWatch's metrics give it.
            Err(error) => error.type_name().rsplit('#').next().unwrap_or("error"),
        };
        metrics.record_request(&operation, outcome, elapsed);
    }
    let elapsed_us = elapsed.as_micros() as u64;
    match result {
        Ok(value) => {
            tracing::debug!(operation, elapsed_us, "ok");
            let body = serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec());
            respond(StatusCode::OK, CONTENT_TYPE, Bytes::from(body), &request_id)
        }
        Err(error) => {
            if let ApiError::Internal(message) = &error {
                tracing::error!(operation, elapsed_us, message, "internal error");
            } else {
                tracing::debug!(operation, elapsed_us, error = %error, "client error");
            }
            error_response(&error, &request_id, &operation)
        }
    }
}

/// Runs a synchronous operation (RocksDB calls and fsyncs). In real mode it goes to the blocking
/// pool so one slow disk write does not stall other connections; under the simulator there is
/// one thread and storage costs no simulated time, so it runs inline.
async fn run_blocking(
    operation: impl FnOnce() -> Result<serde_json::Value, ApiError> + Send + 'static,
) -> Result<serde_json::Value, ApiError> {
    #[cfg(not(madsim))]
    {
        match tokio::task::spawn_blocking(operation).await {
            Ok(result) => result,
            Err(error) => Err(ApiError::Internal(format!("operation failed: {error}"))),
        }
    }
    #[cfg(madsim)]
    {
        operation()
    }
}

fn error_response(error: &ApiError, request_id: &str, operation: &str) -> Response<Full<Bytes>> {
    let _ = operation;
    let body = serde_json::to_vec(&error.to_json()).unwrap_or_else(|_| b"{}".to_vec());
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, CONTENT_TYPE, Bytes::from(body), request_id)
}

fn respond(status: StatusCode, content_type: &str, body: Bytes, request_id: &str) -> Response<Full<Bytes>> {
    let crc = crc32fast::hash(&body);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_str(content_type)
            .unwrap_or(hyper::header::HeaderValue::from_static(CONTENT_TYPE)),
    );
    headers.insert("x-amz-crc32", hyper::header::HeaderValue::from(crc));
    if let Ok(id) = hyper::header::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_counts_as_the_bytes_http_1_1_sends() {
        let response = respond(StatusCode::OK, CONTENT_TYPE, Bytes::from_static(b"{}"), "ID");
        let crc = crc32fast::hash(b"{}");
        let wire = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {CONTENT_TYPE}\r\nx-amz-crc32: {crc}\r\nx-amzn-requestid: ID\r\n\
             content-length: 2\r\n\r\n{{}}"
        );
        assert_eq!(response_bytes(&response), wire.len() as u64);
    }

    #[test]
    fn a_request_head_counts_its_start_line_and_headers() {
        let request = Request::builder().method("POST").uri("/").header("x-amz-target", "A").body(()).unwrap();
        assert_eq!(request_head_bytes(&request), "POST / HTTP/1.1\r\nx-amz-target: A\r\n\r\n".len() as u64);
    }
}
