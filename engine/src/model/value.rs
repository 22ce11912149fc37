//! Attribute values and items, and their DynamoDB JSON wire form.

use std::collections::{BTreeMap, BTreeSet};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::Value as Json;

use super::number::Number;

/// Deepest level an attribute value may sit at: an item's attribute is level 1 and every map or
/// list adds one level for its elements, so at most 31 containers may wrap a value.
pub const NESTING_LEVELS_MAX: usize = 32;

/// Binary values on the wire: standard base64, written with padding. Reading accepts missing
/// padding and non-zero trailing bits, as DynamoDB's Java decoder does.
const BASE64_WRITE: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new());
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Messages DynamoDB gives for attribute values it refuses.
mod message {
    pub const EMPTY: &str = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
    pub const MANY_TYPES: &str = "Supplied AttributeValue has more than one datatypes set, must \
                                  contain exactly one of the supported datatypes";
    pub const NULL_NOT_TRUE: &str = "One or more parameter values were invalid: Null attribute \
                                     value types must have the value of true";
    pub const EMPTY_SS: &str = "One or more parameter values were invalid: An string set  may not be empty";
    pub const EMPTY_NS: &str = "One or more parameter values were invalid: An number set  may not be empty";
    pub const EMPTY_BS: &str = "One or more parameter values were invalid: Binary sets should not be empty";
    pub const NS_DUPLICATES: &str = "Input collection contains duplicates";
    pub const NESTING: &str = "Nesting Levels have exceeded supported limits: Attributes in the \
                               item have nested levels beyond supported limit";
}

/// An item: attribute names to values, kept sorted so that encodings and outputs are
/// deterministic.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Sets are kept sorted and free of duplicates, so that set equality is plain equality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// `S`: a UTF-8 string.
    S(String),
    /// `N`: an exact decimal number.
    N(Number),
    /// `B`: binary data (base64 on the wire).
    B(Vec<u8>),
    /// `BOOL`.
    Bool(bool),
    /// `NULL` (always `true` on the wire).
    Null,
    /// `M`: a map of attribute names to values.
    M(BTreeMap<String, AttributeValue>),
    /// `L`: a list of values.
    L(Vec<AttributeValue>),
    /// `SS`: a non-empty set of strings.
    Ss(BTreeSet<String>),
    /// `NS`: a non-empty set of numbers.
    Ns(BTreeSet<Number>),
    /// `BS`: a non-empty set of binaries.
    Bs(BTreeSet<Vec<u8>>),
}

/// Why a JSON value is not a valid attribute value. The two kinds map to DynamoDB's
/// `SerializationException` (wrong JSON shape) and `ValidationException` (valid shape, invalid
/// value); the message is DynamoDB's own text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The JSON does not have the shape of an attribute value (for example `{"S": 5}`).
    #[error("{0}")]
    Serialization(String),
    /// The shape is right but DynamoDB refuses the value (empty set, bad number, …).
    #[error("{0}")]
    Validation(String),
}

impl AttributeValue {
    /// DynamoDB's type descriptor: `"S"`, `"N"`, `"B"`, `"BOOL"`, `"NULL"`, `"M"`, `"L"`, `"SS"`,
    /// `"NS"` or `"BS"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// Decodes one attribute value from DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, …).
    ///
    /// Errors of shape are reported before invalid values anywhere in the document, as DynamoDB
    /// deserialises a whole request before validating it. Members with unknown names and
    /// members set to JSON `null` are ignored, as the AWS JSON protocol does.
    pub fn from_json(json: &serde_json::Value) -> Result<AttributeValue, ValueError> {
        check_shape(json, 1)?;
        convert(json, 1)
    }

