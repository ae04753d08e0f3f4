//! Checkpoints: an open from one answers exactly as a fold of the whole log; one that cannot be
//! trusted is passed over, with a warning naming it, down to the whole fold; the events below a
//! checkpoint are proven unchanged before a writer appends to them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use permledger_domain::{Command, CommandMeta, OrgId, Timestamp, UserId};
use permledger_ledger::{checkpoint, Below, Checkpoints, Ledger, ManualClock, OpenError};
use permledger_log::{EventLog, MemoryLog, Tamper};

fn cmd(json: &str) -> Command {
    serde_json::from_str(json).unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Timestamp::parse("2026-03-01T09:00:00Z").unwrap(),
    ))
}

fn now() -> Timestamp {
    Timestamp::parse("2026-03-02T00:00:00Z").unwrap()
}

/// Runs `n` commands over two orgs (members invited, given roles, some suspended), starting
/// at the command numbered `from`.
fn story(ledger: &Ledger, from: usize, n: usize) {
    for i in from..from + n {
        let org = ["acme", "globex"][i % 2];
        let o = format!(r#""org":"{org}""#);
        let u = format!("u{}", i / 4);
        let json = match i % 8 {
            0 | 1 => format!(
                r#"{{"type":"invite",{o},"invite":"i{i}","email":"{u}@x.test","role":"org_member"}}"#
            ),
            2 | 3 => format!(r#"{{"type":"create_team",{o},"team":"t{i}"}}"#),
            4 | 5 => format!(
                r#"{{"type":"create_inbox",{o},"inbox":"b{i}","team":"t{}"}}"#,
                i - 2
            ),
            _ => format!(r#"{{"type":"rename_org",{o},"name":"Name {i}"}}"#),
        };
        let owner = if org == "acme" { "ann" } else { "gus" };
        ledger
            .submit_blocking(cmd(&json), CommandMeta::new(UserId::new(owner).unwrap()))
            .unwrap();
    }
}

fn two_orgs(log: Arc<dyn EventLog>) -> Ledger {
    let ledger = Ledger::open(log, clock()).unwrap();
    for (owner, org) in [("ann", "acme"), ("gus", "globex")] {
        ledger
            .submit_blocking(
                cmd(&format!(
                    r#"{{"type":"create_org","org":"{org}","preset":"teaminbox"}}"#
                )),
                CommandMeta::new(UserId::new(owner).unwrap()),
            )
            .unwrap();
    }
    ledger
}

fn open(
    log: &Arc<dyn EventLog>,
    store: &Checkpoints,
    below: Below,
) -> Result<(Ledger, Option<u64>, Vec<String>), OpenError> {
    let mut warnings = Vec::new();
    let (ledger, at) = Ledger::open_from(
        log.clone(),
        clock(),
        store,
        below,
        &mut |w| warnings.push(w),
        |_, _| {},
    )?;
    Ok((ledger, at.map(|d| d.seq), warnings))
}

/// The views of a fold of the whole log, compared with the ledger's.
fn same_as_a_whole_fold(log: &Arc<dyn EventLog>, ledger: &Ledger) {
    let whole = permledger_ledger::replay(&**log, |_, _| {}).unwrap();
    assert_eq!(ledger.views().difference(&whole), None);
}

#[test]
fn an_open_from_a_checkpoint_folds_the_tail_and_answers_as_the_whole_fold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path().join("checkpoints"), 3);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(log.clone());
    story(&ledger, 0, 40);
    let written = ledger
        .shutdown_with_checkpoint(&store, now())
        .unwrap()
        .unwrap();
    assert_eq!(written.seq, 42);
    assert!(written.path.ends_with("00000000000000000042.ckpt"));

    let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
    assert_eq!((at, warnings.len()), (Some(42), 0));
    same_as_a_whole_fold(&log, &ledger);
    story(&ledger, 40, 30);
    same_as_a_whole_fold(&log, &ledger);
    ledger.shutdown();

    // From the checkpoint at 42, the tail of 30 events folded and checked.
    let (ledger, at, _) = open(&log, &store, Below::InBackground).unwrap();
    assert_eq!(at, Some(42));
    assert_eq!(ledger.seq(), 72);
    same_as_a_whole_fold(&log, &ledger);
    // The writer goes on from the right versions: its next command lands after 72.
    story(&ledger, 70, 2);
    same_as_a_whole_fold(&log, &ledger);
    ledger.shutdown();
}

#[test]
fn checkpoints_are_pruned_to_the_newest_few_and_written_behind_a_serving_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path().join("checkpoints"), 2);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(log.clone());
    for round in 0..4 {
        story(&ledger, round * 10, 10);
        let upto = ledger.seq();
        let written = checkpoint::behind(&*log, &store, upto, now(), &mut |w| panic!("{w}"))
            .unwrap()
            .unwrap();
        assert_eq!(written.seq, upto);
        // Nothing new: nothing written.
        assert!(
            checkpoint::behind(&*log, &store, upto, now(), &mut |w| panic!("{w}"))
                .unwrap()
                .is_none()
        );
    }
    let kept: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [42, 32]);
    // Each was made from the one before and the log: it holds what a fold up to it holds.
    let from_store = store
        .restore(&*log, &|_| true, &mut |w| panic!("{w}"))
        .unwrap()
        .unwrap();
    let restored = from_store.opened.decode().unwrap();
    let upto = permledger_ledger::replay_until(&*log, 42, |_, _| {}).unwrap();
    assert_eq!(restored.difference(&upto), None);
    ledger.shutdown();
}

