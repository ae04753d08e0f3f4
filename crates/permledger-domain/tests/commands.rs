//! Given a story, when a command, then the events it records or the rejection it gets: one row per
//! success and per rejection path of every command. Each row runs on a fresh copy of the story.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_domain::testkit::TestLedger;
use permledger_domain::{Code, Rejection};

/// The story every row starts from (seed 004's roles):
/// ann owns `acme` (teaminbox); team `support` with inbox `billing`; inbox `line1` under the org;
/// mo is an org moderator; tina is team admin of support; ivy is an inbox member of billing;
/// bob is a plain member; sam is suspended; invite `i-open` is pending for a new member; invite
/// link `l1` exists; a custom team role `auditor` exists and nobody holds it.
fn story() -> TestLedger {
    TestLedger::from_story(&[
        (
            "ann",
            r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"line1"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-mo","email":"mo@acme.test","role":"org_moderator"}"#,
        ),
        (
            "mo",
            r#"{"type":"accept_invite","org":"acme","invite":"i-mo"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-tina","email":"tina@acme.test","assignments":[{"scope":"team:support","role":"team_admin"}]}"#,
        ),
        (
            "tina",
            r#"{"type":"accept_invite","org":"acme","invite":"i-tina"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-ivy","email":"ivy@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_member"}]}"#,
        ),
        (
            "ivy",
            r#"{"type":"accept_invite","org":"acme","invite":"i-ivy"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-bob","email":"bob@acme.test"}"#,
        ),
        (
            "bob",
            r#"{"type":"accept_invite","org":"acme","invite":"i-bob"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-sam","email":"sam@acme.test"}"#,
        ),
        (
            "sam",
            r#"{"type":"accept_invite","org":"acme","invite":"i-sam"}"#,
        ),
        (
            "ann",
            r#"{"type":"suspend_member","org":"acme","user":"sam"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i-open","email":"new@acme.test","expires_at":"2026-03-08T00:00:00Z"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_invite_link","org":"acme","link":"l1","max_uses":1}"#,
        ),
        (
            "ann",
            r#"{"type":"define_role","org":"acme","role":"auditor","kind":"team","permissions":["team.audit.view","team.view"]}"#,
        ),
    ])
}

enum Then {
    Events(&'static [&'static str]),
    Refused(Code),
}
use Then::*;

struct Row {
    actor: &'static str,
    command: &'static str,
    then: Then,
}

const fn row(actor: &'static str, command: &'static str, then: Then) -> Row {
    Row {
        actor,
        command,
        then,
    }
}

/// What every row of a table did, to compare with its snapshot.
#[must_use = "a table's outcomes are compared with its snapshot"]
struct Outcomes(String);

impl Outcomes {
    /// Besides each row's expected event types or refusal code, the whole outcome of every row
    /// (each event's payload, or the refusal's code and message) is compared with
    /// `snapshots/NAME.txt`, so that a changed payload or message is seen in review.
    /// `UPDATE_EXPECT=1 cargo test` rewrites them.
    fn snapshot(self, name: &str) {
        expect_test::expect_file![format!("snapshots/{name}.txt")].assert_eq(&self.0);
    }
}

