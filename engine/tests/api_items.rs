//! Single-item operations through the AWS SDK: PutItem, GetItem, UpdateItem, DeleteItem, with
//! conditions, projections, ReturnValues and consumed capacity as DynamoDB documents them.

#![cfg(not(madsim))]

mod common;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex, Projection, ProjectionType,
    ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use common::*;

/// Sets are unordered: sort them (recursively) so values compare by content.
fn canon(v: &AttributeValue) -> AttributeValue {
    match v {
        AttributeValue::Ss(x) => {
            let mut x = x.clone();
            x.sort();
            AttributeValue::Ss(x)
        }
        AttributeValue::Ns(x) => {
            let mut x = x.clone();
            x.sort();
            AttributeValue::Ns(x)
        }
        AttributeValue::Bs(x) => {
            let mut x = x.clone();
            x.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AttributeValue::Bs(x)
        }
        AttributeValue::L(x) => AttributeValue::L(x.iter().map(canon).collect()),
        AttributeValue::M(x) => AttributeValue::M(x.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

fn canon_item(it: &Item) -> Item {
    it.iter().map(|(k, v)| (k.clone(), canon(v))).collect()
}

#[track_caller]
fn assert_item_eq(actual: Option<&Item>, expected: &Item) {
    let actual = actual.expect("an item was returned");
    assert_eq!(canon_item(actual), canon_item(expected));
}

fn blob(bytes: &[u8]) -> Blob {
    Blob::new(bytes.to_vec())
}

fn map(pairs: &[(&str, AttributeValue)]) -> AttributeValue {
    AttributeValue::M(item(pairs))
}

fn list(values: &[AttributeValue]) -> AttributeValue {
    AttributeValue::L(values.to_vec())
}

fn ss(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|v| v.to_string()).collect())
}

fn ns(values: &[&str]) -> AttributeValue {
    AttributeValue::Ns(values.iter().map(|v| v.to_string()).collect())
}

fn key(pk: &str) -> Item {
    item(&[("pk", s(pk))])
}

#[tokio::test]
async fn put_and_get_every_attribute_type() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "types", None).await;
    let original = item(&[
        ("pk", s("all-types")),
        ("str", s("héllo wörld ✓")),
        ("num", n("-12.75")),
        ("bin", AttributeValue::B(blob(&[0, 1, 2, 255, 254]))),
        ("yes", AttributeValue::Bool(true)),
        ("no", AttributeValue::Bool(false)),
        ("nothing", AttributeValue::Null(true)),
        ("empty_str", s("")),
        ("strs", ss(&["b", "a", "c"])),
        ("nums", ns(&["3", "1", "2.5"])),
        ("bins", AttributeValue::Bs(vec![blob(b"x"), blob(&[0u8, 9])])),
        (
            "list",
            list(&[
                s("one"),
                n(2),
                list(&[AttributeValue::Bool(true), AttributeValue::Null(true)]),
                map(&[("inner", s("value"))]),
            ]),
        ),
        (
            "map",
            map(&[
                ("a", n(1)),
                ("nested", map(&[("deeper", list(&[ss(&["z"]), n(7)]))])),
                ("empty_list", list(&[])),
                ("empty_map", map(&[])),
            ]),
        ),
    ]);
    put(&client, "types", original.clone()).await;
    let got = get(&client, "types", key("all-types")).await;
    assert_item_eq(got.as_ref(), &original);
}

