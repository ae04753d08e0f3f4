//! The conformance suite: every `EventLog` implementation runs these, through
//! `conformance_tests!(make_a_fresh_log())` in its own tests. Test support: a failed expectation
//! panics, as in any test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use permledger_domain::event::{OrgRenamed, TeamCreated};
use permledger_domain::{Event, EventMeta, EventPayload, OrgId, Seq, TeamId, Timestamp, UserId};

use crate::chain::{link, Hash};
use crate::{envelope, Commit, EventLog, Follower, IdempotencyEntry, LogError, PendingEvent};

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap_or_else(|e| panic!("{e}"))
}

/// An encoded event of `org` at `seq` and `version`.
pub fn sample_event(org_id: &OrgId, seq: Seq, version: u64) -> PendingEvent {
    let payload = if version.is_multiple_of(2) {
        EventPayload::OrgRenamed(OrgRenamed {
            name: format!("name {seq}"),
        })
    } else {
        EventPayload::TeamCreated(TeamCreated {
            team: TeamId::new(format!("t{seq}")).unwrap_or_else(|e| panic!("{e}")),
            name: format!("team {seq}"),
        })
    };
    let event = Event {
        meta: EventMeta {
            seq,
            org: org_id.clone(),
            org_version: version,
            event_id: uuid::Uuid::from_u128(u128::from(seq)),
            recorded_at: Timestamp::from_micros(1_700_000_000_000_000 + seq as i64),
            actor: UserId::new("ann").unwrap_or_else(|e| panic!("{e}")),
            reason: None,
            request_id: Some(format!("req-{seq}")),
            principal: Some(permledger_domain::Principal::Local),
            cause: None,
        },
        payload,
    };
    PendingEvent {
        seq,
        org_version: version,
        bytes: envelope::encode(&event).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// A commit of `n` events for `org_id` following the log's current head and the org's version.
pub fn next_commit(log: &dyn EventLog, org_id: &OrgId, n: u64) -> Commit {
    let head = log.head().unwrap_or_else(|e| panic!("{e}")).seq;
    let v = log.org_version(org_id).unwrap_or_else(|e| panic!("{e}"));
    Commit {
        org: org_id.clone(),
        expected_version: None,
        events: (1..=n)
            .map(|i| sample_event(org_id, head + i, v + i))
            .collect(),
        idempotency: None,
    }
}

pub fn empty_log_has_genesis_head(log: &dyn EventLog) {
    let head = log.head().unwrap();
    assert_eq!(head.seq, 0);
    assert_eq!(head.hash, Hash::GENESIS);
    assert!(log.read(1, 10).unwrap().is_empty());
    assert_eq!(log.org_version(&org("acme")).unwrap(), 0);
}

pub fn appended_events_read_back_linked(log: &dyn EventLog) {
    let c = next_commit(log, &org("acme"), 3);
    log.append(std::slice::from_ref(&c)).unwrap();
    let records = log.read(1, 10).unwrap();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let mut prev = Hash::GENESIS;
    for (r, e) in records.iter().zip(&c.events) {
        assert_eq!(r.bytes, e.bytes);
        assert_eq!(r.hash, link(&prev, r.seq, &r.bytes));
        prev = r.hash;
        assert_eq!(r.decode().unwrap().meta.seq, r.seq);
    }
    assert_eq!(log.head().unwrap().hash, prev);
    assert_eq!(log.org_version(&org("acme")).unwrap(), 3);
}

/// A scan lends exactly the records `read` answers, in order, from any position, and stops the
/// moment its visitor says so.
pub fn scans_lend_what_reads_answer(log: &dyn EventLog) {
    let mut seen = Vec::new();
    log.scan(1, &mut |seq, _, _| {
        seen.push(seq);
        true
    })
    .unwrap();
    assert!(seen.is_empty(), "an empty log lends nothing");
    for n in [3, 1, 4] {
        log.append(&[next_commit(log, &org("acme"), n)]).unwrap();
    }
    let all = log.read(1, 100).unwrap();
    let mut lent = Vec::new();
    log.scan(0, &mut |seq, hash, bytes| {
        lent.push(crate::Record {
            seq,
            hash: *hash,
            bytes: bytes.to_vec(),
        });
        true
    })
    .unwrap();
    assert_eq!(lent, all);
    let mut from_five = Vec::new();
    log.scan(5, &mut |seq, _, _| {
        from_five.push(seq);
        seq < 7
    })
    .unwrap();
    assert_eq!(
        from_five,
        vec![5, 6, 7],
        "stops after the visitor's first false"
    );
    let mut beyond = 0;
    log.scan(9, &mut |_, _, _| {
        beyond += 1;
        true
    })
    .unwrap();
    assert_eq!(beyond, 0);
}

pub fn groups_of_commits_append_atomically_and_index_orgs(log: &dyn EventLog) {
    let a = next_commit(log, &org("acme"), 2);
    let mut b = next_commit(log, &org("globex"), 1);
    b.events[0] = sample_event(&org("globex"), 3, 1);
    let mut a2 = next_commit(log, &org("acme"), 1);
    a2.events[0] = sample_event(&org("acme"), 4, 3);
    log.append(&[a, b, a2]).unwrap();
    assert_eq!(log.head().unwrap().seq, 4);
    let acme: Vec<Seq> = log
        .read_org(&org("acme"), 1, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(acme, vec![1, 2, 4]);
    let from_v2: Vec<Seq> = log
        .read_org(&org("acme"), 2, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(from_v2, vec![2, 4]);
    assert_eq!(log.read_org(&org("globex"), 1, 10).unwrap().len(), 1);
    assert!(log.read_org(&org("initech"), 1, 10).unwrap().is_empty());
    assert_eq!(log.org_version(&org("acme")).unwrap(), 3);
    let page: Vec<Seq> = log.read(2, 2).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(page, vec![2, 3]);
}

pub fn a_missed_expected_version_writes_nothing(log: &dyn EventLog) {
    log.append(&[next_commit(log, &org("acme"), 2)]).unwrap();
    let head = log.head().unwrap();
    let mut ok = next_commit(log, &org("globex"), 1);
    ok.expected_version = Some(0);
    let mut stale = next_commit(log, &org("acme"), 1);
    stale.events[0] = sample_event(&org("acme"), head.seq + 2, 3);
    stale.expected_version = Some(1);
    let err = log.append(&[ok, stale]).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.head().unwrap(), head, "a refused group writes nothing");
    assert_eq!(log.org_version(&org("globex")).unwrap(), 0);
    let mut right = next_commit(log, &org("acme"), 1);
    right.expected_version = Some(2);
    log.append(&[right]).unwrap();
}

pub fn positions_must_follow_the_head(log: &dyn EventLog) {
    log.append(&[next_commit(log, &org("acme"), 1)]).unwrap();
    let mut gap = next_commit(log, &org("acme"), 1);
    gap.events[0].seq += 1;
    assert!(matches!(
        log.append(&[gap]).unwrap_err(),
        LogError::OutOfOrder {
            expected_prev: 1,
            got: 3
        }
    ));
    let mut again = next_commit(log, &org("acme"), 1);
    again.events[0].seq = 1;
    assert!(matches!(
        log.append(&[again]).unwrap_err(),
        LogError::OutOfOrder { .. }
    ));
    assert_eq!(log.head().unwrap().seq, 1);
}

pub fn idempotency_keys_are_stored_with_their_events(log: &dyn EventLog) {
    let mut c = next_commit(log, &org("acme"), 2);
    let entry = IdempotencyEntry {
        fingerprint: Hash([7; 32]),
        first_seq: 1,
        last_seq: 2,
    };
    c.idempotency = Some(("key-1".into(), entry));
    log.append(&[c]).unwrap();
    assert_eq!(log.idempotency(&org("acme"), "key-1").unwrap(), Some(entry));
    assert_eq!(log.idempotency(&org("acme"), "key-2").unwrap(), None);
    assert_eq!(log.idempotency(&org("globex"), "key-1").unwrap(), None);
}

pub fn a_clean_log_verifies(log: &dyn EventLog) {
    for _ in 0..5 {
        log.append(&[next_commit(log, &org("acme"), 3)]).unwrap();
    }
    let report = crate::verify(log, &[], |_| {}).unwrap().unwrap();
    assert_eq!(report.events, 15);
    assert_eq!(report.head, log.head().unwrap());
    let digest = crate::Digest {
        seq: 7,
        hash: log.read(7, 1).unwrap()[0].hash,
    };
    let report = crate::verify(log, &[digest], |_| {}).unwrap().unwrap();
    assert_eq!(report.extends, Some(digest));
    let forged = crate::Digest {
        seq: 7,
        hash: Hash([1; 32]),
    };
    assert_eq!(
        crate::verify(log, &[forged], |_| {}).unwrap(),
        Err(crate::Tamper::DigestMismatch { seq: 7 })
    );
    let future = crate::Digest {
        seq: 99,
        hash: Hash([1; 32]),
    };
    assert!(matches!(
        crate::verify(log, &[future], |_| {}).unwrap(),
        Err(crate::Tamper::DigestBeyondHead { .. })
    ));
    // A witness's many digests: all proven, the latest reported; one forged among them named.
    let at = |seq| crate::Digest {
        seq,
        hash: log.read(seq, 1).unwrap()[0].hash,
    };
    let kept = [at(3), at(7), at(12)];
    let report = crate::verify(log, &kept, |_| {}).unwrap().unwrap();
    assert_eq!(report.extends, Some(at(12)));
    assert_eq!(
        crate::verify(log, &[at(3), forged, at(12)], |_| {}).unwrap(),
        Err(crate::Tamper::DigestMismatch { seq: 7 })
    );
}

/// A follower catches up, then receives every new event exactly once while writers append.
pub async fn followers_never_skip_or_repeat(log: Arc<dyn EventLog>) {
    log.append(&[next_commit(&*log, &org("acme"), 5)]).unwrap();
    let mut follower = Follower::new(log.clone(), 3);
    let writer = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..50u64 {
                let o = if i % 2 == 0 {
                    org("acme")
                } else {
                    org("globex")
                };
                log.append(&[next_commit(&*log, &o, 1 + i % 3)]).unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let total = 5 + (0..50u64).map(|i| 1 + i % 3).sum::<u64>();
    while seen.last().copied().unwrap_or(0) < total {
        let batch =
            tokio::time::timeout(std::time::Duration::from_secs(10), follower.next_batch(7))
                .await
                .expect("the follower stalled")
                .unwrap();
        seen.extend(batch.iter().map(|r| r.seq));
    }
    writer.await.unwrap();
    assert_eq!(seen, (3..=total).collect::<Vec<_>>());
}

/// Generates one `#[test]` per conformance case for a log made by `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;

            #[test]
            fn empty_log_has_genesis_head() {
                let log = $make;
                c::empty_log_has_genesis_head(&log);
            }
            #[test]
            fn appended_events_read_back_linked() {
                let log = $make;
                c::appended_events_read_back_linked(&log);
            }
            #[test]
            fn scans_lend_what_reads_answer() {
                let log = $make;
                c::scans_lend_what_reads_answer(&log);
            }
            #[test]
            fn groups_of_commits_append_atomically_and_index_orgs() {
                let log = $make;
                c::groups_of_commits_append_atomically_and_index_orgs(&log);
            }
            #[test]
            fn a_missed_expected_version_writes_nothing() {
                let log = $make;
                c::a_missed_expected_version_writes_nothing(&log);
            }
            #[test]
            fn positions_must_follow_the_head() {
                let log = $make;
                c::positions_must_follow_the_head(&log);
            }
            #[test]
            fn idempotency_keys_are_stored_with_their_events() {
                let log = $make;
                c::idempotency_keys_are_stored_with_their_events(&log);
            }
            #[test]
            fn a_clean_log_verifies() {
                let log = $make;
                c::a_clean_log_verifies(&log);
            }
            #[test]
            fn followers_never_skip_or_repeat() {
                let log = $make;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(c::followers_never_skip_or_repeat(std::sync::Arc::new(log)));
            }
        }
    };
}
