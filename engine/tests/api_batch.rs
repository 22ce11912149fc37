//! BatchWriteItem and BatchGetItem through the AWS SDK, as DynamoDB documents them.

#![cfg(not(madsim))]

mod common;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;

fn put_req(it: Item) -> WriteRequest {
    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(it)).build().unwrap()).build()
}

fn delete_req(key: Item) -> WriteRequest {
    WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(key)).build().unwrap()).build()
}

fn keys_and_attrs(keys: Vec<Item>) -> KeysAndAttributes {
    KeysAndAttributes::builder().set_keys(Some(keys)).build().unwrap()
}

async fn scan_pks(client: &Client, table: &str) -> BTreeSet<String> {
    let mut pks = BTreeSet::new();
    let mut stream = client.scan().table_name(table).consistent_read(true).into_paginator().items().send();
    while let Some(it) = stream.next().await {
        let it = it.unwrap_or_else(|e| panic!("scan {table}: {}", err_text(&e)));
        pks.insert(it["pk"].as_s().unwrap().clone());
    }
    pks
}

async fn two_tables(client: &Client) {
    create_table(client, "batch_a", None).await;
    create_table(client, "batch_b", Some(("sk", ScalarAttributeType::N))).await;
}

#[tokio::test]
async fn batch_write_25_puts_and_deletes_across_two_tables() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    for i in 0..5 {
        put(&client, "batch_a", item(&[("pk", s(&format!("old{i}")))])).await;
    }

    let mut a = Vec::new();
    for i in 0..15 {
        a.push(put_req(item(&[("pk", s(&format!("new{i:02}"))), ("v", n(i))])));
    }
    for i in 0..5 {
        a.push(delete_req(item(&[("pk", s(&format!("old{i}")))])));
    }
    let mut b = Vec::new();
    for i in 0..5 {
        b.push(put_req(item(&[("pk", s("p")), ("sk", n(i)), ("v", s("b"))])));
    }
    let out = client
        .batch_write_item()
        .request_items("batch_a", a)
        .request_items("batch_b", b)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let unprocessed = out.unprocessed_items.clone().unwrap_or_default();
    assert!(unprocessed.values().all(|v| v.is_empty()), "UnprocessedItems: {unprocessed:?}");

    // One ConsumedCapacity per table: small items cost one unit per write.
    let mut cc: Vec<(String, f64)> = out
        .consumed_capacity()
        .iter()
        .map(|c| (c.table_name().unwrap_or_default().to_string(), c.capacity_units().unwrap_or(0.0)))
        .collect();
    cc.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(cc, vec![("batch_a".to_string(), 20.0), ("batch_b".to_string(), 5.0)]);

    let expected_a: BTreeSet<String> = (0..15).map(|i| format!("new{i:02}")).collect();
    assert_eq!(scan_pks(&client, "batch_a").await, expected_a);
    let b_items = client
        .query()
        .table_name("batch_b")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(b_items.count(), 5);
    assert_eq!(
        get(&client, "batch_a", item(&[("pk", s("new07"))])).await,
        Some(item(&[("pk", s("new07")), ("v", n(7))]))
    );
}

#[tokio::test]
async fn batch_write_over_25_requests_is_rejected() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    let a: Vec<WriteRequest> = (0..20).map(|i| put_req(item(&[("pk", s(&format!("a{i}")))]))).collect();
    let b: Vec<WriteRequest> = (0..6).map(|i| put_req(item(&[("pk", s("p")), ("sk", n(i))]))).collect();
    // 26 in total across the two tables.
    expect_error(
        client.batch_write_item().request_items("batch_a", a.clone()).request_items("batch_b", b).send().await,
        "ValidationException",
    );
    // 26 for one table.
    let mut many = a.clone();
    many.extend((20..26).map(|i| put_req(item(&[("pk", s(&format!("a{i}")))]))));
    expect_error(client.batch_write_item().request_items("batch_a", many).send().await, "ValidationException");
    // Nothing was written.
    assert!(scan_pks(&client, "batch_a").await.is_empty());
    assert!(scan_pks(&client, "batch_b").await.is_empty());

    // An empty request list is invalid too.
    expect_error(client.batch_write_item().request_items("batch_a", vec![]).send().await, "ValidationException");
}

