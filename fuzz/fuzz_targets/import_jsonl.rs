//! An export file of any shape (edited, cut, forged) is read back as a sound log or refused
//! with an error, never a panic, whichever checks are asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permledger_log::transfer::{read_export, Check};

fuzz_target!(|data: &[u8]| {
    let whole = read_export(data, Check::Whole { trusted: None });
    let bytes = read_export(data, Check::BytesOnly);
    // Whatever holds whole holds by its bytes, to the same head.
    if let Ok(w) = whole {
        let b = bytes.expect("a file sound whole is sound by its bytes");
        assert_eq!(w.head, b.head);
    }
});
