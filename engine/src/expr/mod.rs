//! DynamoDB expressions: parsing and evaluating ConditionExpression, FilterExpression,
//! KeyConditionExpression, UpdateExpression and ProjectionExpression, with DynamoDB's error
//! messages. Pure: no I/O.
//!
//! - [`lexer`]: text to tokens with spans; [`parser`]: tokens to the [`ast`], collecting the
//!   semantic errors DynamoDB ranks after syntax errors.
//! - [`context`]: ExpressionAttributeNames/Values and which ones the request used.
//! - [`condition`], [`update`], [`projection`], [`key_condition`]: what each kind means.
//! - [`reserved`]: the reserved words that must be written through `#placeholders`.

pub mod ast;
pub mod condition;
pub mod context;
pub mod document;
pub mod key_condition;
pub mod lexer;
pub mod parser;
pub mod print;
pub mod projection;
pub mod reserved;
pub mod update;

#[cfg(test)]
mod tests;

pub use ast::{Comparator, Condition, Operand, Path, PathElement, SetAction, SetOperand, SetValue, UpdateExpression};
pub use context::ExprContext;
pub use key_condition::{parse_key_condition, KeyCondition, SortKeyCondition};
pub use parser::{ExprKind, EXPRESSION_BYTES_MAX, IN_OPERANDS_MAX, NESTING_DEPTH_MAX};
pub use projection::project;

/// A malformed or inapplicable expression. The text is DynamoDB's ValidationException message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

/// Which parameter a condition came from; it only changes the prefix of error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionKind {
    /// `ConditionExpression` of a write.
    Condition,
    /// `FilterExpression` of a Query or Scan.
    Filter,
}

/// Parses a ConditionExpression or FilterExpression.
pub fn parse_condition(text: &str, ctx: &mut ExprContext, kind: ConditionKind) -> Result<Condition, ExprError> {
    let kind = match kind {
        ConditionKind::Condition => ExprKind::Condition,
        ConditionKind::Filter => ExprKind::Filter,
    };
    parser::parse_condition_kind(text, ctx, kind)
}

/// Parses an UpdateExpression.
pub fn parse_update(text: &str, ctx: &mut ExprContext) -> Result<UpdateExpression, ExprError> {
    parser::parse_update_text(text, ctx)
}

/// Parses a ProjectionExpression into the paths it names, in order.
pub fn parse_projection(text: &str, ctx: &mut ExprContext) -> Result<Vec<Path>, ExprError> {
    parser::parse_projection_text(text, ctx)
}
