//! Query and Scan through the AWS SDK: key conditions, ordering, paging, filters, counts, the
//! 1 MB page limit, secondary indexes and parallel scans, as DynamoDB documents them.

#![cfg(not(madsim))]

mod common;

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, Select,
};
use aws_sdk_dynamodb::Client;
use common::*;

fn projection(kind: ProjectionType, non_key: &[&str]) -> Projection {
    let mut p = Projection::builder().projection_type(kind);
    for attr in non_key {
        p = p.non_key_attributes(*attr);
    }
    p.build()
}

fn sk_numbers(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i["sk"].as_n().expect("sk is N").clone()).collect()
}

fn strings(items: &[Item], attr: &str) -> Vec<String> {
    items.iter().map(|i| i[attr].as_s().unwrap_or_else(|_| panic!("{attr} is S in {i:?}")).clone()).collect()
}

/// Runs `KEY_CONDITION` on table `q_num` for partition "a" and returns the sort keys in order.
async fn query_sks(client: &Client, condition: &str, values: &[(&str, AttributeValue)], forward: bool) -> Vec<String> {
    let mut req = client
        .query()
        .table_name("q_num")
        .key_condition_expression(condition)
        .expression_attribute_values(":p", s("a"))
        .scan_index_forward(forward);
    for (k, v) in values {
        req = req.expression_attribute_values(*k, v.clone());
    }
    let out = req.send().await.unwrap_or_else(|e| panic!("{condition}: {}", err_text(&e)));
    assert_eq!(out.count() as usize, out.items().len());
    sk_numbers(out.items())
}

#[tokio::test]
async fn query_numeric_sort_key_conditions_and_order() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_num", Some(("sk", ScalarAttributeType::N))).await;
    let sks = ["-5", "0", "2", "10", "100.5", "1000"];
    // Written out of order; a Query returns sort-key order.
    for sk in sks.iter().rev() {
        put(&client, "q_num", item(&[("pk", s("a")), ("sk", n(*sk))])).await;
    }
    put(&client, "q_num", item(&[("pk", s("b")), ("sk", n(1))])).await;
    let all: Vec<String> = sks.iter().map(|x| x.to_string()).collect();
    let v = |x: &str| n(x);

    assert_eq!(query_sks(&client, "pk = :p", &[], true).await, all);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(query_sks(&client, "pk = :p", &[], false).await, reversed);
    assert_eq!(query_sks(&client, "pk = :p AND sk = :v", &[(":v", v("10"))], true).await, ["10"]);
    assert_eq!(query_sks(&client, "pk = :p AND sk < :v", &[(":v", v("10"))], true).await, ["-5", "0", "2"]);
    assert_eq!(query_sks(&client, "pk = :p AND sk <= :v", &[(":v", v("10"))], true).await, ["-5", "0", "2", "10"]);
    assert_eq!(query_sks(&client, "pk = :p AND sk > :v", &[(":v", v("10"))], true).await, ["100.5", "1000"]);
    assert_eq!(query_sks(&client, "pk = :p AND sk >= :v", &[(":v", v("10"))], false).await, ["1000", "100.5", "10"]);
    assert_eq!(
        query_sks(&client, "pk = :p AND sk BETWEEN :lo AND :hi", &[(":lo", v("0")), (":hi", v("100.5"))], true).await,
        ["0", "2", "10", "100.5"]
    );
    // Parentheses are allowed around a key condition.
    assert_eq!(query_sks(&client, "pk = :p AND (sk > :v)", &[(":v", v("100"))], true).await, ["100.5", "1000"]);
    assert!(query_sks(&client, "pk = :p AND sk > :v", &[(":v", v("5000"))], true).await.is_empty());

    // A partition with no items returns an empty page.
    let out = client
        .query()
        .table_name("q_num")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 0);
    assert!(out.items().is_empty());
    assert!(out.last_evaluated_key().is_none());
}