#[tokio::test]
async fn batch_write_duplicate_keys_are_rejected() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    let dup_puts = vec![
        put_req(item(&[("pk", s("same")), ("v", n(1))])),
        put_req(item(&[("pk", s("other"))])),
        put_req(item(&[("pk", s("same")), ("v", n(2))])),
    ];
    expect_validation(
        client.batch_write_item().request_items("batch_a", dup_puts).send().await,
        "Provided list of item keys contains duplicates",
    );
    let put_and_delete = vec![
        put_req(item(&[("pk", s("p")), ("sk", n(1)), ("v", n(1))])),
        delete_req(item(&[("pk", s("p")), ("sk", n("1.0"))])),
    ];
    expect_validation(
        client.batch_write_item().request_items("batch_b", put_and_delete).send().await,
        "Provided list of item keys contains duplicates",
    );
    assert!(scan_pks(&client, "batch_a").await.is_empty());
    assert!(scan_pks(&client, "batch_b").await.is_empty());

    // The same key in two different tables is fine.
    client
        .batch_write_item()
        .request_items("batch_a", vec![put_req(item(&[("pk", s("p"))]))])
        .request_items("batch_b", vec![put_req(item(&[("pk", s("p")), ("sk", n(1))]))])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
}

#[tokio::test]
async fn batch_write_validates_items_and_tables() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    // A missing table fails the whole batch.
    expect_error(
        client
            .batch_write_item()
            .request_items("batch_a", vec![put_req(item(&[("pk", s("x"))]))])
            .request_items("no_such_table", vec![put_req(item(&[("pk", s("x"))]))])
            .send()
            .await,
        "ResourceNotFoundException",
    );
    // An item without its key fails the whole batch.
    expect_error(
        client
            .batch_write_item()
            .request_items("batch_a", vec![put_req(item(&[("pk", s("ok"))])), put_req(item(&[("v", n(1))]))])
            .send()
            .await,
        "ValidationException",
    );
    assert!(scan_pks(&client, "batch_a").await.is_empty());
}

fn batch_get_pks(responses: &HashMap<String, Vec<Item>>, table: &str) -> BTreeSet<String> {
    responses
        .get(table)
        .map(|items| items.iter().map(|i| i["pk"].as_s().unwrap().clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn batch_get_100_keys_across_two_tables() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    for i in 0..50 {
        put(&client, "batch_a", item(&[("pk", s(&format!("a{i:02}"))), ("v", n(i))])).await;
    }
    for i in 0..30 {
        put(&client, "batch_b", item(&[("pk", s(&format!("b{i:02}"))), ("sk", n(i)), ("w", n(i))])).await;
    }
    // 60 keys for A (10 of them missing) and 40 for B (10 missing): 100 in all.
    let a_keys: Vec<Item> = (0..60).map(|i| item(&[("pk", s(&format!("a{i:02}")))])).collect();
    let b_keys: Vec<Item> = (0..40).map(|i| item(&[("pk", s(&format!("b{i:02}"))), ("sk", n(i))])).collect();
    let out = client
        .batch_get_item()
        .request_items("batch_a", keys_and_attrs(a_keys))
        .request_items("batch_b", keys_and_attrs(b_keys))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let unprocessed = out.unprocessed_keys.clone().unwrap_or_default();
    assert!(unprocessed.is_empty(), "UnprocessedKeys: {unprocessed:?}");
    let responses = out.responses.clone().expect("Responses");
    assert_eq!(batch_get_pks(&responses, "batch_a"), (0..50).map(|i| format!("a{i:02}")).collect::<BTreeSet<_>>());
    assert_eq!(batch_get_pks(&responses, "batch_b"), (0..30).map(|i| format!("b{i:02}")).collect::<BTreeSet<_>>());
    let a07 = responses["batch_a"].iter().find(|i| i["pk"] == s("a07")).unwrap();
    assert_eq!(a07, &item(&[("pk", s("a07")), ("v", n(7))]));
}

#[tokio::test]
async fn batch_get_over_100_keys_is_rejected() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    let a_keys: Vec<Item> = (0..60).map(|i| item(&[("pk", s(&format!("a{i}")))])).collect();
    let b_keys: Vec<Item> = (0..41).map(|i| item(&[("pk", s("p")), ("sk", n(i))])).collect();
    let err = expect_error(
        client
            .batch_get_item()
            .request_items("batch_a", keys_and_attrs(a_keys))
            .request_items("batch_b", keys_and_attrs(b_keys))
            .send()
            .await,
        "ValidationException",
    );
    assert!(
        err.message.contains("Too many items requested for the BatchGetItem call") || err.message.contains("100"),
        "{:?}",
        err.message
    );
}

#[tokio::test]
async fn batch_get_duplicate_keys_are_rejected() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    put(&client, "batch_a", item(&[("pk", s("x"))])).await;
    expect_validation(
        client
            .batch_get_item()
            .request_items(
                "batch_a",
                keys_and_attrs(vec![item(&[("pk", s("x"))]), item(&[("pk", s("y"))]), item(&[("pk", s("x"))])]),
            )
            .send()
            .await,
        "Provided list of item keys contains duplicates",
    );
}

