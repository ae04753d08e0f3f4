//! The engine end to end over both logs: ordering, group commit, idempotency across restarts,
//! time that never goes back, and refusals that record nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use permledger_domain::{Code, Command, CommandMeta, Timestamp, UserId};
use permledger_ledger::{Ledger, ManualClock, SubmitError};
use permledger_log::{EventLog, MemoryLog};
use permledger_rocks::RocksLog;

fn cmd(json: &str) -> Command {
    serde_json::from_str(json).unwrap()
}

fn meta(actor: &str) -> CommandMeta {
    CommandMeta::new(UserId::new(actor).unwrap())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Timestamp::parse("2026-03-01T09:00:00Z").unwrap(),
    ))
}

/// Two workers, as the server runs submitters on these two cores.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn seeded(log: Arc<dyn EventLog>) -> Ledger {
    let ledger = Ledger::open(log, clock()).unwrap();
    ledger
        .submit_blocking(
            cmd(r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#),
            meta("ann"),
        )
        .unwrap();
    ledger
}

#[test]
fn commands_are_durable_published_and_rebuilt_alike() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = seeded(log.clone());
    let out = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            meta("ann"),
        )
        .unwrap();
    assert_eq!(out.seq, 2);
    assert_eq!(ledger.seq(), 2);
    assert_eq!(log.head().unwrap().seq, 2);
    let live = ledger.views().live.clone();
    let rebuilt = permledger_ledger::replay(&*log, |_, _| {}).unwrap();
    assert_eq!(rebuilt.live, live);
}

#[test]
fn a_refused_command_records_nothing() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = seeded(log.clone());
    let err = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            meta("bob"),
        )
        .unwrap_err();
    assert!(matches!(err, SubmitError::Rejected(r) if r.code == Code::Forbidden));
    assert_eq!(log.head().unwrap().seq, 1);
    let mut m = meta("ann");
    m.expect_version = Some(7);
    let err = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            m,
        )
        .unwrap_err();
    assert!(matches!(err, SubmitError::Rejected(r) if r.code == Code::Conflict));
    assert_eq!(log.head().unwrap().seq, 1);
}

#[test]
fn idempotency_keys_hold_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let team = cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#);
    let mut m = meta("ann");
    m.idempotency_key = Some("k1".into());
    let first = {
        let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(dir.path()).unwrap());
        let ledger = seeded(log);
        let first = ledger.submit_blocking(team.clone(), m.clone()).unwrap();
        let again = ledger.submit_blocking(team.clone(), m.clone()).unwrap();
        assert!(again.replayed);
        assert_eq!(again.seq, first.seq);
        assert_eq!(again.events, first.events);
        ledger.shutdown();
        first
    };
    let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(dir.path()).unwrap());
    let ledger = Ledger::open(log.clone(), clock()).unwrap();
    let retried = ledger.submit_blocking(team, m.clone()).unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.events, first.events);
    assert_eq!(
        log.head().unwrap().seq,
        first.seq,
        "a retry appends nothing"
    );
    let other = cmd(r#"{"type":"create_team","org":"acme","team":"sales"}"#);
    let err = ledger.submit_blocking(other, m).unwrap_err();
    assert!(matches!(err, SubmitError::Rejected(r) if r.code == Code::Conflict));
    // RocksDB must be closed before the process exits: stop the writer that holds it.
    ledger.shutdown();
}

#[test]
fn recorded_time_never_goes_back() {
    let c = clock();
    let ledger = Ledger::open(Arc::new(MemoryLog::new()), c.clone()).unwrap();
    ledger
        .submit_blocking(
            cmd(r#"{"type":"create_org","org":"acme","preset":"blank"}"#),
            meta("ann"),
        )
        .unwrap();
    c.set(Timestamp::parse("2020-01-01T00:00:00Z").unwrap());
    let out = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            meta("ann"),
        )
        .unwrap();
    assert_eq!(
        out.events[0].meta.recorded_at,
        Timestamp::parse("2026-03-01T09:00:00Z").unwrap()
    );
}

