//! Recursive-descent parser for condition, update and projection expressions.
//!
//! Parsing has two kinds of failure, reported the way DynamoDB reports them:
//! - a syntax error stops the parse at once (`Syntax error; token: "x", near: "a x b"`);
//! - semantic errors (reserved word, undefined placeholder, bad function use, overlapping
//!   paths, …) are collected while parsing goes on, and the one DynamoDB would name first is
//!   reported once the whole expression parsed. Each expression kind ranks them in its own order.
//!
//! Limits: expressions over [`EXPRESSION_BYTES_MAX`] are refused before lexing, and nesting
//! deeper than [`NESTING_DEPTH_MAX`] stops the parse, so no input can exhaust the stack.

use std::fmt;

use super::ast::UpdateExpression;
use super::ast::{Comparator, Condition, Operand, Path, PathElement, SetAction, SetOperand, SetValue};
use super::context::ExprContext;
use super::lexer::{tokenize, Token, TokenKind};
use super::reserved::is_reserved;
use super::ExprError;
use crate::model::AttributeValue;

/// DynamoDB's limit on the length of one expression string.
pub const EXPRESSION_BYTES_MAX: usize = 4096;
/// Deepest nesting of parentheses, NOT operators and function arguments accepted.
pub const NESTING_DEPTH_MAX: usize = 100;
/// Most candidates an IN operator takes.
pub const IN_OPERANDS_MAX: usize = 100;

/// Which request parameter an expression came from; it names the parameter in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl ExprKind {
    /// The request parameter's name.
    pub fn label(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Update => "UpdateExpression",
            ExprKind::Projection => "ProjectionExpression",
        }
    }

    /// `Invalid <Parameter>: <message>`.
    pub fn error(self, message: impl fmt::Display) -> ExprError {
        ExprError(format!("Invalid {}: {message}", self.label()))
    }
}

/// Kinds of semantic error, ranked per expression kind by [`Problem::rank`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    Parens,
    UnknownFunction,
    MisusedFunction,
    Reserved,
    Section,
    UndefinedName,
    UndefinedValue,
    PathOverlap,
    PathConflict,
    UpdateOperand,
    OperandCount,
    Distinct,
    OperandType,
}

impl Problem {
    /// Lower ranks are reported first.
    fn rank(self, kind: ExprKind) -> u8 {
        use Problem::*;
        match kind {
            ExprKind::Update | ExprKind::Projection => match self {
                Reserved => 0,
                UnknownFunction => 1,
                Section => 2,
                UndefinedName => 3,
                UndefinedValue => 4,
                PathOverlap => 5,
                PathConflict => 6,
                UpdateOperand => 7,
                OperandCount | OperandType => 8,
                Parens | MisusedFunction | Distinct => 9,
            },
            _ => match self {
                Parens => 0,
                UnknownFunction => 1,
                MisusedFunction => 2,
                Reserved => 3,
                UndefinedName | UndefinedValue => 4,
                OperandCount => 5,
                Distinct => 6,
                OperandType => 7,
                Section | PathOverlap | PathConflict | UpdateOperand => 8,
            },
        }
    }
}

/// A parse that cannot go on.
#[derive(Clone, Debug)]
struct Fail {
    /// Token index where it failed, to prefer the alternative that got furthest.
    at: usize,
    message: String,
    /// Not worth trying another alternative (a limit was hit).
    hard: bool,
}

type PResult<T> = Result<T, Fail>;

/// An operand before it is known whether it is used as a value or as a condition.
#[derive(Clone, Debug)]
enum Raw {
    Path(Path),
    /// `None` when the placeholder is undefined (already reported).
    Value(Option<AttributeValue>),
    Call {
        name: String,
        args: Vec<Raw>,
    },
}

