//! What a compliance officer reads, given a story: the trail's entries whole (what changed, who
//! submitted it, what it follows from), the wider reach of `indirect` filters, explanations in
//! sentences, snapshots equal to a fold of the log's prefix, and timelines that agree with
//! checks at both ends of every interval.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::ScopeRef;
use permledger_domain::testkit::TestLedger;
use permledger_domain::{
    Command, CommandMeta, Event, OrgId, PermissionKey, Principal, Scope, Seq, Timestamp, UserId,
};
use permledger_views::audit::{audit, AuditPage, AuditQuery};
use permledger_views::export::Covers;
use permledger_views::provenance::{self, Asked, Source};
use permledger_views::snapshot;
use permledger_views::timeline::{self, Cause};
use permledger_views::{At, Moment, Views};
use proptest::prelude::*;

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Runs one command with a reason, a request id and a principal, at the ledger's clock.
fn run(
    l: &mut TestLedger,
    actor: &str,
    json: &str,
    request: Option<&str>,
    principal: Principal,
) -> Vec<Event> {
    let cmd: Command = serde_json::from_str(json).unwrap();
    let meta = CommandMeta {
        request_id: request.map(String::from),
        reason: request.map(|r| format!("ticket {r}")),
        principal,
        ..CommandMeta::new(UserId::new(actor).unwrap())
    };
    l.execute(&cmd, &meta)
        .unwrap_or_else(|e| panic!("{json} was refused: {e}"))
}

fn token(name: &str) -> Principal {
    Principal::Token {
        id: format!("{name}-id"),
        name: Some(name.to_string()),
    }
}

/// A support team with an inbox; ivy invited with a role on it, accepting; a grant with an
/// expiry; a role redefined under her; her suspension; a team deleted under someone else.
fn story() -> (TestLedger, Views) {
    let mut l = TestLedger::default();
    l.now = t("2026-03-01T09:00:00Z");
    let hr = token("hr-service");
    let steps: &[(&str, &str, Option<&str>, Principal)] = &[
        (
            "ann",
            r#"{"type":"create_org","org":"acme","preset":"teaminbox","name":"Acme"}"#,
            None,
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
            None,
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
            None,
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i1","email":"ivy@acme.test","assignments":[{"scope":"inbox:billing","role":"inbox_observer"}]}"#,
            Some("HR-101"),
            hr.clone(),
        ),
        (
            "ivy",
            r#"{"type":"accept_invite","org":"acme","invite":"i1"}"#,
            None,
            token("console"),
        ),
        (
            "ann",
            r#"{"type":"grant","org":"acme","user":"ivy","scope":"inbox:billing","permission":"inbox.thread.assign","expires_at":"2026-03-03T00:00:00Z"}"#,
            Some("HR-102"),
            hr.clone(),
        ),
        (
            "ann",
            r#"{"type":"change_role","org":"acme","role":"inbox_observer","add":["inbox.thread.reply"]}"#,
            Some("SEC-7"),
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"sales"}"#,
            None,
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"delete_team","org":"acme","team":"sales"}"#,
            None,
            Principal::Local,
        ),
        (
            "ann",
            r#"{"type":"suspend_member","org":"acme","user":"ivy"}"#,
            Some("HR-103"),
            hr,
        ),
    ];
    for (actor, json, request, principal) in steps {
        // A day between steps, so that the grant expires between the role change and the team.
        l.advance(
            if json.contains("create_team\",\"org\":\"acme\",\"team\":\"sales") {
                2 * 86_400
            } else {
                3600
            },
        );
        run(&mut l, actor, json, *request, principal.clone());
    }
    let mut v = Views::new();
    for e in &l.events {
        v.apply(e);
    }
    (l, v)
}

fn read(l: &TestLedger, v: &Views, q: &AuditQuery) -> AuditPage {
    let events: Vec<Event> = l.events.clone();
    audit(
        v,
        &acme(),
        &UserId::new("ann").unwrap(),
        q,
        l.now,
        |from, limit| {
            Ok::<_, String>(
                events
                    .iter()
                    .filter(|e| e.meta.org_version >= from)
                    .take(limit)
                    .cloned()
                    .collect(),
            )
        },
    )
    .unwrap()
}