/// `$token` in a command stands for the story's invite link token.
fn check(rows: &[Row]) -> Outcomes {
    let base = story();
    let token = base.last_token();
    let mut failures = Vec::new();
    let mut outcomes = String::new();
    for (n, r) in rows.iter().enumerate() {
        let mut l = base.clone();
        let before = l.state.clone();
        let command = r.command.replace("$token", &token);
        let got = l.run(r.actor, &command);
        outcomes.push_str(&outcome(n, r, &got));
        let ok = match (&r.then, &got) {
            (Events(want), Ok(events)) => {
                let types: Vec<&str> = events.iter().map(|e| e.payload.type_name()).collect();
                types == *want
            }
            (Refused(code), Err(rej)) => rej.code == *code && l.state == before,
            _ => false,
        };
        if ok {
            if l.replayed() != l.state {
                failures.push(format!(
                    "row {n} ({}): replay differs from the live state",
                    r.command
                ));
            }
        } else {
            let want = match &r.then {
                Events(e) => format!("events {e:?}"),
                Refused(c) => format!("refusal `{c}`"),
            };
            let got = match got {
                Ok(events) => format!(
                    "events {:?}",
                    events
                        .iter()
                        .map(|e| e.payload.type_name())
                        .collect::<Vec<_>>()
                ),
                Err(rej) => format!("refusal {rej}"),
            };
            failures.push(format!(
                "row {n}: {} by {}: expected {want}, got {got}",
                r.command, r.actor
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    Outcomes(outcomes)
}

/// One row's outcome as it reads in a snapshot: the command, then each event's payload as JSON
/// or the refusal as `code: message`.
fn outcome(n: usize, r: &Row, got: &Result<Vec<permledger_domain::Event>, Rejection>) -> String {
    let mut out = format!("# {n} {} by {}\n", r.command, r.actor);
    match got {
        Ok(events) => {
            for e in events {
                let payload = serde_json::to_string(&e.payload).unwrap();
                out.push_str(&format!("  {payload}\n"));
            }
        }
        Err(rej) => out.push_str(&format!("  refused {}: {}\n", rej.code, rej.message)),
    }
    out
}

#[test]
fn org_commands() {
    check(&[
        row(
            "zed",
            r#"{"type":"create_org","org":"globex","preset":"reply","name":"Globex"}"#,
            Events(&["org_created", "team_created"]),
        ),
        row(
            "zed",
            r#"{"type":"create_org","org":"globex","preset":"blank"}"#,
            Events(&["org_created"]),
        ),
        row(
            "zed",
            r#"{"type":"create_org","org":"acme","preset":"blank"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "zed",
            r#"{"type":"create_org","org":"globex","preset":"blank","name":"  "}"#,
            Refused(Code::Invalid),
        ),
        row(
            "zed",
            r#"{"type":"create_org","org":"Globex","preset":"blank"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "zed",
            r#"{"type":"create_org","org":"globex","preset":"nope"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "ann",
            r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
            Events(&["org_renamed"]),
        ),
        row(
            "ann",
            r#"{"type":"rename_org","org":"acme","name":"acme"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "ann",
            r#"{"type":"rename_org","org":"nowhere","name":"X"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "bob",
            r#"{"type":"rename_org","org":"acme","name":"Bob's"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "sam",
            r#"{"type":"rename_org","org":"acme","name":"Sam's"}"#,
            Refused(Code::Suspended),
        ),
        row(
            "zed",
            r#"{"type":"rename_org","org":"acme","name":"Zed's"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"set_default_role","org":"acme","kind":"inbox","role":"inbox_observer"}"#,
            Events(&["default_role_set"]),
        ),
        row(
            "mo",
            r#"{"type":"set_default_role","org":"acme","kind":"inbox","role":"inbox_member"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"set_default_role","org":"acme","kind":"org","role":"team_admin"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"set_default_role","org":"acme","kind":"org","role":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "bob",
            r#"{"type":"set_default_role","org":"acme","kind":"org","role":"guest"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"declare_permission","org":"acme","key":"inbox.thread.snooze","kind":"inbox","description":"snooze threads"}"#,
            Events(&["permission_declared"]),
        ),
        row(
            "mo",
            r#"{"type":"declare_permission","org":"acme","key":"inbox.thread.view","kind":"inbox"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"declare_permission","org":"acme","key":"inbox.thread.snooze","kind":"team"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"declare_permission","org":"acme","key":"Snooze","kind":"inbox"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "tina",
            r#"{"type":"declare_permission","org":"acme","key":"reports.view","kind":"org"}"#,
            Refused(Code::Forbidden),
        ),
    ])
    .snapshot("org_commands");
}

#[test]
fn role_commands() {
    check(&[
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"triage","kind":"inbox","permissions":["inbox.thread.view","inbox.thread.assign"]}"#,
            Events(&["role_defined"]),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"auditor","kind":"team","permissions":[]}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"inbox","permissions":["team.view"]}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":["inbox.thread.fly"]}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":["org.billing.manage"]}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":["inbox.view","inbox.view"]}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":["inbox.thread.*"]}"#,
            Events(&["role_defined"]),
        ),
        // mo holds every administrative permission, so it may define a role with them...
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":["org.audit.view"]}"#,
            Events(&["role_defined"]),
        ),
        row(
            "bob",
            r#"{"type":"define_role","org":"acme","role":"x","kind":"org","permissions":[]}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"auditor","add":["team.tags.manage"],"remove":["team.view"]}"#,
            Events(&["role_changed"]),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"auditor"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"auditor","add":["team.view"]}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"auditor","remove":["team.tags.manage"]}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"ghost","add":["team.view"]}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"change_role","org":"acme","role":"auditor","add":["org.audit.view"]}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "tina",
            r#"{"type":"change_role","org":"acme","role":"auditor","add":["team.tags.manage"]}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"rename_role","org":"acme","role":"auditor","name":"Team auditor"}"#,
            Events(&["role_renamed"]),
        ),
        row(
            "mo",
            r#"{"type":"rename_role","org":"acme","role":"ghost","name":"Ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"rename_role","org":"acme","role":"auditor","name":""}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"auditor"}"#,
            Events(&["role_deleted"]),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"inbox_member"}"#,
            Refused(Code::RoleInUse),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"team_member"}"#,
            Refused(Code::RoleInUse),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"inbox_member","move_to":"inbox_observer"}"#,
            Events(&["role_assigned", "role_deleted"]),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"inbox_member","move_to":"team_admin"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"inbox_member","move_to":"inbox_member"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"delete_role","org":"acme","role":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "bob",
            r#"{"type":"delete_role","org":"acme","role":"auditor"}"#,
            Refused(Code::Forbidden),
        ),
    ])
    .snapshot("role_commands");
}