impl Raw {
    /// The type DynamoDB can tell before reading the item: a literal's own type, `N` for size.
    fn static_type(&self) -> Option<&'static str> {
        match self {
            Raw::Value(Some(value)) => Some(value.type_name()),
            Raw::Call { name, .. } if name == "size" => Some("N"),
            _ => None,
        }
    }

    fn immediate_type(&self) -> Option<&'static str> {
        match self {
            Raw::Value(Some(value)) => Some(value.type_name()),
            _ => None,
        }
    }
}

#[derive(Clone)]
struct Saved {
    pos: usize,
    problems: usize,
    depth: usize,
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    kind: ExprKind,
    ctx: &'a mut ExprContext,
    depth: usize,
    problems: Vec<(Problem, String)>,
}

const CONDITION_KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];
const UPDATE_KEYWORDS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];
const CONDITION_FUNCTIONS: [&str; 6] =
    ["attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains", "size"];
const UPDATE_FUNCTIONS: [&str; 2] = ["if_not_exists", "list_append"];
const TYPE_NAMES: [&str; 10] = ["B", "NULL", "SS", "BOOL", "L", "BS", "N", "NS", "S", "M"];

fn comparator_of(kind: &TokenKind) -> Option<Comparator> {
    Some(match kind {
        TokenKind::Eq => Comparator::Eq,
        TokenKind::Ne => Comparator::Ne,
        TokenKind::Lt => Comparator::Lt,
        TokenKind::Le => Comparator::Le,
        TokenKind::Gt => Comparator::Gt,
        TokenKind::Ge => Comparator::Ge,
        _ => return None,
    })
}

/// DynamoDB's long type names, used in ADD/DELETE operand errors.
fn long_type_name(value: &AttributeValue) -> Option<&'static str> {
    Some(match value {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Null => "NULL",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::L(_) => "LIST",
        AttributeValue::M(_) => "MAP",
        _ => return None,
    })
}

/// `{N:5}`, `{S:abc}`: how DynamoDB prints a value inside messages.
pub(crate) fn value_brief(value: &AttributeValue) -> String {
    use base64::Engine as _;
    match value {
        AttributeValue::S(s) => format!("{{S:{s}}}"),
        AttributeValue::N(n) => format!("{{N:{n}}}"),
        AttributeValue::B(b) => {
            format!("{{B:{}}}", base64::engine::general_purpose::STANDARD.encode(b))
        }
        other => format!("{{{}:…}}", other.type_name()),
    }
}

/// Order of two values of one scalar type (N, S, B), if they are both of one.
pub(crate) fn scalar_order(a: &AttributeValue, b: &AttributeValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Checks the length and emptiness of an expression before parsing.
fn check_text(text: &str, kind: ExprKind) -> Result<(), ExprError> {
    if text.len() > EXPRESSION_BYTES_MAX {
        return Err(kind
            .error(format!("Expression size has exceeded the maximum allowed size; expression size: {}", text.len())));
    }
    if text.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
        return Err(kind.error("The expression can not be empty;"));
    }
    Ok(())
}