/// The orgs of a checkpoint are decoded when first used, with their events of the tail: a
/// ledger opened from one with a tail behind it takes commands and answers checks on every
/// org at once, from several threads, while its background thread decodes them, and ends
/// where a whole fold of the log ends.
#[test]
fn orgs_decoded_when_first_used_take_commands_and_checks_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path().join("checkpoints"), 3);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(log.clone());
    story(&ledger, 0, 40);
    ledger.write_checkpoint(&store, now()).unwrap();
    // A tail behind the checkpoint, on both orgs.
    story(&ledger, 40, 20);
    ledger.shutdown();

    for _ in 0..5 {
        let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
        assert_eq!((at, warnings.len()), (Some(42), 0));
        let ledger = Arc::new(ledger);
        let from = log.head().unwrap().seq as usize;
        std::thread::scope(|s| {
            for (i, org) in ["acme", "globex"].into_iter().enumerate() {
                let ledger = ledger.clone();
                s.spawn(move || {
                    let org = OrgId::new(org).unwrap();
                    let owner = UserId::new(["ann", "gus"][i]).unwrap();
                    let invite = "org.members.invite".parse().unwrap();
                    for _ in 0..50 {
                        assert!(ledger.views().check(
                            &org,
                            &owner,
                            &invite,
                            &permledger_domain::Scope::Org,
                            now()
                        ));
                    }
                });
            }
            let ledger = ledger.clone();
            s.spawn(move || story(&ledger, from, 16));
        });
        // The background thread ends with every org decoded.
        ledger.settle();
        assert_eq!(ledger.views().cold_orgs(), 0);
        same_as_a_whole_fold(&log, &ledger);
        Arc::try_unwrap(ledger).ok().unwrap().shutdown();
    }
}

/// Each way a checkpoint can be wrong, and the words its warning must hold.
type Spoil = Box<dyn Fn(&Path, &Path)>;

fn spoilers() -> Vec<(&'static str, Spoil, &'static str)> {
    vec![
        (
            "a byte changed",
            Box::new(|p: &Path, _: &Path| {
                let mut b = std::fs::read(p).unwrap();
                let i = b.len() - 10;
                b[i] ^= 1;
                std::fs::write(p, b).unwrap();
            }),
            "does not match its checksum",
        ),
        (
            "cut short",
            Box::new(|p: &Path, _: &Path| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            }),
            "ends before its last section",
        ),
        (
            "of a later format",
            Box::new(|p: &Path, _: &Path| {
                let mut b = std::fs::read(p).unwrap();
                b[8] = 9;
                std::fs::write(p, b).unwrap();
            }),
            "of format 9",
        ),
        (
            "not a checkpoint",
            Box::new(|p: &Path, _: &Path| std::fs::write(p, b"hello").unwrap()),
            "cut short",
        ),
        (
            "renamed to another position",
            Box::new(|p: &Path, _: &Path| {
                std::fs::rename(p, p.with_file_name("00000000000000000030.ckpt")).unwrap()
            }),
            "its name says event 30 and its header event 42",
        ),
        (
            "taken from another ledger",
            Box::new(|p: &Path, other: &Path| std::fs::copy(other, p).map(|_| ()).unwrap()),
            "the log's link at event 42 is not the one it was taken at",
        ),
    ]
}

