//! Applying an UpdateExpression to an item.
//!
//! Order of work, as DynamoDB does it: every SET value is computed from the item as it was
//! before the update; then SETs are written, REMOVEs applied (list elements from the highest
//! index down, so indexes in the expression refer to the original list), then ADD and DELETE.
//! The parser already refused overlapping target paths, so the order of two actions never
//! changes the value either of them writes.

use std::collections::BTreeSet;

use super::ast::{Path, PathElement, SetOperand, SetValue, UpdateExpression};
use super::document;
use super::ExprError;
use crate::model::{AttributeValue, Item, NumberError};

fn missing_attribute() -> ExprError {
    ExprError("The provided expression refers to an attribute that does not exist in the item".into())
}

fn wrong_type() -> ExprError {
    ExprError("An operand in the update expression has an incorrect data type".into())
}

fn invalid_path() -> ExprError {
    ExprError("The document path provided in the update expression is invalid for update".into())
}

/// DynamoDB's wording for a number that leaves the supported range.
pub(crate) fn number_error(error: NumberError) -> ExprError {
    ExprError(match error {
        NumberError::Overflow => {
            "Number overflow. Attempting to store a number with magnitude larger than supported range".into()
        }
        NumberError::Underflow => {
            "Number underflow. Attempting to store a number with magnitude smaller than supported range".into()
        }
        NumberError::Precision => "Attempting to store more than 38 significant digits in a Number".into(),
        NumberError::Invalid(text) => {
            format!("The parameter cannot be converted to a numeric value: {text}")
        }
    })
}

impl UpdateExpression {
    /// The item after the update. `item` is empty when the update creates the item.
    pub fn apply(&self, item: &Item) -> Result<Item, ExprError> {
        let mut computed = Vec::with_capacity(self.set.len());
        for action in &self.set {
            computed.push((action.path.clone(), set_value(item, &action.value)?));
        }
        // Appends past the end of one list land in index order, whatever the text order.
        computed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut updated = item.clone();
        for (path, value) in computed {
            write(&mut updated, &path, value)?;
        }
        let mut removes: Vec<&Path> = self.remove.iter().collect();
        removes.sort_by(|a, b| b.cmp(a));
        for path in removes {
            remove(&mut updated, path)?;
        }
        for (path, value) in &self.add {
            let sum = match (document::get(&updated, path), value) {
                (None, value) => value.clone(),
                (Some(AttributeValue::N(old)), AttributeValue::N(delta)) => {
                    AttributeValue::N(old.checked_add(delta).map_err(number_error)?)
                }
                (Some(AttributeValue::Ss(old)), AttributeValue::Ss(new)) => {
                    AttributeValue::Ss(old.union(new).cloned().collect())
                }
                (Some(AttributeValue::Ns(old)), AttributeValue::Ns(new)) => {
                    AttributeValue::Ns(old.union(new).cloned().collect())
                }
                (Some(AttributeValue::Bs(old)), AttributeValue::Bs(new)) => {
                    AttributeValue::Bs(old.union(new).cloned().collect())
                }
                _ => return Err(wrong_type()),
            };
            write(&mut updated, path, sum)?;
        }
        for (path, value) in &self.delete {
            let remaining = match (document::get(&updated, path), value) {
                (None, _) => continue,
                (Some(AttributeValue::Ss(old)), AttributeValue::Ss(gone)) => {
                    difference(old, gone).map(AttributeValue::Ss)
                }
                (Some(AttributeValue::Ns(old)), AttributeValue::Ns(gone)) => {
                    difference(old, gone).map(AttributeValue::Ns)
                }
                (Some(AttributeValue::Bs(old)), AttributeValue::Bs(gone)) => {
                    difference(old, gone).map(AttributeValue::Bs)
                }
                _ => return Err(wrong_type()),
            };
            match remaining {
                Some(value) => write(&mut updated, path, value)?,
                None => remove(&mut updated, path)?,
            }
        }
        Ok(updated)
    }
}

/// `old - gone`, or `None` when nothing is left (DynamoDB sets are never empty).
fn difference<T: Ord + Clone>(old: &BTreeSet<T>, gone: &BTreeSet<T>) -> Option<BTreeSet<T>> {
    let left: BTreeSet<T> = old.difference(gone).cloned().collect();
    (!left.is_empty()).then_some(left)
}