impl<'a> Parser<'a> {
    fn new(source: &'a str, kind: ExprKind, ctx: &'a mut ExprContext) -> Parser<'a> {
        Parser { source, tokens: tokenize(source), pos: 0, kind, ctx, depth: 0, problems: Vec::new() }
    }

    // ---- token plumbing -------------------------------------------------------------------

    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn peek_at(&self, offset: usize) -> &TokenKind {
        let index = (self.pos + offset).min(self.tokens.len() - 1);
        &self.tokens[index].kind
    }

    fn advance(&mut self) {
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn is_keyword(&self, word: &str) -> bool {
        let keywords: &[&str] = match self.kind {
            ExprKind::Update => &UPDATE_KEYWORDS,
            ExprKind::Projection => &[],
            _ => &CONDITION_KEYWORDS,
        };
        keywords.iter().any(|k| k.eq_ignore_ascii_case(word))
    }

    fn save(&self) -> Saved {
        Saved { pos: self.pos, problems: self.problems.len(), depth: self.depth }
    }

    fn restore(&mut self, saved: &Saved) {
        self.pos = saved.pos;
        self.problems.truncate(saved.problems);
        self.depth = saved.depth;
    }

    /// A syntax error at the current token, quoting it with its neighbours.
    fn syntax_error(&self) -> Fail {
        let token = &self.tokens[self.pos];
        let start = if self.pos > 0 { self.tokens[self.pos - 1].start } else { token.start };
        let end = match self.tokens.get(self.pos + 1) {
            Some(next) if next.kind != TokenKind::Eof => next.end,
            _ if token.kind == TokenKind::Eof => {
                if self.pos > 0 {
                    self.tokens[self.pos - 1].end
                } else {
                    token.end
                }
            }
            _ => token.end,
        };
        Fail {
            at: self.pos,
            message: format!(
                "Syntax error; token: \"{}\", near: \"{}\"",
                token.text(self.source),
                &self.source[start..end]
            ),
            hard: false,
        }
    }

    fn expect(&mut self, kind: TokenKind) -> PResult<()> {
        if *self.peek() == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > NESTING_DEPTH_MAX {
            return Err(Fail {
                at: self.pos,
                message: format!(
                    "The expression has too many nested levels; maximum nesting depth: {NESTING_DEPTH_MAX}"
                ),
                hard: true,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn problem(&mut self, problem: Problem, message: String) {
        self.problems.push((problem, message));
    }

    /// The problem to report: lowest rank, earliest found among equals.
    fn first_problem(&self) -> Option<ExprError> {
        self.problems
            .iter()
            .enumerate()
            .min_by_key(|(seq, (problem, _))| (problem.rank(self.kind), *seq))
            .map(|(_, (_, message))| self.kind.error(message))
    }

    fn finish<T>(&self, result: PResult<T>) -> Result<T, ExprError> {
        let value = result.map_err(|fail| self.kind.error(fail.message))?;
        match self.first_problem() {
            Some(err) => Err(err),
            None => Ok(value),
        }
    }

    fn expect_end(&self) -> PResult<()> {
        if *self.peek() == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    // ---- paths and values -----------------------------------------------------------------

    fn name_element(&mut self) -> PResult<String> {
        match self.peek().clone() {
            TokenKind::Word(word) if !self.is_keyword(&word) => {
                if is_reserved(&word) {
                    self.problem(
                        Problem::Reserved,
                        format!("Attribute name is a reserved keyword; reserved keyword: {word}"),
                    );
                }
                self.advance();
                Ok(word)
            }
            TokenKind::NameRef(placeholder) => {
                self.advance();
                match self.ctx.name(&placeholder) {
                    Some(name) => Ok(name),
                    None => {
                        self.problem(
                            Problem::UndefinedName,
                            format!(
                                "An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
                            ),
                        );
                        Ok(placeholder)
                    }
                }
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn path(&mut self) -> PResult<Path> {
        let mut elements = vec![PathElement::Attribute(self.name_element()?)];
        loop {
            match self.peek() {
                TokenKind::Dot => {
                    self.advance();
                    elements.push(PathElement::Attribute(self.name_element()?));
                }
                TokenKind::LBracket => {
                    self.advance();
                    let index = match self.peek() {
                        TokenKind::Digits(digits) => digits.parse::<usize>().ok(),
                        _ => None,
                    };
                    let Some(index) = index else {
                        return Err(self.syntax_error());
                    };
                    self.advance();
                    self.expect(TokenKind::RBracket)?;
                    elements.push(PathElement::Index(index));
                }
                _ => return Ok(Path(elements)),
            }
        }
    }

    fn value_ref(&mut self, placeholder: &str) -> Option<AttributeValue> {
        let value = self.ctx.value(placeholder);
        if value.is_none() {
            self.problem(
                Problem::UndefinedValue,
                format!(
                    "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
                ),
            );
        }
        value
    }

    /// An operand: path, value placeholder, function call, or one of those in parentheses.
    /// Returns whether it was written in parentheses.
    fn raw_operand(&mut self) -> PResult<(Raw, bool)> {
        match self.peek().clone() {
            TokenKind::LParen => {
                self.advance();
                self.enter()?;
                let (inner, inner_parenthesized) = self.raw_operand()?;
                self.expect(TokenKind::RParen)?;
                self.leave();
                if inner_parenthesized && self.kind != ExprKind::Update {
                    self.problem(Problem::Parens, "The expression has redundant parentheses;".into());
                }
                Ok((inner, true))
            }
            TokenKind::ValueRef(placeholder) => {
                self.advance();
                Ok((Raw::Value(self.value_ref(&placeholder)), false))
            }
            TokenKind::Word(word) if *self.peek_at(1) == TokenKind::LParen && !self.is_keyword(&word) => {
                self.advance();
                self.advance();
                self.enter()?;
                let mut args = vec![self.raw_operand()?.0];
                while *self.peek() == TokenKind::Comma {
                    self.advance();
                    args.push(self.raw_operand()?.0);
                }
                self.expect(TokenKind::RParen)?;
                self.leave();
                self.check_call(&word, &args);
                Ok((Raw::Call { name: word, args }, false))
            }
            _ => Ok((Raw::Path(self.path()?), false)),
        }
    }

    // ---- function checks ------------------------------------------------------------------

    fn check_call(&mut self, name: &str, args: &[Raw]) {
        let update = self.kind == ExprKind::Update;
        let known_here: &[&str] = if update { &UPDATE_FUNCTIONS } else { &CONDITION_FUNCTIONS };
        let known_elsewhere: &[&str] = if update { &CONDITION_FUNCTIONS } else { &UPDATE_FUNCTIONS };
        if !known_here.contains(&name) {
            let message = if known_elsewhere.contains(&name) {
                let place = if update { "an update" } else { "a condition" };
                format!("The function is not allowed in {place} expression; function: {name}")
            } else {
                format!("Invalid function name; function: {name}")
            };
            self.problem(Problem::UnknownFunction, message);
            return;
        }
        if !update {
            self.check_misused(args);
        }
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            _ => 2,
        };
        if args.len() != arity {
            self.problem(
                Problem::OperandCount,
                format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ),
            );
            return;
        }
        if let [Raw::Path(first), Raw::Path(second)] = args {
            if first == second && !update {
                self.problem(Problem::Distinct, distinct_message(name, first));
            }
        }
        let type_error = |operand_type: &str| {
            format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {operand_type}"
            )
        };
        let requires_path =
            |name: &str| format!("Operator or function requires a document path; operator or function: {name}");
        match name {
            "attribute_exists" | "attribute_not_exists" | "if_not_exists" if !matches!(args[0], Raw::Path(_)) => {
                self.problem(Problem::OperandType, requires_path(name));
            }
            "begins_with" => {
                if let Some(t) = args.iter().filter_map(Raw::static_type).find(|t| *t != "S" && *t != "B") {
                    self.problem(Problem::OperandType, type_error(t));
                }
            }
            "attribute_type" => match &args[1] {
                Raw::Value(Some(AttributeValue::S(type_name))) => {
                    if !TYPE_NAMES.contains(&type_name.as_str()) {
                        self.problem(
                            Problem::OperandType,
                            format!(
                                "Invalid attribute type name found; type: {type_name}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                            ),
                        );
                    }
                }
                Raw::Value(None) => {}
                other => {
                    let t = other.static_type().unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
                    self.problem(Problem::OperandType, type_error(t));
                }
            },
            "size" => {
                if let Some(t) = args[0].static_type().filter(|t| ["N", "BOOL", "NULL"].contains(t)) {
                    self.problem(Problem::OperandType, type_error(t));
                }
            }
            "list_append" => {
                if let Some(t) = args.iter().filter_map(Raw::immediate_type).find(|t| *t != "L") {
                    self.problem(Problem::OperandType, type_error(t));
                }
            }
            _ => {}
        }
    }

    /// A function other than size used where a value is expected.
    fn check_misused(&mut self, operands: &[Raw]) {
        for operand in operands {
            if let Raw::Call { name, .. } = operand {
                if name != "size" {
                    self.problem(
                        Problem::MisusedFunction,
                        format!("The function is not allowed to be used this way in an expression; function: {name}"),
                    );
                }
            }
        }
    }

    // ---- conditions -----------------------------------------------------------------------

    /// `or := and (OR and)*`; the flag tells whether the whole thing was one parenthesized group.
    fn or_condition(&mut self) -> PResult<(Condition, bool)> {
        self.enter()?;
        let (mut left, mut group) = self.and_condition()?;
        while self.peek_word("OR") {
            self.advance();
            let (right, _) = self.and_condition()?;
            left = Condition::Or(Box::new(left), Box::new(right));
            group = false;
        }
        self.leave();
        Ok((left, group))
    }

    fn and_condition(&mut self) -> PResult<(Condition, bool)> {
        let (mut left, mut group) = self.not_condition()?;
        while self.peek_word("AND") {
            self.advance();
            let (right, _) = self.not_condition()?;
            left = Condition::And(Box::new(left), Box::new(right));
            group = false;
        }
        Ok((left, group))
    }

    fn not_condition(&mut self) -> PResult<(Condition, bool)> {
        if self.peek_word("NOT") {
            self.advance();
            self.enter()?;
            let (inner, _) = self.not_condition()?;
            self.leave();
            return Ok((Condition::Not(Box::new(inner)), false));
        }
        self.primary_condition()
    }

    fn starts_comparison_tail(&self) -> bool {
        comparator_of(self.peek()).is_some() || self.peek_word("BETWEEN") || self.peek_word("IN")
    }

    /// A parenthesized condition, or a comparison whose first operand is parenthesized; both
    /// start with `(`, so the group is tried first and the operand form if that fails.
    fn primary_condition(&mut self) -> PResult<(Condition, bool)> {
        if *self.peek() != TokenKind::LParen {
            return Ok((self.comparison()?, false));
        }
        let saved = self.save();
        let group_fail = match self.group() {
            Ok(group) if !self.starts_comparison_tail() => return Ok(group),
            Ok(_) => None,
            Err(fail) if fail.hard => return Err(fail),
            Err(fail) => Some(fail),
        };
        self.restore(&saved);
        match self.comparison() {
            Ok(condition) => Ok((condition, false)),
            Err(fail) if fail.hard => Err(fail),
            Err(operand_fail) => match group_fail {
                Some(group_fail) if group_fail.at >= operand_fail.at => Err(group_fail),
                _ => Err(operand_fail),
            },
        }
    }

    fn group(&mut self) -> PResult<(Condition, bool)> {
        self.expect(TokenKind::LParen)?;
        let (inner, inner_group) = self.or_condition()?;
        self.expect(TokenKind::RParen)?;
        if inner_group {
            self.problem(Problem::Parens, "The expression has redundant parentheses;".into());
        }
        Ok((inner, true))
    }

    fn comparison(&mut self) -> PResult<Condition> {
        let (left, _) = self.raw_operand()?;
        if let Some(comparator) = comparator_of(self.peek()) {
            self.advance();
            let (right, _) = self.raw_operand()?;
            self.check_misused(&[left.clone(), right.clone()]);
            if let (Raw::Path(a), Raw::Path(b)) = (&left, &right) {
                if a == b {
                    self.problem(Problem::Distinct, distinct_message(comparator.as_str(), a));
                }
            }
            if !matches!(comparator, Comparator::Eq | Comparator::Ne) {
                self.check_ordered(comparator.as_str(), &[&left, &right]);
            }
            return Ok(Condition::Compare(self.operand(left), comparator, self.operand(right)));
        }
        if self.peek_word("BETWEEN") {
            self.advance();
            let (low, _) = self.raw_operand()?;
            if !self.peek_word("AND") {
                return Err(self.syntax_error());
            }
            self.advance();
            let (high, _) = self.raw_operand()?;
            self.check_misused(&[left.clone(), low.clone(), high.clone()]);
            self.check_ordered("BETWEEN", &[&left, &low, &high]);
            if let (Raw::Value(Some(lo)), Raw::Value(Some(hi))) = (&low, &high) {
                if let Some(message) = between_bounds_problem(lo, hi) {
                    self.problem(Problem::OperandType, message);
                }
            }
            return Ok(Condition::Between(self.operand(left), self.operand(low), self.operand(high)));
        }
        if self.peek_word("IN") {
            self.advance();
            self.expect(TokenKind::LParen)?;
            let mut candidates = vec![self.raw_operand()?.0];
            while *self.peek() == TokenKind::Comma {
                self.advance();
                candidates.push(self.raw_operand()?.0);
            }
            self.expect(TokenKind::RParen)?;
            let mut all = vec![left.clone()];
            all.extend(candidates.iter().cloned());
            self.check_misused(&all);
            if candidates.len() > IN_OPERANDS_MAX {
                self.problem(
                    Problem::OperandCount,
                    format!(
                        "The IN operator is provided with too many operands; number of operands: {}",
                        candidates.len()
                    ),
                );
            }
            let candidates = candidates.into_iter().map(|c| self.operand(c)).collect();
            return Ok(Condition::In(self.operand(left), candidates));
        }
        match left {
            Raw::Call { name, args } => Ok(self.call_condition(name, args)),
            _ => Err(self.syntax_error()),
        }
    }

    /// Ordering comparisons and BETWEEN take only N, S and B literals.
    fn check_ordered(&mut self, operator: &str, operands: &[&Raw]) {
        if let Some(t) = operands.iter().filter_map(|o| o.immediate_type()).find(|t| !["N", "S", "B"].contains(t)) {
            self.problem(
                Problem::OperandType,
                format!(
                    "Incorrect operand type for operator or function; operator or function: {operator}, operand type: {t}"
                ),
            );
        }
    }

    /// Converts a raw operand used as a value. Misuse was reported already; a placeholder
    /// stands in for anything unusable, and never escapes because the parse then fails.
    fn operand(&mut self, raw: Raw) -> Operand {
        match raw {
            Raw::Path(path) => Operand::Path(path),
            Raw::Value(value) => Operand::Value(value.unwrap_or(AttributeValue::Null)),
            Raw::Call { name, mut args } if name == "size" && args.len() == 1 => {
                let arg = args.remove(0);
                Operand::Size(Box::new(self.operand(arg)))
            }
            Raw::Call { .. } => Operand::Value(AttributeValue::Null),
        }
    }

    fn call_condition(&mut self, name: String, args: Vec<Raw>) -> Condition {
        let placeholder = Condition::AttributeExists(Path::attribute(""));
        if name == "size" {
            self.problem(
                Problem::MisusedFunction,
                "The function is not allowed to be used this way in an expression; function: size".into(),
            );
            return placeholder;
        }
        let mut args = args.into_iter();
        let (Some(first), second, None) = (args.next(), args.next(), args.next()) else {
            return placeholder;
        };
        match (name.as_str(), first, second) {
            ("attribute_exists", Raw::Path(path), None) => Condition::AttributeExists(path),
            ("attribute_not_exists", Raw::Path(path), None) => Condition::AttributeNotExists(path),
            ("attribute_type", Raw::Path(path), Some(Raw::Value(Some(AttributeValue::S(t))))) => {
                Condition::AttributeType(path, t)
            }
            ("begins_with", a, Some(b)) => Condition::BeginsWith(self.operand(a), self.operand(b)),
            ("contains", a, Some(b)) => Condition::Contains(self.operand(a), self.operand(b)),
            _ => placeholder,
        }
    }

    // ---- update expressions ---------------------------------------------------------------

    fn update(&mut self) -> PResult<UpdateExpression> {
        let mut update = UpdateExpression::default();
        let mut seen: Vec<String> = Vec::new();
        let mut targets: Vec<Path> = Vec::new();
        loop {
            let section = match self.peek() {
                TokenKind::Word(w) if UPDATE_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                    w.to_ascii_uppercase()
                }
                _ => return Err(self.syntax_error()),
            };
            self.advance();
            if seen.contains(&section) {
                self.problem(
                    Problem::Section,
                    format!("The \"{section}\" section can only be used once in an update expression;"),
                );
            }
            seen.push(section.clone());
            loop {
                let path = self.path()?;
                targets.push(path.clone());
                match section.as_str() {
                    "SET" => {
                        self.expect(TokenKind::Eq)?;
                        let value = self.set_value()?;
                        update.set.push(SetAction { path, value });
                    }
                    "REMOVE" => update.remove.push(path),
                    _ => {
                        let TokenKind::ValueRef(placeholder) = self.peek().clone() else {
                            return Err(self.syntax_error());
                        };
                        self.advance();
                        let value = self.value_ref(&placeholder);
                        if let Some(value) = &value {
                            self.check_add_delete(&section, value);
                        }
                        let value = value.unwrap_or(AttributeValue::Null);
                        if section == "ADD" {
                            update.add.push((path, value));
                        } else {
                            update.delete.push((path, value));
                        }
                    }
                }
                if *self.peek() == TokenKind::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
            if *self.peek() == TokenKind::Eof {
                break;
            }
        }
        self.check_overlaps(&targets);
        Ok(update)
    }

    fn check_add_delete(&mut self, section: &str, value: &AttributeValue) {
        let allowed = match value {
            AttributeValue::N(_) => section == "ADD",
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => true,
            _ => false,
        };
        if !allowed {
            let type_name = long_type_name(value).unwrap_or(value.type_name());
            self.problem(
                Problem::UpdateOperand,
                format!(
                    "Incorrect operand type for operator or function; operator: {section}, operand type: {type_name}"
                ),
            );
        }
    }

    fn set_value(&mut self) -> PResult<SetValue> {
        let first = self.set_operand()?;
        let operator = match self.peek() {
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            _ => return Ok(SetValue::Operand(self.lower_set_operand(first))),
        };
        self.advance();
        let second = self.set_operand()?;
        if let Some(t) = [&first, &second].iter().filter_map(|r| r.immediate_type()).find(|t| *t != "N") {
            self.problem(
                Problem::OperandType,
                format!(
                    "Incorrect operand type for operator or function; operator or function: {operator}, operand type: {t}"
                ),
            );
        }
        let (a, b) = (self.lower_set_operand(first), self.lower_set_operand(second));
        Ok(if operator == "+" { SetValue::Plus(a, b) } else { SetValue::Minus(a, b) })
    }

    fn set_operand(&mut self) -> PResult<Raw> {
        Ok(self.raw_operand()?.0)
    }

    fn lower_set_operand(&mut self, raw: Raw) -> SetOperand {
        match raw {
            Raw::Path(path) => SetOperand::Path(path),
            Raw::Value(value) => SetOperand::Value(value.unwrap_or(AttributeValue::Null)),
            Raw::Call { name, args } => {
                let mut args = args.into_iter();
                match (name.as_str(), args.next(), args.next(), args.next()) {
                    ("if_not_exists", Some(Raw::Path(path)), Some(fallback), None) => {
                        SetOperand::IfNotExists(path, Box::new(self.lower_set_operand(fallback)))
                    }
                    ("list_append", Some(a), Some(b), None) => {
                        SetOperand::ListAppend(Box::new(self.lower_set_operand(a)), Box::new(self.lower_set_operand(b)))
                    }
                    _ => SetOperand::Value(AttributeValue::Null),
                }
            }
        }
    }

    /// Two target paths may neither be equal, nor one a prefix of the other (overlap), nor
    /// use a name where the other uses an index (conflict).
    fn check_overlaps(&mut self, paths: &[Path]) {
        for (i, later) in paths.iter().enumerate() {
            for earlier in &paths[..i] {
                if let Some((problem, word)) = path_clash(earlier, later) {
                    self.problem(
                        problem,
                        format!(
                            "Two document paths {word} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                            earlier.to_list_string(),
                            later.to_list_string()
                        ),
                    );
                }
            }
        }
    }

    // ---- projections ----------------------------------------------------------------------

    fn projection(&mut self) -> PResult<Vec<Path>> {
        let mut paths = vec![self.path()?];
        while *self.peek() == TokenKind::Comma {
            self.advance();
            paths.push(self.path()?);
        }
        self.expect_end()?;
        self.check_overlaps(&paths);
        Ok(paths)
    }
}

fn distinct_message(operator: &str, first: &Path) -> String {
    format!(
        "The first operand must be distinct from the remaining operands for this operator or function; operator: {operator}, first operand: {}",
        first.to_list_string()
    )
}

/// BETWEEN bounds of different types, or in the wrong order.
pub(crate) fn between_bounds_problem(low: &AttributeValue, high: &AttributeValue) -> Option<String> {
    let bounds = format!(
        "lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
        value_brief(low),
        value_brief(high)
    );
    if low.type_name() != high.type_name() {
        return Some(format!("The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"));
    }
    match scalar_order(low, high) {
        Some(std::cmp::Ordering::Greater) => Some(format!(
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {bounds}"
        )),
        _ => None,
    }
}

fn path_clash(a: &Path, b: &Path) -> Option<(Problem, &'static str)> {
    for (x, y) in a.0.iter().zip(&b.0) {
        match (x, y) {
            (PathElement::Attribute(p), PathElement::Attribute(q)) if p == q => {}
            (PathElement::Index(p), PathElement::Index(q)) if p == q => {}
            (PathElement::Attribute(_), PathElement::Attribute(_)) | (PathElement::Index(_), PathElement::Index(_)) => {
                return None
            }
            _ => return Some((Problem::PathConflict, "conflict")),
        }
    }
    Some((Problem::PathOverlap, "overlap"))
}

/// Parses a condition-like expression (ConditionExpression, FilterExpression or the raw form of
/// a KeyConditionExpression).
pub(crate) fn parse_condition_kind(text: &str, ctx: &mut ExprContext, kind: ExprKind) -> Result<Condition, ExprError> {
    check_text(text, kind)?;
    let mut parser = Parser::new(text, kind, ctx);
    let result = parser.or_condition().and_then(|(condition, _)| {
        parser.expect_end()?;
        Ok(condition)
    });
    parser.finish(result)
}

/// Parses an UpdateExpression.
pub(crate) fn parse_update_text(text: &str, ctx: &mut ExprContext) -> Result<UpdateExpression, ExprError> {
    check_text(text, ExprKind::Update)?;
    let mut parser = Parser::new(text, ExprKind::Update, ctx);
    let result = parser.update();
    parser.finish(result)
}

/// Parses a ProjectionExpression.
pub(crate) fn parse_projection_text(text: &str, ctx: &mut ExprContext) -> Result<Vec<Path>, ExprError> {
    check_text(text, ExprKind::Projection)?;
    let mut parser = Parser::new(text, ExprKind::Projection, ctx);
    let result = parser.projection();
    parser.finish(result)
}
