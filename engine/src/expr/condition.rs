//! Evaluating conditions against an item, with DynamoDB's rules: a missing attribute or a type
//! mismatch makes a comparison false (and `<>` true), ordering applies to N, S and B only
//! (S and B compared bytewise), and sets compare by content.

use std::borrow::Cow;

use super::ast::{Comparator, Condition, Operand};
use super::document;
use super::parser::scalar_order;
use crate::model::{AttributeValue, Item, Number};

impl Condition {
    /// True when `item` satisfies the condition. An absent item is an empty one.
    pub fn evaluate(&self, item: &Item) -> bool {
        match self {
            Condition::Compare(left, comparator, right) => {
                compare(resolve(item, left).as_deref(), *comparator, resolve(item, right).as_deref())
            }
            Condition::Between(operand, low, high) => {
                match (resolve(item, operand), resolve(item, low), resolve(item, high)) {
                    (Some(value), Some(low), Some(high)) => {
                        matches!(scalar_order(&low, &value), Some(o) if o.is_le())
                            && matches!(scalar_order(&value, &high), Some(o) if o.is_le())
                    }
                    _ => false,
                }
            }
            Condition::In(operand, candidates) => match resolve(item, operand) {
                Some(value) => candidates.iter().any(|candidate| resolve(item, candidate).as_deref() == Some(&*value)),
                None => false,
            },
            Condition::And(a, b) => a.evaluate(item) && b.evaluate(item),
            Condition::Or(a, b) => a.evaluate(item) || b.evaluate(item),
            Condition::Not(inner) => !inner.evaluate(item),
            Condition::AttributeExists(path) => document::get(item, path).is_some(),
            Condition::AttributeNotExists(path) => document::get(item, path).is_none(),
            Condition::AttributeType(path, type_name) => {
                document::get(item, path).is_some_and(|value| value.type_name() == type_name)
            }
            Condition::BeginsWith(operand, prefix) => {
                match (resolve(item, operand).as_deref(), resolve(item, prefix).as_deref()) {
                    (Some(AttributeValue::S(s)), Some(AttributeValue::S(p))) => s.starts_with(p.as_str()),
                    (Some(AttributeValue::B(b)), Some(AttributeValue::B(p))) => b.starts_with(p),
                    _ => false,
                }
            }
            Condition::Contains(operand, needle) => match (resolve(item, operand), resolve(item, needle)) {
                (Some(haystack), Some(needle)) => contains(&haystack, &needle),
                _ => false,
            },
        }
    }
}

/// The value of an operand for `item`, if it has one.
fn resolve<'a>(item: &'a Item, operand: &'a Operand) -> Option<Cow<'a, AttributeValue>> {
    match operand {
        Operand::Path(path) => document::get(item, path).map(Cow::Borrowed),
        Operand::Value(value) => Some(Cow::Borrowed(value)),
        Operand::Size(inner) => {
            let value = resolve(item, inner)?;
            size_of(&value).map(|size| Cow::Owned(AttributeValue::N(size)))
        }
    }
}

/// DynamoDB's `size`: characters of a string, bytes of a binary, elements of a set, list or
/// map; other types have no size.
pub(crate) fn size_of(value: &AttributeValue) -> Option<Number> {
    let size = match value {
        AttributeValue::S(s) => s.chars().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(set) => set.len(),
        AttributeValue::Ns(set) => set.len(),
        AttributeValue::Bs(set) => set.len(),
        AttributeValue::L(list) => list.len(),
        AttributeValue::M(map) => map.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    };
    Some(Number::from_i64(i64::try_from(size).unwrap_or(i64::MAX)))
}

fn compare(left: Option<&AttributeValue>, comparator: Comparator, right: Option<&AttributeValue>) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        // A missing operand equals nothing, so only "not equal" holds.
        return comparator == Comparator::Ne;
    };
    match comparator {
        Comparator::Eq => left == right,
        Comparator::Ne => left != right,
        ordered => match scalar_order(left, right) {
            Some(order) => match ordered {
                Comparator::Lt => order.is_lt(),
                Comparator::Le => order.is_le(),
                Comparator::Gt => order.is_gt(),
                Comparator::Ge => order.is_ge(),
                Comparator::Eq | Comparator::Ne => unreachable!("handled above"),
            },
            None => false,
        },
    }
}

/// `contains`: substring of a string, subsequence of a binary, member of a set, element of a list.
fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    match (haystack, needle) {
        (AttributeValue::S(s), AttributeValue::S(n)) => s.contains(n.as_str()),
        (AttributeValue::B(b), AttributeValue::B(n)) => {
            n.is_empty() || b.windows(n.len()).any(|window| window == n.as_slice())
        }
        (AttributeValue::Ss(set), AttributeValue::S(n)) => set.contains(n),
        (AttributeValue::Ns(set), AttributeValue::N(n)) => set.contains(n),
        (AttributeValue::Bs(set), AttributeValue::B(n)) => set.contains(n),
        (AttributeValue::L(list), needle) => list.contains(needle),
        _ => false,
    }
}
