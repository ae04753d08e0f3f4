//! The rule of a check, read from domain.md and the seeds, as given/then rows with explanations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_domain::index::CheckIndex;
use permledger_domain::testkit::TestLedger;
use permledger_domain::{Denial, Fact, OrgId, PermissionKey, Scope, State, Timestamp, UserId};

fn teaminbox() -> TestLedger {
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
            r#"{"type":"invite","org":"acme","invite":"i1","email":"mo@acme.test","role":"org_moderator"}"#,
        ),
        (
            "mo",
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
    ])
}

fn check(l: &TestLedger, user: &str, perm: &str, scope: &str) -> bool {
    let org = l.state.org(&OrgId::new("acme").unwrap()).unwrap();
    let user = UserId::new(user).unwrap();
    let perm = PermissionKey::new(perm).unwrap();
    let scope: Scope = scope.parse().unwrap();
    let answer = org.check(&user, &perm, &scope, l.now);
    let explained = org.explain(&user, &perm, &scope, l.now);
    assert_eq!(answer, explained.allowed, "check and explain disagree");
    assert_eq!(
        answer,
        indexed(l).check(&user, &perm, &scope, l.now),
        "the check index disagrees"
    );
    assert_eq!(explained.allowed, !explained.facts.is_empty());
    answer
}

/// acme's check index, following every event as the views do.
fn indexed(l: &TestLedger) -> CheckIndex {
    let acme = OrgId::new("acme").unwrap();
    let mut state = State::default();
    let mut index: Option<CheckIndex> = None;
    for e in &l.events {
        state.apply(e);
        if let Some(org) = state.org(&acme).filter(|_| e.meta.org == acme) {
            match &mut index {
                Some(i) => i.follow(org, e),
                None => index = Some(CheckIndex::build(org)),
            }
        }
    }
    index.unwrap()
}

fn explain(l: &TestLedger, user: &str, perm: &str, scope: &str) -> permledger_domain::Explanation {
    let org = l.state.org(&OrgId::new("acme").unwrap()).unwrap();
    org.explain(
        &UserId::new(user).unwrap(),
        &PermissionKey::new(perm).unwrap(),
        &scope.parse().unwrap(),
        l.now,
    )
}