#[test]
fn concurrent_submitters_get_contiguous_positions() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(dir.path()).unwrap());
    let ledger = seeded(log.clone());
    let rt = runtime();
    let seqs = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..20 {
                    let c = cmd(&format!(
                        r#"{{"type":"create_team","org":"acme","team":"t{t}-{i}"}}"#
                    ));
                    seqs.push(ledger.submit(c, meta("ann")).await.unwrap().seq);
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (2..=321).collect::<Vec<_>>());
    assert!(permledger_log::verify(&*log, &[], |_| {}).unwrap().is_ok());
    assert_eq!(
        ledger
            .views()
            .live
            .org(&"acme".parse().unwrap())
            .unwrap()
            .teams
            .len(),
        320
    );
    drop(rt);
    ledger.shutdown();
}

/// A caller may be answered while the rest of its group is still being folded in; whatever it
/// reads next must already hold its own write, no reader may see past the durable log, and a
/// reader sees every command whole (a role deleted with its holders moved: all its events, or
/// none).
#[test]
fn an_answered_command_is_in_every_read_that_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(dir.path()).unwrap());
    let ledger = seeded(log.clone());
    let rt = runtime();
    let acme: permledger_domain::OrgId = "acme".parse().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (ledger, log, stop) = (ledger.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let at = ledger.views().seq();
                assert!(
                    at <= log.head().unwrap().seq,
                    "read {at} before it was durable"
                );
                seen.insert(at);
            }
            seen
        })
    };
    let (ends, most_events) = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..32 {
            let (ledger, acme) = (ledger.clone(), acme.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ends, mut most_events) = (Vec::new(), 0);
                // In orgs of its own, a role held by someone, deleted with its holders moved
                // to another role: one command, several events.
                for k in 0..4 {
                    let o = format!("o{t}-{k}");
                    let own = [
                        format!(r#"{{"type":"create_org","org":"{o}","preset":"teaminbox"}}"#),
                        format!(r#"{{"type":"create_inbox","org":"{o}","inbox":"b"}}"#),
                        format!(
                            r#"{{"type":"assign_role","org":"{o}","user":"ann","scope":"inbox:b","role":"inbox_member"}}"#
                        ),
                        format!(
                            r#"{{"type":"delete_role","org":"{o}","role":"inbox_member","move_to":"inbox_observer"}}"#
                        ),
                    ];
                    for c in own {
                        let out = ledger.submit(cmd(&c), meta("ann")).await.unwrap();
                        most_events = most_events.max(out.events.len());
                        ends.push(out.seq);
                    }
                }
                for i in 0..20 {
                    let team = format!("t{t}-{i}");
                    let c = cmd(&format!(
                        r#"{{"type":"create_team","org":"acme","team":"{team}"}}"#
                    ));
                    let out = ledger.submit(c, meta("ann")).await.unwrap();
                    ends.push(out.seq);
                    assert!(
                        ledger.seq() >= out.seq,
                        "answered {} ahead of seq()",
                        out.seq
                    );
                    let views = ledger.views();
                    assert!(
                        views.seq() >= out.seq,
                        "answered {} ahead of the views",
                        out.seq
                    );
                    let org = views.live.org(&acme).unwrap();
                    assert!(
                        org.teams.contains_key(&team.parse().unwrap()),
                        "{team} not read back"
                    );
                }
                (ends, most_events)
            }));
        }
        let (mut ends, mut most_events) = (vec![1], 0);
        for t in tasks {
            let (e, m) = t.await.unwrap();
            ends.extend(e);
            most_events = most_events.max(m);
        }
        (ends, most_events)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(most_events > 1, "no command recorded several events");
    let ends: std::collections::BTreeSet<_> = ends.into_iter().collect();
    let torn: Vec<_> = seen.difference(&ends).collect();
    assert!(torn.is_empty(), "reads saw commands in part, at {torn:?}");
    assert!(seen.len() > 1);
    let stats = ledger.group_stats();
    assert!(
        stats.groups < stats.commands,
        "no group held two commands: {stats:?}"
    );
    drop(rt);
    ledger.shutdown();
}

