//! The README's compliance walkthrough, run as written: a quarter of acme's history (with a
//! hand-set clock, written by the story below into `fixtures/compliance/acme-2026q1.jsonl`, an
//! export `permledger import` loads), and the six questions a compliance officer asks, each
//! answered by the real binary.
//!
//! `PERMLEDGER_WRITE_FIXTURES=1` writes the fixture anew from the story (after a deliberate
//! change to it or to the event format); otherwise the committed file must be exactly what the
//! story writes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use permledger_domain::testkit::TestLedger;
use permledger_domain::{Command, CommandMeta, Principal, Timestamp, UserId};
use permledger_log::chain::{link, Hash};
use permledger_log::envelope;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/compliance/acme-2026q1.jsonl")
}

fn token(id: &str, name: &str) -> Principal {
    Principal::Token {
        id: id.into(),
        name: Some(name.into()),
    }
}

/// The quarter: at each date, who did what, through which principal, under which request and
/// why.
#[allow(clippy::type_complexity)]
fn story() -> TestLedger {
    let hr = token("0193a1b2-7c4e-7d2a-9a61-5f0e2b8c4d11", "hr-sync");
    let app = token("0193a1b2-7c4e-7d2a-9a61-5f0e2b8c4d12", "support-app");
    let console = token("0193a1b2-7c4e-7d2a-9a61-5f0e2b8c4d13", "ann's console");
    let local = Principal::Local;
    let steps: Vec<(&str, &str, Principal, Option<&str>, Option<&str>, &str)> = vec![
        (
            "2026-01-05T09:00:00Z",
            "ann",
            local.clone(),
            None,
            Some("company account"),
            r#"{"type":"create_org","org":"acme","preset":"teaminbox","name":"Acme"}"#,
        ),
        (
            "2026-01-05T09:05:00Z",
            "ann",
            local.clone(),
            None,
            None,
            r#"{"type":"create_team","org":"acme","team":"support","name":"Support"}"#,
        ),
        (
            "2026-01-05T09:06:00Z",
            "ann",
            local.clone(),
            None,
            None,
            r#"{"type":"create_team","org":"acme","team":"sales","name":"Sales"}"#,
        ),
        (
            "2026-01-05T09:10:00Z",
            "ann",
            local.clone(),
            None,
            None,
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support","name":"Billing"}"#,
        ),
        (
            "2026-01-05T09:11:00Z",
            "ann",
            local.clone(),
            None,
            None,
            r#"{"type":"create_inbox","org":"acme","inbox":"leads","team":"sales","name":"Leads"}"#,
        ),
        (
            "2026-01-12T10:00:00Z",
            "ann",
            hr.clone(),
            Some("HR-100"),
            Some("new moderator"),
            r#"{"type":"invite","org":"acme","invite":"i-mo","email":"mo@acme.test","role":"org_moderator"}"#,
        ),
        (
            "2026-01-12T10:01:00Z",
            "ann",
            hr.clone(),
            Some("HR-101"),
            Some("support lead"),
            r#"{"type":"invite","org":"acme","invite":"i-tina","email":"tina@acme.test","assignments":[{"scope":"team:support","role":"team_admin"}]}"#,
        ),
        (
            "2026-01-12T10:02:00Z",
            "ann",
            hr.clone(),
            Some("HR-102"),
            Some("billing agent"),
            r#"{"type":"invite","org":"acme","invite":"i-ivy","email":"ivy@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_member"}]}"#,
        ),
        (
            "2026-01-12T10:03:00Z",
            "ann",
            hr.clone(),
            Some("HR-103"),
            Some("support agent"),
            r#"{"type":"invite","org":"acme","invite":"i-sam","email":"sam@acme.test","assignments":[{"scope":"team:support","role":"team_member"},{"scope":"inbox:billing","role":"inbox_observer"}]}"#,
        ),
        (
            "2026-01-13T08:30:00Z",
            "mo",
            app.clone(),
            None,
            None,
            r#"{"type":"accept_invite","org":"acme","invite":"i-mo"}"#,
        ),
        (
            "2026-01-13T08:40:00Z",
            "tina",
            app.clone(),
            None,
            None,
            r#"{"type":"accept_invite","org":"acme","invite":"i-tina"}"#,
        ),
        (
            "2026-01-14T09:15:00Z",
            "ivy",
            app.clone(),
            None,
            None,
            r#"{"type":"accept_invite","org":"acme","invite":"i-ivy"}"#,
        ),
        (
            "2026-01-14T09:20:00Z",
            "sam",
            app.clone(),
            None,
            None,
            r#"{"type":"accept_invite","org":"acme","invite":"i-sam"}"#,
        ),
        (
            "2026-02-03T14:00:00Z",
            "mo",
            console.clone(),
            Some("HR-110"),
            Some("covering for Sam"),
            r#"{"type":"grant","org":"acme","user":"ivy","scope":"inbox:leads","permission":"inbox.thread.reply","expires_at":"2026-03-01T00:00:00Z"}"#,
        ),
        (
            "2026-02-09T11:00:00Z",
            "mo",
            console.clone(),
            Some("HR-111"),
            Some("billing backup"),
            r#"{"type":"invite","org":"acme","invite":"i-bob","email":"bob@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_observer"}]}"#,
        ),
        (
            "2026-02-10T09:00:00Z",
            "bob",
            app.clone(),
            None,
            None,
            r#"{"type":"accept_invite","org":"acme","invite":"i-bob"}"#,
        ),
        (
            "2026-02-20T16:00:00Z",
            "mo",
            console.clone(),
            Some("SEC-12"),
            Some("observers no longer see thread contents"),
            r#"{"type":"change_role","org":"acme","role":"inbox_observer","remove":["inbox.thread.view"]}"#,
        ),
        (
            "2026-03-01T08:00:00Z",
            "ann",
            hr.clone(),
            Some("HR-120"),
            Some("on leave"),
            r#"{"type":"suspend_member","org":"acme","user":"sam"}"#,
        ),
        (
            "2026-03-02T10:00:00Z",
            "tina",
            app.clone(),
            Some("SUP-7"),
            Some("billing rota"),
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_member","expires_at":"2026-03-16T00:00:00Z"}"#,
        ),
        (
            "2026-03-10T12:00:00Z",
            "mo",
            console.clone(),
            Some("SEC-13"),
            Some("sales leads are confidential"),
            r#"{"type":"mask","org":"acme","scope":"inbox:leads","pattern":"inbox.thread.*"}"#,
        ),
        (
            "2026-03-20T09:00:00Z",
            "ann",
            hr.clone(),
            Some("HR-130"),
            Some("back from leave"),
            r#"{"type":"reactivate_member","org":"acme","user":"sam"}"#,
        ),
        (
            "2026-03-25T15:00:00Z",
            "mo",
            console,
            Some("HR-131"),
            Some("new billing agent"),
            r#"{"type":"invite","org":"acme","invite":"i-zoe","email":"zoe@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_member"}],"expires_at":"2026-04-08T00:00:00Z"}"#,
        ),
    ];
    let mut l = TestLedger::default();
    for (at, actor, principal, request, reason, json) in steps {
        l.now = Timestamp::parse(at).unwrap();
        let cmd: Command = serde_json::from_str(json).unwrap();
        let meta = CommandMeta {
            request_id: request.map(String::from),
            reason: reason.map(String::from),
            principal,
            ..CommandMeta::new(UserId::new(actor).unwrap())
        };
        l.execute(&cmd, &meta)
            .unwrap_or_else(|e| panic!("{json} was refused: {e}"));
    }
    l
}