#[tokio::test]
async fn numbers_are_normalised_and_exact() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "numbers", None).await;
    let big = "12345678901234567890123456789012345678"; // 38 digits
    let pi = "3.1415926535897932384626433832795028841"; // 38 significant digits
    put(
        &client,
        "numbers",
        item(&[
            ("pk", s("n")),
            ("e", n("1E+2")),
            ("e_lower", n("1.5e3")),
            ("trailing", n("1.500")),
            ("leading", n("007")),
            ("neg", n("-0.250")),
            ("big", n(big)),
            ("neg_big", n(format!("-{big}"))),
            ("pi", n(pi)),
            ("tiny", n("0.0015")),
            ("set", ns(&["1E+2", "3"])),
        ]),
    )
    .await;
    let got = get(&client, "numbers", key("n")).await.expect("item");
    let num = |name: &str| got[name].as_n().unwrap_or_else(|_| panic!("{name} is N")).clone();
    assert_eq!(num("e"), "100");
    assert_eq!(num("e_lower"), "1500");
    assert_eq!(num("trailing"), "1.5");
    assert_eq!(num("leading"), "7");
    assert_eq!(num("neg"), "-0.25");
    assert_eq!(num("big"), big);
    assert_eq!(num("neg_big"), format!("-{big}"));
    assert_eq!(num("pi"), pi);
    assert_eq!(num("tiny"), "0.0015");
    assert_eq!(canon(&got["set"]), ns(&["100", "3"]));

    // Arithmetic on 38-digit numbers stays exact.
    let out = client
        .update_item()
        .table_name("numbers")
        .set_key(Some(key("n")))
        .update_expression("SET big = big - :one, pi = pi + :tiny")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":tiny", n("0.0000000000000000000000000000000000001"))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let attrs = out.attributes.expect("UPDATED_NEW attributes");
    assert_eq!(attrs["big"].as_n().unwrap(), "12345678901234567890123456789012345677");
    assert_eq!(attrs["pi"].as_n().unwrap(), "3.1415926535897932384626433832795028842");
}

#[tokio::test]
async fn numeric_keys_are_normalised() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "numkeys", Some(("sk", ScalarAttributeType::N))).await;
    put(&client, "numkeys", item(&[("pk", s("a")), ("sk", n("1E+2")), ("v", s("hundred"))])).await;
    let got = get(&client, "numkeys", item(&[("pk", s("a")), ("sk", n("100.0"))])).await;
    let got = got.expect("1E+2 and 100.0 are the same key");
    assert_eq!(got["sk"].as_n().unwrap(), "100");
    assert_eq!(got["v"].as_s().unwrap(), "hundred");
    // Writing the same number under another spelling replaces the item.
    put(&client, "numkeys", item(&[("pk", s("a")), ("sk", n("100")), ("v", s("again"))])).await;
    let scanned = client.scan().table_name("numkeys").send().await.unwrap();
    assert_eq!(scanned.count(), 1);
}

#[tokio::test]
async fn get_missing_item_returns_no_item() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "missing", None).await;
    let out = client.get_item().table_name("missing").key("pk", s("nope")).send().await.unwrap();
    assert!(out.item.is_none(), "{:?}", out.item);
}

#[tokio::test]
async fn consistent_and_eventual_reads() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "reads", None).await;
    put(&client, "reads", item(&[("pk", s("r")), ("v", n(1))])).await;
    let strong = client.get_item().table_name("reads").key("pk", s("r")).consistent_read(true).send().await.unwrap();
    assert_eq!(strong.item.unwrap()["v"], n(1), "a strongly consistent read sees the write");

    // An eventually consistent read converges on the write.
    eventually(CONVERGE_WAIT, "eventually consistent read", || {
        let client = client.clone();
        async move {
            let out =
                client.get_item().table_name("reads").key("pk", s("r")).consistent_read(false).send().await.unwrap();
            out.item.filter(|i| i.get("v") == Some(&n(1))).map(|_| ())
        }
    })
    .await;
}

#[tokio::test]
async fn projection_expression_with_nested_paths() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "proj", None).await;
    put(
        &client,
        "proj",
        item(&[
            ("pk", s("p")),
            ("top", s("t")),
            ("name", s("reserved word")),
            ("extra", s("not projected")),
            ("a", map(&[("b", map(&[("c", n(1)), ("d", n(2))])), ("x", s("ax")), ("y", s("ay"))])),
            ("l", list(&[s("l0"), map(&[("m", s("l1m")), ("n", s("l1n"))]), s("l2")])),
            ("dotted.name", s("literal dot")),
        ]),
    )
    .await;
    let out = client
        .get_item()
        .table_name("proj")
        .key("pk", s("p"))
        .projection_expression("top, #nm, a.b.c, a.x, l[1].m, l[2], #dot, nothing.here")
        .expression_attribute_names("#nm", "name")
        .expression_attribute_names("#dot", "dotted.name")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let expected = item(&[
        ("top", s("t")),
        ("name", s("reserved word")),
        ("a", map(&[("b", map(&[("c", n(1))])), ("x", s("ax"))])),
        // List elements come back in a list, in index order, without gaps.
        ("l", list(&[map(&[("m", s("l1m"))]), s("l2")])),
        ("dotted.name", s("literal dot")),
    ]);
    assert_item_eq(out.item.as_ref(), &expected);

    // Keys are not returned unless asked for.
    let only =
        client.get_item().table_name("proj").key("pk", s("p")).projection_expression("extra").send().await.unwrap();
    assert_item_eq(only.item.as_ref(), &item(&[("extra", s("not projected"))]));
}

