//! Table lifecycle through the AWS SDK: CreateTable, DescribeTable, ListTables, UpdateTable and
//! DeleteTable, as DynamoDB documents them.

#![cfg(not(madsim))]

mod common;

use aws_sdk_dynamodb::types::{
    BillingMode, CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ProvisionedThroughput, ScalarAttributeType, TableDescription, TableStatus,
};
use aws_sdk_dynamodb::Client;
use common::*;

fn throughput(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder().read_capacity_units(read).write_capacity_units(write).build().unwrap()
}

fn projection(kind: ProjectionType, non_key: &[&str]) -> Projection {
    let mut p = Projection::builder().projection_type(kind);
    for attr in non_key {
        p = p.non_key_attributes(*attr);
    }
    p.build()
}

fn keys(schema: &[KeySchemaElement]) -> Vec<(String, KeyType)> {
    schema.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect()
}

fn key_list(pairs: &[(&str, KeyType)]) -> Vec<(String, KeyType)> {
    pairs.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
}

async fn describe(client: &Client, table: &str) -> TableDescription {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe {table}: {}", err_text(&e)))
        .table
        .expect("DescribeTable returns Table")
}

fn assert_arn(arn: Option<&str>, table: &str) {
    let arn = arn.expect("TableArn is present");
    assert!(arn.starts_with("arn:aws:dynamodb:"), "table ARN {arn:?}");
    assert!(arn.ends_with(&format!(":table/{table}")), "table ARN {arn:?} names {table}");
}

#[tokio::test]
async fn create_provisioned_hash_only_and_describe() {
    let server = TestServer::start();
    let client = server.client();
    let created = client
        .create_table()
        .table_name("prov_hash")
        .key_schema(hash_key("id"))
        .attribute_definitions(attr_def("id", ScalarAttributeType::S))
        .provisioned_throughput(throughput(5, 7))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)))
        .table_description
        .expect("CreateTable returns TableDescription");
    assert_eq!(created.table_name(), Some("prov_hash"));
    assert!(
        matches!(created.table_status(), Some(TableStatus::Active | TableStatus::Creating)),
        "status after CreateTable: {:?}",
        created.table_status()
    );

    let table = describe(&client, "prov_hash").await;
    assert_eq!(table.table_name(), Some("prov_hash"));
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(keys(table.key_schema()), key_list(&[("id", KeyType::Hash)]));
    assert_eq!(table.attribute_definitions().len(), 1);
    assert_eq!(table.attribute_definitions()[0].attribute_name(), "id");
    assert_eq!(table.attribute_definitions()[0].attribute_type(), &ScalarAttributeType::S);
    let pt = table.provisioned_throughput().expect("ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(5));
    assert_eq!(pt.write_capacity_units(), Some(7));
    // DynamoDB omits BillingModeSummary for tables that were always provisioned; when it is
    // there it must say so.
    if let Some(summary) = table.billing_mode_summary() {
        assert_eq!(summary.billing_mode(), Some(&BillingMode::Provisioned));
    }
    assert_eq!(table.item_count(), Some(0));
    assert_eq!(table.table_size_bytes(), Some(0));
    assert!(table.creation_date_time().is_some(), "CreationDateTime");
    assert_arn(table.table_arn(), "prov_hash");
    assert!(table.global_secondary_indexes().is_empty());
    assert!(table.local_secondary_indexes().is_empty());
}

#[tokio::test]
async fn create_on_demand_hash_range_and_describe() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("ondemand_hr")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("user"))
        .key_schema(range_key("ts"))
        .attribute_definitions(attr_def("user", ScalarAttributeType::S))
        .attribute_definitions(attr_def("ts", ScalarAttributeType::N))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));

    let table = describe(&client, "ondemand_hr").await;
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(keys(table.key_schema()), key_list(&[("user", KeyType::Hash), ("ts", KeyType::Range)]));
    let mut defs: Vec<(String, ScalarAttributeType)> = table
        .attribute_definitions()
        .iter()
        .map(|d| (d.attribute_name().to_string(), d.attribute_type().clone()))
        .collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(defs, vec![("ts".to_string(), ScalarAttributeType::N), ("user".to_string(), ScalarAttributeType::S)]);
    let summary = table.billing_mode_summary().expect("BillingModeSummary for on-demand");
    assert_eq!(summary.billing_mode(), Some(&BillingMode::PayPerRequest));
    // On-demand tables report zero provisioned capacity.
    let pt = table.provisioned_throughput().expect("ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(0));
    assert_eq!(pt.write_capacity_units(), Some(0));
    assert_eq!(table.item_count(), Some(0));
    assert_arn(table.table_arn(), "ondemand_hr");
}

