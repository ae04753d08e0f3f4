//! The RocksDB log passes the same conformance suite as the in-memory one, and keeps what it
//! acknowledged across reopening.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_log::conformance::next_commit;
use permledger_log::EventLog;
use permledger_rocks::RocksLog;

/// A log in a fresh temporary folder that lives as long as the log.
struct TempLog {
    log: RocksLog,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempLog {
    type Target = RocksLog;
    fn deref(&self) -> &RocksLog {
        &self.log
    }
}

impl EventLog for TempLog {
    fn append(&self, c: &[permledger_log::Commit]) -> Result<(), permledger_log::LogError> {
        self.log.append(c)
    }
    fn read(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<permledger_log::Record>, permledger_log::LogError> {
        self.log.read(from, limit)
    }
    fn read_org(
        &self,
        org: &permledger_domain::OrgId,
        v: u64,
        limit: usize,
    ) -> Result<Vec<permledger_log::Record>, permledger_log::LogError> {
        self.log.read_org(org, v, limit)
    }
    fn head(&self) -> Result<permledger_log::Digest, permledger_log::LogError> {
        self.log.head()
    }
    fn org_version(&self, org: &permledger_domain::OrgId) -> Result<u64, permledger_log::LogError> {
        self.log.org_version(org)
    }
    fn idempotency(
        &self,
        org: &permledger_domain::OrgId,
        key: &str,
    ) -> Result<Option<permledger_log::IdempotencyEntry>, permledger_log::LogError> {
        self.log.idempotency(org, key)
    }
    fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.log.watch()
    }
}

fn temp_log() -> TempLog {
    let dir = tempfile::tempdir().unwrap();
    TempLog {
        log: RocksLog::open(dir.path()).unwrap(),
        _dir: dir,
    }
}

permledger_log::conformance_tests!(temp_log());

#[test]
fn what_was_acknowledged_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let acme = permledger_domain::OrgId::new("acme").unwrap();
    let (head, records) = {
        let log = RocksLog::open(dir.path()).unwrap();
        for _ in 0..3 {
            log.append(&[next_commit(&log, &acme, 4)]).unwrap();
        }
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