#[tokio::test]
async fn update_item_set_remove_add_delete() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "upd", None).await;
    put(
        &client,
        "upd",
        item(&[
            ("pk", s("u")),
            ("count", n(10)),
            ("price", n("2.5")),
            ("keep", s("old")),
            ("gone", s("bye")),
            ("l", list(&[s("a"), s("b"), s("c")])),
            ("r", list(&[s("r0"), s("r1"), s("r2")])),
            ("front", list(&[n(2)])),
            ("m", map(&[("x", n(1)), ("y", n(2))])),
            ("tags", ss(&["red", "green", "blue"])),
            ("nums", ns(&["1", "2"])),
        ]),
    )
    .await;
    let out = client
        .update_item()
        .table_name("upd")
        .set_key(Some(key("u")))
        .update_expression(
            "SET #c = #c + :one, price = price - :half, keep = if_not_exists(keep, :new), \
             fresh = if_not_exists(fresh, :new), l = list_append(l, :more), \
             front = list_append(:pre, front), m.z = :one, m.x = m.y * :zero_ok \
             REMOVE gone, r[0], m.y \
             ADD added :five, nums :more_nums, new_set :new_set \
             DELETE tags :drop",
        )
        .expression_attribute_names("#c", "count")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":half", n("0.5"))
        .expression_attribute_values(":new", s("new"))
        .expression_attribute_values(":more", list(&[s("d")]))
        .expression_attribute_values(":pre", list(&[n(0), n(1)]))
        .expression_attribute_values(":zero_ok", n(0))
        .expression_attribute_values(":five", n(5))
        .expression_attribute_values(":more_nums", ns(&["2", "3"]))
        .expression_attribute_values(":new_set", ss(&["s"]))
        .expression_attribute_values(":drop", ss(&["green", "purple"]))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    // `*` is not an update operator in DynamoDB: the expression above must be refused whole.
    let err = expect_error(out, "ValidationException");
    assert!(err.message.contains("UpdateExpression"), "{:?}", err.message);

    let out = client
        .update_item()
        .table_name("upd")
        .set_key(Some(key("u")))
        .update_expression(
            "SET #c = #c + :one, price = price - :half, keep = if_not_exists(keep, :new), \
             fresh = if_not_exists(fresh, :new), l = list_append(l, :more), \
             front = list_append(:pre, front), m.z = :one, m.x = m.y \
             REMOVE gone, r[0], m.y \
             ADD added :five, nums :more_nums, new_set :new_set \
             DELETE tags :drop",
        )
        .expression_attribute_names("#c", "count")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":half", n("0.5"))
        .expression_attribute_values(":new", s("new"))
        .expression_attribute_values(":more", list(&[s("d")]))
        .expression_attribute_values(":pre", list(&[n(0), n(1)]))
        .expression_attribute_values(":five", n(5))
        .expression_attribute_values(":more_nums", ns(&["2", "3"]))
        .expression_attribute_values(":new_set", ss(&["s"]))
        .expression_attribute_values(":drop", ss(&["green", "purple"]))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    // SET operands read the item as it was before the update, so m.x takes the old m.y.
    let expected = item(&[
        ("pk", s("u")),
        ("count", n(11)),
        ("price", n(2)),
        ("keep", s("old")),
        ("fresh", s("new")),
        ("l", list(&[s("a"), s("b"), s("c"), s("d")])),
        // Removing a list element shifts the rest down.
        ("r", list(&[s("r1"), s("r2")])),
        ("front", list(&[n(0), n(1), n(2)])),
        ("m", map(&[("x", n(2)), ("z", n(1))])),
        ("added", n(5)),
        ("nums", ns(&["1", "2", "3"])),
        ("new_set", ss(&["s"])),
        ("tags", ss(&["red", "blue"])),
    ]);
    assert_item_eq(out.attributes.as_ref(), &expected);
    assert_item_eq(get(&client, "upd", key("u")).await.as_ref(), &expected);

    // Deleting every element of a set removes the attribute.
    client
        .update_item()
        .table_name("upd")
        .set_key(Some(key("u")))
        .update_expression("DELETE new_set :s")
        .expression_attribute_values(":s", ss(&["s"]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let after = get(&client, "upd", key("u")).await.unwrap();
    assert!(!after.contains_key("new_set"), "empty sets do not exist: {after:?}");
}

#[tokio::test]
async fn update_item_creates_missing_item() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "upsert", Some(("sk", ScalarAttributeType::N))).await;
    let out = client
        .update_item()
        .table_name("upsert")
        .key("pk", s("new"))
        .key("sk", n(1))
        .update_expression("SET title = :t ADD visits :one")
        .expression_attribute_values(":t", s("created by update"))
        .expression_attribute_values(":one", n(1))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let expected = item(&[("pk", s("new")), ("sk", n(1)), ("title", s("created by update")), ("visits", n(1))]);
    assert_item_eq(out.attributes.as_ref(), &expected);
    assert_item_eq(get(&client, "upsert", item(&[("pk", s("new")), ("sk", n(1))])).await.as_ref(), &expected);

    // An update that only removes still creates the item with just its key.
    client
        .update_item()
        .table_name("upsert")
        .key("pk", s("bare"))
        .key("sk", n(2))
        .update_expression("REMOVE nothing")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_item_eq(
        get(&client, "upsert", item(&[("pk", s("bare")), ("sk", n(2))])).await.as_ref(),
        &item(&[("pk", s("bare")), ("sk", n(2))]),
    );
}