#[tokio::test]
async fn create_with_lsi_and_gsis_of_every_projection() {
    let server = TestServer::start();
    let client = server.client();
    let lsi = LocalSecondaryIndex::builder()
        .index_name("by_date")
        .key_schema(hash_key("pk"))
        .key_schema(range_key("date"))
        .projection(projection(ProjectionType::KeysOnly, &[]))
        .build()
        .unwrap();
    let gsi_include = GlobalSecondaryIndex::builder()
        .index_name("by_owner")
        .key_schema(hash_key("owner"))
        .key_schema(range_key("sk"))
        .projection(projection(ProjectionType::Include, &["title", "size"]))
        .provisioned_throughput(throughput(3, 4))
        .build()
        .unwrap();
    let gsi_all = GlobalSecondaryIndex::builder()
        .index_name("by_state")
        .key_schema(hash_key("state"))
        .projection(projection(ProjectionType::All, &[]))
        .provisioned_throughput(throughput(1, 2))
        .build()
        .unwrap();
    client
        .create_table()
        .table_name("indexed")
        .key_schema(hash_key("pk"))
        .key_schema(range_key("sk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("sk", ScalarAttributeType::N))
        .attribute_definitions(attr_def("date", ScalarAttributeType::S))
        .attribute_definitions(attr_def("owner", ScalarAttributeType::S))
        .attribute_definitions(attr_def("state", ScalarAttributeType::S))
        .local_secondary_indexes(lsi)
        .global_secondary_indexes(gsi_include)
        .global_secondary_indexes(gsi_all)
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));

    let table = describe(&client, "indexed").await;
    let table_arn = table.table_arn().expect("TableArn").to_string();

    let lsis = table.local_secondary_indexes();
    assert_eq!(lsis.len(), 1);
    let lsi = &lsis[0];
    assert_eq!(lsi.index_name(), Some("by_date"));
    assert_eq!(keys(lsi.key_schema()), key_list(&[("pk", KeyType::Hash), ("date", KeyType::Range)]));
    assert_eq!(lsi.projection().and_then(|p| p.projection_type()), Some(&ProjectionType::KeysOnly));
    if let Some(arn) = lsi.index_arn() {
        assert_eq!(arn, format!("{table_arn}/index/by_date"));
    }

    let mut gsis: Vec<_> = table.global_secondary_indexes().to_vec();
    gsis.sort_by(|a, b| a.index_name().cmp(&b.index_name()));
    assert_eq!(gsis.len(), 2);

    let owner = &gsis[0];
    assert_eq!(owner.index_name(), Some("by_owner"));
    assert_eq!(owner.index_status(), Some(&IndexStatus::Active));
    assert_eq!(keys(owner.key_schema()), key_list(&[("owner", KeyType::Hash), ("sk", KeyType::Range)]));
    let p = owner.projection().expect("Projection");
    assert_eq!(p.projection_type(), Some(&ProjectionType::Include));
    let mut non_key = p.non_key_attributes().to_vec();
    non_key.sort();
    assert_eq!(non_key, vec!["size".to_string(), "title".to_string()]);
    let pt = owner.provisioned_throughput().expect("index ProvisionedThroughput");
    assert_eq!(pt.read_capacity_units(), Some(3));
    assert_eq!(pt.write_capacity_units(), Some(4));
    assert_eq!(owner.index_arn(), Some(format!("{table_arn}/index/by_owner").as_str()));

    let state = &gsis[1];
    assert_eq!(state.index_name(), Some("by_state"));
    assert_eq!(state.index_status(), Some(&IndexStatus::Active));
    assert_eq!(keys(state.key_schema()), key_list(&[("state", KeyType::Hash)]));
    assert_eq!(state.projection().and_then(|p| p.projection_type()), Some(&ProjectionType::All));
}

