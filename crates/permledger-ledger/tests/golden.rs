//! The golden log: events written by the first version, committed under `fixtures/golden/`, must
//! decode, link and mean the same forever; so must those of every later envelope format (v2 adds
//! the principal and the cause). `PERMLEDGER_WRITE_GOLDEN=1` writes a log's bytes when they are
//! absent and its JSON view always: do it for a new format's log, never over committed bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use permledger_domain::testkit::TestLedger;
use permledger_domain::{EventPayload, OrgId, State, UserId};
use permledger_log::chain::{link, Hash};
use permledger_log::envelope;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/golden")
}

/// A story that records every event type at least once.
fn story() -> TestLedger {
    let mut l = TestLedger::default();
    let steps: &[(&str, &str)] = &[
        (
            "ann",
            r#"{"type":"create_org","org":"acme","preset":"teaminbox","name":"Acme"}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
        ),
        (
            "ann",
            r#"{"type":"declare_permission","org":"acme","key":"inbox.thread.snooze","kind":"inbox","description":"snooze threads"}"#,
        ),
        (
            "ann",
            r#"{"type":"define_role","org":"acme","role":"snoozer","kind":"inbox","permissions":["inbox.thread.view"]}"#,
        ),
        (
            "ann",
            r#"{"type":"change_role","org":"acme","role":"snoozer","add":["inbox.thread.snooze"]}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_role","org":"acme","role":"snoozer","name":"Snoozer"}"#,
        ),
        (
            "ann",
            r#"{"type":"set_default_role","org":"acme","kind":"inbox","role":"snoozer"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_team","org":"acme","team":"support","name":"Support"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"sales"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_inbox","org":"acme","inbox":"billing","name":"Billing"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"leads","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"move_inbox","org":"acme","inbox":"leads","team":"sales"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i1","email":"mo@acme.test","role":"org_moderator","assignments":[{"scope":"inbox:billing","role":"inbox_admin"}],"grants":[{"scope":"team:support","permission":"team.tags.manage","expires_at":"2026-06-01T00:00:00Z"}],"expires_at":"2026-04-01T00:00:00Z"}"#,
        ),
        (
            "mo",
            r#"{"type":"accept_invite","org":"acme","invite":"i1"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test"}"#,
        ),
        (
            "ann",
            r#"{"type":"revoke_invite","org":"acme","invite":"i2"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i3","email":"guest@else.test","guest":true}"#,
        ),
        (
            "gus",
            r#"{"type":"decline_invite","org":"acme","invite":"i3"}"#,
        ),
        (
            "mo",
            r#"{"type":"create_invite_link","org":"acme","link":"l1","max_uses":5,"expires_at":"2026-05-01T00:00:00Z"}"#,
        ),
        (
            "bob",
            r#"{"type":"join_by_link","org":"acme","token":"$token"}"#,
        ),
        (
            "mo",
            r#"{"type":"revoke_invite_link","org":"acme","link":"l1"}"#,
        ),
        (
            "mo",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"team_member","expires_at":"2026-03-15T00:00:00Z"}"#,
        ),
        (
            "mo",
            r#"{"type":"unassign","org":"acme","user":"bob","scope":"team:support"}"#,
        ),
        (
            "mo",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.view"}"#,
        ),
        (
            "mo",
            r#"{"type":"revoke","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.view"}"#,
        ),
        (
            "mo",
            r#"{"type":"mask","org":"acme","scope":"team:sales","pattern":"inbox.thread.*"}"#,
        ),
        (
            "mo",
            r#"{"type":"unmask","org":"acme","scope":"team:sales","pattern":"inbox.thread.*"}"#,
        ),
        (
            "mo",
            r#"{"type":"suspend_member","org":"acme","user":"bob"}"#,
        ),
        (
            "mo",
            r#"{"type":"reactivate_member","org":"acme","user":"bob"}"#,
        ),
        (
            "mo",
            r#"{"type":"remove_member","org":"acme","user":"bob"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i4","email":"cy@acme.test"}"#,
        ),
        (
            "cy",
            r#"{"type":"accept_invite","org":"acme","invite":"i4"}"#,
        ),
        ("cy", r#"{"type":"leave_org","org":"acme"}"#),
        (
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"mo","former_owner_role":"org_moderator"}"#,
        ),
        (
            "mo",
            r#"{"type":"set_default_role","org":"acme","kind":"inbox","role":"inbox_member"}"#,
        ),
        (
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"inbox_admin","move_to":"snoozer"}"#,
        ),
        (
            "mo",
            r#"{"type":"delete_inbox","org":"acme","inbox":"leads"}"#,
        ),
        (
            "mo",
            r#"{"type":"delete_team","org":"acme","team":"support"}"#,
        ),
    ];
    for (i, (actor, cmd)) in steps.iter().enumerate() {
        let cmd = cmd.replace("$token", &l.last_token());
        l.advance(60);
        if let Err(e) = l.run(actor, &cmd) {
            panic!("golden story step {i} ({cmd}) was refused: {e}");
        }
    }
    l
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    seq: u64,
    hash: String,
    bytes: String,
}