#[test]
fn a_checkpoint_that_cannot_be_trusted_is_passed_over_with_a_warning_naming_it() {
    // Another ledger's checkpoint at the same position, for the misplaced case.
    let other_dir = tempfile::tempdir().unwrap();
    let other_store = Checkpoints::new(other_dir.path(), 3);
    let other_log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let other = two_orgs(other_log);
    story(&other, 1, 40);
    let other_file = other
        .shutdown_with_checkpoint(&other_store, now())
        .unwrap()
        .unwrap()
        .path;

    for (what, spoil, words) in spoilers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Checkpoints::new(dir.path(), 3);
        let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
        let ledger = two_orgs(log.clone());
        story(&ledger, 0, 20);
        let older = ledger.write_checkpoint(&store, now()).unwrap();
        story(&ledger, 20, 20);
        let newest = ledger
            .shutdown_with_checkpoint(&store, now())
            .unwrap()
            .unwrap();
        spoil(&newest.path, &other_file);

        let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
        assert_eq!(at, Some(older.seq), "{what}: the older checkpoint is taken");
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        assert!(warnings[0].contains(words), "{what}: {}", warnings[0]);
        assert!(
            warnings[0].contains("is passed over"),
            "{what}: {}",
            warnings[0]
        );
        same_as_a_whole_fold(&log, &ledger);
        ledger.shutdown();

        // With the older one gone too, the whole log is folded.
        std::fs::remove_file(&older.path).unwrap();
        let (ledger, at, _) = open(&log, &store, Below::Now).unwrap();
        assert_eq!(at, None, "{what}");
        same_as_a_whole_fold(&log, &ledger);
        ledger.shutdown();
    }
}

#[test]
fn a_checkpoint_beyond_the_logs_head_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path(), 3);
    let long: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(long);
    story(&ledger, 0, 30);
    ledger
        .shutdown_with_checkpoint(&store, now())
        .unwrap()
        .unwrap();
    // A shorter log, as after restoring an older copy of the folder's log alone.
    let short: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(short.clone());
    story(&ledger, 0, 10);
    ledger.shutdown();
    let (ledger, at, warnings) = open(&short, &store, Below::Now).unwrap();
    assert_eq!(at, None);
    assert!(
        warnings[0].contains("stands at event 32, beyond the log's last event 12"),
        "{warnings:?}"
    );
    same_as_a_whole_fold(&short, &ledger);
}

#[test]
fn a_change_below_the_checkpoint_stops_a_writer_and_a_server_takes_no_more_commands() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path(), 3);
    let memory = Arc::new(MemoryLog::new());
    let log: Arc<dyn EventLog> = memory.clone();
    let ledger = two_orgs(log.clone());
    story(&ledger, 0, 20);
    ledger
        .shutdown_with_checkpoint(&store, now())
        .unwrap()
        .unwrap();
    // Event 5's bytes changed, its stored link left: only rereading event 5 shows it.
    let mut bytes = log.read(5, 1).unwrap()[0].bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    memory.tamper(5, bytes).unwrap();

    let err = open(&log, &store, Below::Now).err().unwrap();
    assert_eq!(err, OpenError::Tampered(Tamper::Changed { seq: 5 }));

    let (ledger, at, _) = open(&log, &store, Below::InBackground).unwrap();
    assert_eq!(at, Some(22));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ledger.read_only().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the damage was never found"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let why = ledger.read_only().unwrap();
    assert!(why.contains("event 5 was changed"), "{why}");
    let refused = ledger
        .submit_blocking(
            cmd(r#"{"type":"create_team","org":"acme","team":"late"}"#),
            CommandMeta::new(UserId::new("ann").unwrap()),
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("damaged below the checkpoint"),
        "{refused}"
    );
    assert_eq!(log.head().unwrap().seq, 22, "nothing was appended");
}

#[test]
fn a_reader_of_one_org_reads_that_orgs_part_and_answers_as_the_whole_fold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path(), 3);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(log.clone());
    story(&ledger, 0, 30);
    ledger.write_checkpoint(&store, now()).unwrap();
    story(&ledger, 30, 11);
    ledger.shutdown();
    let acme = OrgId::new("acme").unwrap();
    let (reader, damage) = Ledger::open_read_only_from(
        log.clone(),
        &store,
        &|o| o == &acme,
        &mut |w| panic!("{w}"),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(damage, None);
    let whole = permledger_ledger::replay(&*log, |_, _| {}).unwrap();
    let views = reader.views();
    assert_eq!(views.seq(), whole.seq());
    assert_eq!(views.live.orgs.len(), 1);
    assert_eq!(views.live.org(&acme), whole.live.org(&acme));
    assert_eq!(views.histories.get(&acme), whole.histories.get(&acme));
    for seq in 0..=whole.seq() {
        let at = Some(permledger_views::At::Seq(seq));
        assert_eq!(
            views.moment(at.as_ref(), now()),
            whole.moment(at.as_ref(), now())
        );
    }
}

