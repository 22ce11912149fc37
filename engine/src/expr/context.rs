//! ExpressionAttributeNames and ExpressionAttributeValues of one request, and which of them the
//! request's expressions used: DynamoDB refuses a request that supplies one it never uses.

use std::collections::{BTreeMap, BTreeSet};

use super::ExprError;
use crate::model::AttributeValue;

/// The placeholders of one request.
#[derive(Clone, Debug, Default)]
pub struct ExprContext {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

/// `#` or `:` followed by one or more of `[A-Za-z0-9_]`.
fn is_placeholder(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil) && key.len() > 1 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ExprContext {
    /// `names`: ExpressionAttributeNames (`#n` → name); `values`: ExpressionAttributeValues
    /// (`:v` → value). Present-but-empty maps and malformed keys are refused as DynamoDB does.
    pub fn new(
        names: Option<BTreeMap<String, String>>,
        values: Option<BTreeMap<String, AttributeValue>>,
    ) -> Result<ExprContext, ExprError> {
        if let Some(names) = &names {
            if names.is_empty() {
                return Err(ExprError("ExpressionAttributeNames must not be empty".into()));
            }
            if let Some(key) = names.keys().find(|key| !is_placeholder(key, '#')) {
                return Err(ExprError(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{key}\""
                )));
            }
        }
        if let Some(values) = &values {
            if values.is_empty() {
                return Err(ExprError("ExpressionAttributeValues must not be empty".into()));
            }
            if let Some(key) = values.keys().find(|key| !is_placeholder(key, ':')) {
                return Err(ExprError(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{key}\""
                )));
            }
        }
        Ok(ExprContext {
            names: names.unwrap_or_default(),
            values: values.unwrap_or_default(),
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        })
    }

    /// A context without placeholders.
    pub fn empty() -> ExprContext {
        ExprContext::default()
    }

    /// The name behind `#placeholder`, marking it used.
    pub(crate) fn name(&mut self, placeholder: &str) -> Option<String> {
        let name = self.names.get(placeholder)?.clone();
        self.used_names.insert(placeholder.to_string());
        Some(name)
    }

    /// The value behind `:placeholder`, marking it used.
    pub(crate) fn value(&mut self, placeholder: &str) -> Option<AttributeValue> {
        let value = self.values.get(placeholder)?.clone();
        self.used_values.insert(placeholder.to_string());
        Some(value)
    }

    /// After all expressions of a request are parsed: refuses names or values that none of them
    /// used (names first, as DynamoDB checks them first).
    pub fn finish(&self) -> Result<(), ExprError> {
        let used_names = &self.used_names;
        let unused_names: Vec<&str> =
            self.names.keys().filter(|key| !used_names.contains(*key)).map(String::as_str).collect();
        if !unused_names.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused_names.join(", ")
            )));
        }
        let used_values = &self.used_values;
        let unused_values: Vec<&str> =
            self.values.keys().filter(|key| !used_values.contains(*key)).map(String::as_str).collect();
        if !unused_values.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused_values.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn values(keys: &[&str]) -> Option<BTreeMap<String, AttributeValue>> {
        Some(keys.iter().map(|k| (k.to_string(), AttributeValue::Bool(true))).collect())
    }

    #[test]
    fn refuses_empty_maps_and_bad_keys() {
        let err = |r: Result<ExprContext, ExprError>| r.unwrap_err().0;
        assert_eq!(err(ExprContext::new(names(&[]), None)), "ExpressionAttributeNames must not be empty");
        assert_eq!(err(ExprContext::new(None, values(&[]))), "ExpressionAttributeValues must not be empty");
        assert_eq!(
            err(ExprContext::new(names(&[("a", "a")]), None)),
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
        );
        assert_eq!(
            err(ExprContext::new(names(&[("#", "a")]), None)),
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"#\""
        );
        assert_eq!(
            err(ExprContext::new(None, values(&[":a-b"]))),
            "ExpressionAttributeValues contains invalid key: Syntax error; key: \":a-b\""
        );
    }

    #[test]
    fn finish_lists_unused_keys_sorted() {
        let mut ctx = ExprContext::new(names(&[("#b", "x"), ("#a", "y"), ("#c", "z")]), values(&[":v", ":w"])).unwrap();
        assert_eq!(ctx.name("#c").as_deref(), Some("z"));
        assert_eq!(
            ctx.finish().unwrap_err().0,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
        );
        ctx.name("#a");
        ctx.name("#b");
        ctx.value(":w");
        assert_eq!(
            ctx.finish().unwrap_err().0,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"
        );
        ctx.value(":v");
        assert!(ctx.finish().is_ok());
    }
}
