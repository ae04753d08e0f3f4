//! Random command sequences from random actors never break the model's invariants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use permledger_domain::catalog::{is_billing, ADMINISTRATIVE};
use permledger_domain::state::{Org, ScopeRef};
use permledger_domain::testkit::{TestLedger, ACME_WITH_MODERATOR};
use permledger_domain::{Command, OrgId, PermissionKey, Scope, State, UserId};
use proptest::prelude::*;

const USERS: &[&str] = &["ann", "mo", "tina", "ivy", "bob", "u1", "u2"];
const TEAMS: &[&str] = &["support", "sales"];
const INBOXES: &[&str] = &["billing", "refunds", "line1"];
const ROLES: &[&str] = &[
    "org_moderator",
    "org_member",
    "guest",
    "team_member",
    "team_admin",
    "inbox_admin",
    "inbox_member",
    "inbox_observer",
    "custom",
    "custom2",
];
const PATTERNS: &[&str] = &[
    "inbox.thread.*",
    "inbox.thread.view",
    "team.view",
    "team.*",
    "org.audit.view",
    "org.roles.assign",
    "inbox.members.manage",
    "team.members.manage",
    "*",
    "org.*",
];
const SCOPES: &[&str] = &[
    "org",
    "team:support",
    "team:sales",
    "inbox:billing",
    "inbox:refunds",
    "inbox:line1",
];
const KINDS: &[&str] = &["org", "team", "inbox"];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(xs)
}

