//! The audit log and diffs, as a compliance officer reads them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_domain::testkit::TestLedger;
use permledger_domain::{Code, Event, OrgId, Timestamp, UserId};
use permledger_views::audit::{audit, AuditError, AuditQuery, Change};
use permledger_views::diff::diff;
use permledger_views::{At, Views};

fn story() -> (TestLedger, Views) {
    let mut l = TestLedger::default();
    let steps: &[(&str, &str)] = &[
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
            r#"{"type":"invite","org":"acme","invite":"i1","email":"tina@acme.test","assignments":[{"scope":"team:support","role":"team_admin"}]}"#,
        ),
        (
            "tina",
            r#"{"type":"accept_invite","org":"acme","invite":"i1"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"i2","email":"bob@acme.test"}"#,
        ),
        (
            "bob",
            r#"{"type":"accept_invite","org":"acme","invite":"i2"}"#,
        ),
        (
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_observer"}"#,
        ),
        (
            "tina",
            r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_member"}"#,
        ),
        (
            "ann",
            r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:line1","permission":"inbox.thread.view","expires_at":"2026-03-03T00:00:00Z"}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
        ),
    ];
    for (i, (actor, cmd)) in steps.iter().enumerate() {
        l.advance(3600);
        l.run(actor, cmd)
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
    }
    let mut v = Views::new();
    for e in &l.events {
        v.apply(e);
    }
    (l, v)
}

fn read(
    l: &TestLedger,
    v: &Views,
    reader: &str,
    q: &AuditQuery,
) -> Result<permledger_views::audit::AuditPage, AuditError> {
    let acme = OrgId::new("acme").unwrap();
    let events: Vec<Event> = l
        .events
        .iter()
        .filter(|e| e.meta.org == acme)
        .cloned()
        .collect();
    audit(
        v,
        &acme,
        &UserId::new(reader).unwrap(),
        q,
        l.now,
        |from, limit| {
            Ok::<_, String>(
                events
                    .iter()
                    .skip(from as usize - 1)
                    .take(limit)
                    .cloned()
                    .collect(),
            )
        },
    )
}

fn actions(page: &permledger_views::audit::AuditPage) -> Vec<&str> {
    page.entries.iter().map(|e| e.action.as_str()).collect()
}

