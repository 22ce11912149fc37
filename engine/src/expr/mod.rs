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
pub mod context;
pub mod lexer;
pub mod reserved;

pub use ast::{
    Comparator, Condition, Operand, Path, PathElement, SetAction, SetOperand, SetValue,
    UpdateExpression,
};
pub use context::ExprContext;

/// A malformed or inapplicable expression. The text is DynamoDB's ValidationException message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);
