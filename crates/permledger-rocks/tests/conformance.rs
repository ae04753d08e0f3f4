//! The RocksDB log passes the same conformance suite as the in-memory one, keeps what it
//! acknowledged across reopening, and refuses to open a folder whose head and events disagree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_log::conformance::next_commit;
use permledger_log::{Digest, EventLog, LogError, Record};
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

/// The log in `dir` opened again: the same head and records as before, and a chain that verifies.
fn reopened_unchanged(dir: &std::path::Path, head: Digest, records: &[Record]) -> RocksLog {
    let log = RocksLog::open(dir).unwrap();
    assert_eq!(log.head().unwrap(), head);
    assert_eq!(log.read(1, 100).unwrap(), records);
    assert!(permledger_log::verify(&log, &[], |_| {}).unwrap().is_ok());
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
    let log = reopened_unchanged(dir.path(), head, &records);
    assert_eq!(log.org_version(&acme).unwrap(), 12);
    log.append(&[next_commit(&log, &acme, 1)]).unwrap();
    assert_eq!(log.head().unwrap().seq, 13);
    assert!(permledger_log::verify(&log, &[], |_| {}).unwrap().is_ok());
}

#[test]
fn an_unsynced_append_is_an_append_that_survives_the_process() {
    // A cluster node's local writes: the same checks, links and indexes as a synced append,
    // readable at once and there after the log is opened again (a process's crash loses no
    // write RocksDB accepted; only a loss of power may, which the stream makes good).
    let dir = tempfile::tempdir().unwrap();
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    let (head, records) = {
        let log = filled(dir.path(), 1);
        log.append_unsynced(&[next_commit(&log, &acme, 3)]).unwrap();
        let mut stale = next_commit(&log, &acme, 1);
        stale.events[0].seq -= 1;
        assert!(matches!(
            log.append_unsynced(&[stale]),
            Err(LogError::OutOfOrder { .. })
        ));
        log.append(&[next_commit(&log, &acme, 1)]).unwrap();
        assert_eq!(log.org_version(&acme).unwrap(), 8);
        (log.head().unwrap(), log.read(1, 100).unwrap())
    };
    reopened_unchanged(dir.path(), head, &records);
}

#[test]
fn a_folder_whose_last_events_vanished_takes_no_write_and_is_named_a_truncation() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 2));
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        db.delete_cf(db.cf_handle(cf::EVENTS).unwrap(), 8u64.to_be_bytes())
            .unwrap();
    }
    // It opens, so that the damage can be reported and inspected, but it writes nothing.
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(
        log.damage(),
        Some(permledger_log::Tamper::Truncated { after: 7, head: 8 })
    );
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    match log.append(&[next_commit(&log, &acme, 1)]) {
        Err(LogError::Stopped(reason)) => {
            assert!(reason.contains("truncated after event 7"), "{reason}")
        }
        other => panic!("a damaged log took an append: {other:?}"),
    }
    assert_eq!(
        permledger_log::verify(&log, &[], |_| {}).unwrap(),
        Err(permledger_log::Tamper::Truncated { after: 7, head: 8 })
    );
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
        permledger_log::verify(&log, &[], |_| {}).unwrap(),
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
        permledger_log::verify(&log, &[], |_| {}),
        Err(LogError::Corruption { seq: 6, .. })
    ));
}

fn stored_layout(dir: &std::path::Path) -> (Vec<u8>, Vec<String>) {
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, dir).unwrap();
    let db = rocksdb::DB::open_cf(&opts, dir, &cfs).unwrap();
    let layout = db
        .get_cf(db.cf_handle(cf::META).unwrap(), cf::LAYOUT)
        .unwrap()
        .unwrap();
    (layout, cfs)
}

