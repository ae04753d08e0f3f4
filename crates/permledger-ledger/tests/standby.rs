//! A ledger standing by (a cluster node that is not the writer): commands are refused and
//! record nothing; events another node wrote are folded in order; once it takes commands
//! again, what it decides rests on everything folded meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use permledger_domain::{Command, CommandMeta, Event, Timestamp, UserId};
use permledger_ledger::{Ledger, ManualClock, SubmitError};
use permledger_log::{EventLog, LogError, MemoryLog};

fn cmd(json: &str) -> Command {
    serde_json::from_str(json).unwrap()
}

fn ann() -> CommandMeta {
    CommandMeta::new(UserId::new("ann").unwrap())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Timestamp::parse("2026-03-01T09:00:00Z").unwrap(),
    ))
}

/// The events of `log` from `from` on, decoded.
fn events(log: &dyn EventLog, from: u64) -> Vec<Event> {
    log.read(from, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.decode().unwrap())
        .collect()
}

#[test]
fn a_ledger_standing_by_refuses_commands_folds_replicated_events_and_writes_on_top_of_them() {
    // The writer elsewhere.
    let theirs = Arc::new(MemoryLog::new());
    let writer = Ledger::open(theirs.clone(), clock()).unwrap();
    writer
        .submit_blocking(
            cmd(r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#),
            ann(),
        )
        .unwrap();
    writer
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            ann(),
        )
        .unwrap();

    // This node: standing by, it takes no command and records nothing.
    let ours = Arc::new(MemoryLog::new());
    let node = Ledger::open(ours.clone(), clock()).unwrap();
    node.stand_by(Some("b is the cluster's writer".into()));
    let refused = node.submit_blocking(
        cmd(r#"{"type":"create_org","org":"globex","preset":"teaminbox"}"#),
        ann(),
    );
    assert_eq!(
        refused,
        Err(SubmitError::Log(LogError::NotWriter(
            "b is the cluster's writer".into()
        )))
    );
    assert_eq!(ours.head().unwrap().seq, 0);

    // The writer's events, stored here and folded; not out of order.
    let replicated = events(&*theirs, 1);
    for r in theirs.read(1, usize::MAX).unwrap() {
        let c = permledger_log::Commit {
            org: r.decode().unwrap().meta.org,
            expected_version: None,
            events: vec![permledger_log::PendingEvent {
                seq: r.seq,
                org_version: r.decode().unwrap().meta.org_version,
                bytes: r.bytes.clone(),
            }],
            idempotency: None,
        };
        ours.append(&[c]).unwrap();
    }
    assert_eq!(
        node.fold_replicated(&replicated[1..]),
        Err(LogError::OutOfOrder {
            expected_prev: 0,
            got: replicated[1].meta.seq
        })
    );
    assert_eq!(
        node.fold_replicated(&replicated),
        Ok(replicated.len() as u64)
    );
    assert_eq!(ours.head().unwrap(), theirs.head().unwrap());

    // Writing again: the first command is decided against the folded state (the team exists),
    // and goes right after the folded events.
    node.stand_by(None);
    let again = node.submit_blocking(
        cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
        ann(),
    );
    assert!(
        matches!(&again, Err(SubmitError::Rejected(r)) if r.code == permledger_domain::Code::AlreadyExists),
        "{again:?}"
    );
    let out = node
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"sales"}"#),
            ann(),
        )
        .unwrap();
    assert_eq!(out.seq, replicated.len() as u64 + 1);
    assert_eq!(out.events[0].meta.org_version, replicated.len() as u64 + 1);
    // A ledger that takes commands folds only its own events.
    assert!(matches!(
        node.fold_replicated(&events(&*theirs, 1)),
        Err(LogError::Stopped(_))
    ));
}