#[test]
fn structure_commands() {
    check(&[
        row(
            "mo",
            r#"{"type":"create_team","org":"acme","team":"sales","name":"Sales"}"#,
            Events(&["team_created"]),
        ),
        row(
            "mo",
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "tina",
            r#"{"type":"create_team","org":"acme","team":"sales"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"rename_team","org":"acme","team":"support","name":"Customer support"}"#,
            Events(&["team_renamed"]),
        ),
        row(
            "tina",
            r#"{"type":"rename_team","org":"acme","team":"nope","name":"X"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "ivy",
            r#"{"type":"rename_team","org":"acme","team":"support","name":"X"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"delete_team","org":"acme","team":"support"}"#,
            Events(&["inbox_deleted", "team_deleted"]),
        ),
        row(
            "tina",
            r#"{"type":"delete_team","org":"acme","team":"support"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"delete_team","org":"acme","team":"nope"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"create_inbox","org":"acme","inbox":"refunds","team":"support"}"#,
            Events(&["inbox_created"]),
        ),
        row(
            "tina",
            r#"{"type":"create_inbox","org":"acme","inbox":"line2"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"create_inbox","org":"acme","inbox":"line2"}"#,
            Events(&["inbox_created"]),
        ),
        row(
            "tina",
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "tina",
            r#"{"type":"create_inbox","org":"acme","inbox":"x","team":"nope"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"rename_inbox","org":"acme","inbox":"billing","name":"Billing"}"#,
            Events(&["inbox_renamed"]),
        ),
        row(
            "tina",
            r#"{"type":"rename_inbox","org":"acme","inbox":"line1","name":"Line"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"rename_inbox","org":"acme","inbox":"ghost","name":"Line"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"move_inbox","org":"acme","inbox":"line1","team":"support"}"#,
            Events(&["inbox_moved"]),
        ),
        row(
            "mo",
            r#"{"type":"move_inbox","org":"acme","inbox":"billing"}"#,
            Events(&["inbox_moved"]),
        ),
        row(
            "mo",
            r#"{"type":"move_inbox","org":"acme","inbox":"billing","team":"support"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "tina",
            r#"{"type":"move_inbox","org":"acme","inbox":"line1","team":"support"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"move_inbox","org":"acme","inbox":"billing","team":"nope"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"delete_inbox","org":"acme","inbox":"billing"}"#,
            Events(&["inbox_deleted"]),
        ),
        row(
            "ivy",
            r#"{"type":"delete_inbox","org":"acme","inbox":"billing"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"delete_inbox","org":"acme","inbox":"ghost"}"#,
            Refused(Code::NotFound),
        ),
    ])
    .snapshot("structure_commands");
}