#[tokio::test]
async fn item_count_reflects_items() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "counted", None).await;
    for i in 0..3 {
        put(&client, "counted", item(&[("pk", s(&format!("k{i}")))])).await;
    }
    // DynamoDB refreshes ItemCount periodically; it never exceeds what was written.
    let table = describe(&client, "counted").await;
    let count = table.item_count().expect("ItemCount");
    assert!((0..=3).contains(&count), "ItemCount {count}");
}

#[tokio::test]
async fn list_tables_pages_with_limit() {
    let server = TestServer::start();
    let client = server.client();
    let mut names: Vec<String> = (0..7).map(|i| format!("list_t{i}")).collect();
    // Created out of order: ListTables returns names sorted.
    for name in names.iter().rev() {
        create_table(&client, name, None).await;
    }
    names.sort();

    let all = client.list_tables().send().await.unwrap();
    assert_eq!(all.table_names(), names.as_slice());
    assert_eq!(all.last_evaluated_table_name(), None);

    let page1 = client.list_tables().limit(3).send().await.unwrap();
    assert_eq!(page1.table_names(), &names[0..3]);
    assert_eq!(page1.last_evaluated_table_name(), Some(names[2].as_str()));

    let page2 = client
        .list_tables()
        .limit(3)
        .exclusive_start_table_name(page1.last_evaluated_table_name().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page2.table_names(), &names[3..6]);
    assert_eq!(page2.last_evaluated_table_name(), Some(names[5].as_str()));

    let page3 = client
        .list_tables()
        .limit(3)
        .exclusive_start_table_name(page2.last_evaluated_table_name().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page3.table_names(), &names[6..7]);
    assert_eq!(page3.last_evaluated_table_name(), None, "last page carries no cursor");

    // The SDK paginator follows the cursor to the end.
    let mut collected = Vec::new();
    let mut pages = client.list_tables().limit(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        collected.extend(page.unwrap().table_names().iter().cloned());
    }
    assert_eq!(collected, names);

    // The start name need not exist: listing resumes after it.
    let after = client.list_tables().exclusive_start_table_name("list_t3a").send().await.unwrap();
    assert_eq!(after.table_names(), &names[4..7]);
}

#[tokio::test]
async fn list_tables_limit_out_of_range_is_rejected() {
    let server = TestServer::start();
    let client = server.client();
    expect_error(client.list_tables().limit(0).send().await, "ValidationException");
    expect_error(client.list_tables().limit(101).send().await, "ValidationException");
}

#[tokio::test]
async fn delete_table_then_it_is_gone() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "doomed", None).await;
    put(&client, "doomed", item(&[("pk", s("a")), ("v", n(1))])).await;

    let deleted = client
        .delete_table()
        .table_name("doomed")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)))
        .table_description
        .expect("DeleteTable returns TableDescription");
    assert_eq!(deleted.table_name(), Some("doomed"));

    expect_error(client.describe_table().table_name("doomed").send().await, "ResourceNotFoundException");
    expect_error(client.get_item().table_name("doomed").key("pk", s("a")).send().await, "ResourceNotFoundException");
    expect_error(client.delete_table().table_name("doomed").send().await, "ResourceNotFoundException");
    let listed = client.list_tables().send().await.unwrap();
    assert!(listed.table_names().is_empty(), "{:?}", listed.table_names());

    // The name is free again, and the new table starts empty.
    create_table(&client, "doomed", None).await;
    assert_eq!(get(&client, "doomed", item(&[("pk", s("a"))])).await, None);
}

#[tokio::test]
async fn create_table_twice_is_resource_in_use() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "twice", None).await;
    let err = expect_error(
        client
            .create_table()
            .table_name("twice")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .send()
            .await,
        "ResourceInUseException",
    );
    assert!(err.message.contains("twice"), "message names the table: {:?}", err.message);
}

#[tokio::test]
async fn describe_missing_table_is_resource_not_found() {
    let server = TestServer::start();
    let client = server.client();
    expect_error(client.describe_table().table_name("nowhere").send().await, "ResourceNotFoundException");
}

