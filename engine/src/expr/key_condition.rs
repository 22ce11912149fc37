//! KeyConditionExpression: a condition restricted to the shape a Query can run as one range
//! scan — `pk = :v`, optionally `AND` one condition on the sort key.

use super::ast::{Comparator, Condition, Operand, Path};
use super::context::ExprContext;
use super::parser::{between_bounds_problem, parse_condition_kind, ExprKind};
use super::ExprError;
use crate::model::AttributeValue;

/// A validated key condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCondition {
    /// The partition key must equal this value.
    pub partition_value: AttributeValue,
    /// The condition on the sort key, if any.
    pub sort: Option<SortKeyCondition>,
}

/// A condition on the sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKeyCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl SortKeyCondition {
    /// True when `value` (the item's sort key) satisfies the condition.
    pub fn matches(&self, value: &AttributeValue) -> bool {
        use super::parser::scalar_order;
        let order = |bound: &AttributeValue| scalar_order(value, bound);
        match self {
            SortKeyCondition::Eq(v) => value == v,
            SortKeyCondition::Lt(v) => order(v).is_some_and(|o| o.is_lt()),
            SortKeyCondition::Le(v) => order(v).is_some_and(|o| o.is_le()),
            SortKeyCondition::Gt(v) => order(v).is_some_and(|o| o.is_gt()),
            SortKeyCondition::Ge(v) => order(v).is_some_and(|o| o.is_ge()),
            SortKeyCondition::Between(low, high) => {
                order(low).is_some_and(|o| o.is_ge()) && order(high).is_some_and(|o| o.is_le())
            }
            SortKeyCondition::BeginsWith(prefix) => match (value, prefix) {
                (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                (AttributeValue::B(b), AttributeValue::B(p)) => b.starts_with(p),
                _ => false,
            },
        }
    }
}

/// One leaf condition: the key attribute it is on and what it requires.
struct Leaf {
    attribute: String,
    comparator: LeafOp,
}

enum LeafOp {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

fn plain(message: &str) -> ExprError {
    ExprError(message.to_string())
}

fn invalid_operator(operator: &str) -> ExprError {
    ExprError(format!("Invalid operator used in KeyConditionExpression: {operator}"))
}

fn multiple_names() -> ExprError {
    plain("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")
}

/// Gathers the AND-ed leaves, refusing operators a key condition cannot use.
fn leaves<'a>(condition: &'a Condition, out: &mut Vec<&'a Condition>) -> Result<(), ExprError> {
    match condition {
        Condition::And(a, b) => {
            leaves(a, out)?;
            leaves(b, out)
        }
        Condition::Or(..) => Err(invalid_operator("OR")),
        Condition::Not(..) => Err(invalid_operator("NOT")),
        Condition::In(..) => Err(invalid_operator("IN")),
        Condition::AttributeExists(..) => Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(..) => Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => Err(invalid_operator("contains")),
        Condition::Compare(_, Comparator::Ne, _) => Err(invalid_operator("<>")),
        _ => {
            out.push(condition);
            Ok(())
        }
    }
}

fn operands(condition: &Condition) -> Vec<&Operand> {
    match condition {
        Condition::Compare(a, _, b) | Condition::BeginsWith(a, b) => vec![a, b],
        Condition::Between(a, b, c) => vec![a, b, c],
        _ => Vec::new(),
    }
}

fn key_path(path: &Path) -> Result<String, ExprError> {
    if !path.is_top_level() {
        return Err(plain("KeyConditionExpressions cannot have conditions on nested attributes"));
    }
    Ok(path.top().to_string())
}