#[test]
fn a_moderator_reads_threads_only_where_a_member() {
    let mut l = teaminbox();
    assert!(check(&l, "ann", "inbox.thread.view", "inbox:billing"));
    assert_eq!(
        explain(&l, "ann", "inbox.thread.view", "inbox:billing").facts,
        vec![Fact::Owner { seq: 1 }]
    );
    assert!(!check(&l, "mo", "inbox.thread.view", "inbox:billing"));
    assert!(
        check(&l, "mo", "team.inboxes.create", "team:support"),
        "a moderator administers teams"
    );
    assert!(check(&l, "mo", "org.audit.view", "org"));
    l.run("mo", r#"{"type":"assign_role","org":"acme","user":"mo","scope":"inbox:billing","role":"inbox_observer"}"#)
        .unwrap();
    assert!(check(&l, "mo", "inbox.thread.view", "inbox:billing"));
    assert!(!check(&l, "mo", "inbox.thread.reply", "inbox:billing"));
    let e = explain(&l, "mo", "inbox.thread.view", "inbox:billing");
    assert!(
        matches!(&e.facts[..], [Fact::Role { role, scope: Scope::Inbox(_), .. }] if role.as_str() == "inbox_observer")
    );
}

#[test]
fn members_have_no_access_of_their_own_and_billing_is_the_owners() {
    let l = teaminbox();
    assert!(!check(&l, "bob", "team.view", "team:support"));
    assert!(!check(&l, "bob", "org.audit.view", "org"));
    assert!(check(&l, "ann", "org.billing.manage", "org"));
    assert!(!check(&l, "mo", "org.billing.manage", "org"));
}

#[test]
fn permissions_apply_only_on_scopes_of_their_kind() {
    let l = teaminbox();
    assert!(
        !check(&l, "ann", "team.view", "inbox:billing"),
        "a team permission is never held on an inbox"
    );
    assert!(!check(&l, "ann", "inbox.thread.view", "team:support"));
    assert!(matches!(
        explain(&l, "ann", "team.view", "inbox:billing").denial,
        Some(Denial::KindMismatch { .. })
    ));
    assert!(!check(&l, "ann", "inbox.thread.view", "inbox:nowhere"));
    assert!(!check(&l, "ann", "inbox.thread.fly", "inbox:billing"));
    assert!(!check(&l, "zed", "inbox.thread.view", "inbox:billing"));
}

#[test]
fn roles_on_ancestors_reach_below_and_grants_are_direct() {
    let mut l = teaminbox();
    l.run("ann", r#"{"type":"define_role","org":"acme","role":"reader","kind":"team","permissions":["inbox.thread.view"]}"#).unwrap();
    l.run("ann", r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"reader"}"#).unwrap();
    assert!(check(&l, "bob", "inbox.thread.view", "inbox:billing"));
    l.run("ann", r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.reply"}"#).unwrap();
    assert!(check(&l, "bob", "inbox.thread.reply", "inbox:billing"));
    let e = explain(&l, "bob", "inbox.thread.view", "inbox:billing");
    assert!(matches!(
        &e.facts[..],
        [Fact::Role {
            scope: Scope::Team(_),
            ..
        }]
    ));
}

#[test]
fn masks_hide_product_permissions_from_everyone_but_never_administrative_ones() {
    let mut l = teaminbox();
    l.run(
        "ann",
        r#"{"type":"mask","org":"acme","scope":"team:support","pattern":"*"}"#,
    )
    .unwrap();
    assert!(
        !check(&l, "ann", "inbox.thread.view", "inbox:billing"),
        "masks aside only: the owner is masked too"
    );
    assert!(check(&l, "mo", "team.inboxes.create", "team:support"));
    assert!(matches!(
        explain(&l, "ann", "inbox.thread.view", "inbox:billing").denial,
        Some(Denial::Masked { .. })
    ));
    l.run(
        "ann",
        r#"{"type":"unmask","org":"acme","scope":"team:support","pattern":"*"}"#,
    )
    .unwrap();
    assert!(check(&l, "ann", "inbox.thread.view", "inbox:billing"));
}

#[test]
fn expiry_and_suspension_take_access_away() {
    let mut l = teaminbox();
    l.run("ann", r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.view","expires_at":"2026-03-01T10:00:00Z"}"#).unwrap();
    assert!(check(&l, "bob", "inbox.thread.view", "inbox:billing"));
    l.advance(3600);
    assert!(
        !check(&l, "bob", "inbox.thread.view", "inbox:billing"),
        "expired exactly at expires_at"
    );
    match explain(&l, "bob", "inbox.thread.view", "inbox:billing").denial {
        Some(Denial::NoFact { expired }) => assert_eq!(expired.len(), 1),
        other => panic!("expected an expired fact, got {other:?}"),
    }
    l.run(
        "ann",
        r#"{"type":"suspend_member","org":"acme","user":"mo"}"#,
    )
    .unwrap();
    assert!(!check(&l, "mo", "org.audit.view", "org"));
    let org = l.state.org(&OrgId::new("acme").unwrap()).unwrap();
    let at = Timestamp::parse("2026-03-01T09:30:00Z").unwrap();
    assert!(org.check(
        &UserId::new("bob").unwrap(),
        &PermissionKey::new("inbox.thread.view").unwrap(),
        &"inbox:billing".parse().unwrap(),
        at
    ));
}

#[test]
fn ownership_moves_with_a_transfer() {
    let mut l = teaminbox();
    l.run("ann", r#"{"type":"transfer_ownership","org":"acme","to":"mo","former_owner_role":"org_moderator"}"#).unwrap();
    assert!(check(&l, "mo", "org.billing.manage", "org"));
    assert!(!check(&l, "ann", "org.billing.manage", "org"));
    assert!(check(&l, "ann", "org.audit.view", "org"));
    assert!(!check(&l, "ann", "inbox.thread.view", "inbox:billing"));
}

#[test]
fn queries_agree_with_check() {
    let mut l = teaminbox();
    l.run("ann", r#"{"type":"assign_role","org":"acme","user":"bob","scope":"inbox:billing","role":"inbox_member"}"#).unwrap();
    let org = l.state.org(&OrgId::new("acme").unwrap()).unwrap();
    let view = PermissionKey::new("inbox.thread.view").unwrap();
    let billing: Scope = "inbox:billing".parse().unwrap();
    let who: Vec<String> = org
        .who_can(&view, &billing, l.now)
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(who, vec!["ann", "bob"]);
    let bob = UserId::new("bob").unwrap();
    let perms: Vec<String> = org
        .permissions(&bob, &billing, l.now)
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        perms,
        [
            "inbox.thread.assign",
            "inbox.thread.comment",
            "inbox.thread.reply",
            "inbox.thread.view"
        ]
    );
    assert_eq!(org.scopes(&bob, &view, None, l.now), vec![billing.clone()]);
    let members = org.members_of(&billing, l.now);
    assert_eq!(members.len(), 1);
    assert_eq!(org.members_of(&Scope::Org, l.now).len(), 3);
}

/// What the check index copies from the live org, each change read back through `check` (which
/// also asks the index after every event).
#[test]
fn the_check_index_follows_every_change_of_standing() {
    let mut l = teaminbox();
    let reply = |l: &TestLedger| check(l, "bob", "inbox.thread.reply", "inbox:billing");
    l.run("ann", r#"{"type":"define_role","org":"acme","role":"replier","kind":"team","permissions":["inbox.thread.reply"]}"#).unwrap();
    l.run("ann", r#"{"type":"assign_role","org":"acme","user":"bob","scope":"team:support","role":"replier"}"#).unwrap();
    assert!(reply(&l), "a team role reaches the team's inboxes");
    l.run(
        "ann",
        r#"{"type":"create_team","org":"acme","team":"sales"}"#,
    )
    .unwrap();
    l.run(
        "ann",
        r#"{"type":"move_inbox","org":"acme","inbox":"billing","team":"sales"}"#,
    )
    .unwrap();
    assert!(!reply(&l), "moved away from the team that carried it");
    l.run(
        "ann",
        r#"{"type":"move_inbox","org":"acme","inbox":"billing","team":"support"}"#,
    )
    .unwrap();
    assert!(reply(&l));
    l.run(
        "ann",
        r#"{"type":"unassign","org":"acme","user":"bob","scope":"team:support"}"#,
    )
    .unwrap();
    assert!(!reply(&l), "unassigned");
    l.run("ann", r#"{"type":"grant","org":"acme","user":"bob","scope":"inbox:billing","permission":"inbox.thread.reply","expires_at":"2026-03-01T12:00:00Z"}"#).unwrap();
    assert!(reply(&l), "granted until noon");
    l.run(
        "ann",
        r#"{"type":"mask","org":"acme","scope":"team:support","pattern":"inbox.thread.*"}"#,
    )
    .unwrap();
    assert!(!reply(&l), "masked on the parent team");
    l.run(
        "ann",
        r#"{"type":"unmask","org":"acme","scope":"team:support","pattern":"inbox.thread.*"}"#,
    )
    .unwrap();
    l.run(
        "ann",
        r#"{"type":"suspend_member","org":"acme","user":"bob"}"#,
    )
    .unwrap();
    assert!(!reply(&l), "suspended");
    l.run(
        "ann",
        r#"{"type":"reactivate_member","org":"acme","user":"bob"}"#,
    )
    .unwrap();
    assert!(reply(&l));
    l.now = Timestamp::parse("2026-03-01T12:00:00Z").unwrap();
    assert!(!reply(&l), "expired at its very instant");
    l.run(
        "ann",
        r#"{"type":"transfer_ownership","org":"acme","to":"bob"}"#,
    )
    .unwrap();
    assert!(reply(&l), "the owner holds everything");
    assert!(check(&l, "bob", "org.billing.manage", "org"));
    assert!(
        !check(&l, "ann", "org.billing.manage", "org"),
        "the former owner does not"
    );
}