    /// Encodes the value as DynamoDB JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let (name, body) = match self {
            AttributeValue::S(text) => ("S", Json::String(text.clone())),
            AttributeValue::N(number) => ("N", Json::String(number.to_string())),
            AttributeValue::B(bytes) => ("B", Json::String(BASE64_WRITE.encode(bytes))),
            AttributeValue::Bool(flag) => ("BOOL", Json::Bool(*flag)),
            AttributeValue::Null => ("NULL", Json::Bool(true)),
            AttributeValue::M(map) => ("M", item_to_json(map)),
            AttributeValue::L(list) => ("L", Json::Array(list.iter().map(Self::to_json).collect())),
            AttributeValue::Ss(set) => ("SS", Json::Array(set.iter().map(|s| Json::String(s.clone())).collect())),
            AttributeValue::Ns(set) => ("NS", Json::Array(set.iter().map(|n| Json::String(n.to_string())).collect())),
            AttributeValue::Bs(set) => {
                ("BS", Json::Array(set.iter().map(|b| Json::String(BASE64_WRITE.encode(b))).collect()))
            }
        };
        let mut object = serde_json::Map::new();
        object.insert(name.to_string(), body);
        Json::Object(object)
    }

    /// Size of the value by DynamoDB's rules (without any attribute name).
    ///
    /// Strings and binaries count their bytes; a number one byte per two significant digits plus
    /// one; BOOL and NULL one byte; a set the sum of its elements; a map or a list three bytes
    /// plus, per element, one byte, the element and (for a map) the element's name.
    pub fn size_bytes(&self) -> usize {
        match self {
            AttributeValue::S(text) => text.len(),
            AttributeValue::N(number) => number_size_bytes(number),
            AttributeValue::B(bytes) => bytes.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(map) => {
                CONTAINER_OVERHEAD_BYTES
                    + map.iter().map(|(name, value)| name.len() + 1 + value.size_bytes()).sum::<usize>()
            }
            AttributeValue::L(list) => {
                CONTAINER_OVERHEAD_BYTES + list.iter().map(|value| 1 + value.size_bytes()).sum::<usize>()
            }
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            AttributeValue::Ns(set) => set.iter().map(number_size_bytes).sum(),
            AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
        }
    }
}

/// Fixed size of a map or a list, whatever its contents.
const CONTAINER_OVERHEAD_BYTES: usize = 3;

/// DynamoDB sizes a number as one byte per two significant digits, plus one byte.
fn number_size_bytes(number: &Number) -> usize {
    number.significant_digits().div_ceil(2) + 1
}

/// Decodes an item (a JSON object of attribute names to DynamoDB JSON values).
pub fn item_from_json(json: &serde_json::Value) -> Result<Item, ValueError> {
    let object = expect_object(json, "Map")?;
    for value in object.values() {
        check_shape(value, 1)?;
    }
    object.iter().map(|(name, value)| Ok((name.clone(), convert(value, 1)?))).collect()
}

/// Encodes an item as a JSON object of DynamoDB JSON values.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    Json::Object(item.iter().map(|(name, value)| (name.clone(), value.to_json())).collect())
}

/// Size of an item by DynamoDB's rules: attribute names plus values.
pub fn item_size_bytes(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value.size_bytes()).sum()
}

/// The `SerializationException` for a JSON value of the wrong kind where `expected` was due.
fn unexpected(json: &Json, expected: &str) -> ValueError {
    let token = match json {
        Json::Object(_) => {
            return ValueError::Serialization("Start of structure or map found where not expected.".to_string())
        }
        Json::Array(_) => return ValueError::Serialization("Start of list found where not expected.".to_string()),
        Json::Null => "NULL_VALUE",
        Json::Bool(true) => "TRUE_VALUE",
        Json::Bool(false) => "FALSE_VALUE",
        Json::Number(_) => "NUMBER_VALUE",
        Json::String(_) => "STRING_VALUE",
    };
    ValueError::Serialization(format!("{token} cannot be converted to {expected}"))
}

fn expect_str(json: &Json) -> Result<&str, ValueError> {
    json.as_str().ok_or_else(|| unexpected(json, "String"))
}

fn expect_bool(json: &Json) -> Result<bool, ValueError> {
    json.as_bool().ok_or_else(|| unexpected(json, "Boolean"))
}

fn expect_array(json: &Json) -> Result<&Vec<Json>, ValueError> {
    json.as_array().ok_or_else(|| unexpected(json, "List"))
}

fn expect_object<'a>(json: &'a Json, expected: &str) -> Result<&'a serde_json::Map<String, Json>, ValueError> {
    json.as_object().ok_or_else(|| unexpected(json, expected))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, ValueError> {
    BASE64_READ.decode(text).map_err(|e| ValueError::Serialization(format!("Invalid Base64 encoded binary value: {e}")))
}

fn parse_number(text: &str) -> Result<Number, ValueError> {
    Number::parse(text).map_err(|e| ValueError::Validation(e.dynamodb_message()))
}

