//! Inputs and settings shared by the micro benchmarks.
//!
//! Each bench target includes this module with `mod common;`, so every target sees the same
//! realistic item and the same criterion settings. Not every target uses every helper.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use criterion::Criterion;
use squall_engine::catalog::{BillingMode, KeyAttribute, KeySchema, TableMeta, Throughput};
use squall_engine::model::{encode_item, AttributeValue, Item, Number, ScalarType};
use squall_engine::partition::{NodeId, NodeInfo, ZoneId};

/// Criterion settings for every group: one second of warm-up and three of measurement keep the
/// whole suite within a few minutes on a two-core machine. Command-line flags given to
/// `cargo bench` (for example `--measurement-time`) still override these.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

/// A string value.
pub fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

/// A number value; `text` must be a valid DynamoDB number.
pub fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).expect("valid number"))
}

/// A map value.
pub fn map(pairs: Vec<(&str, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Bytes that look like real binary data (a hash or a thumbnail), not a run of zeros, so that
/// nothing downstream gets an unrealistically easy input.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// One order line of [`order_item`].
fn order_line(index: usize) -> AttributeValue {
    map(vec![
        ("sku", s(&format!("SKU-{:06}", 104_729 * (index + 1) % 1_000_000))),
        ("title", s(&format!("Stainless steel water bottle, 750 ml, model {index}"))),
        ("qty", n(&(index + 1).to_string())),
        ("unit_price", n(&format!("{}.{:02}", 12 + 7 * index, 49 + index))),
        ("discount", n("0.15")),
        (
            "attributes",
            map(vec![
                ("color", s("midnight blue")),
                ("size", s("L")),
                ("gift_wrap", AttributeValue::Bool(index.is_multiple_of(2))),
            ]),
        ),
    ])
}

/// A realistic order item of about 1 KB: string keys, nested maps, a list of maps, numbers with
/// fractions, string and number sets, binary data, booleans and a null. Partition key `pk`,
/// sort key `sk`.
pub fn order_item() -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s("customer#0001234567"));
    item.insert("sk".into(), s("order#2026-11-30T12:34:56.789Z#000042"));
    item.insert("status".into(), s("PAID"));
    item.insert("total".into(), n("1234.56"));
    item.insert("currency".into(), s("EUR"));
    item.insert("created_at".into(), n("1795437296789"));
    item.insert("updated_at".into(), n("1795437301234"));
    item.insert("version".into(), n("7"));
    item.insert("express".into(), AttributeValue::Bool(true));
    item.insert("notes".into(), AttributeValue::Null);
    item.insert(
        "tags".into(),
        AttributeValue::Ss(["gift", "priority", "returning-customer", "eu"].iter().map(|t| t.to_string()).collect()),
    );
    item.insert(
        "scores".into(),
        AttributeValue::Ns(
            ["0.87", "12", "3.5", "-1"].iter().map(|t| Number::parse(t).expect("valid number")).collect(),
        ),
    );
    item.insert("signature".into(), AttributeValue::B(bytes(32, 7)));
    item.insert("thumbnail".into(), AttributeValue::B(bytes(96, 3)));
    item.insert(
        "shipping".into(),
        map(vec![
            ("name", s("Ada Lovelace")),
            (
                "address",
                map(vec![
                    ("street", s("12 St James's Square")),
                    ("city", s("London")),
                    ("postcode", s("SW1Y 4JH")),
                    ("country", s("GB")),
                ]),
            ),
            ("geo", map(vec![("lat", n("51.5074")), ("lon", n("-0.1339"))])),
            ("method", s("express")),
        ]),
    );
    item.insert("lines".into(), AttributeValue::L((0..4).map(order_line).collect()));
    item.insert(
        "history".into(),
        AttributeValue::L(
            ["created", "payment-authorised", "payment-captured", "picked"].iter().map(|e| s(e)).collect(),
        ),
    );
    item
}

/// [`order_item`] with its keys changed to those of order `index` of customer `customer`, for
/// filling a store with distinct items.
pub fn order_item_for(customer: u64, index: u64) -> Item {
    let mut item = order_item();
    item.insert("pk".into(), s(&format!("customer#{customer:010}")));
    item.insert("sk".into(), s(&format!("order#2026-11-30T12:34:56.789Z#{index:06}")));
    item
}

/// Checks that the encoded item is the size the benchmark names claim (about 1 KB), so a change
/// to the item or the codec cannot silently make the names wrong.
pub fn assert_about_1kb(item: &Item) {
    let len = encode_item(item).len();
    assert!((900..=1300).contains(&len), "the benchmark item encodes to {len} bytes, not about 1 KB");
}

/// The catalog entry of the orders table: partition key `pk` and sort key `sk`, both strings,
/// on demand.
pub fn orders_table(id: u64) -> TableMeta {
    let key_schema = KeySchema {
        partition: KeyAttribute { name: "pk".into(), kind: ScalarType::S },
        sort: Some(KeyAttribute { name: "sk".into(), kind: ScalarType::S }),
    };
    TableMeta {
        name: "orders".into(),
        id,
        attribute_definitions: key_schema.attributes().cloned().collect(),
        key_schema,
        billing_mode: BillingMode::PayPerRequest,
        throughput: Throughput { read_units: 0, write_units: 0 },
        indexes: Vec::new(),
        created_at_ms: 1_795_437_296_789,
        next_index_id: 1,
        deletion_protection: false,
        tags: BTreeMap::new(),
        on_demand: Default::default(),
        throughput_changes: Default::default(),
        on_demand_since_ms: None,
    }
}

/// Nine nodes, three in each of three zones: the smallest cluster with more than one node per
/// zone.
pub fn nine_nodes() -> Vec<NodeInfo> {
    (0..9u64)
        .map(|i| NodeInfo { id: NodeId(i + 1), zone: ZoneId((i % 3) as u32), replica_count: 0, load: None })
        .collect()
}

/// A set of string values, for expression placeholders.
pub fn string_set(items: &[&str]) -> AttributeValue {
    AttributeValue::Ss(items.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>())
}