#[tokio::test]
async fn query_string_and_binary_sort_keys() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_str", Some(("sk", ScalarAttributeType::S))).await;
    for sk in ["2024-02-01", "2023-12-31", "2024-01-15", "2024-01-02", "B", "a", "Z"] {
        put(&client, "q_str", item(&[("pk", s("p")), ("sk", s(sk))])).await;
    }
    let run = |condition: &'static str, vals: Vec<(&'static str, AttributeValue)>| {
        let client = client.clone();
        async move {
            let mut req = client
                .query()
                .table_name("q_str")
                .key_condition_expression(condition)
                .expression_attribute_values(":p", s("p"));
            for (k, v) in vals {
                req = req.expression_attribute_values(k, v);
            }
            strings(req.send().await.unwrap_or_else(|e| panic!("{}", err_text(&e))).items(), "sk")
        }
    };
    // Strings sort by UTF-8 bytes: digits, then upper case, then lower case.
    assert_eq!(run("pk = :p", vec![]).await, ["2023-12-31", "2024-01-02", "2024-01-15", "2024-02-01", "B", "Z", "a"]);
    assert_eq!(
        run("pk = :p AND begins_with(sk, :pre)", vec![(":pre", s("2024-01"))]).await,
        ["2024-01-02", "2024-01-15"]
    );
    assert_eq!(
        run("pk = :p AND sk BETWEEN :a AND :b", vec![(":a", s("2024")), (":b", s("2024-01-99"))]).await,
        ["2024-01-02", "2024-01-15"]
    );

    create_table(&client, "q_bin", Some(("sk", ScalarAttributeType::B))).await;
    let bytes: [&[u8]; 4] = [&[0x80], &[0x00, 0x01], &[0xff], &[0x7f, 0xff]];
    for b in bytes {
        put(
            &client,
            "q_bin",
            item(&[("pk", s("p")), ("sk", AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b)))]),
        )
        .await;
    }
    let out = client
        .query()
        .table_name("q_bin")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await
        .unwrap();
    let got: Vec<Vec<u8>> = out.items().iter().map(|i| i["sk"].as_b().unwrap().as_ref().to_vec()).collect();
    // Binary sorts as unsigned bytes.
    assert_eq!(got, vec![vec![0x00, 0x01], vec![0x7f, 0xff], vec![0x80], vec![0xff]]);
}

#[tokio::test]
async fn query_rejects_invalid_key_conditions() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_bad", Some(("sk", ScalarAttributeType::N))).await;
    let run = |condition: &'static str, vals: Vec<(&'static str, AttributeValue)>| {
        let client = client.clone();
        async move {
            let mut req = client.query().table_name("q_bad").key_condition_expression(condition);
            for (k, v) in vals {
                req = req.expression_attribute_values(k, v);
            }
            req.send().await
        }
    };
    // No partition key equality.
    expect_error(run("sk = :v", vec![(":v", n(1))]).await, "ValidationException");
    expect_error(run("pk > :v", vec![(":v", s("a"))]).await, "ValidationException");
    // A non-key attribute.
    expect_error(run("pk = :p AND extra = :v", vec![(":p", s("a")), (":v", n(1))]).await, "ValidationException");
    // begins_with on a number sort key.
    expect_error(
        run("pk = :p AND begins_with(sk, :v)", vec![(":p", s("a")), (":v", n(1))]).await,
        "ValidationException",
    );
    // OR is not allowed in key conditions.
    expect_error(run("pk = :p OR sk = :v", vec![(":p", s("a")), (":v", n(1))]).await, "ValidationException");
    // Wrong type for the partition key value.
    expect_error(run("pk = :p", vec![(":p", n(1))]).await, "ValidationException");
    // Missing the key condition altogether.
    expect_error(client.query().table_name("q_bad").send().await, "ValidationException");
}