#[test]
fn invite_commands() {
    check(&[
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_admin"}],"grants":[{"scope":"inbox:line1","permission":"inbox.thread.view"}]}"#,
            Events(&["invite_issued"]),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i-open","email":"x@acme.test"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"not-an-email"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","role":"team_admin"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","assignments":[{"scope":"team:nope","role":"team_admin"}]}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","expires_at":"2020-01-01T00:00:00Z"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","guest":true,"role":"org_member"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","guest":true}"#,
            Events(&["invite_issued"]),
        ),
        row(
            "tina",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"x@acme.test","grants":[{"scope":"org","permission":"org.billing.manage"}]}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"revoke_invite","org":"acme","invite":"i-open"}"#,
            Events(&["invite_revoked"]),
        ),
        row(
            "mo",
            r#"{"type":"revoke_invite","org":"acme","invite":"i-bob"}"#,
            Refused(Code::InviteClosed),
        ),
        row(
            "mo",
            r#"{"type":"revoke_invite","org":"acme","invite":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "bob",
            r#"{"type":"revoke_invite","org":"acme","invite":"i-open"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "new",
            r#"{"type":"decline_invite","org":"acme","invite":"i-open"}"#,
            Events(&["invite_declined"]),
        ),
        row(
            "new",
            r#"{"type":"decline_invite","org":"acme","invite":"i-bob"}"#,
            Refused(Code::InviteClosed),
        ),
        row(
            "new",
            r#"{"type":"accept_invite","org":"acme","invite":"i-open"}"#,
            Events(&["invite_accepted", "member_joined"]),
        ),
        row(
            "bob",
            r#"{"type":"accept_invite","org":"acme","invite":"i-open"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "new",
            r#"{"type":"accept_invite","org":"acme","invite":"i-bob"}"#,
            Refused(Code::InviteClosed),
        ),
        row(
            "new",
            r#"{"type":"accept_invite","org":"acme","invite":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "new",
            r#"{"type":"accept_invite","org":"nowhere","invite":"i-open"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"create_invite_link","org":"acme","link":"l2","max_uses":10,"expires_at":"2026-04-01T00:00:00Z"}"#,
            Events(&["invite_link_created"]),
        ),
        row(
            "mo",
            r#"{"type":"create_invite_link","org":"acme","link":"l1"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "mo",
            r#"{"type":"create_invite_link","org":"acme","link":"l2","max_uses":0}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"create_invite_link","org":"acme","link":"l2","role":"inbox_admin"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "bob",
            r#"{"type":"create_invite_link","org":"acme","link":"l2"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"revoke_invite_link","org":"acme","link":"l1"}"#,
            Events(&["invite_link_revoked"]),
        ),
        row(
            "mo",
            r#"{"type":"revoke_invite_link","org":"acme","link":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "new",
            r#"{"type":"join_by_link","org":"acme","token":"$token"}"#,
            Events(&["member_joined"]),
        ),
        row(
            "new",
            r#"{"type":"join_by_link","org":"acme","token":"wrong"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "bob",
            r#"{"type":"join_by_link","org":"acme","token":"$token"}"#,
            Refused(Code::AlreadyExists),
        ),
    ])
    .snapshot("invite_commands");
}

