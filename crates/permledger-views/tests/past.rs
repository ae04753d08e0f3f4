//! Any past position answers exactly as a fresh ledger fed only the events up to it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use permledger_domain::check::{self, AccessView};
use permledger_domain::testkit::{TestLedger, ACME_WITH_MODERATOR};
use permledger_domain::{OrgId, PermissionKey, Scope, State, UserId};
use permledger_views::{checkpoint, At, Views};
use proptest::prelude::*;

const USERS: &[&str] = &["ann", "mo", "tina", "bob", "u1"];
const SCOPES: &[&str] = &[
    "org",
    "team:support",
    "team:sales",
    "inbox:billing",
    "inbox:line1",
];
const ROLES: &[&str] = &[
    "org_moderator",
    "org_member",
    "team_admin",
    "team_member",
    "inbox_member",
    "inbox_observer",
    "custom",
];
const PERMS: &[&str] = &[
    "inbox.thread.view",
    "inbox.thread.reply",
    "team.view",
    "org.audit.view",
    "inbox.members.manage",
    "inbox.thread.snooze",
];

fn commands() -> impl Strategy<Value = Vec<(usize, u8, usize, usize, usize, usize, bool)>> {
    prop::collection::vec(
        (
            0..USERS.len(),
            0..24u8,
            0..USERS.len(),
            0..SCOPES.len(),
            0..ROLES.len(),
            0..PERMS.len(),
            any::<bool>(),
        ),
        1..50,
    )
}

