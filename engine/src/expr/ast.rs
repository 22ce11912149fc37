//! The parsed forms of expressions. Names and values are already resolved: a [`Path`] holds real
//! attribute names and an operand holds the attribute value itself, never a placeholder.

use std::fmt;

use crate::model::AttributeValue;

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A map key (or, first in a path, a top-level attribute name).
    Attribute(String),
    /// A list index.
    Index(usize),
}

/// A document path such as `a.b[2].c`; never empty, and it always starts with an attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path to a top-level attribute.
    pub fn attribute(name: impl Into<String>) -> Path {
        Path(vec![PathElement::Attribute(name.into())])
    }

    /// The top-level attribute the path starts in.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElement::Attribute(name)) => name,
            // Paths are built by the parser, which always starts them with an attribute.
            _ => "",
        }
    }

    /// True for a path to a top-level attribute.
    pub fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    /// DynamoDB's list form used in error messages: `[a, b, [2], c]`.
    pub fn to_list_string(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|element| match element {
                PathElement::Attribute(name) => name.clone(),
                PathElement::Index(index) => format!("[{index}]"),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

/// `a.b[2].c` (names printed as they are, without placeholders).
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, element) in self.0.iter().enumerate() {
            match element {
                PathElement::Attribute(name) if position == 0 => write!(f, "{name}")?,
                PathElement::Attribute(name) => write!(f, ".{name}")?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A value-producing operand of a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The value at a document path of the item (absent when the path leads nowhere).
    Path(Path),
    /// A value from ExpressionAttributeValues.
    Value(AttributeValue),
    /// `size(operand)`.
    Size(Box<Operand>),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    /// The operator as written in expressions.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "<>",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }
}

/// A condition (ConditionExpression, FilterExpression, or the raw form of a
/// KeyConditionExpression).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    /// `operand BETWEEN low AND high`.
    Between(Operand, Operand, Operand),
    /// `operand IN (candidates…)`.
    In(Operand, Vec<Operand>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// `attribute_type(path, :t)`; the type is one of DynamoDB's descriptors (`S`, `NS`, …).
    AttributeType(Path, String),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

impl Operand {
    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Operand::Path(path) => out.push(path),
            Operand::Value(_) => {}
            Operand::Size(inner) => inner.collect_paths(out),
        }
    }
}

impl Condition {
    /// Every document path the condition reads, in order of appearance.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Condition::Compare(a, _, b) | Condition::BeginsWith(a, b) | Condition::Contains(a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
            Condition::Between(a, low, high) => {
                a.collect_paths(out);
                low.collect_paths(out);
                high.collect_paths(out);
            }
            Condition::In(a, candidates) => {
                a.collect_paths(out);
                for candidate in candidates {
                    candidate.collect_paths(out);
                }
            }
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
            Condition::Not(inner) => inner.collect_paths(out),
            Condition::AttributeExists(path)
            | Condition::AttributeNotExists(path)
            | Condition::AttributeType(path, _) => out.push(path),
        }
    }
}

/// A value computed by a SET action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOperand {
    Path(Path),
    Value(AttributeValue),
    /// `if_not_exists(path, operand)`.
    IfNotExists(Path, Box<SetOperand>),
    /// `list_append(operand, operand)`.
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

/// The right-hand side of a SET action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

/// `path = value` in a SET clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAction {
    pub path: Path,
    pub value: SetValue,
}

/// A parsed UpdateExpression. Each list keeps the order of the expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateExpression {
    pub set: Vec<SetAction>,
    pub remove: Vec<Path>,
    /// `ADD path :value`: the value is a number or a set.
    pub add: Vec<(Path, AttributeValue)>,
    /// `DELETE path :value`: the value is a set.
    pub delete: Vec<(Path, AttributeValue)>,
}

impl UpdateExpression {
    /// Every path the expression sets, removes, adds to or deletes from, in clause order
    /// (SET, REMOVE, ADD, DELETE).
    pub fn paths(&self) -> Vec<Path> {
        let mut paths: Vec<Path> = self.set.iter().map(|action| action.path.clone()).collect();
        paths.extend(self.remove.iter().cloned());
        paths.extend(self.add.iter().map(|(path, _)| path.clone()));
        paths.extend(self.delete.iter().map(|(path, _)| path.clone()));
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display_forms() {
        let path = Path(vec![
            PathElement::Attribute("a".into()),
            PathElement::Attribute("b".into()),
            PathElement::Index(2),
            PathElement::Attribute("c".into()),
        ]);
        assert_eq!(path.to_string(), "a.b[2].c");
        assert_eq!(path.to_list_string(), "[a, b, [2], c]");
        assert_eq!(path.top(), "a");
        assert!(!path.is_top_level());
        assert!(Path::attribute("x").is_top_level());
    }
}