#[tokio::test]
async fn create_table_schema_validation() {
    let server = TestServer::start();
    let client = server.client();
    // Key attribute without a definition.
    expect_error(
        client
            .create_table()
            .table_name("bad1")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("other", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // A definition no key or index uses.
    expect_error(
        client
            .create_table()
            .table_name("bad2")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .attribute_definitions(attr_def("extra", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // Provisioned billing without throughput.
    expect_error(
        client
            .create_table()
            .table_name("bad3")
            .billing_mode(BillingMode::Provisioned)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // On-demand billing with throughput.
    expect_error(
        client
            .create_table()
            .table_name("bad4")
            .billing_mode(BillingMode::PayPerRequest)
            .provisioned_throughput(throughput(1, 1))
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // Two hash keys.
    expect_error(
        client
            .create_table()
            .table_name("bad5")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key("a"))
            .key_schema(hash_key("b"))
            .attribute_definitions(attr_def("a", ScalarAttributeType::S))
            .attribute_definitions(attr_def("b", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // Table name too short.
    expect_error(
        client
            .create_table()
            .table_name("ab")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .send()
            .await,
        "ValidationException",
    );
    // None of them were created.
    let listed = client.list_tables().send().await.unwrap();
    assert!(listed.table_names().is_empty(), "{:?}", listed.table_names());
}

#[tokio::test]
async fn update_table_changes_provisioned_capacity() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("capacity")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await
        .unwrap();
    let updated = client
        .update_table()
        .table_name("capacity")
        .provisioned_throughput(throughput(10, 20))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)))
        .table_description
        .expect("UpdateTable returns TableDescription");
    assert_eq!(updated.table_name(), Some("capacity"));

    let table = eventually(CONVERGE_WAIT, "table ACTIVE after UpdateTable", || {
        let client = client.clone();
        async move {
            let t = describe(&client, "capacity").await;
            (t.table_status() == Some(&TableStatus::Active)).then_some(t)
        }
    })
    .await;
    let pt = table.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(10));
    assert_eq!(pt.write_capacity_units(), Some(20));
    // Data stays where it was.
    put(&client, "capacity", item(&[("pk", s("x"))])).await;
    assert!(get(&client, "capacity", item(&[("pk", s("x"))])).await.is_some());
}

#[tokio::test]
async fn update_table_switches_billing_mode() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("billing_a")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await
        .unwrap();
    client
        .update_table()
        .table_name("billing_a")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let table = describe(&client, "billing_a").await;
    assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::PayPerRequest));

    create_table(&client, "billing_b", None).await;
    client
        .update_table()
        .table_name("billing_b")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(4, 6))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let table = describe(&client, "billing_b").await;
    assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::Provisioned));
    let pt = table.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(4));
    assert_eq!(pt.write_capacity_units(), Some(6));
}

#[tokio::test]
async fn update_table_on_missing_table_is_resource_not_found() {
    let server = TestServer::start();
    let client = server.client();
    expect_error(
        client.update_table().table_name("ghost").provisioned_throughput(throughput(1, 1)).send().await,
        "ResourceNotFoundException",
    );
}

async fn wait_index_active(client: &Client, table: &str, index: &str) {
    eventually(CONVERGE_WAIT, &format!("index {index} ACTIVE"), || {
        let client = client.clone();
        async move {
            let t = describe(&client, table).await;
            let gsi = t.global_secondary_indexes().iter().find(|g| g.index_name() == Some(index));
            match gsi {
                Some(g) if g.index_status() == Some(&IndexStatus::Active) && g.backfilling() != Some(true) => Some(()),
                _ => None,
            }
        }
    })
    .await
}

async fn query_index_pks(client: &Client, table: &str, index: &str, color: &str) -> Vec<String> {
    let out = client
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("color = :c")
        .expression_attribute_values(":c", s(color))
        .send()
        .await
        .unwrap_or_else(|e| panic!("query {index}: {}", err_text(&e)));
    let mut pks: Vec<String> = out.items().iter().map(|i| i["pk"].as_s().unwrap().clone()).collect();
    pks.sort();
    pks
}