#[test]
fn invite_links_answer_their_token_once() {
    let ledger = seeded(Arc::new(MemoryLog::new()));
    let out = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_invite_link","org":"acme","link":"l1"}"#),
            meta("ann"),
        )
        .unwrap();
    let token = out.link_token.unwrap();
    assert!(token.len() >= 64);
    let json = serde_json::to_string(&out.events[0].payload).unwrap();
    assert!(!json.contains(&token), "the token itself is never recorded");
    let join = Command::JoinByLink {
        org: "acme".parse().unwrap(),
        token,
    };
    let joined = ledger.submit_blocking(join, meta("newbie")).unwrap();
    assert_eq!(joined.events[0].payload.type_name(), "member_joined");
}

/// A log whose appends fail while `failing` is set, as a full disk would make them.
/// With `fail_every` N > 0, every Nth append fails too.
struct FlakyLog {
    inner: MemoryLog,
    failing: std::sync::atomic::AtomicBool,
    fail_every: u64,
    appends: std::sync::atomic::AtomicU64,
}

impl EventLog for FlakyLog {
    fn append(&self, c: &[permledger_log::Commit]) -> Result<(), permledger_log::LogError> {
        let n = self
            .appends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if self.failing.load(std::sync::atomic::Ordering::SeqCst)
            || (self.fail_every > 0 && n.is_multiple_of(self.fail_every))
        {
            return Err(permledger_log::LogError::Io(
                "no space left on device".into(),
            ));
        }
        self.inner.append(c)
    }
    fn read(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<permledger_log::Record>, permledger_log::LogError> {
        self.inner.read(from, limit)
    }
    fn read_org(
        &self,
        org: &permledger_domain::OrgId,
        v: u64,
        limit: usize,
    ) -> Result<Vec<permledger_log::Record>, permledger_log::LogError> {
        self.inner.read_org(org, v, limit)
    }
    fn head(&self) -> Result<permledger_log::Digest, permledger_log::LogError> {
        self.inner.head()
    }
    fn org_version(&self, org: &permledger_domain::OrgId) -> Result<u64, permledger_log::LogError> {
        self.inner.org_version(org)
    }
    fn idempotency(
        &self,
        org: &permledger_domain::OrgId,
        key: &str,
    ) -> Result<Option<permledger_log::IdempotencyEntry>, permledger_log::LogError> {
        self.inner.idempotency(org, key)
    }
    fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.watch()
    }
}

#[test]
fn a_failed_append_is_answered_as_a_failure_and_leaves_no_trace() {
    let log = Arc::new(FlakyLog {
        inner: MemoryLog::new(),
        failing: false.into(),
        fail_every: 0,
        appends: 0.into(),
    });
    let ledger = seeded(log.clone());
    let before = ledger.views().live.clone();
    log.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            meta("ann"),
        )
        .unwrap_err();
    assert!(
        matches!(&err, SubmitError::Log(e) if e.to_string().contains("no space left")),
        "{err}"
    );
    assert_eq!(
        &ledger.views().live,
        &before,
        "nothing unacknowledged is published"
    );
    log.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // The writer's own state fell back to the durable one: the same team can be created now.
    let out = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            meta("ann"),
        )
        .unwrap();
    assert_eq!(out.seq, 2);
}

