//! DynamoDB numbers: exact decimals with up to 38 significant digits and a magnitude between
//! 1E-130 and 9.99…E+125. Never stored or compared as floating point.

use std::cmp::Ordering;
use std::fmt;

/// Most significant digits a DynamoDB number may carry.
pub const SIGNIFICANT_DIGITS_MAX: usize = 38;

/// Why a string or a computation does not give a DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The text is not a decimal number at all.
    #[error("the parameter cannot be converted to a numeric value: {0}")]
    Invalid(String),
    /// The magnitude is at least 1E+126.
    #[error("number overflow. attempting to store a number with magnitude larger than supported range")]
    Overflow,
    /// The magnitude is non-zero and below 1E-130.
    #[error("number underflow. attempting to store a number with magnitude smaller than supported range")]
    Underflow,
    /// More than 38 significant digits.
    #[error("attempting to store more than 38 significant digits in a number")]
    Precision,
}

/// An exact DynamoDB number.
///
/// Canonical form: `digits` holds the significant decimal digits (each 0..=9) without leading or
/// trailing zeros, and the value is `±0.d1d2d3… × 10^exponent`. Zero has no digits, exponent 0
/// and is never negative. Because the form is canonical, derived equality and hashing are exact.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    digits: Vec<u8>,
    exponent: i32,
}

impl Number {
    /// Parses DynamoDB's number text (`"-12.5"`, `"1E+2"`, `"0.001e-3"`), normalising it.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let _ = text;
        todo!()
    }

    /// The number zero.
    pub fn zero() -> Number {
        Number { negative: false, digits: Vec::new(), exponent: 0 }
    }

    /// An exact conversion from an integer.
    pub fn from_i64(value: i64) -> Number {
        let _ = value;
        todo!()
    }

    /// The value as an integer, when it is one and fits.
    pub fn to_i64(&self) -> Option<i64> {
        todo!()
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True for values below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Count of significant digits (0 for zero); DynamoDB sizes a number by it.
    pub fn significant_digits(&self) -> usize {
        self.digits.len()
    }

    /// Exact `self + rhs`, or the DynamoDB error when the result leaves the number range.
    pub fn checked_add(&self, rhs: &Number) -> Result<Number, NumberError> {
        let _ = rhs;
        todo!()
    }

    /// Exact `self - rhs`, or the DynamoDB error when the result leaves the number range.
    pub fn checked_sub(&self, rhs: &Number) -> Result<Number, NumberError> {
        let _ = rhs;
        todo!()
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let _ = other;
        todo!()
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Normalised text, as DynamoDB returns it: `"1E+2"` prints as `"100"`, `"-0.50"` as `"-0.5"`.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::str::FromStr for Number {
    type Err = NumberError;
    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}
