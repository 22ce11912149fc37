//! TransactWriteItems and TransactGetItems through the AWS SDK: all-or-nothing writes, the
//! cancellation reasons the SDK parses, and consistent multi-item reads.

#![cfg(not(madsim))]

mod common;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Get, Put, ReturnValuesOnConditionCheckFailure, TransactGetItem, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use common::*;

async fn balance(client: &Client, account: &str) -> i64 {
    let item = get(client, "bank", item(&[("pk", s(account))])).await.expect("account exists");
    item["balance"].as_n().unwrap().parse().unwrap()
}

fn transfer_update(account: &str, delta: i64, require_funds: bool) -> TransactWriteItem {
    let mut update = Update::builder()
        .table_name("bank")
        .key("pk", s(account))
        .update_expression("SET balance = balance + :d")
        .expression_attribute_values(":d", n(delta));
    if require_funds {
        update = update
            .condition_expression("balance >= :need")
            .expression_attribute_values(":need", n(-delta))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    TransactWriteItem::builder().update(update.build().unwrap()).build()
}

#[tokio::test]
async fn transfers_are_all_or_nothing_and_report_cancellation_reasons() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "bank", None).await;
    put(&client, "bank", item(&[("pk", s("alice")), ("balance", n(100))])).await;
    put(&client, "bank", item(&[("pk", s("bob")), ("balance", n(0))])).await;

    client
        .transact_write_items()
        .transact_items(transfer_update("alice", -60, true))
        .transact_items(transfer_update("bob", 60, false))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!((balance(&client, "alice").await, balance(&client, "bob").await), (40, 60));

    // Not enough funds: nothing changes, and the reasons say which action failed.
    let error = client
        .transact_write_items()
        .transact_items(transfer_update("bob", 60, false))
        .transact_items(transfer_update("alice", -60, true))
        .send()
        .await
        .expect_err("the transfer must be cancelled");
    let service_error = error.into_service_error();
    assert_eq!(service_error.code(), Some("TransactionCanceledException"));
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service_error else {
        panic!("expected TransactionCanceledException");
    };
    let reasons = cancelled.cancellation_reasons();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].code(), Some("None"));
    assert_eq!(reasons[1].code(), Some("ConditionalCheckFailed"));
    let old = reasons[1].item().expect("ALL_OLD returns the item");
    assert_eq!(old["balance"].as_n().unwrap(), "40");
    assert_eq!((balance(&client, "alice").await, balance(&client, "bob").await), (40, 60));
}

#[tokio::test]
async fn condition_checks_puts_and_validation_of_transactions() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "orders", None).await;
    put(&client, "orders", item(&[("pk", s("stock")), ("count", n(1))])).await;
    let check = |minimum: i64| {
        TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name("orders")
                    .key("pk", s("stock"))
                    .condition_expression("#c >= :m")
                    .expression_attribute_names("#c", "count")
                    .expression_attribute_values(":m", n(minimum))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let put_order = |id: &str| {
        TransactWriteItem::builder().put(Put::builder().table_name("orders").item("pk", s(id)).build().unwrap()).build()
    };
    client.transact_write_items().transact_items(check(1)).transact_items(put_order("o1")).send().await.unwrap();
    assert!(get(&client, "orders", item(&[("pk", s("o1"))])).await.is_some());
    let result = client.transact_write_items().transact_items(check(2)).transact_items(put_order("o2")).send().await;
    expect_error(result, "TransactionCanceledException");
    assert!(get(&client, "orders", item(&[("pk", s("o2"))])).await.is_none(), "a cancelled put must not land");

    // Two actions on one item are refused before anything is checked.
    let result =
        client.transact_write_items().transact_items(put_order("o3")).transact_items(put_order("o3")).send().await;
    expect_validation(result, "multiple operations on one item");
}

#[tokio::test]
async fn transact_get_items_reads_every_item_in_order() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "pairs", None).await;
    put(&client, "pairs", item(&[("pk", s("a")), ("v", n(1))])).await;
    put(&client, "pairs", item(&[("pk", s("c")), ("v", n(3))])).await;
    let get_of = |key: &str| {
        TransactGetItem::builder().get(Get::builder().table_name("pairs").key("pk", s(key)).build().unwrap()).build()
    };
    let out = client
        .transact_get_items()
        .transact_items(get_of("c"))
        .transact_items(get_of("b"))
        .transact_items(get_of("a"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let responses = out.responses();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0].item().unwrap()["v"].as_n().unwrap(), "3");
    assert!(responses[1].item().is_none(), "a missing item has an empty response");
    assert_eq!(responses[2].item().unwrap()["v"].as_n().unwrap(), "1");
}
