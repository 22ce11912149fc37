//! Turns parsed expressions back into text with placeholders, so that parsing the text with
//! the returned names and values gives the same expression. Every name is written through a
//! `#placeholder`, so reserved words never get in the way.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::ast::{Condition, Operand, Path, PathElement, SetOperand, SetValue, UpdateExpression};
use crate::model::AttributeValue;

/// An expression as text, with the ExpressionAttributeNames and Values it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub names: BTreeMap<String, String>,
    pub values: BTreeMap<String, AttributeValue>,
}

#[derive(Default)]
struct Printer {
    out: String,
    placeholders: BTreeMap<String, String>,
    rendered: Rendered,
}

impl Printer {
    fn name(&mut self, name: &str) {
        let next = self.placeholders.len();
        let placeholder = self.placeholders.entry(name.to_string()).or_insert_with(|| format!("#n{next}")).clone();
        self.rendered.names.insert(placeholder.clone(), name.to_string());
        self.out.push_str(&placeholder);
    }

    fn value(&mut self, value: &AttributeValue) {
        let placeholder = format!(":v{}", self.rendered.values.len());
        self.rendered.values.insert(placeholder.clone(), value.clone());
        self.out.push_str(&placeholder);
    }

    fn path(&mut self, path: &Path) {
        for (position, element) in path.0.iter().enumerate() {
            match element {
                PathElement::Attribute(name) => {
                    if position > 0 {
                        self.out.push('.');
                    }
                    self.name(name);
                }
                PathElement::Index(index) => {
                    let _ = write!(self.out, "[{index}]");
                }
            }
        }
    }

    fn operand(&mut self, operand: &Operand) {
        match operand {
            Operand::Path(path) => self.path(path),
            Operand::Value(value) => self.value(value),
            Operand::Size(inner) => {
                self.out.push_str("size(");
                self.operand(inner);
                self.out.push(')');
            }
        }
    }

    fn call(&mut self, name: &str, args: &[&Operand]) {
        self.out.push_str(name);
        self.out.push('(');
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.operand(arg);
        }
        self.out.push(')');
    }

    /// Writes `condition`, in parentheses when it binds looser than `level` needs
    /// (0: OR, 1: AND, 2: NOT, 3: a single condition).
    fn condition(&mut self, condition: &Condition, level: u8) {
        let own = match condition {
            Condition::Or(..) => 0,
            Condition::And(..) => 1,
            Condition::Not(..) => 2,
            _ => 3,
        };
        if own < level {
            self.out.push('(');
            self.condition(condition, 0);
            self.out.push(')');
            return;
        }
        match condition {
            Condition::Or(a, b) => {
                self.condition(a, 0);
                self.out.push_str(" OR ");
                self.condition(b, 1);
            }
            Condition::And(a, b) => {
                self.condition(a, 1);
                self.out.push_str(" AND ");
                self.condition(b, 2);
            }
            Condition::Not(inner) => {
                self.out.push_str("NOT ");
                self.condition(inner, 2);
            }
            Condition::Compare(a, comparator, b) => {
                self.operand(a);
                let _ = write!(self.out, " {} ", comparator.as_str());
                self.operand(b);
            }
            Condition::Between(a, low, high) => {
                self.operand(a);
                self.out.push_str(" BETWEEN ");
                self.operand(low);
                self.out.push_str(" AND ");
                self.operand(high);
            }
            Condition::In(a, candidates) => {
                self.operand(a);
                self.out.push_str(" IN (");
                for (i, candidate) in candidates.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.operand(candidate);
                }
                self.out.push(')');
            }
            Condition::AttributeExists(path) => {
                self.call("attribute_exists", &[&Operand::Path(path.clone())]);
            }
            Condition::AttributeNotExists(path) => {
                self.call("attribute_not_exists", &[&Operand::Path(path.clone())]);
            }
            Condition::AttributeType(path, type_name) => {
                let type_value = Operand::Value(AttributeValue::S(type_name.clone()));
                self.call("attribute_type", &[&Operand::Path(path.clone()), &type_value]);
            }
            Condition::BeginsWith(a, b) => self.call("begins_with", &[a, b]),
            Condition::Contains(a, b) => self.call("contains", &[a, b]),
        }
    }

    fn set_operand(&mut self, operand: &SetOperand) {
        match operand {
            SetOperand::Path(path) => self.path(path),
            SetOperand::Value(value) => self.value(value),
            SetOperand::IfNotExists(path, fallback) => {
                self.out.push_str("if_not_exists(");
                self.path(path);
                self.out.push_str(", ");
                self.set_operand(fallback);
                self.out.push(')');
            }
            SetOperand::ListAppend(a, b) => {
                self.out.push_str("list_append(");
                self.set_operand(a);
                self.out.push_str(", ");
                self.set_operand(b);
                self.out.push(')');
            }
        }
    }

    fn finish(mut self) -> Rendered {
        self.rendered.text = self.out;
        self.rendered
    }
}

/// A condition as text.
pub fn render_condition(condition: &Condition) -> Rendered {
    let mut printer = Printer::default();
    printer.condition(condition, 0);
    printer.finish()
}

/// An update expression as text (sections in the order SET, REMOVE, ADD, DELETE).
pub fn render_update(update: &UpdateExpression) -> Rendered {
    let mut printer = Printer::default();
    let mut sections = 0;
    let mut begin = |printer: &mut Printer, keyword: &str| {
        if sections > 0 {
            printer.out.push(' ');
        }
        sections += 1;
        printer.out.push_str(keyword);
        printer.out.push(' ');
    };
    if !update.set.is_empty() {
        begin(&mut printer, "SET");
        for (i, action) in update.set.iter().enumerate() {
            if i > 0 {
                printer.out.push_str(", ");
            }
            printer.path(&action.path);
            printer.out.push_str(" = ");
            match &action.value {
                SetValue::Operand(operand) => printer.set_operand(operand),
                SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                    printer.set_operand(a);
                    printer.out.push_str(if matches!(action.value, SetValue::Plus(..)) { " + " } else { " - " });
                    printer.set_operand(b);
                }
            }
        }
    }
    if !update.remove.is_empty() {
        begin(&mut printer, "REMOVE");
        for (i, path) in update.remove.iter().enumerate() {
            if i > 0 {
                printer.out.push_str(", ");
            }
            printer.path(path);
        }
    }
    for (keyword, actions) in [("ADD", &update.add), ("DELETE", &update.delete)] {
        if actions.is_empty() {
            continue;
        }
        begin(&mut printer, keyword);
        for (i, (path, value)) in actions.iter().enumerate() {
            if i > 0 {
                printer.out.push_str(", ");
            }
            printer.path(path);
            printer.out.push(' ');
            printer.value(value);
        }
    }
    printer.finish()
}