/// Every entry, whole, as an auditor reads it: the trail of the story is a snapshot
/// (`UPDATE_EXPECT=1` rewrites it after a deliberate change).
#[test]
fn every_entry_says_what_changed_who_submitted_it_and_what_it_follows_from() {
    let (l, v) = story();
    let page = read(&l, &v, &AuditQuery::default());
    let mut text = String::new();
    for e in &page.entries {
        text.push_str(&serde_json::to_string(e).unwrap());
        text.push('\n');
    }
    expect_test::expect_file!["snapshots/audit_trail.jsonl"].assert_eq(&text);

    // The role ivy took is hers through the invite: its cause is the invite's issue, by ann,
    // under HR-101, submitted by the HR service.
    let taken = page
        .entries
        .iter()
        .find(|e| e.action == "role_assigned")
        .unwrap();
    assert_eq!(taken.actor.as_str(), "ivy");
    assert_eq!(taken.principal, Some(token("console")));
    let cause = taken.cause.as_ref().unwrap();
    assert_eq!(
        (
            cause.action.as_str(),
            cause.actor.as_str(),
            cause.request_id.as_deref(),
            &cause.principal
        ),
        (
            "invite_issued",
            "ann",
            Some("HR-101"),
            &Some(token("hr-service"))
        )
    );
}

#[test]
fn indirect_filters_reach_invites_to_the_users_address_and_what_changed_their_access() {
    let (l, v) = story();
    let types = |q: AuditQuery| -> Vec<String> {
        read(&l, &v, &q)
            .entries
            .into_iter()
            .map(|e| e.action)
            .collect()
    };
    let ivy = || Some(UserId::new("ivy").unwrap());
    // As scenarios.md defines the filter: the events about ivy.
    assert_eq!(
        types(AuditQuery {
            user: ivy(),
            ..Default::default()
        }),
        [
            "invite_accepted",
            "member_joined",
            "role_assigned",
            "permission_granted",
            "member_suspended"
        ]
    );
    // Indirect: the invite sent to her address, and the role redefined under her; the team
    // deleted was not hers and is left out.
    assert_eq!(
        types(AuditQuery {
            user: ivy(),
            indirect: true,
            ..Default::default()
        }),
        [
            "invite_issued",
            "invite_accepted",
            "member_joined",
            "role_assigned",
            "permission_granted",
            "role_changed",
            "member_suspended"
        ]
    );
    // The support team's trail: its own events; indirect, also the role change and the
    // suspension that changed what anyone could do there.
    let support = || Some("team:support".parse::<Scope>().unwrap());
    let direct = types(AuditQuery {
        scope: support(),
        ..Default::default()
    });
    assert!(
        !direct.contains(&"member_suspended".to_string()),
        "{direct:?}"
    );
    let wide = types(AuditQuery {
        scope: support(),
        indirect: true,
        ..Default::default()
    });
    for a in ["role_changed", "member_suspended"] {
        assert!(wide.contains(&a.to_string()), "{a} not in {wide:?}");
    }
    assert!(!wide.contains(&"team_deleted".to_string()), "{wide:?}");
}

#[test]
fn explanations_are_sentences_that_name_who_created_each_fact() {
    let (l, v) = story();
    let ivy = UserId::new("ivy").unwrap();
    let billing: Scope = "inbox:billing".parse().unwrap();
    let assign = PermissionKey::new("inbox.thread.assign").unwrap();
    // Just after the grant: ivy holds the permission directly.
    let after_grant = l
        .events
        .iter()
        .find(|e| e.payload.type_name() == "permission_granted")
        .unwrap();
    let at = after_grant.meta.seq;
    let o = v.org_at(&acme(), at).unwrap();
    let e = check::explain(&o, &ivy, &assign, &billing, after_grant.meta.recorded_at);
    let sources: Vec<Source> = provenance::cited(&e)
        .into_iter()
        .map(|s| Source::of(&v, &l.events[s as usize - 1]))
        .collect();
    let asked = Asked {
        org: &acme(),
        user: &ivy,
        permission: &assign,
        scope: &billing,
    };
    assert_eq!(
        provenance::sentence(&asked, &e, &sources),
        "allowed: ivy holds inbox.thread.assign on inbox:billing directly until \
         2026-03-03T00:00:00Z, granted by ann on 2026-03-01T15:00:00Z (request HR-102: \"ticket HR-102\")"
    );
    // At the end: suspended, by ann.
    let o = v.org_at(&acme(), v.seq()).unwrap();
    let e = check::explain(&o, &ivy, &assign, &billing, l.now);
    let sources: Vec<Source> = provenance::cited(&e)
        .into_iter()
        .map(|s| Source::of(&v, &l.events[s as usize - 1]))
        .collect();
    assert_eq!(
        provenance::sentence(&asked, &e, &sources),
        "denied: ivy is suspended since 2026-03-03T18:00:00Z, by ann"
    );
}

