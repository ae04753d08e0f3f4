//! A replica fed a ledger's log converges with the ledger's own views under concurrent writes,
//! answers each writer's own write once it waited for its position, and stops at the last good
//! event when a record does not hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use permledger_domain::{Command, CommandMeta, OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_ledger::{Ledger, ManualClock};
use permledger_log::{EventLog, MemoryLog, Record, Tamper};
use permledger_replica::{Replica, ReplicaError};

fn cmd(json: &str) -> Command {
    serde_json::from_str(json).unwrap()
}

fn user(u: &str) -> UserId {
    UserId::new(u).unwrap()
}

fn ledger(log: Arc<dyn EventLog>) -> Ledger {
    let clock = ManualClock::new(Timestamp::parse("2026-03-01T09:00:00Z").unwrap());
    Ledger::open(log, Arc::new(clock)).unwrap()
}

fn later() -> Timestamp {
    Timestamp::parse("2026-03-02T00:00:00Z").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_converges_with_the_writer_and_reads_its_own_writes() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = ledger(log.clone());
    let (replica, following) = Replica::follow(log.clone());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (ledger, replica) = (ledger.clone(), replica.clone());
            tokio::spawn(async move {
                let org = OrgId::new(format!("org{w}")).unwrap();
                let owner = user(&format!("owner{w}"));
                ledger
                    .submit(
                        cmd(&format!(
                            r#"{{"type":"create_org","org":"{org}","preset":"teaminbox"}}"#
                        )),
                        CommandMeta::new(owner.clone()),
                    )
                    .await
                    .unwrap();
                let view = PermissionKey::new("inbox.thread.view").unwrap();
                for i in 0..60 {
                    let inbox = format!("in{i}");
                    let done = ledger
                        .submit(
                            cmd(&format!(
                                r#"{{"type":"create_inbox","org":"{org}","inbox":"{inbox}"}}"#
                            )),
                            CommandMeta::new(owner.clone()),
                        )
                        .await
                        .unwrap();
                    // Read-your-writes: once the replica holds the write's position, it
                    // answers as the ledger does about what the write made.
                    replica
                        .wait_for(done.seq, Duration::from_secs(10))
                        .await
                        .unwrap();
                    let scope: Scope = format!("inbox:{inbox}").parse().unwrap();
                    assert_eq!(
                        replica.check(&org, &owner, &view, &scope, later()),
                        ledger.views().check(&org, &owner, &view, &scope, later()),
                    );
                    assert!(replica.check(&org, &owner, &view, &scope, later()));
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let head = ledger.seq();
    assert_eq!(
        replica.wait_for(head, Duration::from_secs(10)).await,
        Ok(head)
    );
    assert_eq!(replica.views().difference(&ledger.views()), None);
    assert_eq!(replica.broken(), None);
    // A position never written: the wait says how far the replica got.
    assert_eq!(
        replica
            .wait_for(head + 1, Duration::from_millis(50))
            .await
            .unwrap_err(),
        ReplicaError::Timeout {
            wanted: head + 1,
            reached: head,
            waited: Duration::from_millis(50)
        }
    );
    following.abort();
    ledger.shutdown();
}

#[tokio::test]
async fn a_record_that_does_not_hold_stops_the_replica_at_the_last_good_event() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = ledger(log.clone());
    for (i, json) in [
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
        r#"{"type":"create_team","org":"acme","team":"sales"}"#,
        r#"{"type":"create_team","org":"acme","team":"legal"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let out = ledger
            .submit(cmd(json), CommandMeta::new(user("ann")))
            .await
            .unwrap();
        assert_eq!(out.seq, i as u64 + 1);
    }
    let records: Vec<Record> = log.read(1, 10).unwrap();
    assert_eq!(records.len(), 4);

    // Its bytes changed, its link left alone: seen, nothing from it on folded.
    let replica = Replica::new();
    let mut forged = records.clone();
    let last = forged[2].bytes.len() - 1;
    forged[2].bytes[last] ^= 0x01;
    assert_eq!(
        replica.apply(&forged),
        Err(ReplicaError::Tampered(Tamper::Changed { seq: 3 }, 2))
    );
    assert_eq!(replica.seq(), 2);
    assert_eq!(replica.views().seq(), 2);
    // It stays stopped: even the true records are refused, and waiters are told.
    assert!(matches!(
        replica.apply(&records[2..]),
        Err(ReplicaError::Stopped(_))
    ));
    assert!(matches!(
        replica.wait_for(3, Duration::from_secs(1)).await,
        Err(ReplicaError::Stopped(_))
    ));

    // A record skipped: the next one is missing.
    let replica = Replica::new();
    assert_eq!(replica.apply(&records[..1]), Ok(1));
    assert_eq!(
        replica.apply(&records[2..]),
        Err(ReplicaError::Tampered(Tamper::Missing { seq: 2 }, 1))
    );

    // The true records, in batches of any size: the ledger's views.
    let replica = Replica::new();
    assert_eq!(replica.apply(&records[..1]), Ok(1));
    assert_eq!(replica.apply(&[]), Ok(1));
    assert_eq!(replica.apply(&records[1..]), Ok(4));
    assert_eq!(replica.views().difference(&ledger.views()), None);
    ledger.shutdown();
}

/// A server's records over HTTP (`Replica::follow_server`), from a stand-in server whose
/// answers are scripted: a stream that ends is resumed after the last record folded, a message
/// that does not read as records is passed over by resuming, and a forged record stops the
/// replica at the last good event.
#[test]
fn a_replica_following_a_server_resumes_where_it_stopped_and_refuses_a_forged_record() {
    use axum::http::{header, HeaderMap};
    use permledger_api::StoredRecord;
    use std::sync::Mutex;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = rt.block_on(async {
        let ledger = ledger(log.clone());
        for json in [
            r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
            r#"{"type":"create_team","org":"acme","team":"sales"}"#,
            r#"{"type":"create_team","org":"acme","team":"legal"}"#,
        ] {
            ledger
                .submit(cmd(json), CommandMeta::new(user("ann")))
                .await
                .unwrap();
        }
        ledger
    });
    let records: Vec<StoredRecord> = log
        .read(1, 10)
        .unwrap()
        .iter()
        .map(StoredRecord::from)
        .collect();
    let mut forged = records[2..].to_vec();
    // Its last byte changed, its link left alone.
    let end = forged[0].bytes.len();
    let last = u8::from_str_radix(&forged[0].bytes[end - 2..], 16).unwrap();
    forged[0]
        .bytes
        .replace_range(end - 2.., &format!("{:02x}", last ^ 0x01));
    let message =
        |id: u64, data: String| format!(": hello\n\nid: {id}\nevent: records\ndata: {data}\n\n");
    let answers = [
        message(2, serde_json::to_string(&records[..2]).unwrap()),
        message(3, "[{\"seq\": 3}".into()),
        message(4, serde_json::to_string(&forged).unwrap()),
    ];
    let asked: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let app = {
        let asked = asked.clone();
        axum::Router::new().route(
            "/v1/records",
            axum::routing::get(move |headers: HeaderMap| {
                let asked = asked.clone();
                let answers = answers.clone();
                async move {
                    let mut asked = asked.lock().unwrap();
                    asked.push(
                        headers
                            .get("last-event-id")
                            .map(|v| v.to_str().unwrap().to_string()),
                    );
                    let body = answers.get(asked.len() - 1).cloned().unwrap_or_default();
                    ([(header::CONTENT_TYPE, "text/event-stream")], body)
                }
            }),
        )
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });

    let client =
        permledger_client::Client::new(&format!("http://{addr}"), Some("t"), None).unwrap();
    let (replica, following) = Replica::follow_server(client);
    let ended = following.join().unwrap();
    assert_eq!(ended, ReplicaError::Tampered(Tamper::Changed { seq: 3 }, 2));
    assert_eq!(replica.seq(), 2);
    assert_eq!(replica.broken(), Some(&ended));
    assert_eq!(
        *asked.lock().unwrap(),
        vec![None, Some("2".to_string()), Some("2".to_string())]
    );
    let of_two = Replica::new();
    of_two.apply(&log.read(1, 2).unwrap()).unwrap();
    assert_eq!(replica.views().difference(&of_two.views()), None);
    ledger.shutdown();
}
