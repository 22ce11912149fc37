//! Reading values at document paths inside an item.

use super::ast::{Path, PathElement};
use crate::model::{AttributeValue, Item};

/// The value at `path` in `item`, or `None` when any step leads nowhere (a missing name, an
/// index past the end, or a step into a value of the wrong type).
pub fn get<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let mut elements = path.0.iter();
    let mut current = match elements.next()? {
        PathElement::Attribute(name) => item.get(name)?,
        PathElement::Index(_) => return None,
    };
    for element in elements {
        current = step(current, element)?;
    }
    Some(current)
}

/// One step down from a map or list.
pub fn step<'a>(value: &'a AttributeValue, element: &PathElement) -> Option<&'a AttributeValue> {
    match (value, element) {
        (AttributeValue::M(map), PathElement::Attribute(name)) => map.get(name),
        (AttributeValue::L(list), PathElement::Index(index)) => list.get(*index),
        _ => None,
    }
}
