//! DynamoDB's data model: attribute values, exact decimal numbers, item sizes, the
//! order-preserving key encoding and the stored item codec. Everything here is pure: no I/O,
//! no clocks, no randomness.

pub mod codec;
pub mod key;
pub mod number;
pub mod value;

#[cfg(test)]
mod proptests;

pub use codec::{decode_item, encode_item, ItemDecodeError};
pub use key::{decode_key_value, encode_key_prefix, encode_key_value, KeyDecodeError, ScalarType};
pub use number::{Number, NumberError};
pub use value::{item_from_json, item_size_bytes, item_to_json, AttributeValue, Item, ValueError};
