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

/// Largest exponent (in the `0.d1d2… × 10^exponent` form) of a number in range: 9.99…E+125.
const EXPONENT_MAX: i64 = 126;
/// Smallest exponent of a non-zero number in range: 1E-130 is `0.1 × 10^-129`.
const EXPONENT_MIN: i64 = -129;
/// Exponent digits are accumulated up to this bound; anything beyond is out of range anyway and
/// the bound keeps the arithmetic far from `i64` overflow.
const EXPONENT_TEXT_BOUND: i64 = 1_000_000_000;

impl NumberError {
    /// The message DynamoDB gives in its `ValidationException` for this error.
    pub fn dynamodb_message(&self) -> String {
        match self {
            NumberError::Invalid(text) if text.is_empty() => {
                "The parameter cannot be converted to a numeric value".to_string()
            }
            NumberError::Invalid(text) => {
                format!("The parameter cannot be converted to a numeric value: {text}")
            }
            NumberError::Overflow => "Number overflow. Attempting to store a number with magnitude \
                                      larger than supported range"
                .to_string(),
            NumberError::Underflow => "Number underflow. Attempting to store a number with \
                                       magnitude smaller than supported range"
                .to_string(),
            NumberError::Precision => "Attempting to store more than 38 significant digits in a Number".to_string(),
        }
    }
}