#[test]
fn a_layout_1_folder_opens_with_every_event_and_version_and_loses_its_org_heads() {
    let dir = tempfile::tempdir().unwrap();
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    let records = {
        let log = filled(dir.path(), 3);
        log.append(&[next_commit(
            &log,
            &permledger_domain::OrgId::new("acme-2").unwrap(),
            2,
        )])
        .unwrap();
        log.read(1, 100).unwrap()
    };
    // What a build of layout 1 left: its layout number and a column family of org heads (here
    // deliberately wrong, so that a version read from it would show).
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let mut cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        cfs.push(cf::RETIRED_ORG_HEADS.to_string());
        let db = rocksdb::DB::open_cf(&opts, dir.path(), &cfs).unwrap();
        let heads = db.cf_handle(cf::RETIRED_ORG_HEADS).unwrap();
        db.put_cf(heads, "acme", 99u64.to_be_bytes()).unwrap();
        db.put_cf(
            db.cf_handle(cf::META).unwrap(),
            cf::LAYOUT,
            cf::LAYOUT_WITH_ORG_HEADS.to_be_bytes(),
        )
        .unwrap();
    }
    {
        let log = RocksLog::open(dir.path()).unwrap();
        assert_eq!(log.read(1, 100).unwrap(), records);
        assert_eq!(log.org_version(&acme).unwrap(), 12);
        assert_eq!(log.read_org(&acme, 1, 100).unwrap().len(), 12);
        log.append(&[next_commit(&log, &acme, 1)]).unwrap();
        assert!(permledger_log::verify(&log, &[], |_| {}).unwrap().is_ok());
    }
    let (layout, cfs) = stored_layout(dir.path());
    assert_eq!(layout, cf::LAYOUT_VERSION.to_be_bytes());
    assert!(!cfs.iter().any(|c| c == cf::RETIRED_ORG_HEADS), "{cfs:?}");
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(log.org_version(&acme).unwrap(), 13);
}

#[test]
fn a_folder_of_an_unknown_layout_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 1));
    tamper_with(dir.path(), |db, _| {
        db.put_cf(
            db.cf_handle(cf::META).unwrap(),
            cf::LAYOUT,
            7u32.to_be_bytes(),
        )
        .unwrap()
    });
    match RocksLog::open(dir.path()) {
        Err(LogError::Io(reason)) => {
            assert!(
                reason.contains("layout 7, which this build cannot read"),
                "{reason}"
            )
        }
        Err(e) => panic!("expected a refusal naming the layout, got {e}"),
        Ok(_) => panic!("a folder of layout 7 opened"),
    }
    assert_eq!(stored_layout(dir.path()).0, 7u32.to_be_bytes());
}

#[test]
fn an_orgs_version_is_its_own_last_index_entry_not_a_neighbours() {
    // "acme" sorts before "acme-2" and after "acm": each reads only its own entries.
    let dir = tempfile::tempdir().unwrap();
    let org = |s: &str| permledger_domain::OrgId::new(s).unwrap();
    {
        let log = RocksLog::open(dir.path()).unwrap();
        log.append(&[next_commit(&log, &org("acme-2"), 5)]).unwrap();
        log.append(&[next_commit(&log, &org("acm"), 2)]).unwrap();
        log.append(&[next_commit(&log, &org("acme"), 3)]).unwrap();
    }
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(log.org_version(&org("acm")).unwrap(), 2);
    assert_eq!(log.org_version(&org("acme")).unwrap(), 3);
    assert_eq!(log.org_version(&org("acme-2")).unwrap(), 5);
    assert_eq!(log.org_version(&org("acme-3")).unwrap(), 0);
    assert_eq!(log.org_version(&org("a")).unwrap(), 0);
    // A fresh handle learns versions from the index before its first write to an org.
    log.append(&[next_commit(&log, &org("acme"), 1)]).unwrap();
    assert_eq!(log.org_version(&org("acme")).unwrap(), 4);
}

#[test]
fn a_folder_opened_again_and_again_keeps_only_a_few_diagnostic_logs() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..(permledger_rocks::INFO_LOGS_KEPT + 6) {
        drop(filled(dir.path(), 1));
    }
    let logs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("LOG"))
        .count();
    assert!(
        (1..=permledger_rocks::INFO_LOGS_KEPT).contains(&logs),
        "{logs} diagnostic logs after {} opens",
        permledger_rocks::INFO_LOGS_KEPT + 6
    );
    let log = RocksLog::open(dir.path()).unwrap();
    assert_eq!(
        log.head().unwrap().seq,
        4 * (permledger_rocks::INFO_LOGS_KEPT as u64 + 6)
    );
}