fn leaf(condition: &Condition) -> Result<Leaf, ExprError> {
    let all = operands(condition);
    if all.iter().any(|o| matches!(o, Operand::Size(_))) {
        return Err(plain("KeyConditionExpressions cannot contain nested operations"));
    }
    let paths = all.iter().filter(|o| matches!(o, Operand::Path(_))).count();
    if paths > 1 {
        return Err(multiple_names());
    }
    if paths == 0 {
        return Err(plain("Invalid condition in KeyConditionExpression: No key attribute specified"));
    }
    let value = |operand: &Operand| match operand {
        Operand::Value(v) => v.clone(),
        // Checked above: exactly one operand is a path and none is a size.
        _ => AttributeValue::Null,
    };
    let first_operand = |name: &str| {
        ExprError(format!(
            "Invalid condition in KeyConditionExpression: {name} operator must have the key attribute as its first operand"
        ))
    };
    match condition {
        Condition::Compare(Operand::Path(p), op, v) => {
            Ok(Leaf { attribute: key_path(p)?, comparator: LeafOp::Compare(*op, value(v)) })
        }
        Condition::Compare(v, op, Operand::Path(p)) => {
            // `:v < k` is `k > :v`.
            let flipped = match op {
                Comparator::Lt => Comparator::Gt,
                Comparator::Le => Comparator::Ge,
                Comparator::Gt => Comparator::Lt,
                Comparator::Ge => Comparator::Le,
                other => *other,
            };
            Ok(Leaf { attribute: key_path(p)?, comparator: LeafOp::Compare(flipped, value(v)) })
        }
        Condition::Between(Operand::Path(p), low, high) => {
            Ok(Leaf { attribute: key_path(p)?, comparator: LeafOp::Between(value(low), value(high)) })
        }
        Condition::Between(..) => Err(first_operand("BETWEEN")),
        Condition::BeginsWith(Operand::Path(p), prefix) => {
            Ok(Leaf { attribute: key_path(p)?, comparator: LeafOp::BeginsWith(value(prefix)) })
        }
        Condition::BeginsWith(..) => Err(first_operand("begins_with")),
        _ => Err(multiple_names()),
    }
}

/// Parses a KeyConditionExpression and checks it against the key schema of the table or index
/// queried (`partition_key`, and `sort_key` if it has one).
pub fn parse_key_condition(
    text: &str,
    ctx: &mut ExprContext,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let condition = parse_condition_kind(text, ctx, ExprKind::KeyCondition)?;
    let mut found = Vec::new();
    leaves(&condition, &mut found)?;
    let parsed: Vec<Leaf> = found.into_iter().map(leaf).collect::<Result<_, _>>()?;
    if parsed.len() > 2 {
        return Err(plain("Conditions can be of length 1 or 2 only"));
    }
    if parsed.len() == 2 && parsed[0].attribute == parsed[1].attribute {
        return Err(plain("KeyConditionExpressions must only contain one condition per key"));
    }
    let mut partition_value = None;
    let mut sort = None;
    let mut foreign = false;
    for leaf in parsed {
        if leaf.attribute == partition_key {
            match leaf.comparator {
                LeafOp::Compare(Comparator::Eq, value) => partition_value = Some(value),
                _ => return Err(plain("Query key condition not supported")),
            }
        } else if Some(leaf.attribute.as_str()) == sort_key {
            sort = Some(match leaf.comparator {
                LeafOp::Compare(Comparator::Eq, v) => SortKeyCondition::Eq(v),
                LeafOp::Compare(Comparator::Lt, v) => SortKeyCondition::Lt(v),
                LeafOp::Compare(Comparator::Le, v) => SortKeyCondition::Le(v),
                LeafOp::Compare(Comparator::Gt, v) => SortKeyCondition::Gt(v),
                LeafOp::Compare(Comparator::Ge, v) => SortKeyCondition::Ge(v),
                LeafOp::Compare(Comparator::Ne, _) => return Err(invalid_operator("<>")),
                LeafOp::Between(low, high) => {
                    if let Some(message) = between_bounds_problem(&low, &high) {
                        return Err(ExprKind::KeyCondition.error(message));
                    }
                    SortKeyCondition::Between(low, high)
                }
                LeafOp::BeginsWith(prefix) => {
                    if !matches!(prefix, AttributeValue::S(_) | AttributeValue::B(_)) {
                        return Err(plain("Query key condition not supported"));
                    }
                    SortKeyCondition::BeginsWith(prefix)
                }
            });
        } else {
            foreign = true;
        }
    }
    if foreign {
        let missed = match (&partition_value, sort_key) {
            (None, _) => partition_key,
            (Some(_), Some(sort_key)) => sort_key,
            (Some(_), None) => return Err(plain("Query key condition not supported")),
        };
        return Err(ExprError(format!("Query condition missed key schema element: {missed}")));
    }
    match partition_value {
        Some(partition_value) => Ok(KeyCondition { partition_value, sort }),
        None => Err(ExprError(format!("Query condition missed key schema element: {partition_key}"))),
    }
}