/// Pages through `pk = "p"` of `table` with `limit`, returning every page's sort keys.
async fn query_pages(client: &Client, table: &str, limit: i32, forward: bool) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut start: Option<Item> = None;
    for _ in 0..10_000 {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .limit(limit)
            .scan_index_forward(forward)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", err_text(&e)));
        assert!(out.items().len() <= limit as usize, "a page holds at most Limit items");
        pages.push(sk_numbers(out.items()));
        match out.last_evaluated_key {
            Some(lek) if !lek.is_empty() => {
                let mut attrs: Vec<&String> = lek.keys().collect();
                attrs.sort();
                assert_eq!(attrs, ["pk", "sk"], "LastEvaluatedKey holds the table key");
                start = Some(lek);
            }
            _ => return pages,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn query_paging_returns_every_item_once_in_order() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_page", Some(("sk", ScalarAttributeType::N))).await;
    let total: i32 = 250;
    for i in 0..total {
        put(&client, "q_page", item(&[("pk", s("p")), ("sk", n(i)), ("v", s("x"))])).await;
    }
    put(&client, "q_page", item(&[("pk", s("other")), ("sk", n(0))])).await;
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();

    let pages = query_pages(&client, "q_page", 7, true).await;
    assert!(pages.len() >= (total as usize).div_ceil(7), "{} pages", pages.len());
    assert_eq!(pages.concat(), expected);

    let pages = query_pages(&client, "q_page", 50, false).await;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(pages.concat(), reversed);

    // Limit equal to the item count: all items in one page (a trailing empty page is allowed).
    let pages = query_pages(&client, "q_page", total, true).await;
    assert_eq!(pages[0], expected);
    assert!(pages.len() <= 2 && pages.get(1).is_none_or(|p| p.is_empty()));

    // The SDK paginator agrees.
    let mut all = Vec::new();
    let mut stream = client
        .query()
        .table_name("q_page")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .limit(33)
        .into_paginator()
        .items()
        .send();
    while let Some(it) = stream.next().await {
        all.push(it.unwrap()["sk"].as_n().unwrap().clone());
    }
    assert_eq!(all, expected);
}

#[tokio::test]
async fn filter_expression_count_and_scanned_count() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_filter", Some(("sk", ScalarAttributeType::N))).await;
    for i in 0..30 {
        let color = if i % 3 == 0 { "red" } else { "blue" };
        put(&client, "q_filter", item(&[("pk", s("p")), ("sk", n(i)), ("color", s(color))])).await;
    }
    let query = || {
        client
            .query()
            .table_name("q_filter")
            .key_condition_expression("pk = :p")
            .filter_expression("color = :c")
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":c", s("red"))
    };
    let out = query().send().await.unwrap();
    assert_eq!(out.count(), 10);
    assert_eq!(out.scanned_count(), 30);
    assert_eq!(out.items().len(), 10);
    assert!(out.items().iter().all(|i| i["color"] == s("red")));

    // Limit bounds the items read, before the filter.
    let out = query().limit(10).send().await.unwrap();
    assert_eq!(out.scanned_count(), 10);
    assert_eq!(out.count(), 4, "red among sk 0..10: 0, 3, 6, 9");
    assert_eq!(out.last_evaluated_key().and_then(|k| k.get("sk")), Some(&n(9)));

    // Select COUNT returns counts and no items.
    let out = query().select(Select::Count).send().await.unwrap();
    assert_eq!(out.count(), 10);
    assert_eq!(out.scanned_count(), 30);
    assert!(out.items().is_empty(), "{:?}", out.items());

    // The same on Scan.
    let out = client
        .scan()
        .table_name("q_filter")
        .filter_expression("color = :c")
        .expression_attribute_values(":c", s("blue"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 20);
    assert_eq!(out.scanned_count(), 30);
    let out = client.scan().table_name("q_filter").select(Select::Count).send().await.unwrap();
    assert_eq!(out.count(), 30);
    assert!(out.items().is_empty());

    // A filter on a key attribute is refused in a Query.
    expect_error(
        client
            .query()
            .table_name("q_filter")
            .key_condition_expression("pk = :p")
            .filter_expression("sk = :v")
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "ValidationException",
    );
}

#[tokio::test]
async fn query_projection_expression() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_proj", Some(("sk", ScalarAttributeType::N))).await;
    put(&client, "q_proj", item(&[("pk", s("p")), ("sk", n(1)), ("a", s("A")), ("b", s("B")), ("c", s("C"))])).await;
    let out = client
        .query()
        .table_name("q_proj")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .projection_expression("a, c")
        .send()
        .await
        .unwrap();
    assert_eq!(out.items(), &[item(&[("a", s("A")), ("c", s("C"))])]);
}

#[tokio::test]
async fn one_megabyte_page_limit() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "q_big", Some(("sk", ScalarAttributeType::N))).await;
    let item_bytes = 100 * 1024;
    let total = 25;
    let payload = "x".repeat(item_bytes);
    for i in 0..total {
        put(&client, "q_big", item(&[("pk", s("p")), ("sk", n(i)), ("data", s(&payload))])).await;
    }

    // About 1 MB per page: ten 100 KB items, perhaps the one that crosses the limit.
    let first = client
        .query()
        .table_name("q_big")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await
        .unwrap();
    let got = first.items().len();
    assert!((9..=11).contains(&got), "first 1 MB page held {got} items of 100 KB");
    assert!(first.last_evaluated_key().is_some(), "a truncated page carries a cursor");

    let mut seen = Vec::new();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        let out = client
            .query()
            .table_name("q_big")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(out.items().len() <= 11);
        seen.extend(sk_numbers(out.items()));
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
        assert!(pages < 10);
    }
    assert!(pages >= 3);
    assert_eq!(seen, (0..total).map(|i| i.to_string()).collect::<Vec<_>>());

    // Scan has the same limit; Select COUNT counts within it too.
    let scan = client.scan().table_name("q_big").send().await.unwrap();
    assert!((9..=11).contains(&scan.items().len()), "{}", scan.items().len());
    assert!(scan.last_evaluated_key().is_some());
    let count = client.scan().table_name("q_big").select(Select::Count).send().await.unwrap();
    assert!((9..=11).contains(&count.count()), "{}", count.count());
    assert!(count.last_evaluated_key().is_some());
}

