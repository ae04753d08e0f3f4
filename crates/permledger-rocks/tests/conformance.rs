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