#[test]
fn access_commands() {
    check(&[
        // domain.md's example: the moderator appoints itself an observer.
        row(
            "mo",
            r#"{"type":"assign_role","org":"acme","user":"mo","scope":"inbox:billing","role":"inbox_observer"}"#,
            Events(&["role_assigned"]),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_admin"}"#,
            Events(&["role_assigned"]),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"team_admin"}"#,
            Events(&["role_assigned"]),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"ivy","scope":"inbox:billing","role":"inbox_member"}"#,
            Refused(Code::AlreadyExists),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"org","role":"org_moderator"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:line1","role":"inbox_member"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"zed","scope":"team:support","role":"team_member"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"inbox_member"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:nope","role":"team_member"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"ghost"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"team_member","expires_at":"2026-01-01T00:00:00Z"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"team_member","expires_at":"2026-03-02T00:00:00Z"}"#,
            Events(&["role_assigned"]),
        ),
        row(
            "ivy",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_member"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "sam",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_member"}"#,
            Refused(Code::Suspended),
        ),
        row(
            "tina",
            r#"{"type":"unassign","org":"acme","user":"ivy","scope":"inbox:billing"}"#,
            Events(&["unassigned"]),
        ),
        row(
            "ivy",
            r#"{"type":"unassign","org":"acme","user":"ivy","scope":"inbox:billing"}"#,
            Events(&["unassigned"]),
        ),
        row(
            "bob",
            r#"{"type":"unassign","org":"acme","user":"ivy","scope":"inbox:billing"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"unassign","org":"acme","user":"bob","scope":"inbox:billing"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"unassign","org":"acme","user":"zed","scope":"inbox:billing"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "ann",
            r#"{"type":"unassign","org":"acme","user":"bob","scope":"org"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.view","expires_at":"2026-03-02T00:00:00Z"}"#,
            Events(&["permission_granted"]),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"team:support","permission":"inbox.thread.view"}"#,
            Events(&["permission_granted"]),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"team.view"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.fly"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "ann",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"org","permission":"org.billing.manage"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"org","permission":"org.audit.view"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"zed","scope":"team:support","permission":"team.view"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "mo",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"org","permission":"org.audit.view"}"#,
            Events(&["permission_granted"]),
        ),
        row(
            "ann",
            r#"{"type":"revoke","org":"acme","user":"mo","scope":"org","permission":"org.audit.view"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "tina",
            r#"{"type":"revoke","org":"acme","user":"bob","scope":"org","permission":"org.audit.view"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"mask","org":"acme","scope":"team:support","pattern":"inbox.thread.delete_permanently"}"#,
            Events(&["permission_masked"]),
        ),
        row(
            "tina",
            r#"{"type":"mask","org":"acme","scope":"inbox:billing","pattern":"inbox.thread.*"}"#,
            Events(&["permission_masked"]),
        ),
        row(
            "tina",
            r#"{"type":"mask","org":"acme","scope":"org","pattern":"inbox.thread.*"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"mask","org":"acme","scope":"org","pattern":"org.audit.view"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"mask","org":"acme","scope":"org","pattern":"inbox.fly.*"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"mask","org":"acme","scope":"team:nope","pattern":"inbox.thread.*"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "mo",
            r#"{"type":"unmask","org":"acme","scope":"org","pattern":"inbox.thread.*"}"#,
            Refused(Code::NotFound),
        ),
        row(
            "ivy",
            r#"{"type":"unmask","org":"acme","scope":"inbox:billing","pattern":"inbox.thread.*"}"#,
            Refused(Code::Forbidden),
        ),
    ])
    .snapshot("access_commands");
}