/// Reports errors of shape only: wrong JSON kinds and invalid base64. Values below the nesting
/// limit are not walked; [`convert`] refuses them.
fn check_shape(json: &Json, level: usize) -> Result<(), ValueError> {
    if level > NESTING_LEVELS_MAX {
        return Ok(());
    }
    let object = match json {
        Json::Null => return Ok(()),
        Json::Object(object) => object,
        other => return Err(unexpected(other, "AttributeValue")),
    };
    for (name, member) in object {
        match name.as_str() {
            _ if member.is_null() => {}
            "S" | "N" => {
                expect_str(member)?;
            }
            "B" => {
                decode_base64(expect_str(member)?)?;
            }
            "BOOL" => {
                expect_bool(member)?;
            }
            // A string is a value error (see `convert`), not one of shape.
            "NULL" if member.is_boolean() || member.is_string() => {}
            "NULL" => return Err(unexpected(member, "Boolean")),
            "M" => {
                for value in expect_object(member, "Map")?.values() {
                    check_shape(value, level + 1)?;
                }
            }
            "L" => {
                for value in expect_array(member)? {
                    check_shape(value, level + 1)?;
                }
            }
            "SS" | "NS" => {
                for element in expect_array(member)? {
                    expect_str(element)?;
                }
            }
            "BS" => {
                for element in expect_array(member)? {
                    decode_base64(expect_str(element)?)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Converts a value whose attribute sits at nesting `level` (1 for an item's attribute).
fn convert(json: &Json, level: usize) -> Result<AttributeValue, ValueError> {
    if level > NESTING_LEVELS_MAX {
        return Err(ValueError::Validation(message::NESTING.to_string()));
    }
    let object = match json {
        Json::Null => return Err(ValueError::Validation(message::EMPTY.to_string())),
        Json::Object(object) => object,
        other => return Err(unexpected(other, "AttributeValue")),
    };
    let mut found = None;
    let mut types_count = 0usize;
    for (name, member) in object {
        if member.is_null() {
            continue;
        }
        let value = match name.as_str() {
            "S" => AttributeValue::S(expect_str(member)?.to_string()),
            "N" => AttributeValue::N(parse_number(expect_str(member)?)?),
            "B" => AttributeValue::B(decode_base64(expect_str(member)?)?),
            "BOOL" => AttributeValue::Bool(expect_bool(member)?),
            "NULL" => match member {
                Json::Bool(true) => AttributeValue::Null,
                Json::Bool(false) | Json::String(_) => {
                    return Err(ValueError::Validation(message::NULL_NOT_TRUE.to_string()))
                }
                other => return Err(unexpected(other, "Boolean")),
            },
            "M" => AttributeValue::M(
                expect_object(member, "Map")?
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), convert(value, level + 1)?)))
                    .collect::<Result<_, ValueError>>()?,
            ),
            "L" => AttributeValue::L(
                expect_array(member)?
                    .iter()
                    .map(|value| convert(value, level + 1))
                    .collect::<Result<_, ValueError>>()?,
            ),
            "SS" => string_set(expect_array(member)?)?,
            "NS" => number_set(expect_array(member)?)?,
            "BS" => binary_set(expect_array(member)?)?,
            _ => continue,
        };
        types_count += 1;
        found.get_or_insert(value);
    }
    if types_count > 1 {
        return Err(ValueError::Validation(message::MANY_TYPES.to_string()));
    }
    found.ok_or_else(|| ValueError::Validation(message::EMPTY.to_string()))
}

fn string_set(elements: &[Json]) -> Result<AttributeValue, ValueError> {
    if elements.is_empty() {
        return Err(ValueError::Validation(message::EMPTY_SS.to_string()));
    }
    let texts = elements.iter().map(expect_str).collect::<Result<Vec<_>, _>>()?;
    let set: BTreeSet<String> = texts.iter().map(|s| s.to_string()).collect();
    if set.len() != texts.len() {
        return Err(ValueError::Validation(format!(
            "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
            texts.join(", ")
        )));
    }
    Ok(AttributeValue::Ss(set))
}

fn number_set(elements: &[Json]) -> Result<AttributeValue, ValueError> {
    if elements.is_empty() {
        return Err(ValueError::Validation(message::EMPTY_NS.to_string()));
    }
    let numbers = elements.iter().map(|element| parse_number(expect_str(element)?)).collect::<Result<Vec<_>, _>>()?;
    let count = numbers.len();
    let set: BTreeSet<Number> = numbers.into_iter().collect();
    if set.len() != count {
        return Err(ValueError::Validation(message::NS_DUPLICATES.to_string()));
    }
    Ok(AttributeValue::Ns(set))
}

fn binary_set(elements: &[Json]) -> Result<AttributeValue, ValueError> {
    if elements.is_empty() {
        return Err(ValueError::Validation(message::EMPTY_BS.to_string()));
    }
    let texts = elements.iter().map(expect_str).collect::<Result<Vec<_>, _>>()?;
    let set = texts.iter().map(|text| decode_base64(text)).collect::<Result<BTreeSet<_>, _>>()?;
    if set.len() != texts.len() {
        return Err(ValueError::Validation(format!(
            "One or more parameter values were invalid: Input collection [{}]of type BS contains \
             duplicates.",
            texts.join(", ")
        )));
    }
    Ok(AttributeValue::Bs(set))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(json: Json) -> Result<AttributeValue, ValueError> {
        AttributeValue::from_json(&json)
    }

    fn validation(json: Json) -> String {
        match parse(json.clone()) {
            Err(ValueError::Validation(message)) => message,
            other => panic!("{json}: expected a validation error, got {other:?}"),
        }
    }

    fn serialization(json: Json) -> String {
        match parse(json.clone()) {
            Err(ValueError::Serialization(message)) => message,
            other => panic!("{json}: expected a serialization error, got {other:?}"),
        }
    }

    fn num(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn every_type_round_trips() {
        let cases = [
            json!({"S": "hello"}),
            json!({"S": ""}),
            json!({"N": "-12.5"}),
            json!({"B": "AAEC/w=="}),
            json!({"B": ""}),
            json!({"BOOL": true}),
            json!({"BOOL": false}),
            json!({"NULL": true}),
            json!({"M": {}}),
            json!({"M": {"a": {"S": "x"}, "b": {"L": [{"N": "1"}, {"NULL": true}]}}}),
            json!({"L": []}),
            json!({"L": [{"S": "a"}, {"M": {"k": {"BOOL": false}}}]}),
            json!({"SS": ["", "a", "b"]}),
            json!({"NS": ["-1", "0.5", "100"]}),
            json!({"BS": ["AA==", "Yg=="]}),
        ];
        for case in cases {
            let value = parse(case.clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(value.to_json(), case);
        }
    }

    #[test]
    fn values_are_decoded() {
        assert_eq!(parse(json!({"S": "x"})), Ok(AttributeValue::S("x".into())));
        assert_eq!(parse(json!({"N": "1E+2"})), Ok(AttributeValue::N(num("100"))));
        assert_eq!(parse(json!({"B": "AAEC"})), Ok(AttributeValue::B(vec![0, 1, 2])));
        assert_eq!(parse(json!({"NULL": true})), Ok(AttributeValue::Null));
        let set = parse(json!({"SS": ["b", "a"]})).unwrap();
        assert_eq!(set, AttributeValue::Ss(["a".to_string(), "b".to_string()].into()));
        let numbers = parse(json!({"NS": ["10", "9"]})).unwrap();
        assert_eq!(numbers, AttributeValue::Ns([num("9"), num("10")].into()));
    }

    #[test]
    fn output_is_normalised() {
        assert_eq!(parse(json!({"N": "1.50E1"})).unwrap().to_json(), json!({"N": "15"}));
        assert_eq!(parse(json!({"NS": ["1E2", "-0.50"]})).unwrap().to_json(), json!({"NS": ["-0.5", "100"]}));
        // Missing padding is accepted on input and restored on output.
        assert_eq!(parse(json!({"B": "Yg"})).unwrap().to_json(), json!({"B": "Yg=="}));
        assert_eq!(AttributeValue::B(b"ab".to_vec()).to_json(), json!({"B": "YWI="}));
    }

    #[test]
    fn empty_and_unknown_types() {
        let empty = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
        assert_eq!(validation(json!({})), empty);
        assert_eq!(validation(json!({"X": 1})), empty);
        assert_eq!(validation(json!({"a": ""})), empty);
        assert_eq!(validation(json!({"S": null})), empty);
        assert_eq!(validation(json!({"M": {"a": {}}})), empty);
        assert_eq!(validation(json!({"L": [{}]})), empty);
        assert_eq!(validation(json!({"L": [null]})), empty);
        // Unknown members are ignored next to a known one.
        assert_eq!(parse(json!({"S": "a", "X": 1})), Ok(AttributeValue::S("a".into())));
    }

    #[test]
    fn more_than_one_type() {
        let many = "Supplied AttributeValue has more than one datatypes set, must contain exactly \
                    one of the supported datatypes";
        assert_eq!(validation(json!({"S": "a", "N": "1"})), many);
        assert_eq!(validation(json!({"BOOL": true, "NULL": true})), many);
        // An invalid member is reported before the count of types.
        assert_eq!(validation(json!({"S": "a", "N": "b"})), "The parameter cannot be converted to a numeric value: b");
    }

    #[test]
    fn wrong_json_shapes_are_serialization_errors() {
        assert_eq!(serialization(json!({"S": 5})), "NUMBER_VALUE cannot be converted to String");
        assert_eq!(serialization(json!({"N": 5})), "NUMBER_VALUE cannot be converted to String");
        assert_eq!(serialization(json!({"S": true})), "TRUE_VALUE cannot be converted to String");
        assert_eq!(serialization(json!({"S": {}})), "Start of structure or map found where not expected.");
        assert_eq!(serialization(json!({"S": []})), "Start of list found where not expected.");
        assert_eq!(serialization(json!({"BOOL": "true"})), "STRING_VALUE cannot be converted to Boolean");
        assert_eq!(serialization(json!({"NULL": 1})), "NUMBER_VALUE cannot be converted to Boolean");
        assert_eq!(serialization(json!({"L": {}})), "Start of structure or map found where not expected.");
        assert_eq!(serialization(json!({"L": "x"})), "STRING_VALUE cannot be converted to List");
        assert_eq!(serialization(json!({"M": []})), "Start of list found where not expected.");
        assert_eq!(serialization(json!({"SS": [1]})), "NUMBER_VALUE cannot be converted to String");
        assert_eq!(serialization(json!({"NS": "1"})), "STRING_VALUE cannot be converted to List");
        assert_eq!(serialization(json!("x")), "STRING_VALUE cannot be converted to AttributeValue");
        assert_eq!(serialization(json!([])), "Start of list found where not expected.");
        assert!(serialization(json!({"B": "!!!!"})).contains("Base64"));
        assert!(serialization(json!({"BS": ["Yg==", "*"]})).contains("Base64"));
        assert_eq!(serialization(json!({"L": [{"S": 1}]})), "NUMBER_VALUE cannot be converted to String");
    }

    #[test]
    fn shape_errors_come_before_value_errors() {
        let item = json!({"a": {"SS": []}, "b": {"S": 5}});
        assert!(matches!(item_from_json(&item), Err(ValueError::Serialization(_))));
        let value = json!({"L": [{"NS": []}, {"B": "*"}]});
        assert!(matches!(parse(value), Err(ValueError::Serialization(_))));
    }

    #[test]
    fn null_must_be_true() {
        let message = "One or more parameter values were invalid: Null attribute value types must \
                       have the value of true";
        assert_eq!(validation(json!({"NULL": false})), message);
        assert_eq!(validation(json!({"NULL": "no"})), message);
    }

    #[test]
    fn numbers_are_validated() {
        assert_eq!(validation(json!({"N": "abc"})), "The parameter cannot be converted to a numeric value: abc");
        assert_eq!(validation(json!({"N": ""})), "The parameter cannot be converted to a numeric value");
        assert_eq!(validation(json!({"NS": ["1", "b"]})), "The parameter cannot be converted to a numeric value: b");
        assert_eq!(
            validation(json!({"N": "1e126"})),
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        );
        assert_eq!(
            validation(json!({"N": "-1e-131"})),
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        );
        assert_eq!(
            validation(json!({"N": "123456789012345678901234567890123456789"})),
            "Attempting to store more than 38 significant digits in a Number"
        );
        assert_eq!(
            validation(json!({"M": {"x": {"N": "NaN"}}})),
            "The parameter cannot be converted to a numeric value: NaN"
        );
    }

    #[test]
    fn sets_must_not_be_empty() {
        assert_eq!(
            validation(json!({"SS": []})),
            "One or more parameter values were invalid: An string set  may not be empty"
        );
        assert_eq!(
            validation(json!({"NS": []})),
            "One or more parameter values were invalid: An number set  may not be empty"
        );
        assert_eq!(
            validation(json!({"BS": []})),
            "One or more parameter values were invalid: Binary sets should not be empty"
        );
    }

    #[test]
    fn sets_must_not_hold_duplicates() {
        assert_eq!(
            validation(json!({"SS": ["a", "a"]})),
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
        );
        assert_eq!(
            validation(json!({"SS": ["b", "a", "b"]})),
            "One or more parameter values were invalid: Input collection [b, a, b] contains duplicates."
        );
        assert_eq!(validation(json!({"NS": ["1", "1"]})), "Input collection contains duplicates");
        assert_eq!(validation(json!({"NS": ["1", "1.0"]})), "Input collection contains duplicates");
        assert_eq!(validation(json!({"NS": ["100", "1E2"]})), "Input collection contains duplicates");
        assert_eq!(
            validation(json!({"BS": ["Yg==", "Yg=="]})),
            "One or more parameter values were invalid: Input collection [Yg==, Yg==]of type BS \
             contains duplicates."
        );
    }

    /// `levels` nested lists around a string: the string sits at level `levels + 1`.
    fn nested(levels: usize) -> Json {
        let mut value = json!({"S": "deep"});
        for i in 0..levels {
            value = if i % 2 == 0 { json!({"L": [value]}) } else { json!({"M": {"k": value}}) };
        }
        value
    }

    #[test]
    fn nesting_is_limited_to_32_levels() {
        assert!(parse(nested(31)).is_ok());
        assert_eq!(
            validation(nested(32)),
            "Nesting Levels have exceeded supported limits: Attributes in the item have nested \
             levels beyond supported limit"
        );
        assert!(matches!(parse(nested(200)), Err(ValueError::Validation(_))));
        assert!(item_from_json(&json!({"a": nested(31)})).is_ok());
        assert!(item_from_json(&json!({"a": nested(32)})).is_err());
    }

    #[test]
    fn items_round_trip() {
        let json = json!({
            "pk": {"S": "user#1"},
            "n": {"N": "42"},
            "doc": {"M": {"tags": {"SS": ["x"]}, "list": {"L": [{"B": "AQ=="}]}}},
        });
        let item = item_from_json(&json).unwrap();
        assert_eq!(item.len(), 3);
        assert_eq!(item_to_json(&item), json);
        assert_eq!(item_from_json(&json!({})), Ok(Item::new()));
        assert!(matches!(item_from_json(&json!([])), Err(ValueError::Serialization(_))));
        assert!(matches!(item_from_json(&json!("x")), Err(ValueError::Serialization(_))));
        assert!(matches!(item_from_json(&json!({"a": {}})), Err(ValueError::Validation(_))));
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        let size = |json: Json| parse(json).unwrap().size_bytes();
        assert_eq!(size(json!({"S": "abc"})), 3);
        assert_eq!(size(json!({"S": "é"})), 2);
        assert_eq!(size(json!({"S": ""})), 0);
        assert_eq!(size(json!({"N": "0"})), 1);
        assert_eq!(size(json!({"N": "1"})), 2);
        assert_eq!(size(json!({"N": "12"})), 2);
        assert_eq!(size(json!({"N": "123"})), 3);
        assert_eq!(size(json!({"N": "1000000"})), 2);
        assert_eq!(size(json!({"N": "-0.00123"})), 3);
        assert_eq!(size(json!({"B": "AAEC"})), 3);
        assert_eq!(size(json!({"BOOL": false})), 1);
        assert_eq!(size(json!({"NULL": true})), 1);
        assert_eq!(size(json!({"SS": ["a", "bc"]})), 3);
        assert_eq!(size(json!({"NS": ["1", "123"]})), 5);
        assert_eq!(size(json!({"BS": ["AA==", "AAE="]})), 3);
        assert_eq!(size(json!({"M": {}})), 3);
        assert_eq!(size(json!({"L": []})), 3);
        assert_eq!(size(json!({"L": [{"S": "ab"}, {"BOOL": true}]})), 3 + (1 + 2) + (1 + 1));
        assert_eq!(size(json!({"M": {"key": {"S": "ab"}}})), 3 + 3 + 1 + 2);
        let item = item_from_json(&json!({"id": {"S": "abc"}, "n": {"N": "12"}})).unwrap();
        assert_eq!(item_size_bytes(&item), 2 + 3 + 1 + 2);
        assert_eq!(item_size_bytes(&Item::new()), 0);
    }
}