#[tokio::test]
async fn update_item_arithmetic_type_errors() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "arith", None).await;
    put(&client, "arith", item(&[("pk", s("a")), ("label", s("x"))])).await;
    // Arithmetic on a string operand.
    let err = expect_error(
        client
            .update_item()
            .table_name("arith")
            .set_key(Some(key("a")))
            .update_expression("SET label = label + :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await,
        "ValidationException",
    );
    // DynamoDB: "An operand in the update expression has an incorrect data type".
    assert!(err.message.contains("operand"), "{:?}", err.message);
    // Arithmetic on a missing attribute.
    let err = expect_error(
        client
            .update_item()
            .table_name("arith")
            .set_key(Some(key("a")))
            .update_expression("SET tally = tally + :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await,
        "ValidationException",
    );
    assert!(
        err.message.contains("The provided expression refers to an attribute that does not exist in the item"),
        "{:?}",
        err.message
    );
    // The item is unchanged.
    assert_item_eq(get(&client, "arith", key("a")).await.as_ref(), &item(&[("pk", s("a")), ("label", s("x"))]));
}

#[tokio::test]
async fn delete_item_removes_and_returns_old() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "del", None).await;
    let original = item(&[("pk", s("d")), ("v", n(3))]);
    put(&client, "del", original.clone()).await;
    let out = client
        .delete_item()
        .table_name("del")
        .key("pk", s("d"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_item_eq(out.attributes.as_ref(), &original);
    assert_eq!(get(&client, "del", key("d")).await, None);

    // Deleting a missing item succeeds and returns nothing.
    let out = client
        .delete_item()
        .table_name("del")
        .key("pk", s("d"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert!(out.attributes.as_ref().is_none_or(|a| a.is_empty()), "{:?}", out.attributes);
}

/// Re-puts the fixed item under `condition`; true when the write happened.
async fn condition_holds(client: &Client, condition: &str, values: &[(&str, AttributeValue)]) -> bool {
    let mut req = client.put_item().table_name("cond").set_item(Some(cond_item())).condition_expression(condition);
    if condition.contains("#s") {
        req = req.expression_attribute_names("#s", "size");
    }
    for (k, v) in values {
        req = req.expression_attribute_values(*k, v.clone());
    }
    match req.send().await {
        Ok(_) => true,
        Err(e) => {
            let err = service_error(Err::<(), _>(e));
            assert_eq!(err.code, "ConditionalCheckFailedException", "condition {condition:?}: {}", err.message);
            assert_eq!(err.message, "The conditional request failed");
            false
        }
    }
}

fn cond_item() -> Item {
    item(&[
        ("pk", s("c")),
        ("n", n(5)),
        ("str", s("hello world")),
        ("size", n(3)),
        ("tags", ss(&["a", "b"])),
        ("l", list(&[n(1), s("two")])),
        ("m", map(&[("deep", s("x"))])),
        ("nul", AttributeValue::Null(true)),
    ])
}

#[tokio::test]
async fn condition_expressions_true_and_false() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "cond", None).await;
    put(&client, "cond", cond_item()).await;

    let five = [(":v", n(5))];
    // (condition, expression attribute values, expected to hold)
    type Case<'a> = (&'a str, Vec<(&'a str, AttributeValue)>, bool);
    let cases: Vec<Case> = vec![
        ("attribute_exists(pk)", vec![], true),
        ("attribute_not_exists(pk)", vec![], false),
        ("attribute_exists(m.deep)", vec![], true),
        ("attribute_exists(m.nope)", vec![], false),
        ("attribute_not_exists(absent_attr)", vec![], true),
        ("n = :v", five.to_vec(), true),
        ("n <> :v", five.to_vec(), false),
        ("n < :v", five.to_vec(), false),
        ("n <= :v", five.to_vec(), true),
        ("n > :v", vec![(":v", n(4))], true),
        ("n >= :v", vec![(":v", n(6))], false),
        ("n BETWEEN :lo AND :hi", vec![(":lo", n(1)), (":hi", n(5))], true),
        ("n BETWEEN :lo AND :hi", vec![(":lo", n(6)), (":hi", n(9))], false),
        ("n IN (:a, :b)", vec![(":a", n(1)), (":b", n(5))], true),
        ("n IN (:a, :b)", vec![(":a", n(1)), (":b", n(2))], false),
        ("begins_with(str, :p)", vec![(":p", s("hello"))], true),
        ("begins_with(str, :p)", vec![(":p", s("world"))], false),
        ("contains(str, :p)", vec![(":p", s("o w"))], true),
        ("contains(tags, :p)", vec![(":p", s("b"))], true),
        ("contains(tags, :p)", vec![(":p", s("z"))], false),
        ("contains(l, :p)", vec![(":p", s("two"))], true),
        ("size(str) = :v", vec![(":v", n(11))], true),
        ("size(tags) = :v", vec![(":v", n(2))], true),
        ("size(l) > :v", vec![(":v", n(2))], false),
        ("attribute_type(n, :t)", vec![(":t", s("N"))], true),
        ("attribute_type(n, :t)", vec![(":t", s("S"))], false),
        ("attribute_type(nul, :t)", vec![(":t", s("NULL"))], true),
        ("attribute_type(m, :t)", vec![(":t", s("M"))], true),
        ("#s = :v", vec![(":v", n(3))], true),
        ("l[1] = :v", vec![(":v", s("two"))], true),
        ("m.deep = :v", vec![(":v", s("x"))], true),
        ("n = :v AND str = :s", vec![(":v", n(5)), (":s", s("no"))], false),
        ("n = :v OR str = :s", vec![(":v", n(5)), (":s", s("no"))], true),
        ("NOT n = :v", five.to_vec(), false),
        ("NOT (n = :v AND attribute_exists(absent_attr))", five.to_vec(), true),
        // Comparing different types is false, not an error.
        ("n = :v", vec![(":v", s("5"))], false),
        // A missing attribute compares false.
        ("absent_attr = :v", five.to_vec(), false),
        ("absent_attr <> :v", five.to_vec(), true),
    ];
    let mut failures = Vec::new();
    for (condition, values, expected) in &cases {
        let actual = condition_holds(&client, condition, values).await;
        if actual != *expected {
            failures.push(format!("{condition} with {values:?}: expected {expected}, got {actual}"));
        }
    }
    assert!(failures.is_empty(), "conditions evaluated wrongly:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn conditional_put_update_delete() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "cwrites", None).await;
    // Create only if absent.
    let create = || {
        client
            .put_item()
            .table_name("cwrites")
            .item("pk", s("k"))
            .item("v", n(1))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    create().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let err = expect_error(create().await, "ConditionalCheckFailedException");
    assert_eq!(err.message, "The conditional request failed");

    // Optimistic locking with a version attribute.
    client
        .update_item()
        .table_name("cwrites")
        .key("pk", s("k"))
        .update_expression("SET v = v + :one")
        .condition_expression("v = :expected")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":expected", n(1))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    expect_error(
        client
            .update_item()
            .table_name("cwrites")
            .key("pk", s("k"))
            .update_expression("SET v = v + :one")
            .condition_expression("v = :expected")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expected", n(1))
            .send()
            .await,
        "ConditionalCheckFailedException",
    );
    assert_eq!(get(&client, "cwrites", key("k")).await.unwrap()["v"], n(2));

    // A conditional update of a missing item fails and creates nothing.
    expect_error(
        client
            .update_item()
            .table_name("cwrites")
            .key("pk", s("absent"))
            .update_expression("SET v = :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await,
        "ConditionalCheckFailedException",
    );
    assert_eq!(get(&client, "cwrites", key("absent")).await, None);

    // Conditional delete.
    expect_error(
        client
            .delete_item()
            .table_name("cwrites")
            .key("pk", s("k"))
            .condition_expression("v > :limit")
            .expression_attribute_values(":limit", n(5))
            .send()
            .await,
        "ConditionalCheckFailedException",
    );
    assert!(get(&client, "cwrites", key("k")).await.is_some());
    client
        .delete_item()
        .table_name("cwrites")
        .key("pk", s("k"))
        .condition_expression("v < :limit")
        .expression_attribute_values(":limit", n(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(get(&client, "cwrites", key("k")).await, None);
}

#[tokio::test]
async fn condition_failure_returns_old_item_when_asked() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "ccf", None).await;
    let original = item(&[("pk", s("k")), ("v", n(1)), ("note", s("existing"))]);
    put(&client, "ccf", original.clone()).await;

    let err = client
        .put_item()
        .table_name("ccf")
        .item("pk", s("k"))
        .item("v", n(2))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .expect_err("condition must fail");
    match err.into_service_error() {
        PutItemError::ConditionalCheckFailedException(e) => {
            assert_item_eq(e.item(), &original);
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }

    let err = client
        .update_item()
        .table_name("ccf")
        .key("pk", s("k"))
        .update_expression("SET v = :two")
        .condition_expression("v = :zero")
        .expression_attribute_values(":two", n(2))
        .expression_attribute_values(":zero", n(0))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .expect_err("condition must fail");
    match err.into_service_error() {
        UpdateItemError::ConditionalCheckFailedException(e) => {
            assert_item_eq(e.item(), &original);
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }

    // Without the option the error carries no item.
    let err = client
        .put_item()
        .table_name("ccf")
        .item("pk", s("k"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .expect_err("condition must fail");
    match err.into_service_error() {
        PutItemError::ConditionalCheckFailedException(e) => {
            assert!(e.item().is_none_or(|i| i.is_empty()), "{:?}", e.item());
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
    assert_item_eq(get(&client, "ccf", key("k")).await.as_ref(), &original);
}

async fn update_returning(client: &Client, table: &str, rv: ReturnValue) -> Option<Item> {
    // Reset, then the same update every time.
    put(client, table, item(&[("pk", s("rv")), ("a", n(1)), ("b", n(2)), ("c", n(3))])).await;
    client
        .update_item()
        .table_name(table)
        .key("pk", s("rv"))
        .update_expression("SET a = :ten, d = :d REMOVE c")
        .expression_attribute_values(":ten", n(10))
        .expression_attribute_values(":d", s("new"))
        .return_values(rv)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)))
        .attributes
}

#[tokio::test]
async fn return_values_on_update_put_delete() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "retvals", None).await;

    let none = update_returning(&client, "retvals", ReturnValue::None).await;
    assert!(none.as_ref().is_none_or(|a| a.is_empty()), "NONE returns nothing: {none:?}");
    assert_item_eq(
        update_returning(&client, "retvals", ReturnValue::AllOld).await.as_ref(),
        &item(&[("pk", s("rv")), ("a", n(1)), ("b", n(2)), ("c", n(3))]),
    );
    // UPDATED_OLD: the old values of the attributes the update touched.
    assert_item_eq(
        update_returning(&client, "retvals", ReturnValue::UpdatedOld).await.as_ref(),
        &item(&[("a", n(1)), ("c", n(3))]),
    );
    assert_item_eq(
        update_returning(&client, "retvals", ReturnValue::AllNew).await.as_ref(),
        &item(&[("pk", s("rv")), ("a", n(10)), ("b", n(2)), ("d", s("new"))]),
    );
    // UPDATED_NEW: the new values of the attributes that still exist.
    assert_item_eq(
        update_returning(&client, "retvals", ReturnValue::UpdatedNew).await.as_ref(),
        &item(&[("a", n(10)), ("d", s("new"))]),
    );

    // PutItem: ALL_OLD returns the replaced item, nothing for a new one.
    let out = client
        .put_item()
        .table_name("retvals")
        .item("pk", s("rv"))
        .item("z", n(0))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_item_eq(out.attributes.as_ref(), &item(&[("pk", s("rv")), ("a", n(10)), ("b", n(2)), ("d", s("new"))]));
    let out = client
        .put_item()
        .table_name("retvals")
        .item("pk", s("brand-new"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert!(out.attributes.as_ref().is_none_or(|a| a.is_empty()), "{:?}", out.attributes);
    // PutItem and DeleteItem accept only NONE and ALL_OLD.
    expect_error(
        client.put_item().table_name("retvals").item("pk", s("rv")).return_values(ReturnValue::AllNew).send().await,
        "ValidationException",
    );
    expect_error(
        client
            .delete_item()
            .table_name("retvals")
            .key("pk", s("rv"))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await,
        "ValidationException",
    );
}

// ---------------------------------------------------------------------------------------------
// Consumed capacity

#[track_caller]
fn units(cc: Option<&ConsumedCapacity>) -> f64 {
    cc.expect("ConsumedCapacity is returned").capacity_units().expect("CapacityUnits")
}

/// An item of exactly `size_bytes` by DynamoDB's sizing: names plus values.
fn sized_item(pk: &str, size_bytes: usize) -> Item {
    let fixed = "pk".len() + pk.len() + "data".len();
    item(&[("pk", s(pk)), ("data", s(&"x".repeat(size_bytes - fixed)))])
}

#[tokio::test]
async fn consumed_capacity_for_writes_rounds_up_per_kb() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "wcu", None).await;
    let put_units = |it: Item| {
        let client = client.clone();
        async move {
            let out = client
                .put_item()
                .table_name("wcu")
                .set_item(Some(it))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}", err_text(&e)));
            let cc = out.consumed_capacity.expect("ConsumedCapacity");
            assert_eq!(cc.table_name(), Some("wcu"));
            cc.capacity_units().expect("CapacityUnits")
        }
    };
    assert_eq!(put_units(sized_item("small", 100)).await, 1.0);
    assert_eq!(put_units(sized_item("exact1k", 1024)).await, 1.0);
    assert_eq!(put_units(sized_item("over1k", 1025)).await, 2.0);
    // 1.5 KB rounds up to 2 write units.
    assert_eq!(put_units(sized_item("kb15", 1536)).await, 2.0);
    assert_eq!(put_units(sized_item("kb10", 10 * 1024)).await, 10.0);

    // Overwriting charges for the larger of the old and new item.
    assert_eq!(put_units(sized_item("kb10", 100)).await, 10.0);

    // Without ReturnConsumedCapacity nothing is reported.
    let out = client.put_item().table_name("wcu").set_item(Some(sized_item("q", 50))).send().await;
    assert!(out.unwrap().consumed_capacity.is_none());

    // UpdateItem and DeleteItem report capacity too.
    let out = client
        .update_item()
        .table_name("wcu")
        .key("pk", s("small"))
        .update_expression("SET extra = :v")
        .expression_attribute_values(":v", n(1))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity.as_ref()), 1.0);
    let out = client
        .delete_item()
        .table_name("wcu")
        .key("pk", s("over1k"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity.as_ref()), 2.0);
    // Deleting a missing item still costs one write unit.
    let out = client
        .delete_item()
        .table_name("wcu")
        .key("pk", s("never-there"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity.as_ref()), 1.0);
}

#[tokio::test]
async fn consumed_capacity_for_reads_rounds_up_per_4kb() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "rcu", None).await;
    put(&client, "rcu", sized_item("kb5", 5 * 1024)).await;
    put(&client, "rcu", sized_item("small", 100)).await;
    put(&client, "rcu", sized_item("kb4", 4096)).await;

    let get_units = |pk: &'static str, consistent: bool| {
        let client = client.clone();
        async move {
            let out = client
                .get_item()
                .table_name("rcu")
                .key("pk", s(pk))
                .consistent_read(consistent)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}", err_text(&e)));
            let cc = out.consumed_capacity.expect("ConsumedCapacity");
            assert_eq!(cc.table_name(), Some("rcu"));
            cc.capacity_units().expect("CapacityUnits")
        }
    };
    // 5 KB: two 4 KB units strongly consistent, half that eventually consistent.
    assert_eq!(get_units("kb5", true).await, 2.0);
    assert_eq!(get_units("kb5", false).await, 1.0);
    assert_eq!(get_units("kb4", true).await, 1.0);
    assert_eq!(get_units("small", true).await, 1.0);
    assert_eq!(get_units("small", false).await, 0.5);
    // A read that finds nothing still costs the minimum.
    assert_eq!(get_units("absent", true).await, 1.0);
    assert_eq!(get_units("absent", false).await, 0.5);

    // A projection does not make the read cheaper.
    let out = client
        .get_item()
        .table_name("rcu")
        .key("pk", s("kb5"))
        .projection_expression("pk")
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity.as_ref()), 2.0);
}

