//! Capacity enforcement as a real client sees it: the AWS SDK for Rust against a real
//! `squall-server`, with the SDK's retries off so that a throttled request surfaces instead
//! of being retried away.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, OnDemandThroughput, Projection, ProjectionType,
    ProvisionedThroughput, ScalarAttributeType, UpdateGlobalSecondaryIndexAction,
};
use aws_sdk_dynamodb::Client;
use common::{attr_def, err_text, hash_key, s, service_error, TestServer};

/// A client that never retries.
fn client_without_retries(server: &TestServer) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(server.url())
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(60)).build())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// Creates a table of 1 RCU and 1 WCU: 300 units of burst credit each.
async fn create_small_table(client: &Client) {
    client
        .create_table()
        .table_name("small")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .provisioned_throughput(
            ProvisionedThroughput::builder().read_capacity_units(1).write_capacity_units(1).build().unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table: {}", err_text(&e)));
}

/// Writes 100 KB items (100 write units each) to `small` until one is refused; returns how many
/// were written and the refusal.
async fn write_until_refused(
    client: &Client,
    attempts: usize,
) -> (usize, Option<aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>) {
    write_to_until_refused(client, "small", attempts).await
}

/// [`write_until_refused`] on `table`.
async fn write_to_until_refused(
    client: &Client,
    table: &str,
    attempts: usize,
) -> (usize, Option<aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>) {
    let blob = "x".repeat(100 * 1024 - 200);
    for n in 0..attempts {
        let result =
            client.put_item().table_name(table).item("pk", s(&format!("k{n}"))).item("blob", s(&blob)).send().await;
        if let Err(error) = result {
            return (n, Some(error));
        }
    }
    (attempts, None)
}

#[tokio::test]
async fn a_provisioned_table_out_of_capacity_answers_provisioned_throughput_exceeded() {
    let server = TestServer::start();
    let client = client_without_retries(&server);
    create_small_table(&client).await;
    // The burst pays for three writes of 100 units; the fourth would need 97 seconds of
    // refill, far longer than this test runs.
    let (written, refusal) = write_until_refused(&client, 10).await;
    let refusal = refusal.expect("a 1 WCU table cannot take ten 100 KB writes at once");
    assert_eq!(written, 3, "the burst credit pays for three writes");
    let typed = refusal.as_service_error().map(|e| e.is_provisioned_throughput_exceeded_exception());
    assert_eq!(typed, Some(true), "the SDK parses the error as its type: {}", err_text(&refusal));
    let error = service_error::<(), _, _>(Err(refusal));
    assert_eq!(error.code, "ProvisionedThroughputExceededException");
    assert_eq!(error.status, Some(400));
    assert_eq!(
        error.message,
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your \
         provisioning level with the UpdateTable API."
    );
}

#[tokio::test]
async fn no_throttling_turns_enforcement_off() {
    let server = TestServer::start_with(&["--no-throttling"]);
    let client = client_without_retries(&server);
    create_small_table(&client).await;
    let (written, refusal) = write_until_refused(&client, 10).await;
    assert!(refusal.is_none(), "no write is refused: {}", refusal.as_ref().map(err_text).unwrap_or_default());
    assert_eq!(written, 10);
}

#[tokio::test]
async fn an_on_demand_table_is_held_to_its_own_maximum_throughput() {
    let server = TestServer::start();
    let client = client_without_retries(&server);
    let create = |name: &str, max_write: i64| {
        client
            .create_table()
            .table_name(name)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .billing_mode(BillingMode::PayPerRequest)
            .on_demand_throughput(OnDemandThroughput::builder().max_write_request_units(max_write).build())
            .send()
    };
    // Only an on-demand table has one, and only a maximum of at least one unit (or -1, none).
    let provisioned = client
        .create_table()
        .table_name("provisioned")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .provisioned_throughput(
            ProvisionedThroughput::builder().read_capacity_units(1).write_capacity_units(1).build().unwrap(),
        )
        .on_demand_throughput(OnDemandThroughput::builder().max_write_request_units(150).build())
        .send()
        .await;
    let error = service_error(provisioned);
    assert_eq!(error.code, "ValidationException");
    assert!(error.message.contains("cannot be specified when table BillingMode is PROVISIONED"), "{}", error.message);
    let error = service_error(create("zero", 0).await);
    assert_eq!(error.code, "ValidationException");
    assert!(error.message.contains("MaxWriteRequestUnits for OnDemandThroughput for table is outside of valid range"));
    let error = service_error(create("huge", 40_001).await);
    assert_eq!(error.code, "LimitExceededException", "{}", error.message);

    create("capped", 150).await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let described = client.describe_table().table_name("capped").send().await.unwrap();
    let on_demand = described.table().and_then(|t| t.on_demand_throughput()).expect("described");
    assert_eq!(on_demand.max_write_request_units(), Some(150));
    assert_eq!(on_demand.max_read_request_units(), None);
    // 150 write units a second: a 100 KB write (100 units) leaves 50, a second one runs into
    // debt, and the third is refused until the debt is paid.
    let (written, refusal) = write_to_until_refused(&client, "capped", 10).await;
    let refusal = refusal.expect("a table of 150 WRU a second cannot take ten 100 KB writes at once");
    assert!((1..=3).contains(&written), "{written} writes of 100 units before the refusal");
    let error = service_error::<(), _, _>(Err(refusal));
    assert_eq!(error.code, "ThrottlingException", "{}", error.message);

    // -1 removes the maximum: the account's quota applies again.
    client
        .update_table()
        .table_name("capped")
        .on_demand_throughput(OnDemandThroughput::builder().max_write_request_units(-1).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (written, refusal) = write_to_until_refused(&client, "capped", 10).await;
    assert!(refusal.is_none(), "{}", refusal.as_ref().map(err_text).unwrap_or_default());
    assert_eq!(written, 10);
    let described = client.describe_table().table_name("capped").send().await.unwrap();
    assert!(described.table().and_then(|t| t.on_demand_throughput()).is_none());
}

#[tokio::test]
async fn a_global_index_of_an_on_demand_table_is_held_to_its_own_maximum_throughput() {
    let server = TestServer::start();
    let client = client_without_retries(&server);
    // An index of every attribute keyed on the table's own key: each 100 KB write writes a
    // 100 KB index entry, 100 write units on the index.
    let index = GlobalSecondaryIndex::builder()
        .index_name("copy")
        .key_schema(hash_key("pk"))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .on_demand_throughput(OnDemandThroughput::builder().max_write_request_units(150).build())
        .build()
        .unwrap();
    client
        .create_table()
        .table_name("indexed")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .billing_mode(BillingMode::PayPerRequest)
        .global_secondary_indexes(index)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let described = client.describe_table().table_name("indexed").send().await.unwrap();
    let index = &described.table().unwrap().global_secondary_indexes()[0];
    assert_eq!(index.on_demand_throughput().and_then(|o| o.max_write_request_units()), Some(150));
    assert!(described.table().unwrap().on_demand_throughput().is_none(), "the table has no maximum of its own");

    let (written, refusal) = write_to_until_refused(&client, "indexed", 10).await;
    let refusal = refusal.expect("an index of 150 WRU a second cannot take ten 100 KB entries at once");
    assert!((1..=3).contains(&written), "{written} writes of 100 index units before the refusal");
    let error = service_error::<(), _, _>(Err(refusal));
    assert_eq!(error.code, "ThrottlingException", "{}", error.message);

    // -1 removes the index's maximum.
    let update = UpdateGlobalSecondaryIndexAction::builder()
        .index_name("copy")
        .on_demand_throughput(OnDemandThroughput::builder().max_write_request_units(-1).build())
        .build()
        .unwrap();
    client
        .update_table()
        .table_name("indexed")
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().update(update).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (written, refusal) = write_to_until_refused(&client, "indexed", 10).await;
    assert!(refusal.is_none(), "{}", refusal.as_ref().map(err_text).unwrap_or_default());
    assert_eq!(written, 10);
}