/// Writes the golden files of `version` from today's encoder: the bytes only when absent (they
/// are pinned forever once committed), the JSON view always.
fn write_golden(version: &str) {
    let log_path = golden_dir().join(format!("log-{version}.jsonl"));
    let json_path = golden_dir().join(format!("log-{version}.events.json"));
    std::fs::create_dir_all(golden_dir()).unwrap();
    if !log_path.exists() {
        let l = story();
        let mut prev = Hash::GENESIS;
        let mut out = String::new();
        for e in &l.events {
            let bytes = envelope::encode(e).unwrap();
            let hash = link(&prev, e.meta.seq, &bytes);
            prev = hash;
            let line = Line {
                seq: e.meta.seq,
                hash: hash.to_hex(),
                bytes: hex::encode(&bytes),
            };
            out.push_str(&serde_json::to_string(&line).unwrap());
            out.push('\n');
        }
        std::fs::write(&log_path, out).unwrap();
    }
    let decoded: Vec<_> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(|l| {
            envelope::decode(&hex::decode(serde_json::from_str::<Line>(l).unwrap().bytes).unwrap())
                .unwrap()
        })
        .collect();
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&decoded).unwrap() + "\n",
    )
    .unwrap();
}

/// The events of a golden log, its chain checked link by link, and the JSON view they must
/// decode to.
fn read_golden(version: &str) -> (Vec<(Vec<u8>, permledger_domain::Event)>, serde_json::Value) {
    if std::env::var_os("PERMLEDGER_WRITE_GOLDEN").is_some() {
        write_golden(version);
    }
    let log_path = golden_dir().join(format!("log-{version}.jsonl"));
    let json_path = golden_dir().join(format!("log-{version}.events.json"));
    let text = std::fs::read_to_string(&log_path)
        .unwrap_or_else(|_| panic!("fixtures/golden/log-{version}.jsonl is committed"));
    let mut prev = Hash::GENESIS;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line: Line = serde_json::from_str(line).unwrap();
        assert_eq!(line.seq, i as u64 + 1);
        let bytes = hex::decode(&line.bytes).unwrap();
        let hash = link(&prev, line.seq, &bytes);
        assert_eq!(
            hash.to_hex(),
            line.hash,
            "the chain of the golden {version} log breaks at {}",
            line.seq
        );
        prev = hash;
        let event = envelope::decode(&bytes).unwrap_or_else(|e| {
            panic!("golden {version} event {} no longer decodes: {e}", line.seq)
        });
        events.push((bytes, event));
    }
    let expected = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (events, expected)
}

#[test]
fn the_golden_v2_log_is_what_todays_encoder_writes_to_the_byte() {
    let (events, expected) = read_golden("v2");
    for (bytes, event) in &events {
        assert_eq!(bytes[0], envelope::ENVELOPE_FORMAT);
        assert_eq!(
            hex::encode(envelope::encode(event).unwrap()),
            hex::encode(bytes),
            "golden v2 event {} encodes differently today",
            event.meta.seq
        );
        assert_eq!(
            event.meta.principal,
            Some(permledger_domain::Principal::Local)
        );
    }
    let events: Vec<_> = events.into_iter().map(|(_, e)| e).collect();
    assert_eq!(serde_json::to_value(&events).unwrap(), expected);
    // What an acceptance gave follows from it; a deletion's moves and inboxes from the deletion.
    let caused: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| {
            let cause = e.meta.cause?;
            Some((
                e.payload.type_name(),
                events[cause as usize - 1].payload.type_name(),
            ))
        })
        .collect();
    for pair in [
        ("member_joined", "invite_accepted"),
        ("role_assigned", "invite_accepted"),
        ("permission_granted", "invite_accepted"),
        ("role_assigned", "role_deleted"),
        ("inbox_deleted", "team_deleted"),
    ] {
        assert!(caused.contains(&pair), "no {pair:?} in {caused:?}");
    }
}

#[test]
fn the_golden_v1_log_decodes_links_and_means_the_same_forever() {
    let (read, expected) = read_golden("v1");
    let mut events = Vec::new();
    for (bytes, event) in read {
        assert_eq!(bytes[0], envelope::ENVELOPE_FORMAT_V1);
        // Written before principals and causes were kept: it has neither.
        assert_eq!((&event.meta.principal, event.meta.cause), (&None, None));
        // Today's encoder writes it in today's format, which reads back the same event.
        let again = envelope::encode(&event).unwrap();
        assert_eq!(again[0], envelope::ENVELOPE_FORMAT);
        assert_eq!(envelope::decode(&again).unwrap(), event);
        events.push(event);
    }

    // Every event type of v1 is in it.
    let types: BTreeSet<&str> = events.iter().map(|e| e.payload.type_name()).collect();
    let all: BTreeSet<&str> = EventPayload::TYPE_NAMES.iter().copied().collect();
    assert_eq!(types, all, "the golden log must hold every event type");

    // It decodes to exactly what v1 wrote.
    assert_eq!(serde_json::to_value(&events).unwrap(), expected);

    // And it still means the same: a few facts of the folded state.
    let mut state = State::default();
    for e in &events {
        state.apply(e);
    }
    let acme = state.org(&OrgId::new("acme").unwrap()).unwrap();
    assert_eq!(acme.name, "Acme Inc");
    assert_eq!(acme.owner, UserId::new("mo").unwrap());
    assert!(!acme.members.contains_key(&UserId::new("bob").unwrap()));
    assert!(acme.teams.keys().map(|t| t.as_str()).eq(["sales"]));
    assert!(acme.inboxes.is_empty());
    assert!(!acme.roles.keys().any(|r| r.as_str() == "inbox_admin"));
    assert_eq!(
        acme.roles
            .values()
            .find(|r| r.name == "Snoozer")
            .unwrap()
            .patterns
            .len(),
        2
    );
}