#[tokio::test]
async fn consumed_capacity_counts_gsi_writes() {
    let server = TestServer::start();
    let client = server.client();
    client
        .create_table()
        .table_name("gsi_wcu")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(hash_key("pk"))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_g")
                .key_schema(hash_key("g"))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));

    let index_units = |cc: &ConsumedCapacity| -> f64 {
        cc.global_secondary_indexes().and_then(|m| m.get("by_g")).and_then(|c| c.capacity_units()).unwrap_or(0.0)
    };

    // An item with the index key: one unit for the table and one for the index.
    let out = client
        .put_item()
        .table_name("gsi_wcu")
        .item("pk", s("a"))
        .item("g", s("one"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let cc = out.consumed_capacity.expect("ConsumedCapacity");
    assert_eq!(cc.table_name(), Some("gsi_wcu"));
    assert_eq!(cc.capacity_units(), Some(2.0), "{cc:?}");
    assert_eq!(cc.table().and_then(|t| t.capacity_units()), Some(1.0), "{cc:?}");
    assert_eq!(index_units(&cc), 1.0, "{cc:?}");

    // TOTAL reports the same sum without the breakdown.
    let out = client
        .put_item()
        .table_name("gsi_wcu")
        .item("pk", s("b"))
        .item("g", s("two"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(units(out.consumed_capacity.as_ref()), 2.0);

    // An item without the index key is not written to the index.
    let out = client
        .put_item()
        .table_name("gsi_wcu")
        .item("pk", s("c"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.expect("ConsumedCapacity");
    assert_eq!(cc.capacity_units(), Some(1.0), "{cc:?}");
    assert_eq!(index_units(&cc), 0.0, "{cc:?}");

    // Changing the index key deletes the old index entry and writes a new one.
    let out = client
        .update_item()
        .table_name("gsi_wcu")
        .key("pk", s("a"))
        .update_expression("SET g = :g")
        .expression_attribute_values(":g", s("moved"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.expect("ConsumedCapacity");
    assert_eq!(cc.capacity_units(), Some(3.0), "{cc:?}");
    assert_eq!(index_units(&cc), 2.0, "{cc:?}");

    // Deleting an indexed item removes its index entry too.
    let out = client
        .delete_item()
        .table_name("gsi_wcu")
        .key("pk", s("b"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.expect("ConsumedCapacity");
    assert_eq!(cc.capacity_units(), Some(2.0), "{cc:?}");
    assert_eq!(index_units(&cc), 1.0, "{cc:?}");
}

#[tokio::test]
async fn put_replaces_whole_item() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "replace", None).await;
    put(&client, "replace", item(&[("pk", s("r")), ("a", n(1)), ("b", n(2))])).await;
    put(&client, "replace", item(&[("pk", s("r")), ("c", n(3))])).await;
    let got = get(&client, "replace", key("r")).await;
    assert_item_eq(got.as_ref(), &item(&[("pk", s("r")), ("c", n(3))]));
}
