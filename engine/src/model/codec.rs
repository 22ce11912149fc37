//! Compact binary encoding of items for storage, with a checksum checked on every decode.

use super::value::Item;

/// A stored item could not be decoded (truncated, corrupted or of an unknown version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt item encoding: {0}")]
pub struct ItemDecodeError(pub String);

/// Encodes an item, checksum included.
pub fn encode_item(item: &Item) -> Vec<u8> {
    let _ = item;
    todo!()
}

/// Decodes an item written by [`encode_item`], verifying its checksum.
pub fn decode_item(bytes: &[u8]) -> Result<Item, ItemDecodeError> {
    let _ = bytes;
    todo!()
}
