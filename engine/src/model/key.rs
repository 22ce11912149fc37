//! Order-preserving, self-delimiting encoding of key attribute values, so that a Query over a
//! sort-key range is one storage range scan and concatenated key parts still sort correctly.
//!
//! - S and B: the bytes, with each 0x00 written as 0x00 0xFF, then the terminator 0x00 0x01.
//!   The terminator sorts below any continuation, so a prefix sorts first.
//! - N: a class byte (negative 0x01, zero 0x02, positive 0x03); zero ends there. Otherwise the
//!   exponent (of the `0.d1d2… × 10^e` form) as `e + 129` in one byte, the significant digits
//!   two per byte as `1 + 10·d1 + d2` (an odd last digit is paired with 0), and a 0x00
//!   terminator. For negative numbers every byte after the class byte is complemented, so
//!   larger magnitudes sort first.

use super::number::Number;
use super::value::AttributeValue;

/// The types a key attribute may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarType {
    /// String, ordered by UTF-8 bytes.
    S,
    /// Number, ordered numerically.
    N,
    /// Binary, ordered bytewise (unsigned).
    B,
}

impl ScalarType {
    /// DynamoDB's descriptor: `"S"`, `"N"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    /// Parses DynamoDB's descriptor.
    pub fn parse(text: &str) -> Option<ScalarType> {
        match text {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    /// The scalar type of a value, if it is S, N or B.
    pub fn of(value: &AttributeValue) -> Option<ScalarType> {
        match value {
            AttributeValue::S(_) => Some(ScalarType::S),
            AttributeValue::N(_) => Some(ScalarType::N),
            AttributeValue::B(_) => Some(ScalarType::B),
            _ => None,
        }
    }
}

/// A stored key could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt key encoding: {0}")]
pub struct KeyDecodeError(pub String);

/// Class bytes of encoded numbers: negatives, zero, positives, in that order.
const NUMBER_NEGATIVE: u8 = 0x01;
const NUMBER_ZERO: u8 = 0x02;
const NUMBER_POSITIVE: u8 = 0x03;
/// Added to a number's exponent (at least -129, at most 126) to store it in one byte.
const EXPONENT_BIAS: i32 = 129;
/// Ends the digit pairs of a positive number (complemented for a negative one).
const DIGITS_END: u8 = 0x00;
/// Largest digit-pair byte: `1 + 99`.
const DIGIT_PAIR_MAX: u8 = 100;
/// Escape and terminator of S and B: 0x00 is written 0x00 0xFF; the value ends with 0x00 0x01.
const BYTES_ESCAPE: u8 = 0x00;
const BYTES_ESCAPED_ZERO: u8 = 0xFF;
const BYTES_END: u8 = 0x01;

/// Appends the order-preserving encoding of a key value (S, N or B) to `out`.
///
/// For any two values `a`, `b` of the same scalar type, and any suffixes, the byte order of
/// `enc(a) ++ x` and `enc(b) ++ y` equals DynamoDB's order of `a` and `b` whenever `a != b`.
/// Values of other types are a caller bug and panic.
pub fn encode_key_value(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::S(text) => encode_bytes(out, text.as_bytes()),
        AttributeValue::B(bytes) => encode_bytes(out, bytes),
        AttributeValue::N(number) => encode_number(out, number),
        other => panic!("{} is not a key attribute type", other.type_name()),
    }
}

/// Appends the encoding of a string or binary *prefix*: the encoding without its terminator.
/// Every value that starts with `prefix` has an encoding that starts with these bytes, so
/// `begins_with` on a sort key is one byte-range scan. A number has no prefixes and is encoded
/// whole.
pub fn encode_key_prefix(out: &mut Vec<u8>, value: &AttributeValue) {
    let start = out.len();
    match value {
        AttributeValue::S(_) | AttributeValue::B(_) => {
            encode_key_value(out, value);
            debug_assert_eq!(&out[out.len() - 2..], &[BYTES_ESCAPE, BYTES_END]);
            out.truncate(out.len() - 2);
        }
        _ => encode_key_value(out, value),
    }
    debug_assert!(out.len() >= start);
}

/// Reads one encoded key value of type `kind` from the front of `input`, advancing it.
pub fn decode_key_value(input: &mut &[u8], kind: ScalarType) -> Result<AttributeValue, KeyDecodeError> {
    match kind {
        ScalarType::S => {
            let mut rest = *input;
            let text = String::from_utf8(decode_bytes(&mut rest)?)
                .map_err(|_| KeyDecodeError("string key is not UTF-8".to_string()))?;
            *input = rest;
            Ok(AttributeValue::S(text))
        }
        ScalarType::B => decode_bytes(input).map(AttributeValue::B),
        ScalarType::N => decode_number(input).map(AttributeValue::N),
    }
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    for &byte in bytes {
        out.push(byte);
        if byte == BYTES_ESCAPE {
            out.push(BYTES_ESCAPED_ZERO);
        }
    }
    out.push(BYTES_ESCAPE);
    out.push(BYTES_END);
}

fn decode_bytes(input: &mut &[u8]) -> Result<Vec<u8>, KeyDecodeError> {
    let mut bytes = Vec::new();
    let mut rest = *input;
    loop {
        let Some((&byte, after)) = rest.split_first() else {
            return Err(KeyDecodeError("unterminated string or binary key".to_string()));
        };
        rest = after;
        if byte != BYTES_ESCAPE {
            bytes.push(byte);
            continue;
        }
        match rest.split_first() {
            Some((&BYTES_ESCAPED_ZERO, after)) => {
                bytes.push(0);
                rest = after;
            }
            Some((&BYTES_END, after)) => {
                *input = after;
                return Ok(bytes);
            }
            Some((&other, _)) => {
                return Err(KeyDecodeError(format!("invalid escape 0x00 0x{other:02x} in key")));
            }
            None => return Err(KeyDecodeError("unterminated string or binary key".to_string())),
        }
    }
}

fn encode_number(out: &mut Vec<u8>, number: &Number) {
    let (negative, digits, exponent) = number.parts();
    if digits.is_empty() {
        out.push(NUMBER_ZERO);
        return;
    }
    // Complementing every byte after the class byte reverses the order for negatives.
    let mask = if negative { 0xFF } else { 0x00 };
    out.push(if negative { NUMBER_NEGATIVE } else { NUMBER_POSITIVE });
    let biased = u8::try_from(exponent + EXPONENT_BIAS).expect("number exponents fit one byte");
    out.push(biased ^ mask);
    for pair in digits.chunks(2) {
        let low = pair.get(1).copied().unwrap_or(0);
        out.push((1 + 10 * pair[0] + low) ^ mask);
    }
    out.push(DIGITS_END ^ mask);
}

fn decode_number(input: &mut &[u8]) -> Result<Number, KeyDecodeError> {
    let start = *input;
    let truncated = || KeyDecodeError("truncated number key".to_string());
    let (&class, mut rest) = start.split_first().ok_or_else(truncated)?;
    let mask = match class {
        NUMBER_ZERO => {
            *input = rest;
            return Ok(Number::zero());
        }
        NUMBER_NEGATIVE => 0xFF,
        NUMBER_POSITIVE => 0x00,
        other => return Err(KeyDecodeError(format!("invalid number class 0x{other:02x}"))),
    };
    let (&biased, after) = rest.split_first().ok_or_else(truncated)?;
    rest = after;
    let exponent = i32::from(biased ^ mask) - EXPONENT_BIAS;
    let mut digits = Vec::new();
    loop {
        let (&byte, after) = rest.split_first().ok_or_else(truncated)?;
        rest = after;
        let pair = byte ^ mask;
        if pair == DIGITS_END {
            break;
        }
        if pair > DIGIT_PAIR_MAX {
            return Err(KeyDecodeError(format!("invalid digit pair 0x{byte:02x} in number key")));
        }
        if digits.len() >= super::number::SIGNIFICANT_DIGITS_MAX {
            return Err(KeyDecodeError("too many digits in number key".to_string()));
        }
        digits.push((pair - 1) / 10);
        digits.push((pair - 1) % 10);
    }
    let number = Number::from_parts(mask != 0, digits, exponent)
        .map_err(|e| KeyDecodeError(format!("invalid number key: {e}")))?;
    // Only the canonical encoding is accepted, so that decoding and order agree.
    let consumed = &start[..start.len() - rest.len()];
    let mut canonical = Vec::with_capacity(consumed.len());
    encode_number(&mut canonical, &number);
    if canonical != consumed {
        return Err(KeyDecodeError("non-canonical number key".to_string()));
    }
    *input = rest;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &AttributeValue) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(&mut out, value);
        out
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    fn round_trip(value: AttributeValue, kind: ScalarType) {
        let mut bytes = encoded(&value);
        bytes.extend_from_slice(b"\x00tail");
        let mut input = &bytes[..];
        assert_eq!(decode_key_value(&mut input, kind), Ok(value));
        assert_eq!(input, b"\x00tail");
    }