impl Number {
    /// Parses DynamoDB's number text (`"-12.5"`, `"1E+2"`, `"0.001e-3"`), normalising it.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let invalid = || NumberError::Invalid(text.to_string());
        let bytes = text.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if let Some(&sign) = bytes.first() {
            if sign == b'-' || sign == b'+' {
                negative = sign == b'-';
                pos += 1;
            }
        }
        let mut digits = Vec::new();
        let integer_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            digits.push(bytes[pos] - b'0');
            pos += 1;
        }
        let integer_len = pos - integer_start;
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                digits.push(bytes[pos] - b'0');
                pos += 1;
            }
        }
        if digits.is_empty() {
            return Err(invalid());
        }
        let mut exponent_text: i64 = 0;
        if pos < bytes.len() && (bytes[pos] == b'e' || bytes[pos] == b'E') {
            pos += 1;
            let mut exponent_negative = false;
            if pos < bytes.len() && (bytes[pos] == b'-' || bytes[pos] == b'+') {
                exponent_negative = bytes[pos] == b'-';
                pos += 1;
            }
            let exponent_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                let digit = i64::from(bytes[pos] - b'0');
                exponent_text = (exponent_text * 10 + digit).min(EXPONENT_TEXT_BOUND);
                pos += 1;
            }
            if pos == exponent_start {
                return Err(invalid());
            }
            if exponent_negative {
                exponent_text = -exponent_text;
            }
        }
        if pos != bytes.len() {
            return Err(invalid());
        }
        // The text is D × 10^exponent_text where the point sits after `integer_len` digits of D,
        // that is 0.D × 10^(integer_len + exponent_text).
        let integer_len = i64::try_from(integer_len).unwrap_or(EXPONENT_TEXT_BOUND);
        Number::normalise(negative, digits, integer_len.saturating_add(exponent_text))
    }

    /// Builds a number from its parts (`±0.d1d2… × 10^exponent`), normalising leading and
    /// trailing zeros and checking the range and precision. Digits above 9 are refused.
    pub fn from_parts(negative: bool, digits: Vec<u8>, exponent: i32) -> Result<Number, NumberError> {
        if digits.iter().any(|&d| d > 9) {
            return Err(NumberError::Invalid(format!("{digits:?}")));
        }
        Number::normalise(negative, digits, i64::from(exponent))
    }

    /// The canonical parts: (negative, significant digits each 0..=9, exponent), with the value
    /// `±0.d1d2… × 10^exponent`. Zero is `(false, [], 0)`.
    pub fn parts(&self) -> (bool, &[u8], i32) {
        (self.negative, &self.digits, self.exponent)
    }

    /// Strips leading and trailing zeros, then checks the range before the precision, as
    /// DynamoDB does.
    fn normalise(negative: bool, mut digits: Vec<u8>, exponent: i64) -> Result<Number, NumberError> {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        if leading == digits.len() {
            return Ok(Number::zero());
        }
        digits.drain(..leading);
        let trailing = digits.iter().rev().take_while(|&&d| d == 0).count();
        digits.truncate(digits.len() - trailing);
        let leading = i64::try_from(leading).unwrap_or(EXPONENT_TEXT_BOUND);
        let exponent = exponent.saturating_sub(leading);
        if exponent > EXPONENT_MAX {
            return Err(NumberError::Overflow);
        }
        if exponent < EXPONENT_MIN {
            return Err(NumberError::Underflow);
        }
        if digits.len() > SIGNIFICANT_DIGITS_MAX {
            return Err(NumberError::Precision);
        }
        let exponent = i32::try_from(exponent).expect("exponent checked against the range");
        Ok(Number { negative, digits, exponent })
    }

    /// The number zero.
    pub fn zero() -> Number {
        Number { negative: false, digits: Vec::new(), exponent: 0 }
    }

    /// An exact conversion from an integer.
    pub fn from_i64(value: i64) -> Number {
        let digits: Vec<u8> = value.unsigned_abs().to_string().bytes().map(|b| b - b'0').collect();
        let exponent = digits.len() as i64;
        Number::normalise(value < 0, digits, exponent).expect("every i64 is a DynamoDB number")
    }

    /// The value as an integer, when it is one and fits.
    pub fn to_i64(&self) -> Option<i64> {
        if self.is_zero() {
            return Some(0);
        }
        let exponent = usize::try_from(self.exponent).ok()?;
        if exponent < self.digits.len() || exponent > 19 {
            return None;
        }
        let mut magnitude: i128 = 0;
        for &digit in &self.digits {
            magnitude = magnitude * 10 + i128::from(digit);
        }
        for _ in self.digits.len()..exponent {
            magnitude *= 10;
        }
        let value = if self.negative { -magnitude } else { magnitude };
        i64::try_from(value).ok()
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

    /// The number with its sign flipped (zero stays zero).
    pub fn negated(&self) -> Number {
        let mut result = self.clone();
        result.negative = !self.negative && !self.is_zero();
        result
    }

    /// Exact `self + rhs`, or the DynamoDB error when the result leaves the number range.
    pub fn checked_add(&self, rhs: &Number) -> Result<Number, NumberError> {
        Number::add_signed(self, rhs, rhs.negative)
    }

    /// Exact `self - rhs`, or the DynamoDB error when the result leaves the number range.
    pub fn checked_sub(&self, rhs: &Number) -> Result<Number, NumberError> {
        Number::add_signed(self, rhs, !rhs.negative && !rhs.is_zero())
    }

    /// `a + (±|b|)`, with `b_negative` giving the sign taken for `b`.
    fn add_signed(a: &Number, b: &Number, b_negative: bool) -> Result<Number, NumberError> {
        if b.is_zero() {
            return Ok(a.clone());
        }
        if a.is_zero() {
            return Ok(Number { negative: b_negative, ..b.clone() });
        }
        // Align both magnitudes as digit vectors of the same length, `0.v × 10^high`.
        let low = (i64::from(a.exponent) - a.digits.len() as i64).min(i64::from(b.exponent) - b.digits.len() as i64);
        let high = i64::from(a.exponent.max(b.exponent));
        let width = usize::try_from(high - low).expect("aligned width is positive");
        let align = |n: &Number| {
            let mut v = vec![0u8; width];
            let start = usize::try_from(high - i64::from(n.exponent)).expect("within width");
            v[start..start + n.digits.len()].copy_from_slice(&n.digits);
            v
        };
        let (x, y) = (align(a), align(b));
        if a.negative == b_negative {
            // Same signs: add magnitudes, one more leading digit for the carry.
            let mut sum = vec![0u8; width + 1];
            let mut carry = 0u8;
            for i in (0..width).rev() {
                let s = x[i] + y[i] + carry;
                sum[i + 1] = s % 10;
                carry = s / 10;
            }
            sum[0] = carry;
            return Number::normalise(a.negative, sum, high + 1);
        }
        // Opposite signs: subtract the smaller magnitude from the larger one.
        let (big, small, negative) = match x.cmp(&y) {
            Ordering::Equal => return Ok(Number::zero()),
            Ordering::Greater => (x, y, a.negative),
            Ordering::Less => (y, x, b_negative),
        };
        let mut difference = vec![0u8; width];
        let mut borrow = 0u8;
        for i in (0..width).rev() {
            let subtrahend = small[i] + borrow;
            if big[i] >= subtrahend {
                difference[i] = big[i] - subtrahend;
                borrow = 0;
            } else {
                difference[i] = big[i] + 10 - subtrahend;
                borrow = 1;
            }
        }
        debug_assert_eq!(borrow, 0, "the larger magnitude was subtracted from");
        Number::normalise(negative, difference, high)
    }

    /// Order of the absolute values.
    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // Digits carry no trailing zeros, so a shorter prefix is the smaller value.
            (false, false) => self.exponent.cmp(&other.exponent).then_with(|| self.digits.cmp(&other.digits)),
        }
    }

    /// -1, 0 or 1.
    fn signum(&self) -> i8 {
        if self.is_zero() {
            0
        } else if self.negative {
            -1
        } else {
            1
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.signum().cmp(&other.signum()).then_with(|| {
            let magnitude = self.cmp_magnitude(other);
            if self.negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        })
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
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut text = String::with_capacity(self.digits.len() + 2 + self.exponent.unsigned_abs() as usize);
        if self.negative {
            text.push('-');
        }
        let digit = |d: u8| char::from(b'0' + d);
        let len = self.digits.len() as i64;
        let exponent = i64::from(self.exponent);
        if exponent <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-exponent) as usize));
            text.extend(self.digits.iter().map(|&d| digit(d)));
        } else if exponent < len {
            let point = exponent as usize;
            text.extend(self.digits[..point].iter().map(|&d| digit(d)));
            text.push('.');
            text.extend(self.digits[point..].iter().map(|&d| digit(d)));
        } else {
            text.extend(self.digits.iter().map(|&d| digit(d)));
            text.extend(std::iter::repeat_n('0', (exponent - len) as usize));
        }
        f.write_str(&text)
    }
}

