//! ProjectionExpression semantics: keep only the named paths of an item.
//!
//! Paths merge into one result (`a.b, a.c` gives `a: {b, c}`); list indexes pick elements,
//! which keep their relative order and close up (`l[3], l[1]` gives `l: [l1, l3]`); paths
//! that lead nowhere contribute nothing, and a container left with nothing is left out.

use std::collections::BTreeMap;

use super::ast::{Path, PathElement};
use crate::model::{AttributeValue, Item};

/// What to keep of one value.
#[derive(Default)]
struct Keep {
    whole: bool,
    names: BTreeMap<String, Keep>,
    indexes: BTreeMap<usize, Keep>,
}

impl Keep {
    fn child(&mut self, element: &PathElement) -> &mut Keep {
        match element {
            PathElement::Attribute(name) => self.names.entry(name.clone()).or_default(),
            PathElement::Index(index) => self.indexes.entry(*index).or_default(),
        }
    }

    fn apply(&self, value: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(value.clone());
        }
        match value {
            AttributeValue::M(map) if !self.names.is_empty() => {
                let kept: BTreeMap<String, AttributeValue> = self
                    .names
                    .iter()
                    .filter_map(|(name, keep)| Some((name.clone(), keep.apply(map.get(name)?)?)))
                    .collect();
                (!kept.is_empty()).then_some(AttributeValue::M(kept))
            }
            AttributeValue::L(list) if !self.indexes.is_empty() => {
                let kept: Vec<AttributeValue> =
                    self.indexes.iter().filter_map(|(index, keep)| keep.apply(list.get(*index)?)).collect();
                (!kept.is_empty()).then_some(AttributeValue::L(kept))
            }
            _ => None,
        }
    }
}

/// The parts of `item` that `paths` name.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut root = Keep::default();
    for path in paths {
        let Some(PathElement::Attribute(_)) = path.0.first() else {
            continue;
        };
        let mut node = &mut root;
        for element in &path.0 {
            node = node.child(element);
        }
        node.whole = true;
    }
    root.names.iter().filter_map(|(name, keep)| Some((name.clone(), keep.apply(item.get(name)?)?))).collect()
}
