//! Every expression parser must answer arbitrary text with a value or an error, never a panic,
//! and a parsed condition must evaluate without panicking.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use squall_engine::expr::{
    parse_condition, parse_key_condition, parse_projection, parse_update, project, ConditionKind, ExprContext,
};
use squall_engine::model::{AttributeValue, Item, Number};

fn context() -> Option<ExprContext> {
    let names: BTreeMap<String, String> =
        [("#a", "a"), ("#b", "status"), ("#c", "c")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let values: BTreeMap<String, AttributeValue> = [
        (":s", AttributeValue::S("x".into())),
        (":n", AttributeValue::N(Number::from_i64(3))),
        (":l", AttributeValue::L(vec![AttributeValue::Null])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ExprContext::new(Some(names), Some(values)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut item = Item::new();
    item.insert("a".into(), AttributeValue::N(Number::from_i64(1)));
    item.insert("c".into(), AttributeValue::L(vec![AttributeValue::S("y".into())]));
    if let Some(mut ctx) = context() {
        if let Ok(condition) = parse_condition(text, &mut ctx, ConditionKind::Condition) {
            let _ = condition.evaluate(&item);
        }
    }
    if let Some(mut ctx) = context() {
        if let Ok(update) = parse_update(text, &mut ctx) {
            let _ = update.apply(&item);
        }
    }
    if let Some(mut ctx) = context() {
        if let Ok(paths) = parse_projection(text, &mut ctx) {
            let _ = project(&item, &paths);
        }
    }
    if let Some(mut ctx) = context() {
        let _ = parse_key_condition(text, &mut ctx, "a", Some("c"));
    }
});
