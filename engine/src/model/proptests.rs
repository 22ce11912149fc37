//! Property tests for the data model: numbers against independent oracles, the key encoding's
//! order, and the codecs' round trips and robustness.

use std::cmp::Ordering;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use super::codec::{decode_item, encode_item};
use super::key::{decode_key_value, encode_key_value, ScalarType};
use super::number::Number;
use super::value::{item_from_json, item_to_json, AttributeValue, Item};

/// Raw parts `(negative, digits, exponent)` of `±0.d1d2… × 10^exponent`, possibly with leading
/// or trailing zeros, that make a number in range.
fn number_parts() -> impl Strategy<Value = (bool, Vec<u8>, i32, Number)> {
    (any::<bool>(), vec(0u8..=9, 1..=38), -129i32..=126).prop_filter_map(
        "out of range",
        |(negative, digits, exponent)| {
            let number = Number::from_parts(negative, digits.clone(), exponent).ok()?;
            Some((negative, digits, exponent, number))
        },
    )
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        1 => Just(Number::zero()),
        2 => any::<i64>().prop_map(Number::from_i64),
        // Few digits over a narrow exponent range makes equal and close values common.
        3 => (any::<bool>(), vec(0u8..=9, 1..=3), -3i32..=3)
            .prop_filter_map("zero", |(n, d, e)| Number::from_parts(n, d, e).ok()),
        4 => number_parts().prop_map(|(_, _, _, number)| number),
    ]
}

/// Independent oracle: the value as (sign, decimal integer text) scaled by 10^-scale.
fn scaled(negative: bool, digits: &[u8], exponent: i32, scale: i64) -> (i8, String) {
    // digits × 10^(exponent - len) = integer × 10^scale, with scale at most exponent - len.
    let zeros = i64::from(exponent) - digits.len() as i64 - scale;
    assert!(zeros >= 0);
    let mut text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    text.extend(std::iter::repeat_n('0', zeros as usize));
    let text = text.trim_start_matches('0').to_string();
    let sign = if text.is_empty() {
        0
    } else if negative {
        -1
    } else {
        1
    };
    (sign, text)
}

fn oracle_cmp(a: (bool, &[u8], i32), b: (bool, &[u8], i32)) -> Ordering {
    let scale = (i64::from(a.2) - a.1.len() as i64).min(i64::from(b.2) - b.1.len() as i64);
    let (sign_a, text_a) = scaled(a.0, a.1, a.2, scale);
    let (sign_b, text_b) = scaled(b.0, b.1, b.2, scale);
    let magnitude = text_a.len().cmp(&text_b.len()).then_with(|| text_a.cmp(&text_b));
    sign_a.cmp(&sign_b).then(if sign_a < 0 { magnitude.reverse() } else { magnitude })
}

