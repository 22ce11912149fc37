//! The expression language on the request path: parsing a ConditionExpression, an
//! UpdateExpression and a ProjectionExpression, and using each of them on a realistic order
//! item of about 1 KB (evaluating the condition, applying the update, projecting the item).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use squall_engine::expr::{parse_condition, parse_projection, parse_update, project, ConditionKind, ExprContext};
use squall_engine::model::{AttributeValue, Number};

mod common;
use common::{n, s, string_set};

/// A write's guard as an application would write it: existence, membership, a range, a
/// function of a list, a negated set test and a prefix test, all true for the item.
const CONDITION: &str = "attribute_exists(pk) AND #status IN (:pending, :paid) AND #total BETWEEN :low AND :high \
     AND size(#lines) > :zero AND NOT contains(tags, :blocked) AND begins_with(sk, :prefix)";

/// An update touching every clause: SET with a nested path, arithmetic and `list_append`,
/// REMOVE, ADD to a number set and DELETE from a string set.
const UPDATE: &str = "SET #status = :shipped, shipping.tracking = :tracking, updated_at = :now, \
     version = version + :one, history = list_append(history, :event) \
     REMOVE notes ADD scores :score DELETE tags :gone";

/// A projection with top-level names, a nested map path and list elements.
const PROJECTION: &str = "pk, sk, #status, #total, shipping.address.city, #lines[0].sku, #lines[1].qty, tags";

fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> BTreeMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn condition_context() -> ExprContext {
    ExprContext::new(
        Some(names(&[("#status", "status"), ("#total", "total"), ("#lines", "lines")])),
        Some(values(vec![
            (":pending", s("PENDING")),
            (":paid", s("PAID")),
            (":low", n("100")),
            (":high", n("5000")),
            (":zero", n("0")),
            (":blocked", s("fraud-review")),
            (":prefix", s("order#")),
        ])),
    )
    .expect("valid placeholders")
}

fn update_context() -> ExprContext {
    ExprContext::new(
        Some(names(&[("#status", "status")])),
        Some(values(vec![
            (":shipped", s("SHIPPED")),
            (":tracking", s("1Z999AA10123456784")),
            (":now", n("1795437399000")),
            (":one", n("1")),
            (":event", AttributeValue::L(vec![s("shipped")])),
            (":score", AttributeValue::Ns([Number::parse("42").expect("valid number")].into_iter().collect())),
            (":gone", string_set(&["gift"])),
        ])),
    )
    .expect("valid placeholders")
}

fn projection_context() -> ExprContext {
    ExprContext::new(Some(names(&[("#status", "status"), ("#total", "total"), ("#lines", "lines")])), None)
        .expect("valid placeholders")
}

fn expressions(c: &mut Criterion) {
    let item = common::order_item();
    common::assert_about_1kb(&item);

    // Parse each expression once up front: this checks that every placeholder is used and that
    // the expressions mean what the benchmarks claim before anything is measured.
    let mut ctx = condition_context();
    let condition = parse_condition(CONDITION, &mut ctx, ConditionKind::Condition).expect("the condition parses");
    ctx.finish().expect("every condition placeholder is used");
    assert!(condition.evaluate(&item), "the condition holds for the item, so every clause is evaluated");
    let mut ctx = update_context();
    let update = parse_update(UPDATE, &mut ctx).expect("the update parses");
    ctx.finish().expect("every update placeholder is used");
    update.apply(&item).expect("the update applies");
    let mut ctx = projection_context();
    let paths = parse_projection(PROJECTION, &mut ctx).expect("the projection parses");
    ctx.finish().expect("every projection placeholder is used");
    assert!(!project(&item, &paths).is_empty());

    let mut group = c.benchmark_group("expr");
    // The context is built once and reused: a request builds it once from its placeholder maps,
    // and marking a placeholder used again costs what marking it the first time does.
    let mut ctx = condition_context();
    group.bench_function("parse_condition", |b| {
        b.iter(|| parse_condition(black_box(CONDITION), &mut ctx, ConditionKind::Condition).expect("parses"))
    });
    group
        .bench_function("evaluate_condition_1kb_item", |b| b.iter(|| black_box(&condition).evaluate(black_box(&item))));
    let mut ctx = update_context();
    group.bench_function("parse_update", |b| b.iter(|| parse_update(black_box(UPDATE), &mut ctx).expect("parses")));
    group.bench_function("apply_update_1kb_item", |b| {
        b.iter(|| black_box(&update).apply(black_box(&item)).expect("applies"))
    });
    let mut ctx = projection_context();
    group.bench_function("parse_projection", |b| {
        b.iter(|| parse_projection(black_box(PROJECTION), &mut ctx).expect("parses"))
    });
    group.bench_function("project_1kb_item", |b| b.iter(|| project(black_box(&item), black_box(&paths))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = expressions
}
criterion_main!(benches);
