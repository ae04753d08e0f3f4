//! Stored bytes of any shape (a damaged or forged folder) decode to an event or an error, never
//! a panic; what decodes encodes again to bytes that decode to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permledger_log::envelope::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = decode(data) {
        let again = encode(&event).expect("a decoded event encodes");
        assert_eq!(decode(&again).expect("its encoding decodes"), event);
    }
});
