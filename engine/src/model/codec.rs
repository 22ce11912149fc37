//! Compact binary encoding of items for storage, with a checksum checked on every decode.
//!
//! Layout: one format-version byte, the CRC32 of the payload (4 bytes, little-endian), then the
//! payload: the attribute count and, per attribute in name order, the name and the value.
//! Lengths and counts are LEB128 varints. A value is a tag byte followed by:
//!
//! | tag | type | body |
//! |-----|------|------|
//! | 1 | S | length, UTF-8 bytes |
//! | 2 | N | number (below) |
//! | 3 | B | length, bytes |
//! | 4, 5 | BOOL false, true | nothing |
//! | 6 | NULL | nothing |
//! | 7 | M | count, then name and value per entry |
//! | 8 | L | count, then values |
//! | 9, 10, 11 | SS, NS, BS | count, then elements without tags |
//!
//! A number is a sign byte (0 or 1), its exponent (`0.d1d2… × 10^e`) as a zigzag varint, its
//! digit count, then the digits two per byte (high nibble first). Decoding accepts only the
//! canonical form, checks every length against the bytes that remain before allocating, and
//! refuses nesting deeper than DynamoDB allows, so arbitrary input never panics.

use std::collections::{BTreeMap, BTreeSet};

use super::number::{Number, SIGNIFICANT_DIGITS_MAX};
use super::value::{AttributeValue, Item, NESTING_LEVELS_MAX};

/// A stored item could not be decoded (truncated, corrupted or of an unknown version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt item encoding: {0}")]
pub struct ItemDecodeError(pub String);

/// The format written by [`encode_item`].
pub const ITEM_FORMAT_VERSION: u8 = 1;
/// Version byte plus checksum.
const HEADER_BYTES: usize = 5;

const TAG_S: u8 = 1;
const TAG_N: u8 = 2;
const TAG_B: u8 = 3;
const TAG_FALSE: u8 = 4;
const TAG_TRUE: u8 = 5;
const TAG_NULL: u8 = 6;
const TAG_M: u8 = 7;
const TAG_L: u8 = 8;
const TAG_SS: u8 = 9;
const TAG_NS: u8 = 10;
const TAG_BS: u8 = 11;

/// Encodes an item, checksum included.
pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = vec![ITEM_FORMAT_VERSION, 0, 0, 0, 0];
    write_map(&mut out, item);
    let checksum = crc32fast::hash(&out[HEADER_BYTES..]);
    out[1..HEADER_BYTES].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(decode_item(&out).as_ref(), Ok(item), "an encoded item decodes to itself");
    out
}

/// Decodes an item written by [`encode_item`], verifying its checksum.
pub fn decode_item(bytes: &[u8]) -> Result<Item, ItemDecodeError> {
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt(format!("{} bytes is shorter than the header", bytes.len())));
    }
    if bytes[0] != ITEM_FORMAT_VERSION {
        return Err(corrupt(format!("unknown format version {}", bytes[0])));
    }
    let stored = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let payload = &bytes[HEADER_BYTES..];
    let computed = crc32fast::hash(payload);
    if stored != computed && !crate::planted::active(crate::planted::Bug::IgnoreChecksums) {
        return Err(corrupt(format!("checksum {stored:08x} does not match {computed:08x}")));
    }
    let mut reader = Reader { rest: payload };
    let item = reader.map(0)?;
    if !reader.rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the item", reader.rest.len())));
    }
    Ok(item)
}