#[test]
fn escalation_is_refused() {
    check(&[
        // tina (team admin) may hand out inbox roles made of product permissions...
        row(
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_observer"}"#,
            Events(&["role_assigned"]),
        ),
        // ...but not a grant of an administrative permission she lacks on that scope.
        row(
            "mo",
            r#"{"type":"define_role","org":"acme","role":"bad","kind":"org","permissions":["org.audit.view"]}"#,
            Events(&["role_defined"]),
        ),
        row(
            "tina",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"team:support","permission":"team.audit.view"}"#,
            Events(&["permission_granted"]),
        ),
    ])
    .snapshot("escalation_is_refused");
    let mut l = story();
    // A user who may assign org roles but lacks org.audit.view cannot give a role carrying it.
    l.run("ann", r#"{"type":"define_role","org":"acme","role":"assigner","kind":"org","permissions":["org.roles.assign"]}"#).unwrap();
    l.run("ann", r#"{"type":"define_role","org":"acme","role":"auditor_org","kind":"org","permissions":["org.audit.view"]}"#).unwrap();
    l.run(
        "ann",
        r#"{"type":"assign_role","org":"acme","user":"bob","scope":"org","role":"assigner"}"#,
    )
    .unwrap();
    let refused = l
        .run("bob", r#"{"type":"assign_role","org":"acme","user":"ivy","scope":"org","role":"auditor_org"}"#)
        .unwrap_err();
    assert_eq!(refused.code, Code::Escalation);
    assert!(
        refused.message.contains("`org.audit.view`"),
        "{}",
        refused.message
    );
    let refused = l
        .run("bob", r#"{"type":"grant","org":"acme","user":"ivy","scope":"org","permission":"org.members.invite"}"#)
        .unwrap_err();
    assert_eq!(refused.code, Code::Escalation);
    // It may still hand out what it holds itself.
    l.run(
        "bob",
        r#"{"type":"assign_role","org":"acme","user":"ivy","scope":"org","role":"assigner"}"#,
    )
    .unwrap();
}

#[test]
fn membership_commands() {
    check(&[
        row(
            "mo",
            r#"{"type":"suspend_member","org":"acme","user":"bob"}"#,
            Events(&["member_suspended"]),
        ),
        row(
            "mo",
            r#"{"type":"suspend_member","org":"acme","user":"ann"}"#,
            Refused(Code::OwnerProtected),
        ),
        row(
            "mo",
            r#"{"type":"suspend_member","org":"acme","user":"sam"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"suspend_member","org":"acme","user":"zed"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "bob",
            r#"{"type":"suspend_member","org":"acme","user":"ivy"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "mo",
            r#"{"type":"reactivate_member","org":"acme","user":"sam"}"#,
            Events(&["member_reactivated"]),
        ),
        row(
            "mo",
            r#"{"type":"reactivate_member","org":"acme","user":"bob"}"#,
            Refused(Code::Invalid),
        ),
        row(
            "mo",
            r#"{"type":"remove_member","org":"acme","user":"ivy"}"#,
            Events(&["member_removed"]),
        ),
        row(
            "mo",
            r#"{"type":"remove_member","org":"acme","user":"ann"}"#,
            Refused(Code::OwnerProtected),
        ),
        row(
            "tina",
            r#"{"type":"remove_member","org":"acme","user":"ivy"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "bob",
            r#"{"type":"leave_org","org":"acme"}"#,
            Events(&["member_left"]),
        ),
        row(
            "ann",
            r#"{"type":"leave_org","org":"acme"}"#,
            Refused(Code::OwnerProtected),
        ),
        row(
            "zed",
            r#"{"type":"leave_org","org":"acme"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "sam",
            r#"{"type":"leave_org","org":"acme"}"#,
            Refused(Code::Suspended),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"mo"}"#,
            Events(&["ownership_transferred"]),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"mo","former_owner_role":"org_moderator"}"#,
            Events(&["ownership_transferred"]),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"mo","former_owner_role":"team_admin"}"#,
            Refused(Code::KindMismatch),
        ),
        row(
            "mo",
            r#"{"type":"transfer_ownership","org":"acme","to":"mo"}"#,
            Refused(Code::Forbidden),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"zed"}"#,
            Refused(Code::NotMember),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"sam"}"#,
            Refused(Code::Suspended),
        ),
        row(
            "ann",
            r#"{"type":"transfer_ownership","org":"acme","to":"ann"}"#,
            Refused(Code::Invalid),
        ),
    ])
    .snapshot("membership_commands");
}

