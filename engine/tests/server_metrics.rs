//! A server's `GET /metrics`: requests counted by operation and outcome, their latency, and the
//! latency of the node's synced storage writes, in Prometheus' text format.

#![cfg(not(madsim))]

mod common;

use common::*;

/// The value of the sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_and_time_synced_writes() {
    let server = TestServer::start();
    let client = server.client();
    let before = server.get("/metrics");
    assert_eq!(before.status, 200);
    assert_eq!(before.header("content-type"), Some("text/plain; version=0.0.4"));

    create_table(&client, "metered", None).await;
    for i in 0..5 {
        client.put_item().table_name("metered").item("pk", s(&format!("k{i}"))).item("v", n(i)).send().await.unwrap();
    }
    for i in 0..3 {
        client.get_item().table_name("metered").key("pk", s(&format!("k{i}"))).send().await.unwrap();
    }
    let missing = client.get_item().table_name("absent").key("pk", s("k")).send().await;
    assert!(missing.is_err());

    let text = server.get("/metrics").body_text();
    assert_eq!(sample(&text, "squall_requests_total{operation=\"PutItem\",outcome=\"ok\"}"), Some(5.0), "{text}");
    assert_eq!(sample(&text, "squall_requests_total{operation=\"GetItem\",outcome=\"ok\"}"), Some(3.0));
    assert_eq!(
        sample(&text, "squall_requests_total{operation=\"GetItem\",outcome=\"ResourceNotFoundException\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "squall_request_seconds_count{operation=\"GetItem\"}"), Some(4.0));
    let put_p50 = sample(&text, "squall_request_seconds{operation=\"PutItem\",quantile=\"0.5\"}").unwrap();
    assert!(put_p50 > 0.0 && put_p50 < 10.0, "PutItem p50 {put_p50} s");
    // Every write was synced (a single node syncs each), and each sync took some time.
    let syncs = sample(&text, "squall_storage_write_seconds_count{durability=\"sync\"}").unwrap();
    assert!(syncs >= 5.0, "{syncs} synced writes for 5 puts and a table\n{text}");
    let sync_p50 = sample(&text, "squall_storage_write_seconds{durability=\"sync\",quantile=\"0.5\"}").unwrap();
    assert!(sync_p50 > 0.0, "{text}");

    // Any other GET is still the health check.
    let health = server.get("/");
    assert_eq!((health.status, health.body_text()), (200, "healthy: squall".to_string()));
}