fn corrupt(message: String) -> ItemDecodeError {
    ItemDecodeError(message)
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    write_varint(out, len as u64);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn write_map(out: &mut Vec<u8>, map: &BTreeMap<String, AttributeValue>) {
    write_len(out, map.len());
    for (name, value) in map {
        write_bytes(out, name.as_bytes());
        write_value(out, value);
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    let (negative, digits, exponent) = number.parts();
    out.push(u8::from(negative));
    // Zigzag, so that small negative exponents stay one byte.
    let exponent = i64::from(exponent);
    write_varint(out, ((exponent << 1) ^ (exponent >> 63)) as u64);
    write_len(out, digits.len());
    for pair in digits.chunks(2) {
        out.push((pair[0] << 4) | pair.get(1).copied().unwrap_or(0));
    }
}

fn write_value(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::S(text) => {
            out.push(TAG_S);
            write_bytes(out, text.as_bytes());
        }
        AttributeValue::N(number) => {
            out.push(TAG_N);
            write_number(out, number);
        }
        AttributeValue::B(bytes) => {
            out.push(TAG_B);
            write_bytes(out, bytes);
        }
        AttributeValue::Bool(flag) => out.push(if *flag { TAG_TRUE } else { TAG_FALSE }),
        AttributeValue::Null => out.push(TAG_NULL),
        AttributeValue::M(map) => {
            out.push(TAG_M);
            write_map(out, map);
        }
        AttributeValue::L(list) => {
            out.push(TAG_L);
            write_len(out, list.len());
            for element in list {
                write_value(out, element);
            }
        }
        AttributeValue::Ss(set) => {
            out.push(TAG_SS);
            write_len(out, set.len());
            for text in set {
                write_bytes(out, text.as_bytes());
            }
        }
        AttributeValue::Ns(set) => {
            out.push(TAG_NS);
            write_len(out, set.len());
            for number in set {
                write_number(out, number);
            }
        }
        AttributeValue::Bs(set) => {
            out.push(TAG_BS);
            write_len(out, set.len());
            for bytes in set {
                write_bytes(out, bytes);
            }
        }
    }
}

/// Reads the payload front to back; every read checks the bytes that remain.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, ItemDecodeError> {
        let (&byte, rest) = self.rest.split_first().ok_or_else(|| corrupt("truncated".into()))?;
        self.rest = rest;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, ItemDecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflows 64 bits".into()));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                // A zero last byte after others adds nothing: one value, one encoding, so a
                // decoded item encodes back to the same bytes (and checksum).
                if byte == 0 && shift > 0 {
                    return Err(corrupt("varint not in its shortest form".into()));
                }
                return Ok(value);
            }
        }
        Err(corrupt("varint longer than 10 bytes".into()))
    }

    /// A length or count, refused when larger than the bytes that remain (each byte, element or
    /// entry takes at least one byte), which bounds every allocation by the input size.
    fn len(&mut self) -> Result<usize, ItemDecodeError> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(len) if len <= self.rest.len() => Ok(len),
            _ => Err(corrupt(format!("length {len} exceeds the {} bytes left", self.rest.len()))),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], ItemDecodeError> {
        let len = self.len()?;
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<String, ItemDecodeError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("string is not UTF-8".into()))
    }

    fn number(&mut self) -> Result<Number, ItemDecodeError> {
        let negative = match self.byte()? {
            0 => false,
            1 => true,
            other => return Err(corrupt(format!("invalid number sign {other}"))),
        };
        let zigzag = self.varint()?;
        let exponent = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        let exponent =
            i32::try_from(exponent).map_err(|_| corrupt(format!("number exponent {exponent} out of range")))?;
        // A digit count, not a byte count: two digits share a byte, so `len` does not apply.
        let count = self.varint()?;
        let count = match usize::try_from(count) {
            Ok(count) if count <= SIGNIFICANT_DIGITS_MAX => count,
            _ => return Err(corrupt(format!("{count} digits in a number"))),
        };
        let mut digits = Vec::with_capacity(count);
        for _ in 0..count.div_ceil(2) {
            let pair = self.byte()?;
            digits.push(pair >> 4);
            digits.push(pair & 0x0F);
        }
        if digits.len() > count && digits.pop() != Some(0) {
            return Err(corrupt("number padding is not zero".into()));
        }
        let number = Number::from_parts(negative, digits.clone(), exponent)
            .map_err(|e| corrupt(format!("invalid number: {e}")))?;
        if number.parts() != (negative, &digits[..], exponent) {
            return Err(corrupt("number is not in canonical form".into()));
        }
        Ok(number)
    }

    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, AttributeValue>, ItemDecodeError> {
        let count = self.len()?;
        let mut map = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let name = self.string()?;
            if previous.as_ref().is_some_and(|p| *p >= name) {
                return Err(corrupt("map names out of order".into()));
            }
            let value = self.value(depth + 1)?;
            previous = Some(name.clone());
            map.insert(name, value);
        }
        Ok(map)
    }

    /// A value at nesting `depth` (1 for an item's attribute).
    fn value(&mut self, depth: usize) -> Result<AttributeValue, ItemDecodeError> {
        if depth > NESTING_LEVELS_MAX {
            return Err(corrupt("values nested too deep".into()));
        }
        let tag = self.byte()?;
        let value = match tag {
            TAG_S => AttributeValue::S(self.string()?),
            TAG_N => AttributeValue::N(self.number()?),
            TAG_B => AttributeValue::B(self.bytes()?.to_vec()),
            TAG_FALSE => AttributeValue::Bool(false),
            TAG_TRUE => AttributeValue::Bool(true),
            TAG_NULL => AttributeValue::Null,
            TAG_M => AttributeValue::M(self.map(depth)?),
            TAG_L => {
                let count = self.len()?;
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    list.push(self.value(depth + 1)?);
                }
                AttributeValue::L(list)
            }
            TAG_SS => AttributeValue::Ss(self.set(Self::string)?),
            TAG_NS => AttributeValue::Ns(self.set(Self::number)?),
            TAG_BS => AttributeValue::Bs(self.set(|r| Ok(r.bytes()?.to_vec()))?),
            other => return Err(corrupt(format!("unknown value tag {other}"))),
        };
        Ok(value)
    }

    /// A non-empty set written in ascending order without duplicates.
    fn set<T: Ord>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T, ItemDecodeError>,
    ) -> Result<BTreeSet<T>, ItemDecodeError> {
        let count = self.len()?;
        if count == 0 {
            return Err(corrupt("empty set".into()));
        }
        let mut set = BTreeSet::new();
        for _ in 0..count {
            let next = element(self)?;
            if set.last().is_some_and(|last| *last >= next) {
                return Err(corrupt("set elements out of order".into()));
            }
            set.insert(next);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::value::item_from_json;

    fn sample() -> Item {
        item_from_json(&json!({
            "pk": {"S": "user#1"},
            "sk": {"N": "-12.5"},
            "zero": {"N": "0"},
            "big": {"N": "9.9999999999999999999999999999999999999E+125"},
            "tiny": {"N": "1E-130"},
            "bin": {"B": "AAEC"},
            "empty": {"S": ""},
            "flag": {"BOOL": true},
            "off": {"BOOL": false},
            "nothing": {"NULL": true},
            "doc": {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}, {"M": {}}]}, "b": {"L": []}}},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "-2.5", "1e100"]},
            "bs": {"BS": ["AA==", "AQ=="]},
        }))
        .unwrap()
    }

    #[test]
    fn items_round_trip() {
        let item = sample();
        assert_eq!(decode_item(&encode_item(&item)), Ok(item));
        assert_eq!(decode_item(&encode_item(&Item::new())), Ok(Item::new()));
    }

    #[test]
    fn a_varint_longer_than_it_needs_is_refused() {
        // Found by the mutation property: 0x82 0x00 read as 2, as 0x02 does, so a decoded item
        // encoded back to other bytes. An empty item's body is its attribute count, 0.
        let frame = |body: &[u8]| {
            let mut bytes = vec![ITEM_FORMAT_VERSION];
            bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            bytes.extend_from_slice(body);
            bytes
        };
        assert_eq!(decode_item(&frame(&[0x00])), Ok(Item::new()));
        assert!(decode_item(&frame(&[0x80, 0x00])).is_err());
        assert!(decode_item(&frame(&[0xff, 0x80, 0x00])).is_err());
    }

    #[test]
    fn long_number_last_round_trips() {
        // Found by the round-trip property: 30 digits take 15 bytes, and the digit count was
        // once checked against the bytes left as if it were a byte count.
        let item = item_from_json(&json!({"a": {"N": "559149782559714218011390973224"}})).unwrap();
        assert_eq!(decode_item(&encode_item(&item)), Ok(item));
    }

    #[test]
    fn header_is_version_and_checksum() {
        let bytes = encode_item(&sample());
        assert_eq!(bytes[0], ITEM_FORMAT_VERSION);
        let checksum = crc32fast::hash(&bytes[5..]);
        assert_eq!(bytes[1..5], checksum.to_le_bytes());
    }

    #[test]
    fn corruption_is_detected() {
        let bytes = encode_item(&sample());
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(decode_item(&flipped).is_err(), "flip at {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode_item(&bytes[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_item(&longer).is_err());
    }

    /// Builds a payload with a valid header, to reach the checks behind the checksum.
    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![ITEM_FORMAT_VERSION];
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn structurally_invalid_payloads_are_refused() {
        let cases: &[&[u8]] = &[
            // Huge attribute count.
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            // Varint longer than 10 bytes.
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            // One attribute "a" with a string of huge length.
            &[1, 1, b'a', TAG_S, 0xFF, 0xFF, 0xFF, 0x7F],
            // Unknown tag.
            &[1, 1, b'a', 99],
            // Name not UTF-8.
            &[1, 1, 0xFF, TAG_NULL],
            // Names out of order.
            &[2, 1, b'b', TAG_NULL, 1, b'a', TAG_NULL],
            // Duplicate names.
            &[2, 1, b'a', TAG_NULL, 1, b'a', TAG_NULL],
            // Empty set.
            &[1, 1, b'a', TAG_SS, 0],
            // Set out of order.
            &[1, 1, b'a', TAG_SS, 2, 1, b'b', 1, b'a'],
            // Number with a bad sign, leading zero digit, trailing zero digit, digit above 9.
            &[1, 1, b'a', TAG_N, 2, 2, 1, 0x10],
            &[1, 1, b'a', TAG_N, 0, 2, 2, 0x01],
            &[1, 1, b'a', TAG_N, 0, 2, 2, 0x10],
            &[1, 1, b'a', TAG_N, 0, 2, 1, 0xA0],
            // Odd digit count with non-zero padding.
            &[1, 1, b'a', TAG_N, 0, 2, 1, 0x11],
            // Exponent out of range.
            &[1, 1, b'a', TAG_N, 0, 0xFE, 0x03, 1, 0x10],
            // Negative zero, zero with an exponent.
            &[1, 1, b'a', TAG_N, 1, 0, 0],
            &[1, 1, b'a', TAG_N, 0, 2, 0],
            // Trailing bytes.
            &[0, 0],
        ];
        for payload in cases {
            assert!(decode_item(&framed(payload)).is_err(), "{payload:?}");
        }
        // The same framing accepts a valid payload.
        assert!(decode_item(&framed(&[1, 1, b'a', TAG_N, 0, 2, 1, 0x10])).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        // 10 000 nested lists: refused without deep recursion.
        let mut payload = vec![1, 1, b'a'];
        for _ in 0..10_000 {
            payload.extend_from_slice(&[TAG_L, 1]);
        }
        payload.push(TAG_NULL);
        assert!(decode_item(&framed(&payload)).is_err());
    }
}