/// One command as scenario JSON, from a small universe so that sequences collide often.
fn command() -> impl Strategy<Value = (&'static str, String)> {
    let o = r#""org":"acme""#;
    (
        pick(USERS),
        0..26u8,
        (pick(USERS), pick(SCOPES), pick(ROLES), pick(PATTERNS)),
        (pick(TEAMS), pick(INBOXES), pick(KINDS), prop::option::of(pick(TEAMS))),
        (0..4u8, pick(PATTERNS), any::<bool>()),
    )
        .prop_map(move |(actor, which, (user, scope, role, pattern), (team, inbox, kind, maybe_team), (n, pattern2, flag))| {
            let expires = if flag { r#","expires_at":"2026-03-01T12:00:00Z""# } else { "" };
            let team_field = maybe_team.map(|t| format!(r#","team":"{t}""#)).unwrap_or_default();
            let json = match which {
                0 => format!(r#"{{"type":"assign_role",{o},"user":"{user}","scope":"{scope}","role":"{role}"{expires}}}"#),
                1 => format!(r#"{{"type":"unassign",{o},"user":"{user}","scope":"{scope}"}}"#),
                2 => format!(r#"{{"type":"grant",{o},"user":"{user}","scope":"{scope}","permission":"{}"{expires}}}"#, pattern.trim_end_matches(".*").trim_end_matches('*').to_string() + if pattern.ends_with('*') { "members.manage" } else { "" }),
                3 => format!(r#"{{"type":"revoke",{o},"user":"{user}","scope":"{scope}","permission":"team.view"}}"#),
                4 => format!(r#"{{"type":"define_role",{o},"role":"{role}","kind":"{kind}","permissions":["{pattern}"]}}"#),
                5 => format!(r#"{{"type":"change_role",{o},"role":"{role}","add":["{pattern}"],"remove":[]}}"#),
                6 => format!(r#"{{"type":"delete_role",{o},"role":"{role}","move_to":"{}"}}"#, ROLES[n as usize]),
                7 => format!(r#"{{"type":"delete_role",{o},"role":"{role}"}}"#),
                8 => format!(r#"{{"type":"create_team",{o},"team":"{team}"}}"#),
                9 => format!(r#"{{"type":"delete_team",{o},"team":"{team}"}}"#),
                10 => format!(r#"{{"type":"create_inbox",{o},"inbox":"{inbox}"{team_field}}}"#),
                11 => format!(r#"{{"type":"delete_inbox",{o},"inbox":"{inbox}"}}"#),
                12 => format!(r#"{{"type":"move_inbox",{o},"inbox":"{inbox}"{team_field}}}"#),
                13 => format!(r#"{{"type":"invite",{o},"invite":"inv{n}","email":"{user}@x.test","role":"{role}"}}"#),
                14 => format!(r#"{{"type":"invite",{o},"invite":"inv{n}","email":"{user}@x.test","assignments":[{{"scope":"{scope}","role":"{role}"}}]}}"#),
                15 => format!(r#"{{"type":"accept_invite",{o},"invite":"inv{n}"}}"#),
                16 => format!(r#"{{"type":"create_invite_link",{o},"link":"l{n}","role":"{role}","max_uses":2}}"#),
                17 => format!(r#"{{"type":"suspend_member",{o},"user":"{user}"}}"#),
                18 => format!(r#"{{"type":"reactivate_member",{o},"user":"{user}"}}"#),
                19 => format!(r#"{{"type":"remove_member",{o},"user":"{user}"}}"#),
                20 => format!(r#"{{"type":"leave_org",{o}}}"#),
                21 => format!(r#"{{"type":"transfer_ownership",{o},"to":"{user}"}}"#),
                22 => format!(r#"{{"type":"mask",{o},"scope":"{scope}","pattern":"{pattern2}"}}"#),
                23 => format!(r#"{{"type":"set_default_role",{o},"kind":"{kind}","role":"{role}"}}"#),
                24 => format!(r#"{{"type":"revoke_invite",{o},"invite":"inv{n}"}}"#),
                _ => "JOIN".to_string(),
            };
            (actor, json)
        })
}

fn start() -> TestLedger {
    TestLedger::from_story(
        &[
            &ACME_WITH_MODERATOR[..],
            &[
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"b","email":"tina@x.test","assignments":[{"scope":"team:support","role":"team_admin"}]}"#,
        ),
        (
            "tina",
            r#"{"type":"accept_invite","org":"acme","invite":"b"}"#,
        ),
        (
            "ann",
            r#"{"type":"invite","org":"acme","invite":"c","email":"ivy@x.test"}"#,
        ),
        (
            "ivy",
            r#"{"type":"accept_invite","org":"acme","invite":"c"}"#,
        ),
            ],
        ]
        .concat(),
    )
}

fn acme(state: &State) -> &Org {
    state.org(&OrgId::new("acme").unwrap()).unwrap()
}

fn admin_keys() -> Vec<PermissionKey> {
    ADMINISTRATIVE
        .iter()
        .map(|(k, _, _)| PermissionKey::new(*k).unwrap())
        .filter(|k| !is_billing(k))
        .collect()
}

/// (user, permission, scope) for every administrative permission a non-owner holds.
fn admin_holdings(
    org: &Org,
    at: permledger_domain::Timestamp,
) -> Vec<(UserId, PermissionKey, Scope)> {
    let keys = admin_keys();
    let mut out = Vec::new();
    for user in org.members.keys().filter(|u| **u != org.owner) {
        for scope in org.all_scopes().map(ScopeRef::to_scope) {
            for k in &keys {
                if org.holds_at(user, k, &scope, at) {
                    out.push((user.clone(), k.clone(), scope.clone()));
                }
            }
        }
    }
    out
}

fn invariants(org: &Org) -> Result<(), String> {
    let owner = org
        .members
        .get(&org.owner)
        .ok_or("the owner is not a member")?;
    if !owner.is_active() {
        return Err("the owner is suspended".into());
    }
    for (user, m) in &org.members {
        for (scope, a) in m.roles.iter() {
            if !org.scope_exists(scope) {
                return Err(format!("{user} holds a role on vanished {scope:?}"));
            }
            let role = org
                .roles
                .get(&a.role)
                .ok_or(format!("{user} holds deleted role {}", a.role))?;
            if role.kind != scope.to_scope().kind() {
                return Err(format!(
                    "{user} holds {} role {} on {scope:?}",
                    role.kind, a.role
                ));
            }
        }
        for (scope, _) in m.grants.iter() {
            if !org.scope_exists(scope) {
                return Err(format!("{user} holds a grant on vanished {scope:?}"));
            }
        }
    }
    for (scope, _) in org.masks.iter() {
        if !org.scope_exists(scope) {
            return Err(format!("a mask stays on vanished {scope:?}"));
        }
    }
    for r in org.roles.values() {
        if r.effective.iter().any(is_billing) {
            return Err("a role carries billing".into());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_the_invariants(commands in prop::collection::vec(command(), 1..60)) {
        let mut l = start();
        // What each invite's or link's issuer held when issuing it: accepting may give no more.
        let mut issued: BTreeMap<String, (UserId, State)> = BTreeMap::new();
        for (actor, json) in commands {
            let json = if json == "JOIN" {
                let token = l.last_token();
                format!(r#"{{"type":"join_by_link","org":"acme","token":"{token}"}}"#)
            } else {
                json
            };
            let before = l.state.clone();
            let held_before = admin_holdings(acme(&before), l.now);
            let cmd: Command = serde_json::from_str(&json).unwrap();
            let result = l.run(actor, &json);
            match &result {
                Err(_) => prop_assert_eq!(&l.state, &before, "a refused command changed the state: {}", json),
                Ok(_) => {
                    match &cmd {
                        Command::Invite { invite, .. } => { issued.insert(format!("i:{invite}"), (UserId::new(actor).unwrap(), before.clone())); }
                        Command::CreateInviteLink { link, .. } => { issued.insert(format!("l:{link}"), (UserId::new(actor).unwrap(), before.clone())); }
                        _ => {}
                    }
                }
            }
            let org = acme(&l.state);
            if let Err(e) = invariants(org) {
                prop_assert!(false, "after {} by {}: {}", json, actor, e);
            }
            // Nobody but the owner gains an administrative permission that the actor (or, for an
            // acceptance, the issuer at issue time) did not hold there itself.
            let actor_id = UserId::new(actor).unwrap();
            let existed = |s: &Scope| acme(&before).scope_exists(ScopeRef::of(s));
            for gained in admin_holdings(org, l.now).into_iter().filter(|h| existed(&h.2) && !held_before.contains(h)) {
                let (user, key, scope) = &gained;
                let (authority, at_state) = match &cmd {
                    Command::AcceptInvite { invite, .. } => issued.get(&format!("i:{invite}")).cloned().unwrap(),
                    Command::JoinByLink { .. } => {
                        let link = org.links.iter().max_by_key(|(_, l)| l.seq).map(|(id, _)| id.clone()).unwrap();
                        issued.get(&format!("l:{link}")).cloned().unwrap()
                    }
                    _ => (actor_id.clone(), before.clone()),
                };
                let default_role = acme(&at_state).defaults.org.clone();
                let via_default = org.members.get(user).and_then(|m| m.roles.org.as_ref()).map(|a| &a.role) == default_role.as_ref();
                let allowed = acme(&at_state).holds_at(&authority, key, scope, l.now)
                    || (via_default && matches!(cmd, Command::AcceptInvite { .. } | Command::JoinByLink { .. }));
                prop_assert!(allowed, "{} gained {} on {} through {} by {}", user, key, scope, json, actor);
            }
            prop_assert_eq!(&l.replayed(), &l.state, "replay differs after {}", json);
        }
    }
}