/// The story as `permledger export` writes a log: position, link, stored bytes, event.
fn export_lines(l: &TestLedger) -> String {
    let mut prev = Hash::GENESIS;
    let mut out = String::new();
    let mut last_time = None;
    for e in &l.events {
        let mut e = e.clone();
        e.meta.event_id = uuid_of(e.meta.seq);
        let bytes = envelope::encode(&e).unwrap();
        let hash = link(&prev, e.meta.seq, &bytes);
        prev = hash;
        out.push_str(&permledger_log::transfer::event_line(
            e.meta.seq, hash, &bytes, &e,
        ));
        out.push('\n');
        last_time = Some(e.meta.recorded_at);
    }
    // Closed as every export is, signed with a key of a fixed seed so that the fixture is the
    // same at every run (its secret is public: it vouches for nothing outside this file).
    let key = permledger_log::LedgerKey::from_seed([7; 32]);
    let head = permledger_log::Digest {
        seq: l.events.len() as u64,
        hash: prev,
    };
    out.push_str(&permledger_log::transfer::end_line(
        &key.sign(head, last_time.unwrap()),
    ));
    out.push('\n');
    out
}

/// A stable UUIDv7-shaped id per position.
fn uuid_of(seq: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0193_a1b2_0000_7000_8000_0000_0000_0000 | u128::from(seq))
}