#[test]
fn expected_versions_and_command_metadata() {
    use permledger_domain::{Command, CommandMeta, UserId};
    let mut l = story();
    let version = l.state.org(&"acme".parse().unwrap()).unwrap().version;
    let cmd: Command =
        serde_json::from_str(r#"{"type":"create_team","org":"acme","team":"sales"}"#).unwrap();
    let mut meta = CommandMeta::new(UserId::new("ann").unwrap());
    meta.expect_version = Some(version - 1);
    assert_eq!(l.execute(&cmd, &meta).unwrap_err().code, Code::Conflict);
    meta.expect_version = Some(version);
    meta.reason = Some("x".repeat(1001));
    assert_eq!(l.execute(&cmd, &meta).unwrap_err().code, Code::Invalid);
    // A reason is one line of printable characters: a line break or an escape is refused,
    // with nothing recorded, rather than escaped later in every table and spreadsheet.
    for bad in ["two\nlines", "tab\there", "bell\u{7}", "esc\u{1b}[31m"] {
        meta.reason = Some(bad.into());
        let before = l.state.clone();
        let refusal = l.execute(&cmd, &meta).unwrap_err();
        assert_eq!(refusal.code, Code::Invalid, "{bad:?}");
        assert!(
            refusal
                .message
                .ends_with("a reason is one line of printable characters"),
            "{}",
            refusal.message
        );
        assert_eq!(l.state, before);
    }
    meta.reason = Some("quarterly reorganisation".into());
    meta.request_id = Some("req-1".into());
    meta.principal = permledger_domain::Principal::Token {
        id: "t-1".into(),
        name: Some("hr sync".into()),
    };
    let events = l.execute(&cmd, &meta).unwrap();
    assert_eq!(events[0].meta.org_version, version + 1);
    assert_eq!(
        events[0].meta.reason.as_deref(),
        Some("quarterly reorganisation")
    );
    // Who submitted it is recorded beside the actor it names; a one-event command follows
    // from nothing else.
    assert_eq!(events[0].meta.principal, Some(meta.principal.clone()));
    assert_eq!(events[0].meta.cause, None);
    // A deletion's effects follow from it: the team's inbox goes with the team.
    let inbox: Command = serde_json::from_str(
        r#"{"type":"create_inbox","org":"acme","inbox":"leads","team":"sales"}"#,
    )
    .unwrap();
    l.execute(&inbox, &CommandMeta::new(UserId::new("ann").unwrap()))
        .unwrap();
    let delete: Command =
        serde_json::from_str(r#"{"type":"delete_team","org":"acme","team":"sales"}"#).unwrap();
    let events = l
        .execute(&delete, &CommandMeta::new(UserId::new("ann").unwrap()))
        .unwrap();
    let team_deleted = events.last().unwrap();
    assert_eq!(team_deleted.payload.type_name(), "team_deleted");
    assert_eq!(team_deleted.meta.cause, None);
    assert_eq!(events[0].payload.type_name(), "inbox_deleted");
    assert_eq!(events[0].meta.cause, Some(team_deleted.meta.seq));
}

#[test]
fn time_matters_for_invites_links_and_expiries() {
    let mut l = story();
    l.advance(8 * 24 * 3600);
    let refused = l
        .run(
            "new",
            r#"{"type":"accept_invite","org":"acme","invite":"i-open"}"#,
        )
        .unwrap_err();
    assert_eq!(refused.code, Code::InviteExpired);
    let token = {
        l.run("ann", r#"{"type":"create_invite_link","org":"acme","link":"l9","expires_at":"2026-03-10T00:00:00Z"}"#).unwrap();
        l.last_token()
    };
    l.advance(24 * 3600);
    let refused = l
        .run(
            "new",
            &format!(r#"{{"type":"join_by_link","org":"acme","token":"{token}"}}"#),
        )
        .unwrap_err();
    assert_eq!(refused.code, Code::InviteExpired);
    // The story's link allows one use: a second joiner finds it used up.
    let mut l = story();
    let token = l.last_token();
    l.run(
        "u1",
        &format!(r#"{{"type":"join_by_link","org":"acme","token":"{token}"}}"#),
    )
    .unwrap();
    let refused = l
        .run(
            "u2",
            &format!(r#"{{"type":"join_by_link","org":"acme","token":"{token}"}}"#),
        )
        .unwrap_err();
    assert_eq!(refused.code, Code::InviteClosed);
}
