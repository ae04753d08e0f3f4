//! A scenario file of any shape (the public contract others write files against) parses
//! strictly or is refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = permledger_scenario::format::parse_file(text);
    }
});