#[tokio::test]
async fn batch_get_projection_and_consistent_read() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    put(&client, "batch_a", item(&[("pk", s("k")), ("name", s("n")), ("extra", s("o")), ("m", item_map())])).await;
    let out = client
        .batch_get_item()
        .request_items(
            "batch_a",
            KeysAndAttributes::builder()
                .keys(item(&[("pk", s("k"))]))
                .projection_expression("#n, m.deep")
                .expression_attribute_names("#n", "name")
                .consistent_read(true)
                .build()
                .unwrap(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let responses = out.responses.clone().unwrap();
    assert_eq!(
        responses["batch_a"],
        vec![item(&[("name", s("n")), ("m", aws_sdk_dynamodb::types::AttributeValue::M(item(&[("deep", n(1))])))])]
    );
    let cc = out.consumed_capacity();
    assert_eq!(cc.len(), 1, "{cc:?}");
    assert_eq!(cc[0].table_name(), Some("batch_a"));
    assert_eq!(cc[0].capacity_units(), Some(1.0), "one small strongly consistent read");
}

fn item_map() -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::M(item(&[("deep", n(1)), ("shallow", n(2))]))
}

#[tokio::test]
async fn batch_get_missing_table_is_resource_not_found() {
    let server = TestServer::start();
    let client = server.client();
    two_tables(&client).await;
    expect_error(
        client
            .batch_get_item()
            .request_items("batch_a", keys_and_attrs(vec![item(&[("pk", s("x"))])]))
            .request_items("nope_table", keys_and_attrs(vec![item(&[("pk", s("x"))])]))
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn batch_get_response_over_16mb_returns_unprocessed_keys() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "batch_big", None).await;
    // 60 items of 350 KB: 21 MB, more than one 16 MB response.
    let payload = "y".repeat(350 * 1024);
    let keys: Vec<Item> = (0..60).map(|i| item(&[("pk", s(&format!("big{i:02}")))])).collect();
    for k in &keys {
        let mut it = k.clone();
        it.insert("data".into(), s(&payload));
        // 21,000 write units: more than the new table's partitions may take at once.
        put_waiting_out_throttling(&client, "batch_big", it).await;
    }
    let mut pending = keys_and_attrs(keys.clone());
    let mut seen = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 20, "UnprocessedKeys never drained");
        let out = client
            .batch_get_item()
            .request_items("batch_big", pending.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", err_text(&e)));
        let got = out.responses.clone().unwrap_or_default().remove("batch_big").unwrap_or_default();
        let bytes: usize = got.len() * payload.len();
        assert!(bytes <= 16 * 1024 * 1024, "a response stays within 16 MB ({} items)", got.len());
        if rounds == 1 {
            assert!(got.len() < 60, "21 MB cannot come back in one response");
        }
        seen.extend(got.iter().map(|i| i["pk"].as_s().unwrap().clone()));
        match out.unprocessed_keys.and_then(|mut u| u.remove("batch_big")) {
            Some(rest) if !rest.keys().is_empty() => pending = rest,
            _ => break,
        }
    }
    assert!(rounds >= 2);
    seen.sort();
    let expected: Vec<String> = keys.iter().map(|k| k["pk"].as_s().unwrap().clone()).collect();
    assert_eq!(seen, expected, "every key returned exactly once across retries");
}
