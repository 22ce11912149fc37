//! Stored item bytes may be corrupted: decoding must never panic, and whatever decodes must
//! re-encode to something that decodes to the same item.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall_engine::model::{decode_item, decode_key_value, encode_item, ScalarType};

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode_item(data) {
        let again = decode_item(&encode_item(&item)).expect("re-encoded item decodes");
        assert_eq!(item, again);
    }
    for kind in [ScalarType::S, ScalarType::N, ScalarType::B] {
        let mut input = data;
        let _ = decode_key_value(&mut input, kind);
    }
});