fn key_bytes(value: &AttributeValue, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_value(&mut out, value);
    out.extend_from_slice(suffix);
    out
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        ".{0,8}".prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        vec(any::<u8>(), 0..8).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        btree_set(".{0,6}", 1..4).prop_map(AttributeValue::Ss),
        btree_set(number(), 1..4).prop_map(AttributeValue::Ns),
        btree_set(vec(any::<u8>(), 0..6), 1..4).prop_map(AttributeValue::Bs),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            btree_map(".{0,6}", inner.clone(), 0..4).prop_map(AttributeValue::M),
            vec(inner, 0..4).prop_map(AttributeValue::L),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    btree_map(".{1,8}", attribute_value(), 0..6)
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(number in number()) {
        let text = number.to_string();
        prop_assert!(!text.contains(['e', 'E']));
        prop_assert_eq!(Number::parse(&text), Ok(number));
    }

    #[test]
    fn parse_then_display_is_stable(
        text in "[+-]?[0-9]{0,12}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?",
    ) {
        if let Ok(number) = Number::parse(&text) {
            let shown = number.to_string();
            prop_assert_eq!(Number::parse(&shown), Ok(number.clone()));
            prop_assert_eq!(shown, Number::parse(&number.to_string()).unwrap().to_string());
        }
    }

    #[test]
    fn order_agrees_with_scaled_oracle(a in number_parts(), b in number_parts()) {
        let expected = oracle_cmp((a.0, &a.1, a.2), (b.0, &b.1, b.2));
        prop_assert_eq!(a.3.cmp(&b.3), expected);
        prop_assert_eq!(a.3 == b.3, expected == Ordering::Equal);
    }

    #[test]
    fn order_agrees_with_integers(a in any::<i64>(), b in any::<i64>()) {
        prop_assert_eq!(Number::from_i64(a).cmp(&Number::from_i64(b)), a.cmp(&b));
        let parsed = Number::parse(&a.to_string()).unwrap();
        prop_assert_eq!(parsed.to_i64(), Some(a));
    }

    #[test]
    fn integer_arithmetic_agrees_with_i128(a in any::<i64>(), b in any::<i64>()) {
        let (x, y) = (Number::from_i64(a), Number::from_i64(b));
        let sum = x.checked_add(&y).unwrap();
        prop_assert_eq!(sum.to_string(), (i128::from(a) + i128::from(b)).to_string());
        let difference = x.checked_sub(&y).unwrap();
        prop_assert_eq!(difference.to_string(), (i128::from(a) - i128::from(b)).to_string());
    }

    #[test]
    fn decimal_arithmetic_is_consistent(a in number(), b in number()) {
        let sum = a.checked_add(&b);
        prop_assert_eq!(&sum, &b.checked_add(&a));
        if let Ok(sum) = sum {
            // Undoing the addition is exact when it is representable.
            if let Ok(back) = sum.checked_sub(&b) {
                prop_assert_eq!(back, a.clone());
            }
            prop_assert_eq!(sum.cmp(&a), b.cmp(&Number::zero()));
        }
        if let Ok(difference) = a.checked_sub(&b) {
            prop_assert_eq!(difference.cmp(&Number::zero()), a.cmp(&b));
        }
    }

    #[test]
    fn number_keys_sort_numerically(
        a in number(), b in number(),
        x in vec(any::<u8>(), 0..4), y in vec(any::<u8>(), 0..4),
    ) {
        let (va, vb) = (AttributeValue::N(a.clone()), AttributeValue::N(b.clone()));
        if a != b {
            prop_assert_eq!(key_bytes(&va, &x).cmp(&key_bytes(&vb, &y)), a.cmp(&b));
        } else {
            prop_assert_eq!(key_bytes(&va, &[]), key_bytes(&vb, &[]));
        }
    }

    #[test]
    fn string_keys_sort_by_bytes(
        a in "[a\\x00\\x01é]{0,6}", b in "[a\\x00\\x01é]{0,6}",
        x in vec(any::<u8>(), 0..4), y in vec(any::<u8>(), 0..4),
    ) {
        if a != b {
            let (va, vb) = (AttributeValue::S(a.clone()), AttributeValue::S(b.clone()));
            prop_assert_eq!(key_bytes(&va, &x).cmp(&key_bytes(&vb, &y)), a.as_bytes().cmp(b.as_bytes()));
        }
    }

    #[test]
    fn binary_keys_sort_by_bytes(
        a in vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
        b in vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
        x in vec(any::<u8>(), 0..4), y in vec(any::<u8>(), 0..4),
    ) {
        if a != b {
            let (va, vb) = (AttributeValue::B(a.clone()), AttributeValue::B(b.clone()));
            prop_assert_eq!(key_bytes(&va, &x).cmp(&key_bytes(&vb, &y)), a.cmp(&b));
        }
    }

    #[test]
    fn keys_decode_to_what_was_encoded(
        value in prop_oneof![
            number().prop_map(AttributeValue::N),
            ".{0,8}".prop_map(AttributeValue::S),
            vec(any::<u8>(), 0..8).prop_map(AttributeValue::B),
        ],
        suffix in vec(any::<u8>(), 0..4),
    ) {
        let kind = ScalarType::of(&value).unwrap();
        let bytes = key_bytes(&value, &suffix);
        let mut input = &bytes[..];
        prop_assert_eq!(decode_key_value(&mut input, kind), Ok(value));
        prop_assert_eq!(input, &suffix[..]);
    }

    #[test]
    fn key_decode_never_panics(bytes in vec(any::<u8>(), 0..24)) {
        for kind in [ScalarType::S, ScalarType::N, ScalarType::B] {
            let mut input = &bytes[..];
            if let Ok(value) = decode_key_value(&mut input, kind) {
                // Whatever decodes re-encodes to the bytes it was read from.
                let consumed = &bytes[..bytes.len() - input.len()];
                prop_assert_eq!(key_bytes(&value, &[]), consumed);
            }
        }
    }

    #[test]
    fn items_round_trip_through_the_codec(item in item()) {
        prop_assert_eq!(decode_item(&encode_item(&item)), Ok(item));
    }

    #[test]
    fn items_round_trip_through_json(item in item()) {
        prop_assert_eq!(item_from_json(&item_to_json(&item)), Ok(item));
    }

    #[test]
    fn item_decode_never_panics(bytes in vec(any::<u8>(), 0..64)) {
        let _ = decode_item(&bytes);
        // With a valid header the checks behind the checksum are reached too.
        let mut framed = vec![1];
        framed.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        framed.extend_from_slice(&bytes);
        if let Ok(item) = decode_item(&framed) {
            prop_assert_eq!(encode_item(&item), framed);
        }
    }

    #[test]
    fn mutated_items_never_panic(item in item(), position in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = encode_item(&item);
        let position = 5 + position % (bytes.len() - 4);
        if position < bytes.len() {
            bytes[position] = byte;
        } else {
            bytes.push(byte);
        }
        let checksum = crc32fast::hash(&bytes[5..]);
        bytes[1..5].copy_from_slice(&checksum.to_le_bytes());
        if let Ok(decoded) = decode_item(&bytes) {
            prop_assert_eq!(encode_item(&decoded), bytes);
        }
    }
}