impl std::str::FromStr for Number {
    type Err = NumberError;
    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn shown(text: &str) -> String {
        n(text).to_string()
    }

    #[test]
    fn parse_and_display_normalise() {
        assert_eq!(shown("1E+2"), "100");
        assert_eq!(shown("1e2"), "100");
        assert_eq!(shown("-0.50"), "-0.5");
        assert_eq!(shown("0.001"), "0.001");
        assert_eq!(shown("1.5E+3"), "1500");
        assert_eq!(shown("+7"), "7");
        assert_eq!(shown("007.700"), "7.7");
        assert_eq!(shown(".5"), "0.5");
        assert_eq!(shown("5."), "5");
        assert_eq!(shown("0.001e-3"), "0.000001");
        assert_eq!(shown("123.456"), "123.456");
        assert_eq!(shown("-12.5"), "-12.5");
        assert_eq!(shown("1E-130"), format!("0.{}1", "0".repeat(129)));
        let max = format!("9.{}E+125", "9".repeat(37));
        assert_eq!(shown(&max), "9".repeat(38) + &"0".repeat(88));
    }

    #[test]
    fn zero_has_one_form() {
        for text in ["0", "-0", "+0", "0.000", "-0e5", "0E-1000", "00", ".0", "0."] {
            let zero = n(text);
            assert_eq!(zero, Number::zero(), "{text}");
            assert!(zero.is_zero() && !zero.is_negative());
            assert_eq!(zero.to_string(), "0");
            assert_eq!(zero.parts(), (false, &[][..], 0));
        }
    }

