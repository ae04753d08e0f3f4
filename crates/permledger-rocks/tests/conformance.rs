//! The RocksDB log passes the same conformance suite as the in-memory one, keeps what it
//! acknowledged across reopening, and refuses to open a folder whose head and events disagree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_log::conformance::next_commit;
use permledger_log::{EventLog, LogError};
use permledger_rocks::{cf, RocksLog};

permledger_log::conformance_tests!(permledger_rocks::RocksLog::temporary().unwrap());

fn filled(dir: &std::path::Path, commits: usize) -> RocksLog {
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    let log = RocksLog::open(dir).unwrap();
    for _ in 0..commits {
        log.append(&[next_commit(&log, &acme, 4)]).unwrap();
    }
    log
}

#[test]
fn what_was_acknowledged_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    let (head, records) = {
        let log = filled(dir.path(), 3);
        (log.head().unwrap(), log.read(1, 100).unwrap())
    };
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(log.head().unwrap(), head);
    assert_eq!(log.read(1, 100).unwrap(), records);
    assert_eq!(log.org_version(&acme).unwrap(), 12);
    log.append(&[next_commit(&log, &acme, 1)]).unwrap();
    assert_eq!(log.head().unwrap().seq, 13);
    assert!(permledger_log::verify(&log, None, |_| {}).unwrap().is_ok());
}

#[test]
fn a_folder_whose_last_events_vanished_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 2));
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        db.delete_cf(db.cf_handle(cf::EVENTS).unwrap(), 8u64.to_be_bytes())
            .unwrap();
    }
    match RocksLog::open(dir.path()) {
        Err(LogError::Corruption { seq, reason }) => {
            assert_eq!(seq, 8);
            assert!(reason.contains("the last stored event is 7"), "{reason}");
        }
        Err(e) => panic!("expected a corruption error, got {e}"),
        Ok(_) => panic!("a log missing its last event opened"),
    }
}

#[test]
fn a_temporary_log_removes_its_folder() {
    let log = RocksLog::temporary().unwrap();
    let path = log.path().to_path_buf();
    log.append(&[next_commit(
        &log,
        &permledger_domain::OrgId::new("acme").unwrap(),
        1,
    )])
    .unwrap();
    assert!(path.exists());
    drop(log);
    assert!(!path.exists());
}

/// Changes made to the folder behind the log's back, as a scan finds them.
fn tamper_with(dir: &std::path::Path, change: impl FnOnce(&rocksdb::DB, &rocksdb::ColumnFamily)) {
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, dir).unwrap();
    let db = rocksdb::DB::open_cf(&opts, dir, cfs).unwrap();
    change(&db, db.cf_handle(cf::EVENTS).unwrap());
}

#[test]
fn the_verifier_scanning_the_folder_names_a_vanished_event() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 3));
    tamper_with(dir.path(), |db, events| {
        db.delete_cf(events, 5u64.to_be_bytes()).unwrap()
    });
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(
        permledger_log::verify(&log, None, |_| {}).unwrap(),
        Err(permledger_log::Tamper::Missing { seq: 5 })
    );
}

#[test]
fn a_stored_value_shorter_than_its_link_is_corruption_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 3));
    tamper_with(dir.path(), |db, events| {
        db.put_cf(events, 6u64.to_be_bytes(), [0u8; 31]).unwrap()
    });
    let log = RocksLog::open(dir.path()).unwrap();
    let mut lent = Vec::new();
    let scanned = log.scan(1, &mut |seq, _, _| {
        lent.push(seq);
        true
    });
    assert_eq!(lent, vec![1, 2, 3, 4, 5], "the records before it are lent");
    assert!(
        matches!(scanned, Err(LogError::Corruption { seq: 6, .. })),
        "{scanned:?}"
    );
    assert!(matches!(
        permledger_log::verify(&log, None, |_| {}),
        Err(LogError::Corruption { seq: 6, .. })
    ));
}