    #[test]
    fn strings_escape_zero_bytes_and_terminate() {
        assert_eq!(encoded(&AttributeValue::S("ab".into())), b"ab\x00\x01");
        assert_eq!(encoded(&AttributeValue::S(String::new())), b"\x00\x01");
        assert_eq!(encoded(&AttributeValue::B(vec![0, 1])), b"\x00\xff\x01\x00\x01");
        for text in ["", "a", "a\0b", "\0", "\0\0", "héllo", "\u{10FFFF}"] {
            round_trip(AttributeValue::S(text.into()), ScalarType::S);
        }
        for bytes in [vec![], vec![0], vec![0xFF, 0, 1], vec![0, 0xFF]] {
            round_trip(AttributeValue::B(bytes), ScalarType::B);
        }
    }

    #[test]
    fn numbers_encode_compactly() {
        assert_eq!(encoded(&n("0")), [NUMBER_ZERO]);
        // 12.3 = 0.123 × 10^2: exponent 2 + 129, pairs "12" and "3_".
        assert_eq!(encoded(&n("12.3")), [NUMBER_POSITIVE, 131, 13, 31, 0]);
        assert_eq!(encoded(&n("-12.3")), [NUMBER_NEGATIVE, !131, !13, !31, 0xFF]);
        for text in ["0", "1", "-1", "12.3", "-0.001", "1e-130", "-1e-130", "9.99e125", "1234567890"] {
            round_trip(n(text), ScalarType::N);
        }
        let max = format!("-9.{}E+125", "9".repeat(37));
        round_trip(n(&max), ScalarType::N);
    }