fn json(which: u8, user: &str, scope: &str, role: &str, perm: &str, flag: bool) -> String {
    let o = r#""org":"acme""#;
    let exp = if flag {
        r#","expires_at":"2026-03-01T09:30:00Z""#
    } else {
        ""
    };
    let (team, inbox) = (
        scope.strip_prefix("team:").unwrap_or("support"),
        scope.strip_prefix("inbox:").unwrap_or("billing"),
    );
    match which {
        0 | 1 => format!(
            r#"{{"type":"assign_role",{o},"user":"{user}","scope":"{scope}","role":"{role}"{exp}}}"#
        ),
        2 => format!(r#"{{"type":"unassign",{o},"user":"{user}","scope":"{scope}"}}"#),
        3 | 4 => format!(
            r#"{{"type":"grant",{o},"user":"{user}","scope":"{scope}","permission":"{perm}"{exp}}}"#
        ),
        5 => format!(
            r#"{{"type":"revoke",{o},"user":"{user}","scope":"{scope}","permission":"{perm}"}}"#
        ),
        6 => format!(
            r#"{{"type":"invite",{o},"invite":"i-{user}","email":"{user}@x.test","role":"{role}"}}"#
        ),
        7 => format!(r#"{{"type":"accept_invite",{o},"invite":"i-{user}"}}"#),
        8 => format!(r#"{{"type":"suspend_member",{o},"user":"{user}"}}"#),
        9 => format!(r#"{{"type":"reactivate_member",{o},"user":"{user}"}}"#),
        10 => format!(r#"{{"type":"remove_member",{o},"user":"{user}"}}"#),
        11 => format!(r#"{{"type":"create_team",{o},"team":"{team}"}}"#),
        12 => format!(r#"{{"type":"delete_team",{o},"team":"{team}"}}"#),
        13 => format!(
            r#"{{"type":"create_inbox",{o},"inbox":"{inbox}"{}}}"#,
            if flag { r#","team":"support""# } else { "" }
        ),
        14 => format!(r#"{{"type":"delete_inbox",{o},"inbox":"{inbox}"}}"#),
        15 => format!(
            r#"{{"type":"move_inbox",{o},"inbox":"{inbox}"{}}}"#,
            if flag { r#","team":"sales""# } else { "" }
        ),
        16 => format!(r#"{{"type":"mask",{o},"scope":"{scope}","pattern":"inbox.thread.*"}}"#),
        17 => format!(r#"{{"type":"unmask",{o},"scope":"{scope}","pattern":"inbox.thread.*"}}"#),
        18 => format!(
            r#"{{"type":"define_role",{o},"role":"custom","kind":"inbox","permissions":["inbox.thread.view"]}}"#
        ),
        19 => format!(r#"{{"type":"change_role",{o},"role":"custom","add":["inbox.thread.*"]}}"#),
        20 => format!(r#"{{"type":"delete_role",{o},"role":"{role}","move_to":"inbox_observer"}}"#),
        21 => format!(
            r#"{{"type":"declare_permission",{o},"key":"inbox.thread.snooze","kind":"inbox"}}"#
        ),
        22 => format!(r#"{{"type":"transfer_ownership",{o},"to":"{user}"}}"#),
        _ => format!(r#"{{"type":"leave_org",{o}}}"#),
    }
}

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn every_position_equals_a_replay_of_its_prefix(cmds in commands()) {
        let mut l = TestLedger::from_story(&ACME_WITH_MODERATOR);
        for (actor, which, user, scope, role, perm, flag) in cmds {
            l.advance(60 * 7);
            let _ = l.run(USERS[actor], &json(which, USERS[user], SCOPES[scope], ROLES[role], PERMS[perm], flag));
        }
        let mut views = Views::new();
        for e in &l.events {
            views.apply(e);
        }
        prop_assert_eq!(&views.live, &l.state);
        let mut prefix = State::default();
        for e in &l.events {
            prefix.apply(e);
            let n = e.meta.seq;
            let fresh = prefix.org(&acme()).unwrap();
            let past = views.org_at(&acme(), n).unwrap();
            prop_assert_eq!(&past.materialize(), fresh, "the org at {} differs from a replay of its prefix", n);
            let moment = views.moment(Some(&At::Seq(n)), e.meta.recorded_at).unwrap();
            prop_assert_eq!(moment.time, e.meta.recorded_at);
            for u in USERS {
                let u = UserId::new(*u).unwrap();
                for s in SCOPES {
                    let s: Scope = s.parse().unwrap();
                    for p in PERMS {
                        let p = PermissionKey::new(*p).unwrap();
                        prop_assert_eq!(
                            check::explain(&past, &u, &p, &s, moment.time),
                            fresh.explain(&u, &p, &s, moment.time),
                            "{} {} {} at {}", u, p, s, n
                        );
                    }
                }
            }
            // Every user who_can returns passes check, and so does every scope `scopes` returns.
            let view = PermissionKey::new("inbox.thread.view").unwrap();
            let billing: Scope = "inbox:billing".parse().unwrap();
            for u in check::who_can(&past, &view, &billing, moment.time) {
                prop_assert!(check::check(&past, &u, &view, &billing, moment.time));
            }
            for u in past.user_ids() {
                for s in check::scopes(&past, u, &view, None, moment.time) {
                    prop_assert!(check::check(&past, u, &view, &s, moment.time));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// The check index answers as the rule of a check on the live org, after every event, for
    /// every user, scope and permission (billing and administrative ones too, and a key outside
    /// the catalog), at the event's time, at an expiry's very instant, and a year later.
    #[test]
    fn the_check_index_answers_as_the_rule_after_every_event(cmds in commands()) {
        // Everyone a member from the start, and most commands run by the owner, so that most of
        // them are recorded; a minute apart, so that expiries fall inside the history.
        let mut l = TestLedger::from_story(&[
            ("ann", r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#),
            ("ann", r#"{"type":"create_team","org":"acme","team":"support"}"#),
            ("ann", r#"{"type":"create_team","org":"acme","team":"sales"}"#),
            ("ann", r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#),
            ("ann", r#"{"type":"create_inbox","org":"acme","inbox":"line1"}"#),
            ("ann", r#"{"type":"invite","org":"acme","invite":"a","email":"mo@x.test","role":"org_moderator"}"#),
            ("mo", r#"{"type":"accept_invite","org":"acme","invite":"a"}"#),
            ("ann", r#"{"type":"invite","org":"acme","invite":"b","email":"tina@x.test","role":"org_member"}"#),
            ("tina", r#"{"type":"accept_invite","org":"acme","invite":"b"}"#),
            ("ann", r#"{"type":"invite","org":"acme","invite":"c","email":"bob@x.test","role":"org_member"}"#),
            ("bob", r#"{"type":"accept_invite","org":"acme","invite":"c"}"#),
            ("ann", r#"{"type":"invite","org":"acme","invite":"d","email":"u1@x.test"}"#),
            ("u1", r#"{"type":"accept_invite","org":"acme","invite":"d"}"#),
        ]);
        for (actor, which, user, scope, role, perm, flag) in cmds {
            l.advance(60);
            let by = if which == 7 || which == 23 || actor >= 3 { USERS[actor] } else { "ann" };
            let _ = l.run(by, &json(which, USERS[user], SCOPES[scope], ROLES[role], PERMS[perm], flag));
        }
        let t = |s: &str| permledger_domain::Timestamp::parse(s).unwrap();
        let perms: Vec<PermissionKey> = PERMS
            .iter()
            .chain(&["org.billing.manage", "org.members.invite", "inbox.unknown"])
            .map(|p| PermissionKey::new(*p).unwrap())
            .collect();
        let mut scopes: Vec<Scope> = SCOPES.iter().map(|s| s.parse().unwrap()).collect();
        scopes.push("inbox:nowhere".parse().unwrap());
        let mut views = Views::new();
        for e in &l.events {
            views.apply(e);
            let org = views.live.org(&acme()).unwrap();
            let times = [e.meta.recorded_at, t("2026-03-01T09:30:00Z"), t("2027-03-01T00:00:00Z")];
            for u in USERS {
                let u = UserId::new(*u).unwrap();
                for s in &scopes {
                    for p in &perms {
                        for at in times {
                            prop_assert_eq!(
                                views.check(&acme(), &u, p, s, at),
                                check::check(org, &u, p, s, at),
                                "{} {} {} at {} after {}", u, p, s, at, e.meta.seq
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn moments_by_time_take_every_event_recorded_by_then() {
    let mut l = TestLedger::default();
    l.run(
        "ann",
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
    )
    .unwrap();
    l.advance(3600);
    l.run(
        "ann",
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
    )
    .unwrap();
    let mut views = Views::new();
    for e in &l.events {
        views.apply(e);
    }
    let t = |s: &str| permledger_domain::Timestamp::parse(s).unwrap();
    let before = views
        .moment(Some(&At::Time(t("2026-03-01T09:59:59Z"))), l.now)
        .unwrap();
    assert_eq!(before.seq, 1);
    let after = views
        .moment(Some(&At::Time(t("2026-03-01T10:00:00Z"))), l.now)
        .unwrap();
    assert_eq!(after.seq, 2);
    let ancient = views
        .moment(Some(&At::Time(t("2020-01-01T00:00:00Z"))), l.now)
        .unwrap();
    assert_eq!(ancient.seq, 0);
    assert!(
        views.org_at(&acme(), 0).is_none(),
        "the org did not exist before its first event"
    );
    assert!(views.moment(Some(&At::Seq(3)), l.now).is_err());
    let org = views.org_at(&acme(), before.seq).unwrap();
    assert!(!org.team_exists(&"support".parse().unwrap()));
}

const FIVE_ORGS: [&str; 5] = ["big", "mid", "one", "two", "three"];

/// Five orgs of sizes far apart, so that sharing them out among threads gives unequal shares.
fn five_orgs_of_different_sizes() -> TestLedger {
    let mut l = TestLedger::from_story(&[]);
    for (n, org) in FIVE_ORGS.iter().enumerate() {
        let o = format!(r#""org":"{org}""#);
        let owner = format!("owner-{org}");
        l.run(
            &owner,
            &format!(r#"{{"type":"create_org",{o},"preset":"teaminbox"}}"#),
        )
        .unwrap();
        l.run(
            &owner,
            &format!(r#"{{"type":"create_team",{o},"team":"support"}}"#),
        )
        .unwrap();
        l.run(
            &owner,
            &format!(r#"{{"type":"create_inbox",{o},"inbox":"line1","team":"support"}}"#),
        )
        .unwrap();
        // Sizes far apart, so that the shares differ: 40, 12, then a handful.
        let members = [40, 12, 3, 2, 1][n];
        for i in 0..members {
            let user = format!("u{i}");
            l.run(
                &owner,
                &format!(
                    r#"{{"type":"invite","org":"{org}","invite":"i{i}","email":"{user}@x.test"}}"#
                ),
            )
            .unwrap();
            l.run(
                &user,
                &format!(r#"{{"type":"accept_invite",{o},"invite":"i{i}"}}"#),
            )
            .unwrap();
            let (scope, role) = match i % 3 {
                0 => ("team:support", "team_member"),
                1 => ("inbox:line1", "inbox_observer"),
                _ => ("org", "org_moderator"),
            };
            l.run(
                &owner,
                &format!(r#"{{"type":"assign_role",{o},"user":"{user}","scope":"{scope}","role":"{role}"}}"#),
            )
            .unwrap();
        }
    }
    l
}

/// A rebuild defers the check indexes and builds them at its end, the orgs shared out among the
/// cores: every org, large or small, answers as it does when followed event by event.
#[test]
fn a_rebuilt_check_index_answers_as_one_followed_event_by_event() {
    let l = five_orgs_of_different_sizes();
    let mut followed = Views::new();
    let mut rebuilt = Views::for_rebuild(l.events.len());
    for e in &l.events {
        followed.apply(e);
        rebuilt.apply(e);
    }
    assert!(!rebuilt.indexes_checks(&OrgId::new("big").unwrap()));
    rebuilt.index_checks();
    let at = l.events.last().unwrap().meta.recorded_at;
    let perms: Vec<PermissionKey> = PERMS
        .iter()
        .map(|p| PermissionKey::new(*p).unwrap())
        .collect();
    let scopes: Vec<Scope> = ["org", "team:support", "inbox:line1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let mut allowed = 0;
    for org in FIVE_ORGS {
        let org = OrgId::new(org).unwrap();
        assert!(rebuilt.indexes_checks(&org), "{org} has no check index");
        let users = (0..40)
            .map(|i| format!("u{i}"))
            .chain([format!("owner-{org}"), "nobody".into()]);
        for u in users {
            let u = UserId::new(u).unwrap();
            for s in &scopes {
                for p in &perms {
                    let answer = rebuilt.check(&org, &u, p, s, at);
                    assert_eq!(
                        answer,
                        followed.check(&org, &u, p, s, at),
                        "{org} {u} {p} {s}"
                    );
                    assert_eq!(
                        answer,
                        check::check(rebuilt.live.org(&org).unwrap(), &u, p, s, at)
                    );
                    allowed += usize::from(answer);
                }
            }
        }
    }
    assert!(
        allowed > 100,
        "the story grants something to check: {allowed}"
    );
}

#[test]
fn the_live_state_copied_on_every_core_equals_it_and_each_org_is_worked_once() {
    let l = five_orgs_of_different_sizes();
    let mut views = Views::for_rebuild(l.events.len());
    for e in &l.events {
        views.apply(e);
    }
    assert_eq!(views.copy_live(), views.live);
    let mut seen: Vec<String> = views
        .map_orgs(|id, org| {
            assert_eq!(id, &org.id);
            id.to_string()
        })
        .into_iter()
        .map(|(id, mapped)| {
            assert_eq!(id.to_string(), mapped);
            mapped
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["big", "mid", "one", "three", "two"]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// A checkpoint taken at any position, decoded and fed the rest of the log, holds what a fold
    /// of the whole log holds, after every event of the tail; and every past position, before the
    /// checkpoint or after it, answers every check and explanation as that fold does.
    #[test]
    fn a_checkpoint_and_its_tail_equal_a_fold_of_the_whole_log(
        cmds in commands(),
        at in any::<prop::sample::Index>(),
        warm in any::<bool>(),
    ) {
        let mut l = TestLedger::from_story(&ACME_WITH_MODERATOR);
        for (actor, which, user, scope, role, perm, flag) in cmds {
            l.advance(60 * 7);
            let _ = l.run(USERS[actor], &json(which, USERS[user], SCOPES[scope], ROLES[role], PERMS[perm], flag));
        }
        let k = at.index(l.events.len() + 1);
        let mut full = Views::for_rebuild(l.events.len());
        for e in &l.events[..k] {
            full.apply(e);
        }
        full.index_checks();
        let bytes = checkpoint::to_bytes(&full, [7; 32], l.now);
        let (header, mut restored) = checkpoint::decode_all(&bytes).unwrap();
        prop_assert_eq!(header.seq, full.seq());
        prop_assert_eq!(header.hash, [7; 32]);
        prop_assert_eq!(restored.difference(&full), None);
        // Opened as a ledger opens it: each org decoded when first used, with its events of
        // the tail folded in then; some orgs warmed apart first, as a serving ledger does.
        let lazy = checkpoint::open_bytes(&bytes, None, |_| true)
            .unwrap()
            .views(&l.events[k..], |_| true);
        prop_assert_eq!(lazy.cold_orgs(), header.orgs(), "nothing decoded before it is used");
        if warm {
            for cold in lazy.cold().iter().step_by(2) {
                lazy.offer(cold.make());
            }
        }
        for e in &l.events[k..] {
            full.apply(e);
            restored.apply(e);
            prop_assert_eq!(restored.difference(&full), None, "after {}", e.meta.seq);
        }
        let view = PermissionKey::new("inbox.thread.view").unwrap();
        let billing: Scope = "inbox:billing".parse().unwrap();
        for e in &l.events {
            let n = e.meta.seq;
            let moment = restored.moment(Some(&At::Seq(n)), l.now).unwrap();
            prop_assert_eq!(moment, full.moment(Some(&At::Seq(n)), l.now).unwrap());
            let (ours, theirs) = (restored.org_at(&acme(), n).unwrap(), full.org_at(&acme(), n).unwrap());
            prop_assert_eq!(ours.materialize(), theirs.materialize());
            prop_assert_eq!(lazy.org_at(&acme(), n).unwrap().materialize(), theirs.materialize());
            for u in USERS {
                let u = UserId::new(*u).unwrap();
                for s in SCOPES {
                    let s: Scope = s.parse().unwrap();
                    for p in PERMS {
                        let p = PermissionKey::new(*p).unwrap();
                        prop_assert_eq!(
                            check::explain(&ours, &u, &p, &s, moment.time),
                            check::explain(&theirs, &u, &p, &s, moment.time)
                        );
                    }
                }
            }
            prop_assert_eq!(
                check::who_can(&ours, &view, &billing, moment.time),
                check::who_can(&theirs, &view, &billing, moment.time)
            );
        }
        let at = l.now;
        for u in USERS {
            let u = UserId::new(*u).unwrap();
            for s in SCOPES {
                let s: Scope = s.parse().unwrap();
                for p in PERMS {
                    let p = PermissionKey::new(*p).unwrap();
                    prop_assert_eq!(restored.check(&acme(), &u, &p, &s, at), full.check(&acme(), &u, &p, &s, at));
                    prop_assert_eq!(lazy.check(&acme(), &u, &p, &s, at), full.check(&acme(), &u, &p, &s, at));
                }
            }
        }
        prop_assert_eq!(lazy.difference(&full), None);
    }
}

/// Every byte of a checkpoint is covered: changing any one of them makes it unreadable, never
/// read as other views. Reading some orgs reads theirs alone.
#[test]
fn a_checkpoint_with_any_byte_changed_is_refused_and_orgs_can_be_read_alone() {
    let l = five_orgs_of_different_sizes();
    let mut views = Views::new();
    for e in &l.events {
        views.apply(e);
    }
    let bytes = checkpoint::to_bytes(&views, [1; 32], l.now);
    assert_eq!(
        checkpoint::to_bytes(&views, [1; 32], l.now),
        bytes,
        "the same views make the same bytes"
    );
    let (header, whole) = checkpoint::decode_all(&bytes).unwrap();
    assert_eq!(header.orgs(), 5);
    assert_eq!(whole.difference(&views), None);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        assert!(
            checkpoint::decode_all(&bad).is_err(),
            "a change at byte {i} of {} went unseen",
            bytes.len()
        );
    }
    for cut in [0, 7, 19, 40, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            checkpoint::decode_all(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut other_format = bytes.clone();
    other_format[8] = 2;
    assert_eq!(
        checkpoint::decode_all(&other_format)
            .unwrap_err()
            .to_string(),
        "it is of format 2; this build reads format 3"
    );
    // One org alone: the others' sections are not read (here: broken, and never noticed).
    let one = OrgId::new("one").unwrap();
    let (_, some) = checkpoint::decode_some(&bytes, |o| o == &one).unwrap();
    assert_eq!(some.live.orgs.len(), 1);
    assert_eq!(some.live.org(&one), views.live.org(&one));
    assert_eq!(some.histories.get(&one), views.histories.get(&one));
    let mut seqs: Vec<u64> = l.events.iter().map(|e| e.meta.seq).collect();
    seqs.dedup();
    for n in seqs {
        assert_eq!(
            some.moment(Some(&At::Seq(n)), l.now),
            views.moment(Some(&At::Seq(n)), l.now)
        );
    }
}

/// Someone invited into `org` by its owner, and accepting.
fn join(l: &mut TestLedger, org: &str, user: &str) {
    let owner = format!("owner-{org}");
    let invite = format!(
        r#"{{"type":"invite","org":"{org}","invite":"i-{user}","email":"{user}@x.test","role":"org_member"}}"#
    );
    l.run(&owner, &invite).unwrap();
    l.run(
        user,
        &format!(r#"{{"type":"accept_invite","org":"{org}","invite":"i-{user}"}}"#),
    )
    .unwrap();
}

fn fold(events: &[permledger_domain::Event]) -> Views {
    let mut views = Views::new();
    for e in events {
        views.apply(e);
    }
    views
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// A whole checkpoint at one position, a delta on it at a later one, and a delta after that
    /// delta at a later one still (its orgs unchanged since the first delta copied from it, the
    /// others left in the base): each, opened with its base, holds what a fold of the log up
    /// to it holds, decoded whole or lazily with the rest of the log; and none opens on another
    /// base.
    #[test]
    fn deltas_equal_a_fold_of_the_log(
        cmds in commands(),
        picks in any::<[prop::sample::Index; 3]>(),
    ) {
        let mut l = TestLedger::from_story(&ACME_WITH_MODERATOR);
        for org in ["north", "south"] {
            l.run(
                &format!("owner-{org}"),
                &format!(r#"{{"type":"create_org","org":"{org}","preset":"teaminbox"}}"#),
            )
            .unwrap();
            join(&mut l, org, &format!("{org}-1"));
        }
        for (actor, which, user, scope, role, perm, flag) in cmds {
            l.advance(60 * 7);
            let _ = l.run(USERS[actor], &json(which, USERS[user], SCOPES[scope], ROLES[role], PERMS[perm], flag));
        }
        for i in 0..3 {
            join(&mut l, "south", &format!("south-late-{i}"));
        }
        let n = l.events.len();
        let mut at: Vec<usize> = picks.iter().map(|p| p.index(n + 1)).collect();
        at.sort_unstable();
        let changed = |from: usize, to: usize| -> std::collections::HashSet<OrgId> {
            l.events[from..to].iter().map(|e| e.meta.org.clone()).collect()
        };
        let all = |_: &OrgId| true;

        let base = checkpoint::to_bytes(&fold(&l.events[..at[0]]), [1; 32], l.now);
        let (_, _, base_hash) = checkpoint::read_header(&base).unwrap();
        let mut prior_bytes = base.clone();
        let mut prior_base: Option<&[u8]> = None;
        for (i, k) in [at[1], at[2]].into_iter().enumerate() {
            let prior = checkpoint::open_bytes(&prior_bytes, prior_base, all).unwrap();
            let (_, _, prior_hash) = checkpoint::read_header(&prior_bytes).unwrap();
            let views = fold(&l.events[..k]);
            let touched = changed(at[i], k);
            let mut delta = Vec::new();
            let written = checkpoint::write_delta(
                &views,
                &|o: &OrgId| touched.contains(o),
                &checkpoint::Prior {
                    header: prior.header(),
                    header_hash: prior_hash,
                    sources: prior.sources(),
                },
                [2; 32],
                l.now,
                f64::INFINITY,
                &mut delta,
            )
            .unwrap();
            prop_assert_eq!(written, checkpoint::Delta::Written(delta.len() as u64));
            let (header, _, _) = checkpoint::read_header(&delta).unwrap();
            prop_assert_eq!(
                header.base,
                Some(checkpoint::BaseRef { seq: at[0] as u64, header_hash: base_hash })
            );
            let whole = checkpoint::open_bytes(&delta, Some(&base), all).unwrap().decode().unwrap();
            prop_assert_eq!(whole.difference(&views), None, "delta {} at {}", i + 1, k);
            let lazy = checkpoint::open_bytes(&delta, Some(&base), all)
                .unwrap()
                .views(&l.events[k..], all);
            prop_assert_eq!(lazy.difference(&fold(&l.events)), None);
            // Its base, and no other checkpoint, opens it.
            prop_assert!(checkpoint::open_bytes(&delta, None, all).is_err());
            if at[0] != k {
                prop_assert!(checkpoint::open_bytes(&delta, Some(&delta), all).is_err());
            }
            prior_bytes = delta;
            prior_base = Some(&base);
        }
    }
}