#[tokio::test]
async fn query_local_secondary_index() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("q_lsi")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .key_schema(range_key("sk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("sk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("rank", ScalarAttributeType::N))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_rank")
                .key_schema(hash_key("pk"))
                .key_schema(range_key("rank"))
                .projection(projection(ProjectionType::KeysOnly, &[]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    for (sk, rank) in [("a", Some(30)), ("b", Some(10)), ("c", None), ("d", Some(20))] {
        let mut it = item(&[("pk", s("p")), ("sk", s(sk)), ("extra", s("not projected"))]);
        if let Some(r) = rank {
            it.insert("rank".into(), n(r));
        }
        put(&client, "q_lsi", it).await;
    }
    let out = client
        .query()
        .table_name("q_lsi")
        .index_name("by_rank")
        .key_condition_expression("pk = :p AND #r >= :min")
        .expression_attribute_names("#r", "rank")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":min", n(0))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    // Ordered by the index sort key; the item without `rank` is not in the index.
    assert_eq!(strings(out.items(), "sk"), ["b", "d", "a"]);
    // KEYS_ONLY: table key and index key only.
    for it in out.items() {
        let mut attrs: Vec<&String> = it.keys().collect();
        attrs.sort();
        assert_eq!(attrs, ["pk", "rank", "sk"], "{it:?}");
    }

    // Paging an index: the cursor holds the table key and the index key.
    let page = client
        .query()
        .table_name("q_lsi")
        .index_name("by_rank")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(strings(page.items(), "sk"), ["b", "d"]);
    let lek = page.last_evaluated_key.clone().expect("cursor");
    let mut attrs: Vec<&String> = lek.keys().collect();
    attrs.sort();
    assert_eq!(attrs, ["pk", "rank", "sk"]);
    let rest = client
        .query()
        .table_name("q_lsi")
        .index_name("by_rank")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .set_exclusive_start_key(Some(lek))
        .send()
        .await
        .unwrap();
    assert_eq!(strings(rest.items(), "sk"), ["a"]);

    // Unknown index.
    let err = expect_error(
        client
            .query()
            .table_name("q_lsi")
            .index_name("nope")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("p"))
            .send()
            .await,
        "ValidationException",
    );
    assert!(err.message.contains("The table does not have the specified index: nope"), "{:?}", err.message);
}