    #[test]
    fn order_matches_values_with_suffixes() {
        let numbers = [
            "-1e125", "-100", "-12.5", "-12", "-1", "-0.5", "-1e-130", "0", "1e-130", "0.5", "1", "1.01", "1.1", "12",
            "100", "1e125",
        ];
        let strings = ["", "\0", "\0\0", "\0a", "a", "a\0", "a\0\0", "ab", "b", "é"];
        let check = |values: Vec<AttributeValue>| {
            for (i, a) in values.iter().enumerate() {
                for (j, b) in values.iter().enumerate() {
                    for (x, y) in [(&b""[..], &b""[..]), (b"\xff\xff", b""), (b"", b"\xff"), (b"\x00", b"\xff")] {
                        let mut ea = encoded(a);
                        ea.extend_from_slice(x);
                        let mut eb = encoded(b);
                        eb.extend_from_slice(y);
                        if i != j {
                            assert_eq!(ea.cmp(&eb), i.cmp(&j), "{a:?} vs {b:?}");
                        }
                    }
                }
            }
        };
        check(numbers.iter().map(|t| n(t)).collect());
        check(strings.iter().map(|t| AttributeValue::S(t.to_string())).collect());
        check(strings.iter().map(|t| AttributeValue::B(t.as_bytes().to_vec())).collect());
    }

    #[test]
    fn corrupt_keys_are_errors() {
        let cases: [(&[u8], ScalarType); 12] = [
            (b"", ScalarType::S),
            (b"abc", ScalarType::S),
            (b"a\x00", ScalarType::S),
            (b"a\x00\x02", ScalarType::B),
            (b"\xff\xfe\x00\x01", ScalarType::S),
            (b"", ScalarType::N),
            (b"\x04", ScalarType::N),
            (b"\x03", ScalarType::N),
            (b"\x03\x83\x0d", ScalarType::N),
            (b"\x03\x83\x65\x00", ScalarType::N),
            // Leading zero digit: not canonical.
            (b"\x03\x83\x02\x00", ScalarType::N),
            // No digits at all.
            (b"\x03\x83\x00", ScalarType::N),
        ];
        for (bytes, kind) in cases {
            let mut input = bytes;
            assert!(decode_key_value(&mut input, kind).is_err(), "{bytes:?}");
            assert_eq!(input, bytes, "input is not advanced on error");
        }
        // Trailing zero digits are not canonical either.
        let mut input: &[u8] = &[NUMBER_POSITIVE, 130, 11, 1, 0];
        assert!(decode_key_value(&mut input, ScalarType::N).is_err());
        // More than 38 digits.
        let mut long = vec![NUMBER_POSITIVE, 130];
        long.extend(std::iter::repeat_n(12u8, 20));
        long.push(0);
        let mut input = &long[..];
        assert!(decode_key_value(&mut input, ScalarType::N).is_err());
    }

    #[test]
    #[should_panic(expected = "BOOL is not a key attribute type")]
    fn non_scalar_values_are_a_caller_bug() {
        encoded(&AttributeValue::Bool(true));
    }
}