#[test]
fn a_timeline_names_the_invite_the_expiry_and_the_suspension_and_diff_agrees() {
    let (l, v) = story();
    let ivy = UserId::new("ivy").unwrap();
    let from = v.moment(Some(&At::Seq(0)), l.now).unwrap();
    let to = v.moment(None, l.now).unwrap();
    let intervals = timeline::timeline(&v, &acme(), from, to, Some(&ivy), None, &l.events);
    let of = |p: &str| {
        intervals
            .iter()
            .find(|i| i.permission.as_str() == p && i.scope.to_string() == "inbox:billing")
            .unwrap_or_else(|| panic!("no interval of {p}: {intervals:#?}"))
    };
    // The grant began with its event and ended with its expiry, inside the window.
    let assign = of("inbox.thread.assign");
    assert!(
        matches!(&assign.from.cause, Cause::Event { event } if event.action == "permission_granted")
    );
    assert_eq!(
        assign.to.as_ref().map(|p| &p.cause),
        Some(&Cause::Expired {
            at: t("2026-03-03T00:00:00Z")
        })
    );
    // Reply came with the role redefined, and went with the suspension.
    let reply = of("inbox.thread.reply");
    assert!(matches!(&reply.from.cause, Cause::Event { event } if event.action == "role_changed"));
    assert!(
        matches!(&reply.to.as_ref().unwrap().cause, Cause::Event { event } if event.action == "member_suspended")
    );
    // Over the whole window nothing of ivy's survives: diff has no gain, and the assign grant
    // that began and ended inside the window is in the timeline only.
    let rows = timeline::caused_diff(&intervals);
    assert!(rows.is_empty(), "{rows:#?}");
    // From just after the grant to the end: every loss with its cause.
    let after_grant = l
        .events
        .iter()
        .find(|e| e.payload.type_name() == "permission_granted")
        .unwrap()
        .meta
        .seq;
    let from = v.moment(Some(&At::Seq(after_grant)), l.now).unwrap();
    let intervals = timeline::timeline(&v, &acme(), from, to, Some(&ivy), None, &l.events);
    let rows = timeline::caused_diff(&intervals);
    let lost: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            let why = match &r.cause.cause {
                Cause::Event { event } => event.action.clone(),
                Cause::Expired { .. } => "expired".into(),
                Cause::Before => "before".into(),
            };
            (format!("{} {} {}", r.user, r.permission, r.scope), why)
        })
        .collect();
    let plain = permledger_views::diff::diff(&v, &acme(), from, to, Some(&ivy), None);
    assert!(plain.gained.is_empty());
    assert_eq!(
        lost.iter().map(|(k, _)| k.clone()).collect::<BTreeSet<_>>(),
        plain.lost.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(lost.contains(&(
        "ivy inbox.thread.assign inbox:billing".into(),
        "expired".into()
    )));
    assert!(lost.contains(&(
        "ivy inbox.thread.view inbox:billing".into(),
        "member_suspended".into()
    )));
}

#[test]
fn a_snapshot_holds_the_whole_org_and_its_csv_tables_end_with_the_digest() {
    let (l, v) = story();
    let at = v.moment(None, l.now).unwrap();
    let covers = Covers {
        seq: at.seq,
        hash: "ab".repeat(32),
    };
    let s = snapshot::snapshot(&v.org_at(&acme(), at.seq).unwrap(), at, covers.clone());
    assert_eq!(s.owner.as_str(), "ann");
    assert!(s.teams.iter().map(|t| t.team.as_str()).eq(["support"]));
    assert_eq!(
        s.inboxes[0].team.as_ref().map(|t| t.as_str()),
        Some("support")
    );
    let ivy = s.members.iter().find(|m| m.user.as_str() == "ivy").unwrap();
    assert_eq!(format!("{:?}", ivy.status), "Suspended");
    // The owner is listed among the members.
    assert!(s
        .members
        .iter()
        .any(|m| m.owner && m.user.as_str() == "ann"));
    for table in snapshot::SNAPSHOT_TABLES {
        let csv = snapshot::csv_table(&s, table).unwrap();
        assert_eq!(
            csv.lines().last(),
            Some(format!("#digest,{}", covers.digest()).as_str()),
            "{table}"
        );
    }
    assert!(snapshot::csv_table(&s, "secrets").is_none());
    let orgs = snapshot::orgs(&v, at.seq, |_| true);
    assert_eq!(orgs.len(), 1);
    assert_eq!((orgs[0].members, orgs[0].teams, orgs[0].inboxes), (2, 1, 1));
    assert!(snapshot::orgs(&v, at.seq, |_| false).is_empty());
    assert!(
        snapshot::orgs(&v, 0, |_| true).is_empty(),
        "no org before the first event"
    );
}

