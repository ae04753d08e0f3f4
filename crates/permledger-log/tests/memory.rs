//! The in-memory log passes the conformance suite, and the verifier names tampered events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_log::conformance::next_commit;
use permledger_log::{verify, EventLog, MemoryLog, Tamper};

permledger_log::conformance_tests!(permledger_log::MemoryLog::new());

fn filled() -> MemoryLog {
    let log = MemoryLog::new();
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    for _ in 0..4 {
        log.append(&[next_commit(&log, &acme, 3)]).unwrap();
    }
    log
}

#[test]
fn verify_names_a_changed_event() {
    let log = filled();
    let mut bytes = log.read(5, 1).unwrap()[0].bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    log.tamper(5, bytes).unwrap();
    let found = verify(&log, &[], |_| {}).unwrap().unwrap_err();
    assert_eq!(found.seq(), 5, "{found}");
}

#[test]
fn verify_names_a_moved_event() {
    let log = filled();
    let moved = log.read(9, 1).unwrap()[0].bytes.clone();
    log.tamper(4, moved).unwrap();
    let found = verify(&log, &[], |_| {}).unwrap().unwrap_err();
    assert!(
        matches!(
            found,
            Tamper::Changed { seq: 4 } | Tamper::Misplaced { seq: 4, .. }
        ),
        "{found}"
    );
}