    #[test]
    fn parts_are_canonical() {
        assert_eq!(n("-120.0").parts(), (true, &[1u8, 2][..], 3));
        assert_eq!(n("0.0012").parts(), (false, &[1u8, 2][..], -2));
        assert_eq!(n("1").parts(), (false, &[1u8][..], 1));
        assert_eq!(n("1.0"), n("1"));
        assert_eq!(n("100"), n("1E2"));
    }

    #[test]
    fn parse_rejects_text_that_is_not_a_number() {
        for text in [
            "",
            " ",
            " 1",
            "1 ",
            "abc",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            "0x10",
            ".",
            "-",
            "+",
            "-.",
            "1e",
            "1e+",
            "e5",
            "E5",
            "1.2.3",
            "1..2",
            "--1",
            "+-1",
            "1e5.5",
            "1,5",
            "١",
            "1_000",
            "1e--5",
        ] {
            assert_eq!(Number::parse(text), Err(NumberError::Invalid(text.to_string())), "{text:?}");
        }
    }

    #[test]
    fn range_limits() {
        assert!(Number::parse("1E-130").is_ok());
        assert!(Number::parse("-1E-130").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert_eq!(Number::parse("-0.9E-130"), Err(NumberError::Underflow));
        let max = format!("9.{}E+125", "9".repeat(37));
        assert!(Number::parse(&max).is_ok());
        assert!(Number::parse(&format!("-{max}")).is_ok());
        assert_eq!(Number::parse("1E+126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("-1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("1e999999999999999999999"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("1e-999999999999999999999"), Err(NumberError::Underflow));
        // Zero is in range whatever its exponent.
        assert_eq!(Number::parse("0e999999"), Ok(Number::zero()));
    }

    #[test]
    fn precision_limit() {
        let digits38 = "1".repeat(38);
        assert!(Number::parse(&digits38).is_ok());
        assert_eq!(Number::parse(&"1".repeat(39)), Err(NumberError::Precision));
        assert_eq!(Number::parse("123456789012345678901234567890123456789"), Err(NumberError::Precision));
        assert_eq!(Number::parse("-1.23456789012345678901234567890123456789"), Err(NumberError::Precision));
        // Leading and trailing zeros are not significant.
        assert!(Number::parse(&format!("000{digits38}000")).is_ok());
        assert!(Number::parse(&format!("0.000{digits38}000")).is_ok());
        // The range is checked before the precision.
        assert_eq!(Number::parse(&format!("{}E+200", "1".repeat(39))), Err(NumberError::Overflow));
    }

    #[test]
    fn dynamodb_messages() {
        assert_eq!(
            NumberError::Invalid("abc".into()).dynamodb_message(),
            "The parameter cannot be converted to a numeric value: abc"
        );
        assert_eq!(
            NumberError::Invalid(String::new()).dynamodb_message(),
            "The parameter cannot be converted to a numeric value"
        );
        assert_eq!(
            NumberError::Overflow.dynamodb_message(),
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        );
        assert_eq!(
            NumberError::Underflow.dynamodb_message(),
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        );
        assert_eq!(
            NumberError::Precision.dynamodb_message(),
            "Attempting to store more than 38 significant digits in a Number"
        );
    }

    #[test]
    fn order_is_numeric() {
        let sorted = [
            "-1e125",
            "-100",
            "-99.5",
            "-1",
            "-0.5",
            "-0.05",
            "-1e-130",
            "0",
            "1e-130",
            "0.05",
            "0.5",
            "1",
            "1.0000001",
            "9",
            "10",
            "99.5",
            "100",
            "1e125",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(n(a).cmp(&n(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(n("1.10").cmp(&n("1.1")), Ordering::Equal);
    }

    #[test]
    fn integers_convert_both_ways() {
        for value in [0, 1, -1, 10, -100, 123_456_789, i64::MAX, i64::MIN, i64::MIN + 1] {
            let number = Number::from_i64(value);
            assert_eq!(number.to_string(), value.to_string());
            assert_eq!(number.to_i64(), Some(value));
            assert_eq!(number, n(&value.to_string()));
        }
        assert_eq!(n("1.5").to_i64(), None);
        assert_eq!(n("-0.001").to_i64(), None);
        assert_eq!(n("9223372036854775808").to_i64(), None);
        assert_eq!(n("-9223372036854775809").to_i64(), None);
        assert_eq!(n("1e30").to_i64(), None);
        assert_eq!(n("1.2e3").to_i64(), Some(1200));
    }

    #[test]
    fn addition_and_subtraction_are_exact() {
        let add = |a: &str, b: &str| n(a).checked_add(&n(b)).map(|r| r.to_string());
        let sub = |a: &str, b: &str| n(a).checked_sub(&n(b)).map(|r| r.to_string());
        assert_eq!(add("1", "2"), Ok("3".into()));
        assert_eq!(add("0.1", "0.2"), Ok("0.3".into()));
        assert_eq!(add("9.99", "0.01"), Ok("10".into()));
        assert_eq!(add("-5", "3"), Ok("-2".into()));
        assert_eq!(add("5", "-5"), Ok("0".into()));
        assert_eq!(add("0", "-5"), Ok("-5".into()));
        assert_eq!(add("-5", "0"), Ok("-5".into()));
        assert_eq!(sub("1", "1.5"), Ok("-0.5".into()));
        assert_eq!(sub("0", "7"), Ok("-7".into()));
        assert_eq!(sub("0", "0"), Ok("0".into()));
        assert_eq!(sub("-1", "-1"), Ok("0".into()));
        assert_eq!(sub("1000", "0.001"), Ok("999.999".into()));
        assert_eq!(sub("-0.001", "1000"), Ok("-1000.001".into()));
        assert_eq!(add("1e125", "1e125"), Ok(format!("2{}", "0".repeat(125))));
    }

    #[test]
    fn arithmetic_errors_instead_of_rounding() {
        let max = n(&format!("9.{}E+125", "9".repeat(37)));
        assert_eq!(max.checked_add(&n("1e88")), Err(NumberError::Overflow));
        assert_eq!(max.negated().checked_sub(&n("1e88")), Err(NumberError::Overflow));
        // Result needs 39 digits.
        assert_eq!(n(&"9".repeat(38)).checked_add(&n("0.1")), Err(NumberError::Precision));
        // Magnitudes 255 orders apart.
        assert_eq!(n("1e125").checked_add(&n("1e-130")), Err(NumberError::Precision));
        assert_eq!(n("1e-130").checked_sub(&n("1e125")), Err(NumberError::Precision));
        // A difference can fall below the range.
        assert_eq!(n("1.1e-129").checked_sub(&n("1.09e-129")), Err(NumberError::Underflow));
        // Large cancellation is exact.
        let a = n(&format!("1{}1", "0".repeat(36)));
        let b = n(&format!("1{}", "0".repeat(37)));
        assert_eq!(a.checked_sub(&b).map(|r| r.to_string()), Ok("1".into()));
    }

    #[test]
    fn from_parts_normalises_and_checks() {
        assert_eq!(Number::from_parts(false, vec![0, 1, 2, 0], 3), Ok(n("12")));
        assert_eq!(Number::from_parts(true, vec![0, 0], 3), Ok(Number::zero()));
        assert_eq!(Number::from_parts(false, vec![1], 127), Err(NumberError::Overflow));
        assert!(matches!(Number::from_parts(false, vec![10], 1), Err(NumberError::Invalid(_))));
    }
}