#[tokio::test]
async fn query_global_secondary_index() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("q_gsi")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("city", ScalarAttributeType::S))
        .attribute_definitions(attr_def("age", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_city")
                .key_schema(hash_key("city"))
                .key_schema(range_key("age"))
                .projection(projection(ProjectionType::Include, &["name"]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let people = [
        ("u1", Some("Paris"), Some(41), "Ann"),
        ("u2", Some("Paris"), Some(25), "Bob"),
        ("u3", Some("Oslo"), Some(33), "Cid"),
        ("u4", Some("Paris"), None, "Dee"), // no index sort key: not indexed
        ("u5", None, Some(50), "Eve"),      // no index partition key: not indexed
        ("u6", Some("Paris"), Some(33), "Fay"),
    ];
    for (pk, city, age, name) in people {
        let mut it = item(&[("pk", s(pk)), ("name", s(name)), ("secret", s("x"))]);
        if let Some(c) = city {
            it.insert("city".into(), s(c));
        }
        if let Some(a) = age {
            it.insert("age".into(), n(a));
        }
        put(&client, "q_gsi", it).await;
    }

    let paris = || {
        client
            .query()
            .table_name("q_gsi")
            .index_name("by_city")
            .key_condition_expression("city = :c AND age > :a")
            .expression_attribute_values(":c", s("Paris"))
            .expression_attribute_values(":a", n(20))
    };
    // Global secondary indexes are eventually consistent: poll as a client would.
    let items = eventually(CONVERGE_WAIT, "GSI to show the Paris items", || {
        let q = paris();
        async move {
            let out = q.send().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
            (strings(out.items(), "pk") == ["u2", "u6", "u1"]).then(|| out.items().to_vec())
        }
    })
    .await;
    for it in &items {
        let mut attrs: Vec<&String> = it.keys().collect();
        attrs.sort();
        assert_eq!(attrs, ["age", "city", "name", "pk"], "INCLUDE projection: {it:?}");
    }

    // Descending, with a limit.
    let out = paris().scan_index_forward(false).limit(2).send().await.unwrap();
    assert_eq!(strings(out.items(), "pk"), ["u1", "u6"]);
    let lek = out.last_evaluated_key.clone().expect("cursor");
    let mut attrs: Vec<&String> = lek.keys().collect();
    attrs.sort();
    assert_eq!(attrs, ["age", "city", "pk"], "GSI cursor: index key plus table key");
    let out = paris().scan_index_forward(false).set_exclusive_start_key(Some(lek)).send().await.unwrap();
    assert_eq!(strings(out.items(), "pk"), ["u2"]);

    // A scan of the index sees only indexed items.
    let out = client.scan().table_name("q_gsi").index_name("by_city").send().await.unwrap();
    let mut pks = strings(out.items(), "pk");
    pks.sort();
    assert_eq!(pks, ["u1", "u2", "u3", "u6"]);

    // Strongly consistent reads are not offered on a GSI.
    expect_error(paris().consistent_read(true).send().await, "ValidationException");

    // Moving an item to another index key moves it in the index.
    client
        .update_item()
        .table_name("q_gsi")
        .key("pk", s("u2"))
        .update_expression("SET city = :c")
        .expression_attribute_values(":c", s("Oslo"))
        .send()
        .await
        .unwrap();
    client.delete_item().table_name("q_gsi").key("pk", s("u6")).send().await.unwrap();
    eventually(CONVERGE_WAIT, "GSI to reflect the update and delete", || {
        let q = paris();
        async move {
            let out = q.send().await.unwrap();
            (strings(out.items(), "pk") == ["u1"]).then_some(())
        }
    })
    .await;
}

/// Scans with `limit` per page, returning every pk seen (with repeats, if any).
async fn scan_all(client: &Client, table: &str, limit: i32, segment: Option<(i32, i32)>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut start: Option<Item> = None;
    for _ in 0..10_000 {
        let mut req = client.scan().table_name(table).limit(limit).set_exclusive_start_key(start.take());
        if let Some((seg, total)) = segment {
            req = req.segment(seg).total_segments(total);
        }
        let out = req.send().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
        assert!(out.items().len() <= limit as usize);
        seen.extend(strings(out.items(), "pk"));
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return seen,
        }
    }
    panic!("scan did not end");
}

#[tokio::test]
async fn scan_paging_and_parallel_segments() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "scan_all", None).await;
    let total = 300;
    let expected: BTreeSet<String> = (0..total).map(|i| format!("item-{i:04}")).collect();
    for pk in &expected {
        put(&client, "scan_all", item(&[("pk", s(pk)), ("v", n(1))])).await;
    }

    let seen = scan_all(&client, "scan_all", 17, None).await;
    assert_eq!(seen.len(), total, "every item exactly once");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);

    for segments in [1, 3, 4] {
        let mut union = Vec::new();
        let mut non_empty = 0;
        for seg in 0..segments {
            let part = scan_all(&client, "scan_all", 10, Some((seg, segments))).await;
            if !part.is_empty() {
                non_empty += 1;
            }
            union.extend(part);
        }
        assert_eq!(union.len(), total, "{segments} segments cover every item exactly once");
        assert_eq!(union.into_iter().collect::<BTreeSet<_>>(), expected);
        if segments > 1 {
            assert!(non_empty > 1, "300 items spread over more than one of {segments} segments");
        }
    }

    // Segment must be below TotalSegments; both or neither.
    expect_error(client.scan().table_name("scan_all").segment(4).total_segments(4).send().await, "ValidationException");
    expect_error(client.scan().table_name("scan_all").segment(0).send().await, "ValidationException");
    expect_error(client.scan().table_name("scan_all").segment(0).total_segments(0).send().await, "ValidationException");
}