fn permledger(data: &Path, args: &[&str]) -> (i32, String) {
    let out = Process::new(env!("CARGO_BIN_EXE_permledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    (out.status.code().unwrap(), text)
}

#[test]
fn the_committed_quarter_is_what_the_story_writes() {
    let text = export_lines(&story());
    if std::env::var_os("PERMLEDGER_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(fixture().parent().unwrap()).unwrap();
        std::fs::write(fixture(), &text).unwrap();
    }
    let committed = std::fs::read_to_string(fixture())
        .expect("fixtures/compliance/acme-2026q1.jsonl is committed");
    assert!(
        committed == text,
        "the fixture differs from the story; PERMLEDGER_WRITE_FIXTURES=1 writes it anew"
    );
}

/// The README's six questions, asked of the imported quarter.
#[test]
fn the_six_questions_of_the_readme_are_answered_as_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme");
    let fixture = fixture();
    let (code, _) = permledger(&data, &["import", fixture.to_str().unwrap()]);
    assert_eq!(code, 0);

    // 1. Who could read the billing inbox on 3 March, and why?
    let (code, who) = permledger(
        &data,
        &[
            "query",
            "who-can",
            "--org",
            "acme",
            "--permission",
            "inbox.thread.view",
            "--scope",
            "inbox:billing",
            "--at",
            "2026-03-03",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        who,
        "# at seq 29, 2026-03-03T00:00:00Z\nuser\nann\nbob\nivy\n"
    );
    let (code, why) = permledger(
        &data,
        &[
            "check",
            "--org",
            "acme",
            "--user",
            "bob",
            "--permission",
            "inbox.thread.view",
            "--scope",
            "inbox:billing",
            "--at",
            "2026-03-03",
            "--explain",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        why.starts_with(
            "allowed: bob holds inbox_member on inbox:billing until 2026-03-16T00:00:00Z, \
             assigned by tina on 2026-03-02T10:00:00Z (request SUP-7: \"billing rota\")"
        ),
        "{why}"
    );
    let (code, why) = permledger(
        &data,
        &[
            "check",
            "--org",
            "acme",
            "--user",
            "sam",
            "--permission",
            "inbox.thread.view",
            "--scope",
            "inbox:billing",
            "--at",
            "2026-03-03",
            "--explain",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        why.starts_with("denied: sam is suspended since 2026-03-01T08:00:00Z, by ann"),
        "{why}"
    );

    // 2. Everything ivy could do then, and what changed over the quarter.
    let (_, access) = permledger(
        &data,
        &[
            "query",
            "access",
            "--org",
            "acme",
            "--user",
            "ivy",
            "--at",
            "2026-02-15",
        ],
    );
    assert!(
        access.contains("inbox:leads    inbox.thread.reply    allowed: ivy holds inbox.thread.reply on inbox:leads directly until 2026-03-01T00:00:00Z, granted by mo on 2026-02-03T14:00:00Z (request HR-110: \"covering for Sam\")"),
        "{access}"
    );
    let (_, timeline) = permledger(
        &data,
        &[
            "query",
            "timeline",
            "--org",
            "acme",
            "--user",
            "ivy",
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-01",
        ],
    );
    assert!(
        timeline.contains("expired at 2026-03-01T00:00:00Z"),
        "{timeline}"
    );

    // 3. The support team's trail for the quarter, as CSV.
    let (code, csv) = permledger(
        &data,
        &[
            "query",
            "audit",
            "--org",
            "acme",
            "--as",
            "mo",
            "--scope",
            "team:support",
            "--indirect",
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-01",
            "--format",
            "csv",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        csv.starts_with("seq,time,action,summary,actor,principal,"),
        "{csv}"
    );
    assert!(
        csv.contains(",member_suspended,ann suspended sam,ann,token hr-sync ("),
        "{csv}"
    );
    assert!(
        csv.contains(",role_changed,"),
        "a role redefined inside the team: {csv}"
    );
    let digest_line = csv.lines().last().unwrap().to_string();
    assert!(digest_line.starts_with("#digest,32:"), "{digest_line}");

    // 4. Who granted what in February.
    let (_, granted) = permledger(
        &data,
        &[
            "query",
            "audit",
            "--org",
            "acme",
            "--as",
            "mo",
            "--types",
            "role_assigned,permission_granted",
            "--from",
            "2026-02-01",
            "--to",
            "2026-03-01",
        ],
    );
    assert!(
        granted.contains("mo granted ivy inbox.thread.reply on inbox:leads"),
        "{granted}"
    );
    assert!(
        granted
            .contains("bob took the role inbox_observer on inbox:billing that the invite promised"),
        "{granted}"
    );

    // 5. Prove the log unaltered: the export's digest is one the log still extends.
    let digest = digest_line.trim_start_matches("#digest,");
    let (code, verified) = permledger(&data, &["verify", "--digest", digest]);
    assert_eq!(code, 0, "{verified}");

    // 6. The whole org on 3 March, and as CSV files.
    let (_, snapshot) = permledger(
        &data,
        &["query", "snapshot", "--org", "acme", "--at", "2026-03-03"],
    );
    assert!(
        snapshot.starts_with("# org acme (\"Acme\") at seq 29, 2026-03-03T00:00:00Z; digest 29:"),
        "{snapshot}"
    );
    assert!(
        snapshot.contains("  sam,suspended,false,false,"),
        "{snapshot}"
    );
    let out = dir.path().join("snapshot");
    let (code, files) = permledger(
        &data,
        &[
            "query",
            "snapshot",
            "--org",
            "acme",
            "--at",
            "2026-03-03",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(files.lines().count(), 8);
    let members = std::fs::read_to_string(out.join("members.csv")).unwrap();
    assert!(members.lines().last().unwrap().starts_with("#digest,29:"));
}