#[test]
fn failed_appends_under_concurrent_load_leave_log_views_and_writer_in_step() {
    let log = Arc::new(FlakyLog {
        inner: MemoryLog::new(),
        failing: false.into(),
        fail_every: 5,
        appends: 0.into(),
    });
    let ledger = seeded(log.clone());
    // Eight submitters, each creating its own teams, while one append in five fails: groups fail
    // while the writer is deciding the next ones on top of them.
    let submitters: Vec<_> = (0..8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut failed = Vec::new();
                for i in 0..150 {
                    let team = format!("t{t}-{i}");
                    let json = format!(r#"{{"type":"create_team","org":"acme","team":"{team}"}}"#);
                    match ledger.submit_blocking(cmd(&json), meta("ann")) {
                        Ok(_) => acked.push(team),
                        Err(SubmitError::Log(_)) => failed.push(team),
                        Err(e) => panic!("{team}: {e}"),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for s in submitters {
        let (a, f) = s.join().unwrap();
        acked.extend(a);
        failed.extend(f);
    }
    assert_eq!(acked.len() + failed.len(), 1200);
    assert!(!failed.is_empty() && !acked.is_empty());
    let views = ledger.views();
    let org = views.live.org(&"acme".parse().unwrap()).unwrap();
    for team in &acked {
        assert!(
            org.teams.contains_key(&team.parse().unwrap()),
            "acked {team} is missing"
        );
    }
    for team in &failed {
        assert!(
            !org.teams.contains_key(&team.parse().unwrap()),
            "failed {team} was recorded"
        );
    }
    assert_eq!(org.teams.len(), acked.len());
    drop(views);
    // The log, the published views and the writer's own state agree: a failed team can be
    // created now, and a rebuild from the log equals what is served.
    let team = &failed[0];
    let json = format!(r#"{{"type":"create_team","org":"acme","team":"{team}"}}"#);
    let retried = (0..5).any(|_| ledger.submit_blocking(cmd(&json), meta("ann")).is_ok());
    assert!(retried, "a failed team can be created again");
    ledger.verify_projections().unwrap();
    assert_eq!(log.head().unwrap().seq, ledger.seq());
}

#[test]
fn the_audit_log_reads_from_the_durable_log() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(dir.path()).unwrap());
    let ledger = seeded(log);
    let mut m = meta("ann");
    m.reason = Some("support is growing".into());
    ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"support"}"#),
            m,
        )
        .unwrap();
    let page = ledger
        .audit(
            &"acme".parse().unwrap(),
            &UserId::new("ann").unwrap(),
            &permledger_views::audit::AuditQuery::default(),
            Timestamp::parse("2026-03-02T00:00:00Z").unwrap(),
        )
        .unwrap();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["org_created", "team_created"]);
    assert_eq!(
        page.entries[1].reason.as_deref(),
        Some("support is growing")
    );
    ledger.shutdown();
}

#[test]
fn the_memory_and_rocksdb_logs_give_identical_answers() {
    let run = |log: Arc<dyn EventLog>| {
        let ledger = seeded(log);
        let users = ["bob", "cy", "dee"];
        for (i, u) in users.iter().enumerate() {
            let invite =
                format!(r#"{{"type":"invite","org":"acme","invite":"i{i}","email":"{u}@x.test"}}"#);
            ledger.submit_blocking(cmd(&invite), meta("ann")).unwrap();
            let accept = format!(r#"{{"type":"accept_invite","org":"acme","invite":"i{i}"}}"#);
            ledger.submit_blocking(cmd(&accept), meta(u)).unwrap();
        }
        for t in 0..10 {
            let team = format!(r#"{{"type":"create_team","org":"acme","team":"t{t}"}}"#);
            ledger.submit_blocking(cmd(&team), meta("ann")).unwrap();
            let inbox =
                format!(r#"{{"type":"create_inbox","org":"acme","inbox":"b{t}","team":"t{t}"}}"#);
            ledger.submit_blocking(cmd(&inbox), meta("ann")).unwrap();
            let u = users[t % 3];
            let assign = format!(
                r#"{{"type":"assign_role","org":"acme","user":"{u}","scope":"inbox:b{t}","role":"inbox_member"}}"#
            );
            ledger.submit_blocking(cmd(&assign), meta("ann")).unwrap();
            if t % 4 == 0 {
                let del = format!(r#"{{"type":"delete_team","org":"acme","team":"t{t}"}}"#);
                ledger.submit_blocking(cmd(&del), meta("ann")).unwrap();
            }
        }
        // Refusals too: they must leave both logs alike.
        let _ = ledger.submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"t1"}"#),
            meta("bob"),
        );
        let views = ledger.views();
        let out = (views.live.clone(), views.histories.clone());
        drop(views);
        ledger.shutdown();
        out
    };
    let memory = run(Arc::new(MemoryLog::new()));
    let rocks = run(Arc::new(RocksLog::temporary().unwrap()));
    assert_eq!(memory.0, rocks.0);
    assert_eq!(memory.1, rocks.1);
}