fn set_value(item: &Item, value: &SetValue) -> Result<AttributeValue, ExprError> {
    match value {
        SetValue::Operand(operand) => set_operand(item, operand),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (AttributeValue::N(x), AttributeValue::N(y)) = (set_operand(item, a)?, set_operand(item, b)?) else {
                return Err(wrong_type());
            };
            let result = if matches!(value, SetValue::Plus(..)) { x.checked_add(&y) } else { x.checked_sub(&y) };
            result.map(AttributeValue::N).map_err(number_error)
        }
    }
}

fn set_operand(item: &Item, operand: &SetOperand) -> Result<AttributeValue, ExprError> {
    match operand {
        SetOperand::Path(path) => document::get(item, path).cloned().ok_or_else(missing_attribute),
        SetOperand::Value(value) => Ok(value.clone()),
        SetOperand::IfNotExists(path, fallback) => match document::get(item, path) {
            Some(value) => Ok(value.clone()),
            None => set_operand(item, fallback),
        },
        SetOperand::ListAppend(a, b) => match (set_operand(item, a)?, set_operand(item, b)?) {
            (AttributeValue::L(mut first), AttributeValue::L(second)) => {
                first.extend(second);
                Ok(AttributeValue::L(first))
            }
            _ => Err(wrong_type()),
        },
    }
}

/// The container holding the last element of `path`, which must exist.
fn parent_mut<'a>(item: &'a mut Item, path: &Path) -> Result<&'a mut AttributeValue, ExprError> {
    let (first, middle) = match path.0.split_last() {
        Some((_, init)) if !init.is_empty() => (&init[0], &init[1..]),
        _ => return Err(invalid_path()),
    };
    let PathElement::Attribute(name) = first else {
        return Err(invalid_path());
    };
    let mut current = item.get_mut(name).ok_or_else(invalid_path)?;
    for element in middle {
        current = match (current, element) {
            (AttributeValue::M(map), PathElement::Attribute(name)) => map.get_mut(name),
            (AttributeValue::L(list), PathElement::Index(index)) => list.get_mut(*index),
            _ => None,
        }
        .ok_or_else(invalid_path)?;
    }
    Ok(current)
}

/// Writes `value` at `path`: every step but the last must exist; an index past the end of a
/// list appends.
fn write(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), ExprError> {
    if let [PathElement::Attribute(name)] = path.0.as_slice() {
        item.insert(name.clone(), value);
        return Ok(());
    }
    let last = path.0.last().ok_or_else(invalid_path)?;
    match (parent_mut(item, path)?, last) {
        (AttributeValue::M(map), PathElement::Attribute(name)) => {
            map.insert(name.clone(), value);
        }
        (AttributeValue::L(list), PathElement::Index(index)) => match list.get_mut(*index) {
            Some(slot) => *slot = value,
            None => list.push(value),
        },
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// Removes the value at `path`; a missing value (or parent) is not an error, and removing a
/// list element shifts the later ones down.
fn remove(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    if let [PathElement::Attribute(name)] = path.0.as_slice() {
        item.remove(name);
        return Ok(());
    }
    if document::get(item, &Path(path.0[..path.0.len() - 1].to_vec())).is_none() {
        return if parent_is_wrong_type(item, path) { Err(invalid_path()) } else { Ok(()) };
    }
    let parent = parent_mut(item, path)?;
    match (parent, path.0.last()) {
        (AttributeValue::M(map), Some(PathElement::Attribute(name))) => {
            map.remove(name);
        }
        (AttributeValue::L(list), Some(PathElement::Index(index))) => {
            if *index < list.len() {
                list.remove(*index);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// True when a step of `path` (before the last) meets a value that cannot be stepped into,
/// as opposed to meeting nothing at all.
fn parent_is_wrong_type(item: &Item, path: &Path) -> bool {
    let Some((_, init)) = path.0.split_last() else {
        return false;
    };
    let PathElement::Attribute(name) = &init[0] else {
        return true;
    };
    let Some(mut current) = item.get(name) else {
        return false;
    };
    for element in &init[1..] {
        match (current, element) {
            (AttributeValue::M(map), PathElement::Attribute(name)) => match map.get(name) {
                Some(next) => current = next,
                None => return false,
            },
            (AttributeValue::L(list), PathElement::Index(index)) => match list.get(*index) {
                Some(next) => current = next,
                None => return false,
            },
            _ => return true,
        }
    }
    !matches!(
        (current, path.0.last()),
        (AttributeValue::M(_), Some(PathElement::Attribute(_))) | (AttributeValue::L(_), Some(PathElement::Index(_)))
    )
}