/// The event types a trail's `indirect` judges by comparing access before and after.
const INDIRECT: &[&str] = &[
    "role_changed",
    "role_deleted",
    "team_deleted",
    "inbox_deleted",
    "inbox_moved",
    "permission_masked",
    "permission_unmasked",
    "member_suspended",
    "member_reactivated",
    "member_removed",
    "member_left",
    "ownership_transferred",
];

const USERS: &[&str] = &["ann", "mo", "bob"];
const SCOPES: &[&str] = &["org", "team:support", "inbox:billing", "inbox:line1"];

/// One random command of a small org, most of them recorded.
fn command(which: u8, user: &str, scope: &str, hours: u8) -> String {
    let o = r#""org":"acme""#;
    let exp = format!(
        r#","expires_at":"2026-03-0{}T{:02}:00:00Z""#,
        2 + hours / 24,
        hours % 24
    );
    let team = scope.strip_prefix("team:").unwrap_or("support");
    match which {
        0 => format!(
            r#"{{"type":"assign_role",{o},"user":"{user}","scope":"{scope}","role":"{}"{exp}}}"#,
            match scope {
                "org" => "org_moderator",
                s if s.starts_with("team:") => "team_admin",
                _ => "inbox_member",
            }
        ),
        1 => format!(r#"{{"type":"unassign",{o},"user":"{user}","scope":"{scope}"}}"#),
        2 => format!(
            r#"{{"type":"grant",{o},"user":"{user}","scope":"{scope}","permission":"{}"{exp}}}"#,
            if scope.starts_with("inbox:") {
                "inbox.thread.view"
            } else if scope.starts_with("team:") {
                "team.view"
            } else {
                "org.audit.view"
            }
        ),
        3 => format!(r#"{{"type":"suspend_member",{o},"user":"{user}"}}"#),
        4 => format!(r#"{{"type":"reactivate_member",{o},"user":"{user}"}}"#),
        5 => format!(r#"{{"type":"mask",{o},"scope":"{scope}","pattern":"inbox.thread.*"}}"#),
        6 => format!(r#"{{"type":"unmask",{o},"scope":"{scope}","pattern":"inbox.thread.*"}}"#),
        7 => format!(
            r#"{{"type":"change_role",{o},"role":"inbox_member","remove":["inbox.thread.view"]}}"#
        ),
        8 => format!(
            r#"{{"type":"change_role",{o},"role":"inbox_member","add":["inbox.thread.view"]}}"#
        ),
        9 => format!(r#"{{"type":"delete_team",{o},"team":"{team}"}}"#),
        10 => format!(r#"{{"type":"create_team",{o},"team":"{team}"}}"#),
        11 => format!(r#"{{"type":"create_inbox",{o},"inbox":"line1","team":"support"}}"#),
        12 => format!(r#"{{"type":"delete_inbox",{o},"inbox":"billing"}}"#),
        14 => format!(r#"{{"type":"move_inbox",{o},"inbox":"line1"}}"#),
        15 => format!(r#"{{"type":"move_inbox",{o},"inbox":"line1","team":"{team}"}}"#),
        _ => format!(r#"{{"type":"remove_member",{o},"user":"{user}"}}"#),
    }
}

fn scope_of(s: &str) -> Scope {
    s.parse().unwrap()
}

fn random_story(cmds: &[(u8, usize, usize, u8, u8)]) -> TestLedger {
    let mut l = TestLedger::default();
    l.now = t("2026-03-01T09:00:00Z");
    for (actor, json) in [
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
            r#"{"type":"invite","org":"acme","invite":"a","email":"mo@x.test"}"#,
        ),
        (
            "mo",
            r#"{"type":"accept_invite","org":"acme","invite":"a"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"b","email":"bob@x.test","assignments":[{"scope":"inbox:billing","role":"inbox_member"}]}"#,
        ),
        (
            "bob",
            r#"{"type":"accept_invite","org":"acme","invite":"b"}"#,
        ),
    ] {
        l.advance(60);
        l.run(actor, json).unwrap();
    }
    for (which, user, scope, hours, gap) in cmds {
        l.advance(i64::from(*gap) * 1200);
        let _ = l.run(
            "ann",
            &command(*which, USERS[*user], SCOPES[*scope], *hours),
        );
    }
    l
}

fn story_strategy() -> impl Strategy<Value = Vec<(u8, usize, usize, u8, u8)>> {
    prop::collection::vec(
        (0..17u8, 0..USERS.len(), 0..SCOPES.len(), 0..48u8, 0..6u8),
        1..30,
    )
}

/// Whether an interval holds at a point of the walk: from its start (included) to its end
/// (excluded), points ordered by position, then time.
fn contains(i: &timeline::Interval, p: (Seq, Timestamp)) -> bool {
    (i.from.seq, i.from.time) <= p && i.to.as_ref().is_none_or(|e| p < (e.seq, e.time))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The org's snapshot at every position equals the snapshot of views fed only the events
    /// up to it: the history answers as a fold of the prefix.
    #[test]
    fn a_snapshot_at_any_position_equals_the_fold_of_its_prefix(cmds in story_strategy()) {
        let l = random_story(&cmds);
        let mut all = Views::new();
        for e in &l.events {
            all.apply(e);
        }
        let mut prefix = Views::new();
        for e in &l.events {
            prefix.apply(e);
            let n = e.meta.seq;
            let at = Moment { seq: n, time: e.meta.recorded_at };
            let covers = Covers { seq: n, hash: String::new() };
            let past = snapshot::snapshot(&all.org_at(&acme(), n).unwrap(), at, covers.clone());
            let fresh = snapshot::snapshot(&prefix.org_at(&acme(), n).unwrap(), at, covers);
            prop_assert_eq!(past, fresh, "the snapshot at {} differs from its prefix's", n);
            prop_assert_eq!(
                snapshot::orgs(&all, n, |_| true),
                snapshot::orgs(&prefix, n, |_| true)
            );
        }
    }

    /// Who holds anything on a scope, at every position: exactly the members checks allow
    /// something there (the scope's page reads only the members whose facts bear on it).
    #[test]
    fn a_scope_lists_everyone_checks_allow_there(cmds in story_strategy()) {
        let l = random_story(&cmds);
        let mut v = Views::new();
        for e in &l.events {
            v.apply(e);
        }
        for e in &l.events {
            let at = Moment { seq: e.meta.seq, time: e.meta.recorded_at };
            let o = v.org_at(&acme(), at.seq).unwrap();
            for scope in SCOPES.iter().map(|s| scope_of(s)) {
                if !check::scope_exists(&o, ScopeRef::of(&scope)) {
                    continue;
                }
                let got: Vec<UserId> = snapshot::scope_access(&o, &scope, at).into_iter().map(|(u, _)| u).collect();
                let want: Vec<UserId> = o
                    .user_ids()
                    .filter(|u| !check::permissions(&o, u, &scope, at.time).is_empty())
                    .cloned()
                    .collect();
                prop_assert_eq!(got, want, "on {} at {}", scope, at.seq);
            }
        }
    }

    /// A trail filtered by user holds exactly the events about them and, `indirect`, the
    /// invites sent to their address and the events that changed their access without naming
    /// them, page after page: the history's index of positions misses none.
    #[test]
    fn a_trail_by_user_holds_every_event_about_them_and_no_other(cmds in story_strategy(), limit in 1usize..5) {
        let l = random_story(&cmds);
        let mut v = Views::new();
        for e in &l.events {
            v.apply(e);
        }
        for (name, indirect) in [("bob", false), ("bob", true), ("mo", true), ("ann", true)] {
            let u = UserId::new(name).unwrap();
            let email = format!("{name}@x.test");
            let changed = |e: &Event| {
                let at = |seq| Moment { seq, time: e.meta.recorded_at };
                let d = permledger_views::diff::diff(&v, &acme(), at(e.meta.seq - 1), at(e.meta.seq), Some(&u), None);
                INDIRECT.contains(&e.payload.type_name()) && (!d.gained.is_empty() || !d.lost.is_empty())
            };
            let expected: Vec<Seq> = l
                .events
                .iter()
                .filter(|e| {
                    e.payload.subject_users().contains(&&u)
                        || indirect
                            && (matches!(&e.payload, permledger_domain::EventPayload::InviteIssued(i) if i.email == email)
                                || changed(e))
                })
                .map(|e| e.meta.seq)
                .collect();
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let q = AuditQuery { user: Some(u.clone()), indirect, after, limit: Some(limit), ..AuditQuery::default() };
                let page = read(&l, &v, &q);
                got.extend(page.entries.iter().map(|e| e.seq));
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            prop_assert_eq!(&got, &expected, "{} (indirect: {})", name, indirect);
        }
    }

    /// Every interval of a timeline agrees with checks: at every point the walk judged (each
    /// event, each expiry, each end), what the intervals hold is what checks allow, and every
    /// interval's start allows and its end does not. A diff's rows are exactly its gains and
    /// losses.
    #[test]
    fn every_timeline_interval_agrees_with_checks_at_its_ends(cmds in story_strategy(), start in 0usize..40) {
        let l = random_story(&cmds);
        let mut v = Views::new();
        for e in &l.events {
            v.apply(e);
        }
        let start = (start as u64).min(v.seq());
        let from = v.moment(Some(&At::Seq(start)), l.now).unwrap();
        let to = v.moment(None, l.now).unwrap();
        let bob = Some(UserId::new("bob").unwrap());
        for (user, scope) in [
            (None, None),
            (bob.clone(), None),
            (None, Some(scope_of("team:support"))),
            (None, Some(scope_of("inbox:line1"))),
            (bob, Some(scope_of("inbox:billing"))),
        ] {
            let (user, scope) = (user.as_ref(), scope.as_ref());
            let intervals = timeline::timeline(&v, &acme(), from, to, user, scope, &l.events);
            // The events the history points at are enough: the walk over them alone agrees.
            let focus = timeline::Focus::new(&v, &acme(), user, scope);
            if let Some(seqs) = timeline::positions(&v, &acme(), from.seq, to.seq, &focus) {
                let some: Vec<&Event> = l.events.iter().filter(|e| seqs.contains(&e.meta.seq)).collect();
                let fewer = timeline::timeline_in(&v, &acme(), from, to, focus.clone(), some);
                prop_assert_eq!(&fewer, &intervals, "walking only {:?}", seqs);
            }
            // Held there, and there within the filter (an inbox moved out of a team leaves
            // the team's timeline).
            let allows = |i: &timeline::Interval, p: &timeline::Point| {
                let o = v.org_at(&acme(), p.seq).unwrap();
                let within = scope.is_none_or(|f| {
                    check::lineage(&o, ScopeRef::of(&i.scope)).any(|x| x == ScopeRef::of(f))
                });
                within && check::check(&o, &i.user, &i.permission, &i.scope, p.time)
            };
            let mut points: BTreeSet<(Seq, Timestamp)> = BTreeSet::new();
            for i in &intervals {
                prop_assert!(allows(i, &i.from), "{:?} does not hold at its start", i);
                points.insert((i.from.seq, i.from.time));
                if let Some(end) = &i.to {
                    prop_assert!(!allows(i, end), "{:?} still holds at its end", i);
                    points.insert((end.seq, end.time));
                }
            }
            points.extend(l.events.iter().filter(|e| e.meta.seq > from.seq).map(|e| (e.meta.seq, e.meta.recorded_at)));
            points.insert((to.seq, to.time));
            for p in points {
                let held = permledger_views::diff::holdings(&v, &acme(), Moment { seq: p.0, time: p.1 }, user, scope);
                let by_intervals: BTreeSet<String> = intervals
                    .iter()
                    .filter(|i| contains(i, p))
                    .map(|i| format!("{} {} {}", i.user, i.permission, i.scope))
                    .collect();
                prop_assert_eq!(by_intervals, held, "at {:?}", p);
            }
            let rows = timeline::caused_diff(&intervals);
            let plain = permledger_views::diff::diff(&v, &acme(), from, to, user, scope);
            let of = |change: &str| -> BTreeSet<String> {
                rows.iter().filter(|r| r.change == change).map(|r| format!("{} {} {}", r.user, r.permission, r.scope)).collect()
            };
            prop_assert_eq!(of("gained"), plain.gained.iter().cloned().collect::<BTreeSet<_>>());
            prop_assert_eq!(of("lost"), plain.lost.iter().cloned().collect::<BTreeSet<_>>());
        }
    }
}