#[tokio::test]
async fn update_table_adds_gsi_and_backfills() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "backfill", None).await;
    for i in 0..12 {
        let mut it = item(&[("pk", s(&format!("p{i:02}"))), ("n", n(i))]);
        if i % 3 != 0 {
            let color = if i % 2 == 0 { "red" } else { "blue" };
            it.insert("color".into(), s(color));
        }
        put(&client, "backfill", it).await;
    }

    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name("by_color")
        .key_schema(hash_key("color"))
        .projection(projection(ProjectionType::All, &[]))
        .build()
        .unwrap();
    client
        .update_table()
        .table_name("backfill")
        .attribute_definitions(attr_def("color", ScalarAttributeType::S))
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));

    wait_index_active(&client, "backfill", "by_color").await;
    let red: Vec<String> = (0..12).filter(|i| i % 3 != 0 && i % 2 == 0).map(|i| format!("p{i:02}")).collect();
    let blue: Vec<String> = (0..12).filter(|i| i % 3 != 0 && i % 2 == 1).map(|i| format!("p{i:02}")).collect();
    let found = eventually(CONVERGE_WAIT, "backfilled red items", || {
        let client = client.clone();
        let red = red.clone();
        async move {
            let got = query_index_pks(&client, "backfill", "by_color", "red").await;
            (got == red).then_some(got)
        }
    })
    .await;
    assert_eq!(found, red);
    assert_eq!(query_index_pks(&client, "backfill", "by_color", "blue").await, blue);

    // New writes reach the new index too.
    put(&client, "backfill", item(&[("pk", s("p99")), ("color", s("green"))])).await;
    eventually(CONVERGE_WAIT, "new item in index", || {
        let client = client.clone();
        async move {
            let got = query_index_pks(&client, "backfill", "by_color", "green").await;
            (got == vec!["p99".to_string()]).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn update_table_deletes_gsi() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("drop_gsi")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("color", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_color")
                .key_schema(hash_key("color"))
                .projection(projection(ProjectionType::KeysOnly, &[]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    put(&client, "drop_gsi", item(&[("pk", s("a")), ("color", s("red"))])).await;

    client
        .update_table()
        .table_name("drop_gsi")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(DeleteGlobalSecondaryIndexAction::builder().index_name("by_color").build().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));

    eventually(CONVERGE_WAIT, "index removed from DescribeTable", || {
        let client = client.clone();
        async move {
            let t = describe(&client, "drop_gsi").await;
            t.global_secondary_indexes().is_empty().then_some(())
        }
    })
    .await;
    let err = expect_error(
        client
            .query()
            .table_name("drop_gsi")
            .index_name("by_color")
            .key_condition_expression("color = :c")
            .expression_attribute_values(":c", s("red"))
            .send()
            .await,
        "ValidationException",
    );
    assert!(err.message.contains("The table does not have the specified index"), "{:?}", err.message);
    // The table itself is untouched.
    assert!(get(&client, "drop_gsi", item(&[("pk", s("a"))])).await.is_some());
}

#[tokio::test]
async fn tables_and_items_survive_a_restart() {
    let mut server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("durable")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("color", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_color")
                .key_schema(hash_key("color"))
                .projection(projection(ProjectionType::All, &[]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    create_table(&client, "dropped", None).await;
    for i in 0..20 {
        put(&client, "durable", item(&[("pk", s(&format!("k{i:02}"))), ("color", s("red")), ("n", n(i))])).await;
    }
    client.delete_item().table_name("durable").key("pk", s("k05")).send().await.unwrap();
    client.delete_table().table_name("dropped").send().await.unwrap();

    server.restart();
    let client = server.client();

    let listed = client.list_tables().send().await.unwrap();
    assert_eq!(listed.table_names(), ["durable".to_string()]);
    let table = describe(&client, "durable").await;
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(table.global_secondary_indexes().len(), 1);
    assert_eq!(
        get(&client, "durable", item(&[("pk", s("k07"))])).await,
        Some(item(&[("pk", s("k07")), ("color", s("red")), ("n", n(7))]))
    );
    assert_eq!(get(&client, "durable", item(&[("pk", s("k05"))])).await, None);
    let scanned = client.scan().table_name("durable").send().await.unwrap();
    assert_eq!(scanned.count(), 19);
    let from_index = eventually(CONVERGE_WAIT, "GSI after restart", || {
        let client = client.clone();
        async move {
            let out = client
                .query()
                .table_name("durable")
                .index_name("by_color")
                .key_condition_expression("color = :c")
                .expression_attribute_values(":c", s("red"))
                .send()
                .await
                .unwrap();
            (out.count() == 19).then_some(out.count())
        }
    })
    .await;
    assert_eq!(from_index, 19);
}

#[tokio::test]
async fn tags_are_added_listed_removed_and_kept_across_restarts() {
    use aws_sdk_dynamodb::types::Tag;
    let mut server = TestServer::start();
    let client = server.client();
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    let created = client
        .create_table()
        .table_name("tagged")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .tags(tag("team", "storage"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let arn = created.table_description().unwrap().table_arn().unwrap().to_string();
    client.tag_resource().resource_arn(&arn).tags(tag("env", "test")).tags(tag("team", "db")).send().await.unwrap();
    let listed = |client: Client, arn: String| async move {
        let out = client.list_tags_of_resource().resource_arn(arn).send().await.unwrap();
        out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect::<Vec<_>>()
    };
    assert_eq!(
        listed(client.clone(), arn.clone()).await,
        vec![("env".to_string(), "test".to_string()), ("team".to_string(), "db".to_string())]
    );
    client.untag_resource().resource_arn(&arn).tag_keys("env").send().await.unwrap();
    server.restart();
    let client = server.client();
    assert_eq!(listed(client.clone(), arn.clone()).await, vec![("team".to_string(), "db".to_string())]);

    let missing_arn = arn.replace("table/tagged", "table/nothere");
    expect_error(client.list_tags_of_resource().resource_arn(missing_arn).send().await, "ResourceNotFoundException");
    expect_error(client.list_tags_of_resource().resource_arn("not-an-arn").send().await, "ValidationException");
    expect_error(
        client.tag_resource().resource_arn(&arn).tags(tag("aws:reserved", "x")).send().await,
        "ValidationException",
    );
}

#[tokio::test]
async fn provisioned_capacity_above_the_per_table_or_account_quota_is_refused() {
    let server = TestServer::start();
    let client = server.client();
    let create = |name: &str, read: i64, write: i64| {
        client
            .create_table()
            .table_name(name)
            .key_schema(hash_key("pk"))
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .provisioned_throughput(throughput(read, write))
            .send()
    };
    let error = expect_error(create("over_quota", 40_001, 5).await, "LimitExceededException");
    assert_eq!(
        error.message,
        "The requested ReadCapacityUnits, 40001, is above the per table maximum for the account in us-east-1. Per table maximum: 40000."
    );
    // Nothing was created.
    expect_error(client.describe_table().table_name("over_quota").send().await, "ResourceNotFoundException");
    create("at_quota", 40_000, 40_000).await.unwrap();

    // UpdateTable is held to the same maximum.
    let raise = client.update_table().table_name("at_quota").provisioned_throughput(throughput(40_000, 40_001));
    let error = expect_error(raise.send().await, "LimitExceededException");
    assert!(error.message.starts_with("The requested WriteCapacityUnits, 40001"), "{}", error.message);

    // All provisioned tables together stay within the account's quota (80,000 units).
    create("second", 30_000, 10).await.unwrap();
    let error = expect_error(create("third", 10_001, 10).await, "LimitExceededException");
    assert_eq!(
        error.message,
        "This request would have caused the ReadCapacityUnits limit to be exceeded for the account in us-east-1. Current ReadCapacityUnits reserved by the account: 70000. Limit: 80000. Requested: 10001"
    );
    expect_error(client.describe_table().table_name("third").send().await, "ResourceNotFoundException");
    create("third", 10_000, 10).await.unwrap();
    let raise = client.update_table().table_name("second").provisioned_throughput(throughput(30_001, 10));
    expect_error(raise.send().await, "LimitExceededException");
    client.delete_table().table_name("third").send().await.unwrap();
    client.update_table().table_name("second").provisioned_throughput(throughput(30_001, 10)).send().await.unwrap();

    // A server whose quota is raised (as Service Quotas would) admits more.
    let raised = TestServer::start_with(&["--table-max-read-units", "60000"]);
    let client = raised.client();
    client
        .create_table()
        .table_name("raised")
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .provisioned_throughput(throughput(50_000, 10))
        .send()
        .await
        .unwrap();
}