#[test]
fn reading_the_audit_log_is_itself_authorized() {
    let (l, v) = story();
    assert_eq!(
        read(&l, &v, "ann", &AuditQuery::default())
            .unwrap()
            .entries
            .len(),
        l.events.len()
    );
    let refused = read(&l, &v, "bob", &AuditQuery::default()).unwrap_err();
    assert!(matches!(refused, AuditError::Rejected(r) if r.code == Code::Forbidden));
    // The team admin reads its team's activity (the team and its inboxes), not the org's.
    let team = AuditQuery {
        scope: Some("team:support".parse().unwrap()),
        ..Default::default()
    };
    let page = read(&l, &v, "tina", &team).unwrap();
    assert_eq!(
        actions(&page),
        [
            "team_created",
            "inbox_created",
            "role_assigned",
            "role_assigned",
            "role_assigned"
        ]
    );
    let inbox = AuditQuery {
        scope: Some("inbox:billing".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(read(&l, &v, "tina", &inbox).unwrap().entries.len(), 3);
    let line = AuditQuery {
        scope: Some("inbox:line1".parse().unwrap()),
        ..Default::default()
    };
    assert!(
        matches!(read(&l, &v, "tina", &line).unwrap_err(), AuditError::Rejected(r) if r.code == Code::Forbidden)
    );
    assert!(
        matches!(read(&l, &v, "tina", &AuditQuery::default()).unwrap_err(), AuditError::Rejected(r) if r.code == Code::Forbidden)
    );
}

#[test]
fn filters_narrow_and_entries_say_what_changed() {
    let (l, v) = story();
    let q = AuditQuery {
        user: Some(UserId::new("bob").unwrap()),
        types: Some(vec!["role_assigned".into()]),
        ..Default::default()
    };
    let page = read(&l, &v, "ann", &q).unwrap();
    assert_eq!(page.entries.len(), 2);
    let replaced = &page.entries[1];
    assert_eq!(replaced.actor.as_str(), "tina");
    assert_eq!(
        replaced.changes,
        [Change {
            field: "role".into(),
            from: Some("inbox_observer".into()),
            to: Some("inbox_member".into()),
        }]
    );
    assert_eq!(
        replaced.summary,
        "tina changed bob's role on inbox:billing from inbox_observer to inbox_member"
    );
    let renamed = read(
        &l,
        &v,
        "ann",
        &AuditQuery {
            types: Some(vec!["org_renamed".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        renamed.entries[0].changes,
        [Change {
            field: "name".into(),
            from: Some("acme".into()),
            to: Some("Acme Inc".into()),
        }]
    );
    let by_tina = read(
        &l,
        &v,
        "ann",
        &AuditQuery {
            actor: Some(UserId::new("tina").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        actions(&by_tina),
        [
            "invite_accepted",
            "member_joined",
            "role_assigned",
            "role_assigned",
            "role_assigned"
        ]
    );
    let t = |s: &str| Timestamp::parse(s).unwrap();
    let window = AuditQuery {
        from: Some(t("2026-03-01T11:00:00Z")),
        to: Some(t("2026-03-01T12:00:00Z")),
        ..Default::default()
    };
    assert_eq!(
        actions(&read(&l, &v, "ann", &window).unwrap()),
        ["team_created", "inbox_created"]
    );
    let until = AuditQuery {
        until: Some(2),
        ..Default::default()
    };
    assert_eq!(read(&l, &v, "ann", &until).unwrap().entries.len(), 2);
    let bad = AuditQuery {
        types: Some(vec!["team_exploded".into()]),
        ..Default::default()
    };
    assert!(
        matches!(read(&l, &v, "ann", &bad).unwrap_err(), AuditError::Rejected(r) if r.code == Code::Invalid && r.message.contains("`team_exploded`"))
    );
}

#[test]
fn pages_are_stable_and_complete() {
    let (l, v) = story();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = read(
            &l,
            &v,
            "ann",
            &AuditQuery {
                limit: Some(4),
                after,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(page.entries.len() <= 4);
        seen.extend(page.entries.iter().map(|e| e.seq));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, (1..=l.events.len() as u64).collect::<Vec<_>>());
}

#[test]
fn a_diff_names_what_was_gained_and_lost() {
    let (l, v) = story();
    let acme = OrgId::new("acme").unwrap();
    let bob = UserId::new("bob").unwrap();
    let before = v.moment(Some(&At::Seq(9)), l.now).unwrap();
    let after = v.moment(None, l.now).unwrap();
    let d = diff(&v, &acme, before, after, Some(&bob), None);
    assert!(
        d.gained
            .contains(&"bob inbox.thread.view inbox:billing".to_string()),
        "{d:?}"
    );
    assert!(d
        .gained
        .contains(&"bob inbox.thread.reply inbox:billing".to_string()));
    assert!(d.lost.is_empty(), "{d:?}");
    // The grant on line1 expires on 3 March: a diff to a later moment shows it lost.
    let later = v
        .moment(
            Some(&At::Time(Timestamp::parse("2026-03-04T00:00:00Z").unwrap())),
            l.now,
        )
        .unwrap();
    let d = diff(
        &v,
        &acme,
        after,
        later,
        Some(&bob),
        Some(&"inbox:line1".parse().unwrap()),
    );
    assert_eq!(d.lost, ["bob inbox.thread.view inbox:line1"]);
    assert!(d.gained.is_empty());
}

#[test]
fn read_models_show_a_users_standing_roles_and_pending_invites() {
    use permledger_views::read;
    let (mut l, _) = story();
    l.run("ann", r#"{"type":"invite","org":"acme","invite":"i3","email":"cy@acme.test","expires_at":"2026-03-05T00:00:00Z"}"#).unwrap();
    l.run(
        "ann",
        r#"{"type":"create_invite_link","org":"acme","link":"l1","max_uses":1}"#,
    )
    .unwrap();
    let mut v = Views::new();
    for e in &l.events {
        v.apply(e);
    }
    let acme = OrgId::new("acme").unwrap();
    let now = v.moment(None, l.now).unwrap();
    let org = v.org_at(&acme, now.seq).unwrap();
    let bob = read::user_view(&org, &UserId::new("bob").unwrap(), now.time).unwrap();
    assert!(!bob.owner);
    assert_eq!(
        bob.roles
            .iter()
            .map(|r| (r.scope.to_string(), r.role.to_string()))
            .collect::<Vec<_>>(),
        [
            ("org".to_string(), "org_member".to_string()),
            ("inbox:billing".to_string(), "inbox_member".to_string())
        ]
    );
    assert_eq!(bob.grants.len(), 1);
    let (invites, links) = read::pending(&org, now.time);
    assert_eq!(
        invites
            .iter()
            .map(|i| i.invite.as_str())
            .collect::<Vec<_>>(),
        ["i3"]
    );
    assert_eq!(links.len(), 1);
    let (later_invites, _) = read::pending(&org, Timestamp::parse("2026-03-06T00:00:00Z").unwrap());
    assert!(
        later_invites.is_empty(),
        "an expired invite is no longer pending"
    );
    assert!(read::roles(&org)
        .iter()
        .any(|r| r.role.as_str() == "inbox_observer" && r.permissions.len() == 2));
    let items = [
        read::CheckItem {
            user: UserId::new("bob").unwrap(),
            permission: "inbox.thread.reply".parse().unwrap(),
            scope: "inbox:billing".parse().unwrap(),
        },
        read::CheckItem {
            user: UserId::new("bob").unwrap(),
            permission: "inbox.thread.reply".parse().unwrap(),
            scope: "inbox:line1".parse().unwrap(),
        },
    ];
    let answers = read::batch_check(&org, &items, now.time);
    assert_eq!(
        answers.iter().map(|a| a.allowed).collect::<Vec<_>>(),
        [true, false]
    );
    let members = read::members(&org, &"inbox:billing".parse().unwrap(), now.time);
    assert_eq!(members.len(), 1);
}

#[test]
fn a_users_history_lists_the_events_that_changed_what_they_hold() {
    let (mut l, _) = story();
    // Redefining a role changes what its holders hold, though the event names no user.
    l.run("ann", r#"{"type":"change_role","org":"acme","role":"inbox_member","remove":["inbox.thread.reply"]}"#).unwrap();
    let mut v = Views::new();
    for e in &l.events {
        v.apply(e);
    }
    let acme = OrgId::new("acme").unwrap();
    let bob = UserId::new("bob").unwrap();
    let h = permledger_views::diff::history(&v, &acme, Some(&bob), None, &l.events);
    let actions: Vec<&str> = h.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "role_assigned",
            "role_assigned",
            "permission_granted",
            "role_changed"
        ]
    );
    assert_eq!(h[3].change.lost, ["bob inbox.thread.reply inbox:billing"]);
    assert_eq!(h[3].actor.as_str(), "ann");
}
