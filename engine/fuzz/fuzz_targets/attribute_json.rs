//! DynamoDB JSON from the network: decoding must never panic, and a decoded item must survive
//! a round trip through its JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall_engine::model::{item_from_json, item_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(item) = item_from_json(&json) {
        let again = item_from_json(&item_to_json(&item)).expect("encoded item decodes");
        assert_eq!(item, again);
    }
});