/// Renames `org` (owned by `owner`) `n` times: events for that org alone.
fn renames(ledger: &Ledger, owner: &str, org: &str, n: usize) {
    for _ in 0..n {
        let name = format!("{org} {}", ledger.seq());
        let json = format!(r#"{{"type":"rename_org","org":"{org}","name":"{name}"}}"#);
        ledger
            .submit_blocking(cmd(&json), CommandMeta::new(UserId::new(owner).unwrap()))
            .unwrap();
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// After a whole checkpoint, the next ones are deltas on it holding only the orgs with events
/// since the newest: opened, they answer as a whole fold; the base stays while a kept delta
/// needs it; a delta whose base is gone or another is passed over with a warning naming it.
#[test]
fn later_checkpoints_are_deltas_holding_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Checkpoints::new(dir.path().join("checkpoints"), 2);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let ledger = two_orgs(log.clone());
    ledger
        .submit_blocking(
            cmd(r#"{"type":"create_org","org":"initech","preset":"teaminbox"}"#),
            CommandMeta::new(UserId::new("ivy").unwrap()),
        )
        .unwrap();
    story(&ledger, 0, 60);
    let warn_none = &mut |w: String| panic!("{w}");
    let whole = checkpoint::behind(&*log, &store, ledger.seq(), now(), warn_none)
        .unwrap()
        .unwrap();
    assert_eq!(file_name(&whole.path), format!("{:020}.ckpt", whole.seq));
    let mut deltas = Vec::new();
    for _ in 0..3 {
        renames(&ledger, "ivy", "initech", 3);
        let delta = checkpoint::behind(&*log, &store, ledger.seq(), now(), warn_none)
            .unwrap()
            .unwrap();
        assert_eq!(
            file_name(&delta.path),
            format!("{:020}-{:020}.ckpt", delta.seq, whole.seq)
        );
        assert!(
            delta.bytes * 2 < whole.bytes,
            "{} bytes beside {}",
            delta.bytes,
            whole.bytes
        );
        // Its header lists initech alone; the other orgs are as in the base.
        let (header, _, _) = checkpoint::read_header(&delta.path).unwrap();
        assert_eq!(header.orgs(), 1);
        deltas.push(delta);
    }
    // The two newest kept, and the base they need.
    let kept: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [deltas[2].seq, deltas[1].seq, whole.seq]);
    // A checkpoint the ledger writes of its own views (at a clean shutdown) is a delta too.
    renames(&ledger, "ivy", "initech", 1);
    let last = ledger.write_checkpoint(&store, now()).unwrap();
    assert!(file_name(&last.path).contains('-'));
    // When most of the views changed, a whole checkpoint serves better than a delta.
    story(&ledger, 60, 2);
    let most = checkpoint::behind(&*log, &store, ledger.seq(), now(), warn_none)
        .unwrap()
        .unwrap();
    assert_eq!(file_name(&most.path), format!("{:020}.ckpt", most.seq));
    // Pruned to the two newest: that whole one and the last delta (and its base).
    let kept: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [most.seq, last.seq, whole.seq]);
    std::fs::remove_file(&most.path).unwrap();
    ledger.shutdown();

    let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
    assert_eq!((at, warnings), (Some(last.seq), vec![]));
    same_as_a_whole_fold(&log, &ledger);
    ledger.shutdown();
    let compared = permledger_ledger::compare_checkpoints(&*log, &store, |_| {}).unwrap();
    assert!(compared.iter().all(|c| c.agrees.is_ok()), "{compared:?}");

    // Another whole checkpoint under the base's name: every delta on it is passed over.
    let base = whole.path.clone();
    let moved = dir.path().join("moved");
    std::fs::rename(&base, &moved).unwrap();
    let other = Checkpoints::new(dir.path().join("other"), 2);
    let views = permledger_ledger::replay_until(&*log, whole.seq, |_, _| {}).unwrap();
    let link = checkpoint::link_at(&*log, whole.seq).unwrap();
    let impostor = other
        .write_whole(
            &views,
            link,
            Timestamp::parse("2026-03-05T00:00:00Z").unwrap(),
        )
        .unwrap();
    std::fs::copy(&impostor.path, &base).unwrap();
    let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
    // The impostor itself is a good checkpoint of the log at its position.
    assert_eq!(at, Some(whole.seq));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("is not the checkpoint it was written on"),
        "{}",
        warnings[0]
    );
    same_as_a_whole_fold(&log, &ledger);
    ledger.shutdown();

    // The base gone: the deltas are passed over, naming it, and the log is folded whole.
    std::fs::remove_file(&base).unwrap();
    let (ledger, at, warnings) = open(&log, &store, Below::Now).unwrap();
    assert_eq!((at, warnings.len()), (None, 1), "{warnings:?}");
    assert!(warnings[0].contains(&file_name(&base)), "{}", warnings[0]);
    same_as_a_whole_fold(&log, &ledger);
    // The next checkpoint is whole again.
    renames(&ledger, "ivy", "initech", 1);
    let again = ledger.write_checkpoint(&store, now()).unwrap();
    assert!(!file_name(&again.path).contains('-'));
    ledger.shutdown();
}
